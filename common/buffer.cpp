#include "common/buffer.h"

#include <filesystem>
#include <fstream>
#include <string>

#include "common/error.h"

namespace sdm {
namespace {

/// True when a virtio balloon device offers free page reporting (feature bit 5 of the bit string the kernel
/// shows in sysfs, one character per feature bit).
bool balloon_reports_free_pages() {
  constexpr std::size_t kReportingBit = 5;
  std::error_code ec;
  const std::filesystem::path driver = "/sys/bus/virtio/drivers/virtio_balloon";
  for (std::filesystem::directory_iterator it(driver, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->path().filename().string().rfind("virtio", 0) != 0) continue;
    std::ifstream in(it->path() / "features");
    std::string bits;
    if (in >> bits && bits.size() > kReportingBit && bits[kReportingBit] == '1') return true;
  }
  return false;
}

}  // namespace

bool huge_pages_help() {
  static const bool help = [] {
    if (const char* env = std::getenv("SDM_HUGEPAGES"); env && *env) {
      const std::string v = env;
      if (v == "1") return true;
      if (v == "0") return false;
      throw ConfigError({"<env>", "SDM_HUGEPAGES", v}, "expected 1 (ask for huge pages) or 0 (do not)");
    }
    return !balloon_reports_free_pages();
  }();
  return help;
}

}  // namespace sdm
