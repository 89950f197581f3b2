#pragma once
// What the sweep cost, per model and overall: compute hours (wall, CPU, GPU), throughput, and the metric bought
// per device-hour — what decides which model runs on the next allocation. Times come from the cell records
// (wall_s, cpu_s, gpu_s measured on the worker; started_utc / finished_utc).
#include <cstdint>
#include <string>
#include <vector>

#include "common/cell_record.h"
#include "orchestrator/results_table.h"

namespace sdm::orchestrator {

/// Per model: done and failed cells, wall / CPU / GPU hours (all attempts' final records), cells per wall-hour of
/// its cells, mean `metric`, and `metric` per device-hour = mean metric / mean device-hours per cell (device =
/// GPU when the model's cells used one, else CPU). NaN where undefined.
Table cost_summary_table(const std::vector<CellRecord>& cells, const std::string& metric);

struct SweepSpan {
  double span_s = 0;          ///< first cell start to last cell finish
  std::int64_t ranks = 0;     ///< distinct ranks that ran cells
  double busy_s = 0;          ///< sum of the cells' wall_s
  double busy_share = 0;      ///< busy_s / (span_s x ranks): the rest is orchestration, embedding tasks and idle time
  std::int64_t cells = 0;
};
SweepSpan sweep_span(const std::vector<CellRecord>& cells);
Table sweep_span_table(const SweepSpan& span);

/// Seconds since the epoch of "2026-11-24T10:11:12.345Z"; NaN for anything else.
double parse_utc(const std::string& text);

}  // namespace sdm::orchestrator
