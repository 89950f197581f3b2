#pragma once
// Tables of results: reading the consolidated store back (plain HDF5), the per-configuration summary, leakage,
// cost, comparison and pivot tables. Every builder returns the typed Table of table_model.h; table_writers.h
// renders it (machine formats lossless, display formats rounded).
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/cell_record.h"
#include "orchestrator/table_model.h"
#include "orchestrator/table_writers.h"

namespace sdm::orchestrator {

/// One group of a store (cells, predictions, breakdown) with its schema columns, typed as the store holds them.
Table read_store_group(const std::string& store, const std::string& group, const std::vector<FieldSpec>& fields);
/// The /cells rows as records (fields only).
std::vector<CellRecord> read_store_cells(const std::string& store);

/// Mean (and sd) of each metric per (model, preset, strategy, protocol, split), with done / failed counts.
Table summary_table(const std::vector<CellRecord>& cells);
/// Cell split next to sample split on the same data: for every (model, preset, strategy, protocol) that ran
/// both, the mean F1 and AUROC of each and the gap (cell - sample). A positive gap is what cells of one sample
/// on both sides of the split buy: the leakage the study's cell-level split could not show.
Table leakage_table(const std::vector<CellRecord>& cells);
/// wall_s, cpu_s, peak_rss_mb, gpu_s per cell.
Table cost_table(const std::vector<CellRecord>& cells);

/// Two stores' cells side by side: cells are matched on what they are (model, preset, strategy, protocol, split,
/// fold, test group, seed), not on their ids, so a rerun with other weights or code still pairs up. Per pair:
/// `metric` in A and B, delta (B - A) and `better` / `worse` / `same` (|delta| <= tolerance) / `n/a` (a NaN or a
/// failed side); then the cells found in only one store. `counts` gets better/worse/same/n/a/only_a/only_b.
Table compare_table(const std::vector<CellRecord>& a, const std::vector<CellRecord>& b, const std::string& metric,
                    double tolerance, std::map<std::string, int>* counts = nullptr);
/// One cell's test predictions (for bootstrap intervals over test cells).
struct CellPredictions {
  std::vector<std::string> dataset;
  std::vector<std::int8_t> y_true;
  std::vector<double> y_score;
};

/// ROC and precision-recall points of every done cell at full resolution (curves.h): one row per point with the
/// cell's configuration, `curve` (roc: x = false positive rate, y = true positive rate; pr: x = recall, y =
/// precision), the point's index and the score threshold it stands for (inf for the first point).
Table curves_table(const std::vector<CellRecord>& cells, const std::map<std::string, CellPredictions>& predictions);

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
/// Appends a metric column of means (`spread`: sd | sem) whose best is bold, and with `ci` its interval column.
void add_metric_column(Table& table, const std::string& name, const std::string& spread, const CiOptions& ci = {});
/// The interval column that follows a metric column `name` with `ci`: `<name>_ci`, labelled
/// "<name> 95% CI (units|cells)".
TableColumn ci_column(const std::string& name, const CiOptions& ci);
/// The interval of a group: `values` its aggregated values (units; NaN bounds without values), `cells` its (cell
/// id, dataset or "" for all of the cell's predictions): resampled test cells, with their count (or a note why
/// there is no interval).
Bounds interval_bounds(const std::vector<double>& values, const std::vector<std::pair<std::string, std::string>>& cells,
                      const std::string& metric, const CiOptions& ci);

/// A metric pivoted: one row per combination of `row_fields` (cells' text fields such as model, strategy), one
/// column per value of `col_field` (e.g. test_group: the held-out dataset), each entry the mean ± s.e.m. of the
/// done cells there (nothing where none), each column's best in bold; with `ci`, an interval column after each.
Table pivot_table(const std::vector<CellRecord>& cells, const std::vector<std::string>& row_fields,
                  const std::string& col_field, const std::string& metric, const CiOptions& ci = {});

/// The metric columns a store has (compare and export check a metric name against them).
const std::vector<std::string>& metric_names();

}  // namespace sdm::orchestrator
