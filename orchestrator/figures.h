#pragma once
// The figures of a store (`sdm plot`, `sdm report`): each is a tab-separated data file and a gnuplot script that
// draws it, both written next to the figure so a user can rerun or tweak it. Figures:
//   heatmap            metric of each model (· setting) on each held-out dataset (cross-data; else per dataset)
//   bars-tissue        metric by the catalog's tissue, therapy and cancer type (level 1): mean ± s.e.m. bars
//   bars-therapy
//   bars-cancer_type
//   roc, pr            ROC and precision-recall curves per model (· setting) from /predictions
//   leakage            cell split next to sample split of each configuration that ran both
// A figure that cannot be drawn from this store (no predictions, no sample split, no catalog) is skipped with
// its reason, not an error.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/cell_record.h"
#include "jobs/catalog.h"
#include "orchestrator/result_groups.h"
#include "orchestrator/svg_marks.h"

namespace sdm::orchestrator {

struct FigureInputs {
  std::vector<CellRecord> cells;
  std::vector<BreakdownEntry> breakdown;
  std::optional<jobs::Catalog> catalog;
  std::string no_catalog;  ///< why there is none (the figures that need one say it when they are skipped)
  // /predictions: the columns the curves need
  std::vector<std::string> prediction_cell;
  std::vector<std::int8_t> y_true;
  std::vector<double> y_score;
};
/// Reads what the figures need from a consolidated store; the catalog as store_catalog() resolves it. A catalog
/// the sweep named that is not there (a store moved to another machine) only skips the figures that need it; a
/// --catalog that cannot be read is an error.
FigureInputs read_figure_inputs(const std::string& store, const std::string& catalog_override);

struct Figure {
  std::string name;  ///< file stem: heatmap, bars-tissue, roc, ...
  std::string title;
  std::string data;  ///< <name>.dat: tab-separated; series are blocks two blank lines apart (gnuplot `index`)
  std::string body;  ///< gnuplot commands after the terminal set-up (see figure_script)
  int width = 820, height = 480;  ///< SVG pixels (PDF: the same in hundredths of an inch)
  int data_plots = 0;             ///< plot elements 1..data_plots hold the marks (svg_marks.h)
  MarkKind marks = MarkKind::kShapes;
  std::size_t expected_marks = 0;  ///< bars, heatmap cells or curves drawn
  std::string skipped;             ///< why it is not drawn; empty when it is
};

/// The figures formats: svg, pdf. An unknown one is a ConfigError listing them.
const std::vector<std::string>& figure_formats();
std::vector<std::string> parse_figure_formats(const std::string& list);

/// Every figure in the order above, `metric` (a metric column) on the score axes of the heatmap and bars.
std::vector<Figure> build_figures(const FigureInputs& in, const std::string& metric);

/// The whole <name>.gp: the terminal for `fmt` (svg unless set, e.g. gnuplot -e "fmt='pdf'" x.gp), then the body.
std::string figure_script(const Figure& f);

struct DrawnFigure {
  std::vector<std::string> files;  ///< written, relative to the output directory
  std::string svg;                 ///< the SVG gnuplot wrote (when svg was a format)
};
/// Writes <name>.dat and <name>.gp into `dir` and runs gnuplot there once per format. Throws on a gnuplot error.
DrawnFigure draw_figure(const Figure& f, const std::string& gnuplot, const std::string& dir,
                        const std::vector<std::string>& formats);

/// A string as a gnuplot single-quoted literal (only '' is special inside one).
std::string gnuplot_quote(const std::string& s);

}  // namespace sdm::orchestrator
