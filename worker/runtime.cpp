#include "worker/runtime.h"

#include <ATen/Parallel.h>
#include <dlfcn.h>
#include <malloc.h>
#include <torch/version.h>

#include <climits>
#include <cstdlib>
#include <filesystem>
#include <limits>

#include "cluster/environment.h"
#include "common/hdf5_direct.h"
#include "cluster/mpi_collective.h"
#include "common/error.h"
#ifdef SDM_HAVE_NCCL
#include <cuda_runtime_api.h>
#include <torch/cuda.h>

#include "cluster/nccl_collective.h"
#endif

namespace sdm::worker {

void keep_freed_memory() {
  const char* env = std::getenv("SDM_MALLOC");
  if (env && std::string(env) == "default") return;
  mallopt(M_MMAP_MAX, 0);
  mallopt(M_TRIM_THRESHOLD, std::numeric_limits<int>::max());
}


std::unique_ptr<cluster::Collective> make_group_collective(MPI_Comm group) {
#ifdef SDM_HAVE_NCCL
  if (torch::cuda::is_available()) {
    const int device = std::max(0, cluster::bind_local_gpu());  // the rank's GPU, as bind_gpu chose it
    // NCCL on the legacy default stream, which LibTorch computes on: a bucket's packing, its all-reduce and the
    // optimizer step that reads it are ordered without explicit synchronization.
    return std::make_unique<cluster::NcclCollective>(group, device, static_cast<void*>(cudaStreamLegacy));
  }
#endif
  return std::make_unique<cluster::MpiCollective>(group);
}

int bind_gpu() {
#ifdef SDM_HAVE_NCCL
  if (torch::cuda::is_available()) return cluster::bind_local_gpu();
#endif
  return -1;
}

std::string torch_version() { return TORCH_VERSION; }

int torch_threads() { return at::get_num_threads(); }

void set_torch_threads(int n) {
  if (n < 1) throw ConfigError({"", "threads", std::to_string(n)}, "thread count must be >= 1");
  at::set_num_threads(n);
  // OpenBLAS keeps its own pool (as many threads as cores unless OPENBLAS_NUM_THREADS says otherwise): under mpirun
  // every rank's pool would spin on the same cores. Match it to ours.
  using SetThreadsFn = void (*)(int);
  if (auto set = reinterpret_cast<SetThreadsFn>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) set(n);
  h5::set_read_threads(static_cast<unsigned>(n));  // large .h5ad reads stay within the rank's cores too
}

BlasInfo blas_info() {
  BlasInfo info;
  // LibTorch links libblas.so.3 (a Debian alternative); find which file really provides sgemm_.
  void* sgemm = dlsym(RTLD_DEFAULT, "sgemm_");
  Dl_info where{};
  if (!sgemm || dladdr(sgemm, &where) == 0 || !where.dli_fname) {
    info.library = "not loaded";
    info.vendor = "unknown";
    return info;
  }
  std::error_code ec;
  const auto resolved = std::filesystem::canonical(where.dli_fname, ec);
  info.library = ec ? where.dli_fname : resolved.string();

  using ConfigFn = char* (*)();
  using ThreadsFn = int (*)();
  if (auto cfg = reinterpret_cast<ConfigFn>(dlsym(RTLD_DEFAULT, "openblas_get_config"))) {
    info.vendor = "OpenBLAS";
    info.config = cfg();
    if (auto th = reinterpret_cast<ThreadsFn>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"))) info.threads = th();
  } else if (dlsym(RTLD_DEFAULT, "mkl_get_max_threads")) {
    info.vendor = "MKL";
  } else if (dlsym(RTLD_DEFAULT, "bli_info_get_version_str")) {
    info.vendor = "BLIS";
  } else if (info.library.find("blas/libblas") != std::string::npos) {
    info.vendor = "reference (Netlib) - slow; install libopenblas0-pthread";
  } else {
    info.vendor = "unknown";
  }
  return info;
}

std::string blas_summary() {
  const BlasInfo b = blas_info();
  std::string s = b.vendor;
  if (!b.config.empty()) s = b.config.substr(0, b.config.find(' ', b.config.find(' ') + 1));  // "OpenBLAS 0.3.21"
  s += " (" + b.library;
  if (b.threads > 0) s += ", " + std::to_string(b.threads) + (b.threads == 1 ? " thread" : " threads");
  return s + ")";
}

}  // namespace sdm::worker
