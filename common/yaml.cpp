#include "common/yaml.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>

#include "common/error.h"
#include "common/text.h"

namespace sdm {
namespace {

std::string child_path(const std::string& parent, std::string_view key) {
  return parent.empty() ? std::string(key) : parent + "." + std::string(key);
}

const char* kind_name(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Map: return "a map";
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Null: return "null";
    case YAML::NodeType::Undefined: return "nothing";
    default: return "a scalar";
  }
}

}  // namespace

YamlView::YamlView(YAML::Node node, std::string path, std::string file)
    : node_(std::move(node)), path_(std::move(path)), file_(std::move(file)) {}

YamlView YamlView::load_file(const std::string& file, const std::string& root) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    const char* why = std::filesystem::exists(file) ? "cannot be read" : "no such file";
    throw IoError({file, "", ""}, why);
  }
  std::stringstream buf;
  buf << in.rdbuf();
  return load_string(buf.str(), root, file);
}

YamlView YamlView::load_string(const std::string& text, const std::string& root, const std::string& file) {
  // YAML is Unicode text; a stray byte would otherwise travel into names, cell ids and JSON (which refuses it)
  if (const std::size_t bad = first_invalid_utf8(text); bad != std::string_view::npos) {
    const auto line = 1 + std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(bad), '\n');
    const auto line_start = text.rfind('\n', bad == 0 ? 0 : bad - 1);
    const auto column = bad - (line_start == std::string::npos || bad == 0 ? 0 : line_start + 1) + 1;
    char byte[8];
    std::snprintf(byte, sizeof byte, "0x%02X", static_cast<unsigned>(static_cast<unsigned char>(text[bad])));
    throw ConfigError({file + ":" + std::to_string(line), "", byte},
                      "not valid UTF-8 (column " + std::to_string(column) + "); save the file as UTF-8 text");
  }
  try {
    return YamlView(YAML::Load(text), root, file);
  } catch (const YAML::Exception& e) {
    throw ConfigError({file + ":" + std::to_string(e.mark.line + 1), "", ""}, "invalid YAML: " + e.msg);
  }
}

int YamlView::line() const {
  if (!node_.IsDefined()) return 0;
  const auto mark = node_.Mark();
  return mark.line < 0 ? 0 : mark.line + 1;
}

std::string YamlView::location() const {
  const int l = line();
  return l > 0 ? file_ + ":" + std::to_string(l) : file_;
}

void YamlView::expect_one_of(const std::string& value, const std::vector<std::string>& allowed) const {
  if (std::find(allowed.begin(), allowed.end(), value) == allowed.end()) fail("unknown value; " + suggest(value, allowed));
}

void YamlView::fail(const std::string& problem) const {
  std::string value = node_.IsScalar() ? node_.Scalar() : "";
  throw ConfigError({location(), path_, value}, problem);
}

bool YamlView::has(std::string_view key) const {
  return node_.IsMap() && node_[std::string(key)].IsDefined();
}

YamlView YamlView::operator[](std::string_view key) const {
  if (!node_.IsMap()) {
    if (!defined()) return YamlView(YAML::Node(YAML::NodeType::Undefined), child_path(path_, key), file_);
    fail(std::string("expected a map with key '") + std::string(key) + "', got " + kind_name(node_));
  }
  // Look the key up without yaml-cpp's operator[] on a non-const node, which would insert it.
  const YAML::Node& cnode = node_;
  return YamlView(cnode[std::string(key)], child_path(path_, key), file_);
}

YamlView YamlView::require(std::string_view key) const {
  auto child = (*this)[key];
  if (!child.defined()) throw ConfigError({location(), child.path(), ""}, "required key is missing");
  return child;
}

YamlView YamlView::at(std::size_t index) const {
  if (!node_.IsSequence()) fail(std::string("expected a list, got ") + kind_name(node_));
  if (index >= node_.size()) fail("index " + std::to_string(index) + " out of range");
  const YAML::Node& cnode = node_;
  return YamlView(cnode[index], path_ + "[" + std::to_string(index) + "]", file_);
}

std::vector<YamlView> YamlView::items(bool allow_scalar) const {
  std::vector<YamlView> out;
  if (!defined()) return out;
  if (allow_scalar && node_.IsScalar()) return {*this};
  if (!node_.IsSequence()) fail(std::string("expected a list, got ") + kind_name(node_));
  for (std::size_t i = 0; i < node_.size(); ++i) out.push_back(at(i));
  return out;
}

std::vector<std::string> YamlView::keys() const {
  std::vector<std::string> out;
  if (!node_.IsMap()) return out;
  for (const auto& kv : node_) out.push_back(kv.first.as<std::string>());
  return out;
}

void YamlView::expect_keys(std::span<const std::string> allowed) const {
  if (!defined()) return;
  if (!node_.IsMap()) fail(std::string("expected a map, got ") + kind_name(node_));
  std::set<std::string> seen;
  for (const auto& kv : node_) {
    if (!kv.first.IsScalar()) fail("map keys must be plain names");
    const std::string key = kv.first.Scalar();
    YamlView child(kv.second, child_path(path_, key), file_);
    const int l = kv.first.Mark().line + 1;
    const std::string where = l > 0 ? file_ + ":" + std::to_string(l) : file_;
    if (!seen.insert(key).second) throw ConfigError({where, child.path(), ""}, "duplicate key");
    bool known = false;
    for (const auto& a : allowed) known = known || a == key;
    if (!known) throw ConfigError({where, child.path(), ""}, "unknown key; " + suggest(key, allowed));
  }
}

template <>
std::string YamlView::as<std::string>() const {
  if (!node_.IsScalar()) fail(std::string("expected a string, got ") + kind_name(node_));
  return node_.Scalar();
}

template <>
bool YamlView::as<bool>() const {
  if (node_.IsScalar()) {
    const std::string& s = node_.Scalar();
    if (s == "true" || s == "True" || s == "TRUE" || s == "yes" || s == "on") return true;
    if (s == "false" || s == "False" || s == "FALSE" || s == "no" || s == "off") return false;
  }
  fail("expected true or false");
}

template <>
std::int64_t YamlView::as<std::int64_t>() const {
  if (node_.IsScalar()) {
    const std::string& s = node_.Scalar();
    char* end = nullptr;
    errno = 0;
    const long long v = std::strtoll(s.c_str(), &end, 10);
    if (!s.empty() && end == s.c_str() + s.size() && errno == 0) return v;
  }
  fail("expected an integer");
}

template <>
int YamlView::as<int>() const {
  const std::int64_t v = as<std::int64_t>();
  if (v < std::numeric_limits<int>::min() || v > std::numeric_limits<int>::max()) fail("integer out of range");
  return static_cast<int>(v);
}

template <>
double YamlView::as<double>() const {
  if (node_.IsScalar()) {
    const std::string& s = node_.Scalar();
    char* end = nullptr;
    errno = 0;
    const double v = std::strtod(s.c_str(), &end);
    if (!s.empty() && end == s.c_str() + s.size() && errno == 0 && std::isfinite(v)) return v;
  }
  fail("expected a finite number");
}

namespace {
template <class T>
std::vector<T> as_list(const YamlView& view) {
  std::vector<T> out;
  for (const auto& item : view.items(/*allow_scalar=*/true)) out.push_back(item.as<T>());
  return out;
}
}  // namespace

template <>
std::vector<std::string> YamlView::as<std::vector<std::string>>() const {
  return as_list<std::string>(*this);
}
template <>
std::vector<std::int64_t> YamlView::as<std::vector<std::int64_t>>() const {
  return as_list<std::int64_t>(*this);
}
template <>
std::vector<double> YamlView::as<std::vector<double>>() const {
  return as_list<double>(*this);
}

}  // namespace sdm
