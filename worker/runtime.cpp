#include "worker/runtime.h"

#include <ATen/Parallel.h>
#include <dlfcn.h>
#include <malloc.h>
#include <torch/version.h>

#include <climits>
#include <cstdlib>
#include <filesystem>
#include <limits>

#include "common/error.h"

namespace sdm::worker {

void keep_freed_memory() {
  const char* env = std::getenv("SDM_MALLOC");
  if (env && std::string(env) == "default") return;
  mallopt(M_MMAP_MAX, 0);
  mallopt(M_TRIM_THRESHOLD, std::numeric_limits<int>::max());
}


std::string torch_version() { return TORCH_VERSION; }

int torch_threads() { return at::get_num_threads(); }

void set_torch_threads(int n) {
  if (n < 1) throw ConfigError({"", "threads", std::to_string(n)}, "thread count must be >= 1");
  at::set_num_threads(n);
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
