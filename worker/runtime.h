#pragma once
// What the compute runtime of this rank looks like: LibTorch version, intra-op threads and the BLAS that
// LibTorch's matrix products actually call (Debian's default reference BLAS is ~30x slower than OpenBLAS).
#include <mpi.h>

#include <memory>
#include <string>

#include "cluster/collective.h"

namespace sdm::worker {

struct BlasInfo {
  std::string library;  ///< resolved path of the shared object that provides sgemm_, or "not loaded"
  std::string vendor;   ///< "OpenBLAS", "reference (Netlib)", "MKL", ... best effort
  std::string config;   ///< openblas_get_config() when available
  int threads = 0;      ///< openblas_get_num_threads() when available, else 0
};

std::string torch_version();
int torch_threads();
/// Sets LibTorch's intra-op thread count and OpenBLAS's pool to n (>= 1).
void set_torch_threads(int n);
BlasInfo blas_info();
/// Keeps freed memory in the process heap (no mmap for large blocks, no trimming): a transformer allocates the
/// same large activations layer after layer, and returning them to the kernel makes every layer page-fault them
/// in again (2x slower at L = 1200 on a VM). SDM_MALLOC=default leaves glibc's behaviour alone.
void keep_freed_memory();

/// The collective a data-parallel rank group trains through: NCCL on the rank's GPU (local rank modulo the
/// visible devices) when this build has NCCL and LibTorch sees CUDA, MPI over host memory otherwise.
std::unique_ptr<cluster::Collective> make_group_collective(MPI_Comm group);

/// With CUDA: makes GPU (node-local rank mod visible GPUs) this rank's current device, honouring
/// CUDA_VISIBLE_DEVICES, and returns it; -1 on a CPU-only rank.
int bind_gpu();

/// One line: "OpenBLAS 0.3.21 (openblas-pthread/libblas.so.3, 1 thread)".
std::string blas_summary();

}  // namespace sdm::worker
