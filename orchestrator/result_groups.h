#pragma once
// Results grouped by what a cell is (model, strategy, protocol, ...) and by what it was tested on (the catalog's
// tissue, therapy and cancer type of each test dataset): the aggregation behind `sdm export --by`, `--layout
// paper`, the report's tables and the bar charts of `sdm plot`.
//
// Aggregation: one value per cell and group (when a pooled cell's test datasets fall into one group, e.g. two
// bone-marrow datasets, the cell's per-dataset values are averaged), then mean ± s.e.m. over those values (the
// folds, seeds and held-out datasets of the group) with their count n. That is the study's "mean ± s.e.m. over
// CV folds" (reference/scdrugmap-paper.md §5, NC Fig. 2), computed from what one sweep stores.
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/cell_record.h"
#include "jobs/catalog.h"
#include "orchestrator/results_table.h"

namespace sdm::orchestrator {

/// One /breakdown row: a pooled cell's metrics on one of its datasets.
struct BreakdownEntry {
  std::string cell_id;
  std::string dataset;
  std::map<std::string, double> metrics;
};
std::vector<BreakdownEntry> read_store_breakdown(const std::string& store);

/// The fields results can be grouped by, cell fields first (model preset strategy protocol split seed test_group),
/// then the test dataset's: dataset tissue therapy cancer_type (= the catalog's cancer_level1) cancer_level2 regimen.
const std::vector<std::string>& group_fields();
/// Whether the field is a property of a test dataset (needs each cell's datasets, and a catalog beyond `dataset`).
bool is_dataset_field(const std::string& field);
/// "model,strategy" -> {"model", "strategy"}; an unknown field is a ConfigError naming `option` and the valid ones.
std::vector<std::string> parse_group_fields(const std::string& list, const std::string& option);
/// "f1,auroc" -> {"f1", "auroc"}; an unknown metric is a ConfigError naming `option` and the metric columns.
std::vector<std::string> parse_metrics(const std::string& list, const std::string& option);

/// One value per metric for one cell in one group.
struct Observation {
  std::string cell_id;
  /// model preset strategy protocol split always, plus the requested group fields.
  std::map<std::string, std::string> fields;
  std::map<std::string, double> metrics;
};

/// Observations of the done cells. Without a dataset field in `by`: one per cell, its own metrics. With one: the
/// cell's test datasets (cross-data: its held-out test_group; pooled: its /breakdown rows, or its one dataset),
/// mapped through `catalog` (needed for every dataset field but `dataset`), one observation per cell and group.
/// A test dataset the catalog lacks is a DataError naming it.
std::vector<Observation> observations(const std::vector<CellRecord>& cells,
                                      const std::vector<BreakdownEntry>& breakdown, const jobs::Catalog* catalog,
                                      const std::vector<std::string>& by);

struct Aggregate {
  double mean = 0;
  double sem = 0;  ///< sample sd / sqrt(n); NaN for n < 2
  std::size_t n = 0;
};
/// Mean ± s.e.m. of the non-NaN values (mean NaN when there are none).
Aggregate aggregate(const std::vector<double>& values);
/// As a table entry: mean ± s.e.m. over n of `of` observations.
Estimate to_estimate(const Aggregate& a, std::size_t of);

/// /predictions of a store by cell id (for `--ci cells`).
std::map<std::string, CellPredictions> read_store_predictions(const std::string& store);

/// Long layout: the `by` fields, n (observations in the group), then mean ± s.e.m. of each metric (machine
/// formats: `<metric>`, `<metric>_sem`, `<metric>_n`, the count the mean is over when the metric is NaN on some
/// observations), one row per group (sorted), each metric's best in bold. With `ci`, each metric is followed by
/// its bootstrap interval column (for `cells` with the number of test cells).
Table grouped_table(const std::vector<Observation>& obs, const std::vector<std::string>& by,
                        const std::vector<std::string>& metrics, const CiOptions& ci = {});
/// The study's layout: one row per model (with its preset where it is not `default`), one column per setting
/// (strategy · protocol, pooled with its split), split further by the `by` fields other than the cell's own
/// (e.g. tissue), each entry mean ± s.e.m. of `metric`, each column's best in bold (with `ci`, each column
/// followed by its bootstrap interval column).
Table paper_table(const std::vector<Observation>& obs, const std::vector<std::string>& by,
                      const std::string& metric, const CiOptions& ci = {});

/// The catalog the store's sweep used: `override_path` when given, else the sweep_yaml's data.catalog (as
/// written, else relative to the store's directory). Empty for a bring-your-own sweep; a catalog that cannot be
/// found is an IoError naming the paths tried and --catalog.
std::optional<jobs::Catalog> store_catalog(const std::string& store, const std::string& override_path);

/// "logreg", "scgpt (tiny)": how tables and figures name a model.
std::string model_label(const std::map<std::string, std::string>& fields);
/// "freeze · pooled/cell", "lora · cross-data": how tables and figures name a setting.
std::string setting_label(const std::map<std::string, std::string>& fields);

}  // namespace sdm::orchestrator
