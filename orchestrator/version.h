#pragma once
#include <string>

namespace sdm::orchestrator {

/// The `sdm --version` text: sdm version and git sha, LibTorch, MPI, HDF5 (parallel or not), NCCL and BLAS.
std::string version_report();
/// "0.1.0" and the git sha the binary was built from ("unknown" outside a checkout).
std::string version_string();
std::string git_sha();

}  // namespace sdm::orchestrator
