#pragma once
#include <string>

namespace sdm::orchestrator {

/// The `sdm --version` text: sdm version and git sha, LibTorch, MPI, HDF5 (parallel or not), NCCL and BLAS.
std::string version_report();

}  // namespace sdm::orchestrator
