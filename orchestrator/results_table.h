#pragma once
// Tables of results: reading the consolidated store back (plain HDF5), the per-configuration summary, and
// rendering as aligned text, CSV, Markdown, LaTeX, JSON or HTML (one registry of export formats).
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/cell_record.h"

namespace sdm::orchestrator {

struct TextTable {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
  /// Optional, parallel to rows: the number each cell ranks by (NaN = not a score). LaTeX sets the best (highest)
  /// of every column in bold.
  std::vector<std::vector<double>> scores;
};

/// Formats: text csv md latex json html (a bare sortable <table>). An unknown format is a ConfigError listing them.
std::string render(const TextTable& table, const std::string& format);
const std::vector<std::string>& export_formats();
/// Throws that ConfigError for an unknown format (so a command can check before reading anything).
void check_export_format(const std::string& format);

/// & < > " as HTML entities (table cells, report text).
std::string html_escape(const std::string& s);

/// A number as tables show it: 4 significant decimals, "NaN" for NaN.
std::string format_number(double value);

/// One group of a store (cells, predictions, breakdown) with its schema columns, as text.
TextTable read_store_group(const std::string& store, const std::string& group, const std::vector<FieldSpec>& fields);
/// The /cells rows as records (fields only).
std::vector<CellRecord> read_store_cells(const std::string& store);

/// Mean (and sd) of each metric per (model, preset, strategy, protocol, split), with done / failed counts.
TextTable summary_table(const std::vector<CellRecord>& cells);
/// Cell split next to sample split on the same data: for every (model, preset, strategy, protocol) that ran
/// both, the mean F1 and AUROC of each and the gap (cell - sample). A positive gap is what cells of one sample
/// on both sides of the split buy: the leakage the study's cell-level split could not show.
TextTable leakage_table(const std::vector<CellRecord>& cells);
/// wall_s, cpu_s, peak_rss_mb, gpu_s per cell.
TextTable cost_table(const std::vector<CellRecord>& cells);

/// Two stores' cells side by side: cells are matched on what they are (model, preset, strategy, protocol, split,
/// fold, test group, seed), not on their ids, so a rerun with other weights or code still pairs up. Per pair:
/// `metric` in A and B, delta (B - A) and `better` / `worse` / `same` (|delta| <= tolerance) / `n/a` (a NaN or a
/// failed side); then the cells found in only one store. `counts` gets better/worse/same/n/a/only_a/only_b.
TextTable compare_table(const std::vector<CellRecord>& a, const std::vector<CellRecord>& b, const std::string& metric,
                        double tolerance, std::map<std::string, int>* counts = nullptr);
/// One cell's test predictions (for bootstrap intervals over test cells).
struct CellPredictions {
  std::vector<std::string> dataset;
  std::vector<std::int8_t> y_true;
  std::vector<double> y_score;
};

/// Bootstrap 95 % intervals of aggregated metrics. `units`: resample a group's values (its cells' folds, seeds and
/// test datasets) and take the mean, as the tables' means are taken. `cells`: resample the test cells of all the
/// group's predictions (restricted to a dataset where the group is per dataset) and compute the metric on each
/// resample: the uncertainty of the pooled predictions.
struct CiOptions {
  std::string over;  ///< "" (none) | units | cells
  int resamples = 1000;
  std::uint64_t seed = 0;
  const std::map<std::string, CellPredictions>* predictions = nullptr;  ///< needed for `cells`
};
/// ConfigError for an unknown `over` or `cells` without predictions.
void check_ci(const CiOptions& ci);
/// "[low, high]" (units; NaN without values) or "[low, high] (k cells)" (cells) for a group: `values` its
/// aggregated values, `cells` its (cell id, dataset or "" for all of the cell's predictions).
std::string interval_text(const std::vector<double>& values, const std::vector<std::pair<std::string, std::string>>& cells,
                          const std::string& metric, const CiOptions& ci);

/// A metric pivoted: one row per combination of `row_fields` (cells' text fields such as model, strategy), one
/// column per value of `col_field` (e.g. test_group: the held-out dataset), each entry the mean ± s.e.m. of the
/// done cells there (just the mean for one cell; empty where none), with scores for the LaTeX bolding.
TextTable pivot_table(const std::vector<CellRecord>& cells, const std::vector<std::string>& row_fields,
                      const std::string& col_field, const std::string& metric, const CiOptions& ci = {});

/// The metric columns a store has (compare and export check a metric name against them).
const std::vector<std::string>& metric_names();

}  // namespace sdm::orchestrator
