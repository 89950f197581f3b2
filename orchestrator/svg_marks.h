#pragma once
// Makes a gnuplot SVG countable and embeddable. gnuplot's SVG terminal wraps each plot element in
// <g id="gnuplot_plot_N">; a figure puts its data first (elements 1..n) and its key, labels and guides after, so
// the marks are known by position: the filled shapes (heatmap cells, bars: one <polygon> each, drawn without
// border) or, for curves, the element's group itself. They get class="mark", which the report and its tests count
// in the DOM. For inlining several SVGs into one page, every id (and each reference to it) gets a prefix.
#include <cstddef>
#include <string>

namespace sdm::orchestrator {

enum class MarkKind {
  kShapes,  ///< every <polygon> of the data elements is one mark (a bar, a heatmap cell)
  kCurves,  ///< every data element is one mark (a ROC or PR curve)
};

struct MarkedSvg {
  std::string svg;        ///< from <svg ...> to the end: no XML prolog or doctype, so it can sit in HTML
  std::size_t marks = 0;  ///< how many elements got class="mark"
};

/// Adds class="mark" to the marks of plot elements 1..`data_plots` and, when `prefix` is not empty (for inlining),
/// prefixes every id and #reference with "<prefix>-" and drops gnuplot's <title> elements (tooltips in a page).
MarkedSvg mark_svg(const std::string& svg, int data_plots, MarkKind kind, const std::string& prefix);

}  // namespace sdm::orchestrator
