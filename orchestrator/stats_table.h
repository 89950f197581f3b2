#pragma once
// `sdm stats`: are the differences between models real? Cells are turned into matched units — the same dataset
// (a cross-data cell's held-out dataset, or each dataset of a pooled cell's per-dataset breakdown), split, fold
// and seed — and, within each group of `within` fields (default strategy x protocol), every pair of `by` values
// (default model) is compared on the units both have: Wilcoxon signed-rank, Holm-adjusted over the group's pairs,
// median difference with a bootstrap 95 % interval. Friedman's test and the Nemenyi critical difference run over
// the units every model has. Units one side lacks are dropped pairwise and counted, never imputed.
#include <nlohmann/json.hpp>

#include <map>
#include <string>
#include <vector>

#include "common/cell_record.h"
#include "orchestrator/result_groups.h"
#include "orchestrator/results_table.h"
#include "orchestrator/statistics.h"

namespace sdm::orchestrator {

struct StatsOptions {
  std::string metric = "f1";
  std::string by = "model";
  std::vector<std::string> within{"strategy", "protocol"};
  double alpha = 0.05;
  int resamples = 2000;
  std::uint64_t seed = 0;
};

struct PairResult {
  std::string a, b;
  std::int64_t n = 0;         ///< units both have
  std::int64_t dropped = 0;   ///< units only one of them has
  double median_diff = 0;     ///< median of (a - b)
  Interval ci;                ///< bootstrap interval of that median
  WilcoxonResult test;
  double p_holm = 0;
  std::string verdict;        ///< "<a> better", "<b> better", "no difference" (Holm-adjusted p vs alpha), "n/a"
};

struct StatsGroup {
  std::string within;                       ///< e.g. "freeze / cross-data"
  std::vector<std::string> names;           ///< the `by` values compared
  std::int64_t units = 0;                   ///< units any of them has
  FriedmanResult friedman;                  ///< over the complete units
  double critical_difference = 0;           ///< Nemenyi, at alpha
  std::vector<PairResult> pairs;
  std::int64_t duplicates = 0;              ///< unit values averaged because several cells gave one (other presets)
};

/// The groups, in the order of their `within` values. Throws ConfigError for an unknown metric or field.
std::vector<StatsGroup> compute_stats(const std::vector<CellRecord>& cells, const std::vector<BreakdownEntry>& breakdown,
                                      const StatsOptions& options);

/// Tables as the other exports render them: one row per pair (`--what pairs`), one row per group (the omnibus
/// test, `--what friedman`; its mean-rank summary is for display, the numbers are in the next table), one row per
/// group and compared value with its mean rank (`--what ranks`).
Table stats_pairs_table(const std::vector<StatsGroup>& groups, const StatsOptions& options);
Table stats_groups_table(const std::vector<StatsGroup>& groups, const StatsOptions& options);
Table stats_ranks_table(const std::vector<StatsGroup>& groups, const StatsOptions& options);
nlohmann::json stats_json(const std::vector<StatsGroup>& groups, const StatsOptions& options);

}  // namespace sdm::orchestrator
