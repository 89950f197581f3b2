// The safetensors reader: header length, JSON header, dtypes, shapes and data offsets all come from the input.
// Beyond "accept or sdm::Error", an accepted file must describe only bytes that exist: every entry's span lies
// inside the data section, its size matches dtype x shape, and reading every byte of it is safe.
#include "common/safetensors.h"
#include "tests/fuzz/fuzz_target.h"

#include <cstring>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const bool quiet = (sdm::fuzz::quiet_logging(), true);
  (void)quiet;
  const std::string path = sdm::fuzz::write_scratch(data, size, "input.safetensors");
  sdm::fuzz::expect_clean_rejection("fuzz_safetensors", [&] {
    (void)sdm::SafetensorsFile::looks_like(path);
    const auto file = sdm::SafetensorsFile::open(path);
    std::uint64_t header_len = 0;
    std::memcpy(&header_len, data, sizeof header_len);  // open() accepted it, so the 8 bytes exist
    const std::uint64_t data_section = size - 8 - header_len;
    unsigned checksum = 0;
    for (const auto& e : file.entries()) {
      const auto bytes = file.bytes(e);
      const auto expected = static_cast<std::uint64_t>(e.numel()) * sdm::safetensors_dtype_size(e.dtype);
      if (e.begin > e.end || e.end > data_section || bytes.size() != e.end - e.begin || bytes.size() != expected) {
        std::fprintf(stderr, "fuzz_safetensors: accepted entry %s [%llu, %llu) of a %llu-byte data section\n",
                     e.name.c_str(), static_cast<unsigned long long>(e.begin),
                     static_cast<unsigned long long>(e.end), static_cast<unsigned long long>(data_section));
        std::abort();
      }
      for (const std::byte b : bytes) checksum += static_cast<unsigned>(b);  // touches every byte
    }
    // keeps the reads: an accepted tensor's bytes are all readable
    if (checksum == 0xFFFFFFFFu) std::fprintf(stderr, "checksum %u\n", checksum);
  });
  return 0;
}
