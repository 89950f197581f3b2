#pragma once
// `sdm report`: one self-contained HTML page for a store. No network: the CSS, the script (table sorting and an
// error counter) and the figures (gnuplot SVG, inlined into the DOM with their marks classed, svg_marks.h) are
// all in the file.
#include <string>

namespace sdm::orchestrator {

struct ReportOptions {
  std::string store;
  std::string catalog;  ///< empty: the catalog the sweep used
  std::string metric = "f1";
};

/// The page. Needs gnuplot on PATH (the figures are drawn into a temporary directory and removed).
std::string build_report(const ReportOptions& options);

/// The page's inline stylesheet and script (report_assets.cpp).
const char* report_css();
const char* report_js();

}  // namespace sdm::orchestrator
