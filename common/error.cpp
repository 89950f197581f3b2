#include "common/error.h"

namespace sdm {

std::string format_error(const ErrorSite& site, const std::string& problem) {
  std::string out;
  if (!site.file.empty()) out += site.file + ": ";
  if (!site.field.empty()) out += site.field;
  if (!site.value.empty()) out += (site.field.empty() ? "'" : " = '") + site.value + "'";
  if (!site.field.empty() || !site.value.empty()) out += ": ";
  out += problem;
  return out;
}

Error::Error(ErrorSite site, const std::string& problem)
    : std::runtime_error(format_error(site, problem)), site_(std::move(site)), problem_(problem) {}

}  // namespace sdm
