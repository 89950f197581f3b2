#include "common/table.h"

#include <cstdio>

#include "common/error.h"
#include "common/text.h"

namespace sdm {

std::string_view column_type_name(ColumnType type) {
  switch (type) {
    case ColumnType::kCategorical: return "categorical";
    case ColumnType::kString: return "string";
    case ColumnType::kInt: return "int";
    case ColumnType::kFloat: return "float";
    case ColumnType::kBool: return "bool";
    case ColumnType::kNullableInt: return "nullable-int";
    case ColumnType::kNullableBool: return "nullable-bool";
    case ColumnType::kNullableString: return "nullable-string";
  }
  return "?";
}

std::size_t Column::size() const {
  switch (type) {
    case ColumnType::kString:
    case ColumnType::kNullableString: return strings.size();
    case ColumnType::kFloat: return floats.size();
    default: return ints.size();
  }
}

bool Column::is_missing(std::size_t row) const {
  if (!missing.empty() && missing[row]) return true;
  return type == ColumnType::kCategorical && ints[row] < 0;
}

std::string Column::text(std::size_t row) const {
  if (is_missing(row)) return "";
  switch (type) {
    case ColumnType::kCategorical: {
      const auto code = static_cast<std::size_t>(ints[row]);
      return code < categories.size() ? categories[code] : "";
    }
    case ColumnType::kString:
    case ColumnType::kNullableString: return strings[row];
    case ColumnType::kFloat: {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.17g", floats[row]);
      return buf;
    }
    case ColumnType::kBool:
    case ColumnType::kNullableBool: return ints[row] ? "true" : "false";
    default: return std::to_string(ints[row]);
  }
}

Column Column::take(const std::vector<std::size_t>& rows) const {
  Column out = *this;
  auto pick = [&](const auto& from, auto& to) {
    if (from.empty()) return;
    to.clear();
    to.reserve(rows.size());
    for (std::size_t r : rows) to.push_back(from[r]);
  };
  pick(strings, out.strings);
  pick(ints, out.ints);
  pick(floats, out.floats);
  pick(missing, out.missing);
  return out;
}

const Column* Table::find(std::string_view name) const {
  for (const auto& c : columns)
    if (c.name == name) return &c;
  return nullptr;
}

const Column& Table::at(std::string_view name, const std::string& file, const std::string& table_name) const {
  if (const Column* c = find(name)) return *c;
  std::vector<std::string> names;
  for (const auto& c : columns) names.push_back(c.name);
  throw DataError({file, table_name + "/" + std::string(name), ""},
                  "no such column; " + (names.empty() ? std::string("the table has no columns") : suggest(name, names)));
}

Table Table::take(const std::vector<std::size_t>& rows) const {
  Table out;
  out.index.reserve(rows.size());
  for (std::size_t r : rows) out.index.push_back(index[r]);
  for (const auto& c : columns) out.columns.push_back(c.take(rows));
  return out;
}

}  // namespace sdm
