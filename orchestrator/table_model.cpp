#include "orchestrator/table_model.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <limits>
#include <stdexcept>

namespace sdm::orchestrator {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

bool fits(const Value& v, ColumnKind kind) {
  if (std::holds_alternative<std::monostate>(v)) return true;
  switch (kind) {
    case ColumnKind::kText:
      return std::holds_alternative<std::string>(v);
    case ColumnKind::kInt:
      return std::holds_alternative<std::int64_t>(v);
    case ColumnKind::kReal:
      return std::holds_alternative<double>(v);
    case ColumnKind::kEstimate:
      return std::holds_alternative<Estimate>(v);
    case ColumnKind::kBounds:
      return std::holds_alternative<Bounds>(v);
  }
  return false;
}

/// The number a column ranks by (NaN: not a score).
double score_of(const Value& v) {
  if (const auto* d = std::get_if<double>(&v)) return *d;
  if (const auto* e = std::get_if<Estimate>(&v)) return e->n > 0 ? e->mean : kNaN;
  return kNaN;
}

std::string estimate_text(const Estimate& e, int digits) {
  if (e.n == 0) return "NaN";
  std::string out = rounded_text(e.mean, digits);
  if (e.n > 1) out += " \u00b1 " + rounded_text(e.spread, digits);
  // a mean over fewer values than the group has says over how many
  if (e.of > e.n) out += " (n=" + std::to_string(e.n) + ")";
  return out;
}

std::string bounds_text(const Bounds& b, int digits) {
  if (!b.note.empty()) return "NaN (" + b.note + ")";
  if (std::isnan(b.low) && std::isnan(b.high)) return "NaN";
  std::string out = "[" + rounded_text(b.low, digits) + ", " + rounded_text(b.high, digits) + "]";
  if (b.cells >= 0) out += " (" + std::to_string(b.cells) + " cells)";
  return out;
}

}  // namespace

TableColumn& Table::add_column(TableColumn column) {
  if (!rows_.empty()) throw std::logic_error("table: column '" + column.name + "' added after rows");
  columns_.push_back(std::move(column));
  return columns_.back();
}

void Table::add_row(std::vector<Value> row) {
  if (row.size() != columns_.size()) {
    throw std::logic_error("table: a row of " + std::to_string(row.size()) + " values for " +
                           std::to_string(columns_.size()) + " columns");
  }
  for (std::size_t i = 0; i < row.size(); ++i) {
    if (!fits(row[i], columns_[i].kind)) throw std::logic_error("table: a value of the wrong kind in column '" + columns_[i].name + "'");
  }
  rows_.push_back(std::move(row));
}

std::size_t Table::index(const std::string& name) const {
  for (std::size_t i = 0; i < columns_.size(); ++i) {
    if (columns_[i].name == name) return i;
  }
  throw std::out_of_range("table: no column '" + name + "'");
}

MachineTable machine_columns(const Table& table) {
  MachineTable m;
  const auto& columns = table.columns();
  for (const auto& c : columns) {
    if (c.display_only) continue;
    switch (c.kind) {
      case ColumnKind::kText:
        m.names.push_back(c.name);
        m.kinds.push_back(ScalarKind::kText);
        break;
      case ColumnKind::kInt:
        m.names.push_back(c.name);
        m.kinds.push_back(ScalarKind::kInt);
        break;
      case ColumnKind::kReal:
        m.names.push_back(c.name);
        m.kinds.push_back(ScalarKind::kReal);
        break;
      case ColumnKind::kEstimate:
        m.names.insert(m.names.end(), {c.name, c.name + "_" + c.spread, c.name + "_n"});
        m.kinds.insert(m.kinds.end(), {ScalarKind::kReal, ScalarKind::kReal, ScalarKind::kInt});
        break;
      case ColumnKind::kBounds:
        m.names.insert(m.names.end(), {c.name + "_low", c.name + "_high"});
        m.kinds.insert(m.kinds.end(), {ScalarKind::kReal, ScalarKind::kReal});
        if (c.counts_cells) {
          m.names.insert(m.names.end(), {c.name + "_cells", c.name + "_note"});
          m.kinds.insert(m.kinds.end(), {ScalarKind::kInt, ScalarKind::kText});
        }
        break;
    }
  }
  for (const auto& row : table.rows()) {
    std::vector<Scalar> out;
    out.reserve(m.names.size());
    for (std::size_t i = 0; i < row.size(); ++i) {
      const TableColumn& c = columns[i];
      if (c.display_only) continue;
      const Value& v = row[i];
      const bool missing = std::holds_alternative<std::monostate>(v);
      switch (c.kind) {
        case ColumnKind::kText:
          out.push_back(missing ? Scalar{} : Scalar{std::get<std::string>(v)});
          break;
        case ColumnKind::kInt:
          out.push_back(missing ? Scalar{} : Scalar{std::get<std::int64_t>(v)});
          break;
        case ColumnKind::kReal:
          out.push_back(missing ? Scalar{} : Scalar{std::get<double>(v)});
          break;
        case ColumnKind::kEstimate: {
          // one push_back per scalar: GCC 12 misreads initializer lists of string-holding variants as uninitialized
          const auto* e = std::get_if<Estimate>(&v);
          out.emplace_back(e ? (e->n > 0 ? e->mean : kNaN) : kNaN);
          out.emplace_back(e ? (e->n > 1 ? e->spread : kNaN) : kNaN);
          out.emplace_back(e ? e->n : std::int64_t{0});
          break;
        }
        case ColumnKind::kBounds: {
          const auto* b = std::get_if<Bounds>(&v);
          if (b) {
            out.emplace_back(b->low);
            out.emplace_back(b->high);
          } else {
            out.emplace_back();
            out.emplace_back();
          }
          if (c.counts_cells) {
            if (b && b->cells >= 0) out.emplace_back(b->cells);
            else out.emplace_back();
            out.emplace_back(b ? b->note : std::string());
          }
          break;
        }
      }
    }
    m.rows.push_back(std::move(out));
  }
  return m;
}

DisplayTable display_cells(const Table& table, int digits) {
  DisplayTable d;
  const auto& columns = table.columns();
  std::vector<double> best(columns.size(), -std::numeric_limits<double>::infinity());
  for (const auto& row : table.rows()) {
    for (std::size_t i = 0; i < row.size(); ++i) {
      const double s = score_of(row[i]);
      if (columns[i].best_in_bold && !std::isnan(s)) best[i] = std::max(best[i], s);
    }
  }
  for (const auto& c : columns) {
    d.header.push_back(c.header());
    d.numeric.push_back(c.kind != ColumnKind::kText);
  }
  for (const auto& row : table.rows()) {
    std::vector<std::string> cells;
    std::vector<bool> bold;
    for (std::size_t i = 0; i < row.size(); ++i) {
      const TableColumn& c = columns[i];
      const Value& v = row[i];
      std::string text;
      if (const auto* s = std::get_if<std::string>(&v)) {
        text = *s;
      } else if (const auto* n = std::get_if<std::int64_t>(&v)) {
        text = std::to_string(*n);
      } else if (const auto* x = std::get_if<double>(&v)) {
        text = rounded_text(*x, digits, c.significant);
      } else if (const auto* e = std::get_if<Estimate>(&v)) {
        text = estimate_text(*e, digits);
      } else if (const auto* b = std::get_if<Bounds>(&v)) {
        text = bounds_text(*b, digits);
      }
      const double s = score_of(v);
      cells.push_back(std::move(text));
      bold.push_back(c.best_in_bold && !std::isnan(s) && s == best[i]);
    }
    d.rows.push_back(std::move(cells));
    d.bold.push_back(std::move(bold));
  }
  return d;
}

std::string shortest_text(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, value);  // shortest round-trip form (C++17)
  std::string text(buf, r.ptr);
  // a real stays a real to a reader that infers types (pandas): 6 -> 6.0, as JSON writes it
  if (text.find_first_of(".e") == std::string::npos) text += ".0";
  return text;
}

std::string rounded_text(double value, int digits, bool significant) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  char buf[64];
  std::snprintf(buf, sizeof buf, significant ? "%.*g" : "%.*f", significant ? std::max(digits, 1) : digits, value);
  return buf;
}

}  // namespace sdm::orchestrator
