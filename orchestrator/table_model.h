#pragma once
// The one table model behind every table sdm prints or exports: typed columns (text, integer, real, mean ±
// spread, interval) holding values, not text. Writers come in two kinds and each reads the table through one view:
// - machine formats (csv, json) see `machine_columns`: every value a scalar at full precision; a mean ± spread
//   column becomes `<name>`, `<name>_<spread>`, `<name>_n`, an interval `<name>_low`, `<name>_high` (and
//   `<name>_cells`, `<name>_note` where it counts test cells). CSV writes each real as the shortest text that reads
//   back to the same double, NaN as `NaN`; JSON writes numbers as numbers and NaN/Inf as null (CONTRACTS §19).
// - display formats (text, md, latex, html) see `display_cells`: one string per value, rounded to `digits`,
//   a mean ± spread as "0.9123 ± 0.0100", a column's best value in bold where the column asks for it.
// Rounding therefore exists in exactly one place, and a new column or format cannot lose precision by accident.
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

namespace sdm::orchestrator {

/// A mean with its spread over `n` values (spread NaN for n < 2; mean NaN for n = 0); `of` > n says the mean
/// is over n of `of` observations (the others were NaN).
struct Estimate {
  double mean = 0;
  double spread = 0;
  std::int64_t n = 0;
  std::int64_t of = 0;
};

/// A bootstrap interval; `cells` >= 0: how many test cells it resampled; `note`: why it is NaN.
struct Bounds {
  double low = 0;
  double high = 0;
  std::int64_t cells = -1;
  std::string note{};
};

/// One entry. monostate = nothing there (an empty pivot entry): empty in CSV and display, null in JSON.
using Value = std::variant<std::monostate, std::string, std::int64_t, double, Estimate, Bounds>;

enum class ColumnKind { kText, kInt, kReal, kEstimate, kBounds };

struct TableColumn {
  std::string name{};               ///< machine header (machine expansions add suffixes)
  ColumnKind kind = ColumnKind::kText;
  std::string label{};              ///< display header; empty: `name`
  bool best_in_bold = false;        ///< latex/html: the column's highest value in bold
  bool significant = false;         ///< display reals with `digits` significant digits (hours), not decimals
  std::string spread = "sd";        ///< estimates: what the ± is (the machine column `<name>_<spread>`)
  bool counts_cells = false;        ///< bounds: machine columns `<name>_cells` and `<name>_note` too
  bool display_only = false;        ///< shown by display formats only (a summary of numbers another table holds)

  const std::string& header() const { return label.empty() ? name : label; }
};

class Table {
 public:
  Table() = default;
  explicit Table(std::vector<TableColumn> columns) : columns_(std::move(columns)) {}

  /// Appends a column (builders that grow their columns as they go).
  TableColumn& add_column(TableColumn column);
  /// Appends a row; its size and each value's kind must match the columns (a programming error otherwise).
  void add_row(std::vector<Value> row);

  const std::vector<TableColumn>& columns() const { return columns_; }
  const std::vector<std::vector<Value>>& rows() const { return rows_; }
  std::size_t size() const { return rows_.size(); }
  bool empty() const { return rows_.empty(); }
  /// The index of the column named `name`; throws std::out_of_range for an unknown one.
  std::size_t index(const std::string& name) const;
  const Value& at(std::size_t row, const std::string& name) const { return rows_.at(row).at(index(name)); }

 private:
  std::vector<TableColumn> columns_;
  std::vector<std::vector<Value>> rows_;
};

// ---- the two views ----------------------------------------------------------------------------------------

enum class ScalarKind { kText, kInt, kReal };

/// A value as machine formats hold it.
using Scalar = std::variant<std::monostate, std::string, std::int64_t, double>;

struct MachineTable {
  std::vector<std::string> names;
  std::vector<ScalarKind> kinds;
  std::vector<std::vector<Scalar>> rows;
};
/// Every column expanded to scalars (see the file comment); display-only columns are left out.
MachineTable machine_columns(const Table& table);

struct DisplayTable {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
  std::vector<std::vector<bool>> bold;  ///< parallel to rows: the column's best value
  std::vector<bool> numeric;            ///< per column: right-aligned in LaTeX
};
DisplayTable display_cells(const Table& table, int digits);

// ---- numbers as text ----------------------------------------------------------------------------------------

/// The shortest decimal text that reads back (strtod, Python float, pandas) as exactly `value`, with ".0" where it
/// would look like an integer (so a type-inferring reader keeps the column real); NaN as "NaN", infinities as
/// "inf" / "-inf".
std::string shortest_text(double value);
/// `value` with `digits` decimals (or significant digits), "NaN" for NaN.
std::string rounded_text(double value, int digits, bool significant = false);

}  // namespace sdm::orchestrator
