#pragma once
// One finished attempt of one sweep cell, as committed to runs/<x>/records/<cell_id>.h5 (CONTRACTS §7) and
// later consolidated into store.h5. The column lists here are the store schema: /cells, /predictions and
// /breakdown columns, in schema order, each with its type. Plain HDF5; no MPI.
#include <cstdint>
#include <map>
#include <string>
#include <variant>
#include <vector>

namespace sdm {

inline constexpr int kStoreSchemaVersion = 1;

enum class FieldKind { kText, kInt, kReal };
struct FieldSpec {
  std::string name;
  FieldKind kind;
};

/// /cells columns in schema order.
const std::vector<FieldSpec>& cell_fields();
/// /breakdown columns (cell_id dataset n_test + metrics).
const std::vector<FieldSpec>& breakdown_fields();
/// /predictions columns.
const std::vector<FieldSpec>& prediction_fields();

using FieldValue = std::variant<std::string, std::int64_t, double>;

struct Predictions {
  std::vector<std::string> obs_name;
  std::vector<std::string> dataset;
  std::vector<std::int8_t> y_true;
  std::vector<std::int8_t> y_pred;
  std::vector<double> y_score;
  std::size_t size() const { return y_true.size(); }
};

struct BreakdownRow {
  std::string dataset;
  std::map<std::string, double> metrics;  ///< metric name -> value (n_test included)
};

struct CellRecord {
  std::map<std::string, FieldValue> fields;  ///< the /cells row; absent fields read as NaN / -1 / ""
  std::string config_json;                   ///< the canonical resolved configuration the id was hashed from
  Predictions predictions;
  std::vector<BreakdownRow> breakdown;

  void set(const std::string& name, FieldValue value) { fields[name] = std::move(value); }
  std::string text(const std::string& name) const;
  std::int64_t integer(const std::string& name) const;
  double real(const std::string& name) const;
};

/// Writes the record to `path` atomically: a temporary name in the same directory, fsync, rename, fsync of the
/// directory. A reader never sees a partial record. Returns the SHA-256 of the bytes written. Throws IoError
/// naming the path.
std::string write_record(const std::string& path, const CellRecord& record);

/// Reads a record; `with_predictions` = false reads only the /cells row (fast, for status and resume).
CellRecord read_record(const std::string& path, bool with_predictions = true);

/// fsync of a file or directory; throws IoError naming it.
void fsync_path(const std::string& path);

}  // namespace sdm
