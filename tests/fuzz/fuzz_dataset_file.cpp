// File-level fuzzing of the single-cell readers: the input is a whole file, written to disk and read as an .h5ad
// (format detection picks 10x-h5 or Loom when the HDF5 root says so, which the seed corpus also covers). Both
// `sdm inspect`'s summary and the full read into a CellMatrix run on every input.
#include "common/dataset_io.h"
#include "tests/fuzz/fuzz_target.h"

namespace sdm::fuzz {
namespace {

// What a reader accepted must be self-consistent: a later stage indexes by these without checking again.
void expect_consistent(const CellMatrix& cells) {
  try {
    cells.X.validate("fuzz");
  } catch (const Error& e) {
    std::fprintf(stderr, "fuzz_dataset_file: the reader returned an inconsistent matrix: %s\n", e.what());
    std::abort();
  }
  if (cells.obs.rows() != static_cast<std::size_t>(cells.n_obs()) ||
      cells.var.rows() != static_cast<std::size_t>(cells.n_vars())) {
    std::fprintf(stderr, "fuzz_dataset_file: obs/var rows (%zu, %zu) do not match X (%lld x %lld)\n",
                 cells.obs.rows(), cells.var.rows(), static_cast<long long>(cells.n_obs()),
                 static_cast<long long>(cells.n_vars()));
    std::abort();
  }
}

}  // namespace
}  // namespace sdm::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const bool quiet = (sdm::fuzz::quiet_logging(), true);
  (void)quiet;
  const std::string path = sdm::fuzz::write_scratch(data, size, "input.h5ad");
  sdm::fuzz::expect_clean_rejection("fuzz_dataset_file/inspect", [&] { (void)sdm::inspect_file(path); });
  sdm::fuzz::expect_clean_rejection("fuzz_dataset_file/read", [&] {
    const sdm::CellMatrix cells = sdm::read_cells(path);
    sdm::fuzz::expect_consistent(cells);
  });
  return 0;
}
