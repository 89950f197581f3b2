#include "orchestrator/report.h"

#include <spdlog/spdlog.h>
#include <stdlib.h>

#include <cctype>
#include <cmath>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/error.h"
#include "common/hdf5.h"
#include "jobs/sweep_spec.h"
#include "orchestrator/cd_diagram.h"
#include "orchestrator/cost_summary.h"
#include "orchestrator/figures.h"
#include "orchestrator/gnuplot.h"
#include "orchestrator/result_groups.h"
#include "orchestrator/results_table.h"
#include "orchestrator/store_files.h"
#include "orchestrator/stats_table.h"
#include "orchestrator/store_status.h"
#include "orchestrator/svg_marks.h"
#include "orchestrator/version.h"

namespace sdm::orchestrator {
namespace fs = std::filesystem;
namespace {

/// A scratch directory for gnuplot's files, removed when the report is built (or fails).
class ScratchDir {
 public:
  ScratchDir() {
    std::string pattern = (fs::temp_directory_path() / "sdm-report-XXXXXX").string();
    if (!::mkdtemp(pattern.data())) throw IoError({pattern, "", ""}, "cannot create a temporary directory");
    path_ = pattern;
  }
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::string attr_or(const h5::File& file, const std::string& name) {
  if (!file.has_attr(name)) return "";
  try {
    return file.attr_string(name);
  } catch (const std::exception&) {
    return std::to_string(file.attr_int(name));  // sdm_schema_version is an integer
  }
}

/// A table as a sortable HTML table with an id (the tests and links find it by that).
std::string html_table(const Table& t, const std::string& id) {
  std::string html = render(t, "html");
  const std::string open = "<table class=\"sortable\"";
  html.replace(html.find(open), open.size(), open + " id=\"" + id + "\"");
  return "<div class=\"table-wrap\">" + html + "</div>\n";
}

void table_section(std::ostringstream& out, const std::string& id, const std::string& title, const std::string& note,
                   const Table& t) {
  out << "<section class=\"table-block\" id=\"section-" << id << "\">\n<h3>" << html_escape(title) << "</h3>\n";
  if (!note.empty()) out << "<p class=\"muted\">" << html_escape(note) << "</p>\n";
  if (t.empty()) {
    out << "<p class=\"muted\">No rows.</p>\n";
  } else {
    out << html_table(t, "table-" + id);
  }
  out << "</section>\n";
}

void provenance(std::ostringstream& out, const std::string& store, const h5::File& file) {
  out << "<section id=\"provenance\">\n<h2>Provenance</h2>\n<table class=\"kv\">\n";
  const std::pair<const char*, const char*> rows[] = {{"store", ""},
                                                      {"sdm version", "sdm_version"},
                                                      {"git sha", "git_sha"},
                                                      {"created (UTC)", "created_utc"},
                                                      {"store schema version", "sdm_schema_version"}};
  for (const auto& [label, attr] : rows) {
    const std::string value = *attr ? attr_or(file, attr) : fs::absolute(store).string();
    out << "<tr><th scope=\"row\">" << label << "</th><td>" << html_escape(value.empty() ? "(not recorded)" : value)
        << "</td></tr>\n";
  }
  out << "</table>\n<details><summary>Sweep spec (YAML)</summary>\n<pre>" << html_escape(attr_or(file, "sweep_yaml"))
      << "</pre>\n</details>\n</section>\n";
}

/// `sdm status` (records + journal: pending and running cells too); for a store copied without its records and
/// journal, the counts of its /cells rows.
nlohmann::json status_of(const std::string& store, const std::vector<CellRecord>& cells) {
  auto s = store_status(StorePaths::for_store(store));
  if (s["expected"].get<std::int64_t>() > 0 || cells.empty()) return s;
  std::map<std::string, std::int64_t> counts{{"done", 0}, {"failed", 0}, {"interrupted", 0}, {"pending", 0}};
  nlohmann::json failed = nlohmann::json::array();
  for (const auto& c : cells) {
    ++counts[c.text("status")];
    if (c.text("status") == "failed") {
      failed.push_back(
          {{"cell_id", c.text("cell_id")}, {"error", c.text("error")}, {"attempts", c.integer("attempts")}});
    }
  }
  s["expected"] = cells.size();
  s["counts"] = counts;
  s["failed"] = failed;
  return s;
}

void status(std::ostringstream& out, const std::string& store, const std::vector<CellRecord>& cells) {
  const auto s = status_of(store, cells);
  out << "<section id=\"status\">\n<h2>Status</h2>\n<p class=\"counts\">";
  out << "<span class=\"expected\">" << s["expected"].get<std::int64_t>() << " cells</span>";
  for (const char* k : {"done", "failed", "interrupted", "pending", "running"}) {
    const auto n = s["counts"].value(k, std::int64_t{0});
    if (n || std::string(k) != "running")
      out << "<span class=\"" << k << "\" data-count=\"" << n << "\">" << n << " " << k << "</span>";
  }
  out << "</p>\n";
  if (!s["failed"].empty()) {
    out << "<h3>Failed cells</h3>\n<div class=\"table-wrap\"><table class=\"sortable\" id=\"table-failed\">\n"
        << "<thead><tr><th scope=\"col\">cell_id</th><th scope=\"col\">attempts</th><th "
           "scope=\"col\">error</th></tr></thead>\n<tbody>\n";
    for (const auto& f : s["failed"]) {
      out << "<tr><td>" << html_escape(f["cell_id"].get<std::string>().substr(0, 12)) << "</td><td>" << f["attempts"]
          << "</td><td class=\"error\">" << html_escape(f["error"].get<std::string>()) << "</td></tr>\n";
    }
    out << "</tbody>\n</table></div>\n";
  }
  out << "</section>\n";
}

void tables(std::ostringstream& out, const FigureInputs& in, const std::string& metric) {
  out << "<section id=\"tables\">\n<h2>Results</h2>\n<p class=\"muted\">Click a column header to sort.</p>\n";
  table_section(out, "summary", "Summary per configuration", "mean \u00b1 sd over folds, seeds and held-out datasets",
                summary_table(in.cells));
  const auto plain = observations(in.cells, in.breakdown, nullptr, {});
  table_section(out, "paper", metric + " per model and setting",
                "mean \u00b1 s.e.m. over folds, seeds and held-out datasets; each column's best in bold",
                paper_table(plain, {}, metric));
  if (!in.catalog) {
    out << "<p class=\"muted\" id=\"no-catalog\">No tables by tissue, therapy or cancer type: "
        << html_escape(in.no_catalog) << "</p>\n";
  } else {
    for (const auto& [field, what] : std::vector<std::pair<std::string, std::string>>{
             {"tissue", "tissue"}, {"therapy", "therapy"}, {"cancer_type", "cancer type"}}) {
      table_section(out, "by-" + field, metric + " by " + what,
                    "test datasets grouped by the catalog's " + what + "; mean \u00b1 s.e.m. over cells",
                    paper_table(observations(in.cells, in.breakdown, &*in.catalog, {field}), {field}, metric));
    }
  }
  std::vector<CellRecord> cross;
  for (const auto& c : in.cells) {
    if (c.text("protocol") == "cross-data") cross.push_back(c);
  }
  if (!cross.empty()) {
    table_section(out, "pivot", metric + " per held-out dataset (cross-data)", "mean \u00b1 s.e.m. over seeds",
                  pivot_table(cross, {"model", "strategy"}, "test_group", metric));
  }
  table_section(out, "leakage", "Leakage: cell split vs sample split",
                "mean F1 and AUROC of each split and the gap (cell - sample)", leakage_table(in.cells));
  table_section(out, "cost-models", "Cost per model",
                "compute hours of the final attempts; " + metric + " per device-hour = mean " + metric +
                    " / device-hours per cell (GPU where the model used one, else CPU)",
                cost_summary_table(in.cells, metric));
  table_section(out, "overhead", "Sweep time",
                "first cell start to last cell finish on the ranks that ran cells; the share not spent in cells is "
                "orchestration, embedding tasks and idle time",
                sweep_span_table(sweep_span(in.cells)));
  table_section(out, "cost", "Cost per cell", "seconds, peak resident memory (MB)", cost_table(in.cells));
  out << "</section>\n";
}

/// Paired tests between models and their critical-difference diagrams (`sdm stats` with its defaults).
void statistics(std::ostringstream& out, const FigureInputs& in, const std::string& metric) {
  StatsOptions options;
  options.metric = metric;
  const auto groups = compute_stats(in.cells, in.breakdown, options);
  out << "<section id=\"statistics\">\n<h2>Statistics</h2>\n<p class=\"muted\">Within each strategy and protocol, "
      << "models compared on matched units (held-out dataset, or each dataset of a pooled cell, x split x fold x "
         "seed): Wilcoxon signed-rank with Holm's correction and a bootstrap 95 % interval of the median "
         "difference; Friedman's test and the Nemenyi critical difference (alpha 0.05) over the units every "
         "model has. Units one model lacks are dropped pairwise and counted.</p>\n";
  table_section(out, "stats-groups", "Friedman test and mean ranks per group", "", stats_groups_table(groups, options));
  table_section(out, "stats-pairs", "Pairwise tests", "", stats_pairs_table(groups, options));
  for (const auto& g : groups) {
    if (g.friedman.mean_ranks.size() < 2) continue;
    std::string id;
    for (char c : g.within) id += std::isalnum(static_cast<unsigned char>(c)) ? c : '-';
    out << "<figure class=\"plot cd\" id=\"plot-cd-" << html_escape(id) << "\" style=\"max-width: 760px\" data-expected-marks=\""
        << g.names.size() << "\">\n"
        << cd_diagram_svg(g.names, g.friedman.mean_ranks, g.critical_difference,
                          metric + ", " + g.within + ": mean rank over " + std::to_string(g.friedman.blocks) + " units")
        << "<figcaption>Critical difference: " << html_escape(g.within) << "</figcaption>\n</figure>\n";
  }
  out << "</section>\n";
}

void figures(std::ostringstream& out, const FigureInputs& in, const std::string& metric) {
  const std::string gnuplot = find_gnuplot();
  const ScratchDir scratch;
  out << "<section id=\"figures\">\n<h2>Figures</h2>\n";
  std::ostringstream skipped;
  for (const auto& f : build_figures(in, metric)) {
    if (!f.skipped.empty()) {
      skipped << "<li data-figure=\"" << html_escape(f.name) << "\"><strong>" << html_escape(f.name)
              << "</strong>: " << html_escape(f.skipped) << "</li>\n";
      continue;
    }
    const auto drawn = draw_figure(f, gnuplot, scratch.path(), {"svg"});
    const auto marked = mark_svg(drawn.svg, f.data_plots, f.marks, "p-" + f.name);
    // at most its drawn size: the SVG scales to its container, and a small heatmap blown up to the page is coarse
    out << "<figure class=\"plot\" id=\"plot-" << html_escape(f.name) << "\" style=\"max-width: " << f.width
        << "px\" data-marks=\"" << marked.marks << "\" data-expected-marks=\"" << f.expected_marks << "\">\n"
        << marked.svg << "\n<figcaption>" << html_escape(f.title) << "</figcaption>\n</figure>\n";
  }
  const std::string s = skipped.str();
  if (!s.empty()) out << "<h3>Not drawn</h3>\n<ul class=\"skipped\">\n" << s << "</ul>\n";
  out << "</section>\n";
}

}  // namespace

std::string build_report(const ReportOptions& options) {
  find_gnuplot();  // fail before reading anything
  const FigureInputs in = read_figure_inputs(options.store, options.catalog);
  h5::init();
  const h5::File file = h5::File::open(options.store);
  std::string name = fs::path(options.store).parent_path().filename().string();
  try {
    name = jobs::SweepSpec::parse(attr_or(file, "sweep_yaml"), options.store + ":sweep_yaml").name;
  } catch (const std::exception& e) {
    spdlog::debug("report: the store's sweep_yaml does not parse ({}); titled by its directory", e.what());
  }
  std::ostringstream out;
  out << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      << "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
      << "<title>sdm report: " << html_escape(name) << "</title>\n<style>" << report_css() << "</style>\n</head>\n"
      << "<body data-errors=\"0\">\n<header>\n<h1>sdm report: " << html_escape(name) << "</h1>\n"
      << "<p class=\"muted\">" << html_escape(fs::absolute(options.store).string()) << "</p>\n"
      << "<nav><a href=\"#provenance\">Provenance</a><a href=\"#status\">Status</a><a href=\"#tables\">Results</a>"
      << "<a href=\"#figures\">Figures</a><a href=\"#statistics\">Statistics</a></nav>\n</header>\n<main>\n";
  provenance(out, options.store, file);
  status(out, options.store, in.cells);
  tables(out, in, options.metric);
  figures(out, in, options.metric);
  statistics(out, in, options.metric);
  out << "</main>\n<footer class=\"muted\"><p>Written by sdm " << html_escape(version_string()) << " (git "
      << html_escape(git_sha()) << ") at " << html_escape(utc_now()) << ".</p></footer>\n"
      << "<script>" << report_js() << "</script>\n</body>\n</html>\n";
  return out.str();
}

}  // namespace sdm::orchestrator
