#pragma once
// Tables of results: reading the consolidated store back (plain HDF5), the per-configuration summary, and
// rendering as aligned text, CSV, Markdown, LaTeX or JSON (one registry of export formats).
#include <string>
#include <vector>

#include "common/cell_record.h"

namespace sdm::orchestrator {

struct TextTable {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
};

/// Formats: text csv md latex json. An unknown format is a ConfigError listing them.
std::string render(const TextTable& table, const std::string& format);
const std::vector<std::string>& export_formats();
/// Throws that ConfigError for an unknown format (so a command can check before reading anything).
void check_export_format(const std::string& format);

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

}  // namespace sdm::orchestrator
