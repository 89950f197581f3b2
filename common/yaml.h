#pragma once
// A checked view of a YAML document. Each view knows its path ("sweep.models[2].preset") and file, so
// every error - unknown key, wrong type, missing key - names exactly where the user has to look.
#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace sdm {

class YamlView {
 public:
  YamlView(YAML::Node node, std::string path, std::string file);

  /// Parses a file; syntax errors become ConfigError with file and line. `root` names the top-level path.
  static YamlView load_file(const std::string& file, const std::string& root);
  static YamlView load_string(const std::string& text, const std::string& root,
                              const std::string& file = "<string>");

  const std::string& path() const { return path_; }
  const std::string& file() const { return file_; }
  const YAML::Node& node() const { return node_; }
  /// 1-based line of this node in its file, 0 if unknown (e.g. a missing key).
  int line() const;

  bool defined() const { return node_.IsDefined() && !node_.IsNull(); }
  bool is_map() const { return node_.IsMap(); }
  bool is_sequence() const { return node_.IsSequence(); }
  bool is_scalar() const { return node_.IsScalar(); }
  std::size_t size() const { return node_.size(); }

  bool has(std::string_view key) const;
  /// Child by key; a missing key gives a view with defined() == false (and still the right path).
  YamlView operator[](std::string_view key) const;
  /// A key that must be present.
  YamlView require(std::string_view key) const;
  /// Element of a sequence.
  YamlView at(std::size_t index) const;
  /// All elements of a sequence (a scalar counts as a one-element list when `allow_scalar`).
  std::vector<YamlView> items(bool allow_scalar = false) const;
  /// Keys of a map in document order.
  std::vector<std::string> keys() const;

  /// Rejects keys not in `allowed` ("...presett: unknown key; did you mean 'preset'?") and duplicates.
  /// Also rejects a non-map node.
  void expect_keys(std::span<const std::string> allowed) const;
  void expect_keys(std::initializer_list<std::string> allowed) const {
    expect_keys(std::span<const std::string>(allowed.begin(), allowed.size()));
  }

  /// Typed access: std::string, bool, std::int64_t, int, double, std::vector<T> of those.
  template <class T>
  T as() const;
  template <class T>
  T get(std::string_view key, T fallback) const {
    auto child = (*this)[key];
    return child.defined() ? child.as<T>() : fallback;
  }

  /// Throws ConfigError at this node unless `value` (this node's text, or its default when absent) is one of
  /// `allowed`; the message suggests the closest one.
  void expect_one_of(const std::string& value, const std::vector<std::string>& allowed) const;

  /// Throws ConfigError at this node: "file:line: path = 'value': problem".
  [[noreturn]] void fail(const std::string& problem) const;

 private:
  std::string location() const;

  YAML::Node node_;
  std::string path_;
  std::string file_;
};

template <>
std::string YamlView::as<std::string>() const;
template <>
bool YamlView::as<bool>() const;
template <>
std::int64_t YamlView::as<std::int64_t>() const;
template <>
int YamlView::as<int>() const;
template <>
double YamlView::as<double>() const;
template <>
std::vector<std::string> YamlView::as<std::vector<std::string>>() const;
template <>
std::vector<std::int64_t> YamlView::as<std::vector<std::int64_t>>() const;
template <>
std::vector<double> YamlView::as<std::vector<double>>() const;

}  // namespace sdm
