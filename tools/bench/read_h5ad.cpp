// One timed read of an .h5ad into a CellMatrix in a fresh process: prints "seconds nnz peak_rss_kib csr_bytes".
#include <sys/resource.h>

#include <chrono>
#include <cstdio>

#include "common/dataset_io.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s FILE.h5ad\n", argv[0]);
    return 2;
  }
  const auto t0 = std::chrono::steady_clock::now();
  const sdm::CellMatrix m = sdm::read_cells(argv[1]);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  std::printf("%.6f %lld %ld %zu\n", seconds, static_cast<long long>(m.X.nnz()), usage.ru_maxrss, m.X.bytes());
  return 0;
}
