// The version-1 chunk index walk (common/hdf5_chunk_index.h) over arbitrary bytes. The input is a 24-byte query
// — object header address (u64), elements (u64), elements per chunk (u32), element size (u32), little endian —
// followed by the file. Beyond "a result or nothing, never a crash or a read outside the file", a result must be
// what the direct reader relies on: sorted, one entry per chunk boundary, every chunk inside the dataset.
#include "common/hdf5_chunk_index.h"
#include "tests/fuzz/fuzz_target.h"

#include <cstring>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  constexpr std::size_t kQuery = 24;
  if (size < kQuery) return 0;
  sdm::h5::ChunkIndexQuery query;
  std::uint32_t chunk = 0, element = 0;
  std::memcpy(&query.header, data, 8);
  std::memcpy(&query.elements, data + 8, 8);
  std::memcpy(&chunk, data + 16, 4);
  std::memcpy(&element, data + 20, 4);
  query.chunk_elements = chunk;
  query.element_bytes = element;
  const std::uint8_t* file = data + kQuery;
  const std::uint64_t file_size = size - kQuery;
  const sdm::h5::ReadBytes read = [&](std::uint64_t offset,
                                      std::uint64_t n) -> std::optional<std::vector<unsigned char>> {
    if (offset > file_size || n > file_size - offset) return std::nullopt;
    return std::vector<unsigned char>(file + offset, file + offset + n);
  };
  sdm::fuzz::expect_clean_rejection("fuzz_chunk_index", [&] {
    const auto chunks = sdm::h5::walk_v1_chunk_index(read, query);
    if (!chunks) return;
    for (std::size_t i = 0; i < chunks->size(); ++i) {
      const auto& c = (*chunks)[i];
      const bool ordered = i == 0 || (*chunks)[i - 1].first_element < c.first_element;
      if (!ordered || c.first_element % query.chunk_elements != 0 || c.first_element >= query.elements) {
        std::fprintf(stderr, "fuzz_chunk_index: accepted chunk %zu at element %llu (chunk %llu, %llu elements)\n", i,
                     static_cast<unsigned long long>(c.first_element),
                     static_cast<unsigned long long>(query.chunk_elements),
                     static_cast<unsigned long long>(query.elements));
        std::abort();
      }
    }
  });
  return 0;
}
