#pragma once
// Cell and gene annotation tables (AnnData's obs and var) in memory. A column keeps its on-disk kind, so
// `sdm inspect` reports types faithfully and labels keep their categorical order.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sdm {

enum class ColumnType { kCategorical, kString, kInt, kFloat, kBool, kNullableInt, kNullableBool, kNullableString };

/// CONTRACTS §3 spelling: categorical, string, int, float, bool, nullable-int, nullable-bool, nullable-string.
std::string_view column_type_name(ColumnType type);

struct Column {
  std::string name;
  ColumnType type = ColumnType::kString;
  std::vector<std::string> strings;     ///< kString, kNullableString
  std::vector<std::int64_t> ints;       ///< kInt, kBool, kNullableInt, kNullableBool (0/1), kCategorical codes (-1 = missing)
  std::vector<double> floats;           ///< kFloat
  std::vector<std::uint8_t> missing;    ///< nullable kinds: 1 = missing (empty = none missing)
  std::vector<std::string> categories;  ///< kCategorical, in code order
  bool ordered = false;                 ///< kCategorical

  std::size_t size() const;
  bool is_missing(std::size_t row) const;
  /// The value as text: the category label for categoricals, "" when missing.
  std::string text(std::size_t row) const;
  /// Keeps only the given rows, in the given order.
  Column take(const std::vector<std::size_t>& rows) const;
};

struct Table {
  std::vector<std::string> index;  ///< row names (obs_names / var_names)
  std::vector<Column> columns;

  std::size_t rows() const { return index.size(); }
  const Column* find(std::string_view name) const;
  /// Throws DataError naming `file` and the column (and listing those that exist) when absent.
  const Column& at(std::string_view name, const std::string& file, const std::string& table_name) const;
  Table take(const std::vector<std::size_t>& rows) const;
};

}  // namespace sdm
