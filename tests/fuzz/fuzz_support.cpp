#include "tests/fuzz/fuzz_target.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace sdm::fuzz {

std::string write_scratch(const std::uint8_t* data, std::size_t size, const std::string& suffix) {
  static const std::string dir = std::filesystem::is_directory("/dev/shm")
                                     ? std::string("/dev/shm")
                                     : std::filesystem::temp_directory_path().string();
  const std::string path = dir + "/sdm-fuzz-" + std::to_string(::getpid()) + "-" + suffix;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  out.close();
  if (!out) {
    std::fprintf(stderr, "cannot write the scratch file %s\n", path.c_str());
    std::abort();
  }
  return path;
}

void quiet_logging() { spdlog::set_level(spdlog::level::off); }

}  // namespace sdm::fuzz
