// `sdm plot STORE --out DIR`: the store's figures as SVG and PDF, each beside its data file and gnuplot script.
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "orchestrator/command.h"
#include "orchestrator/figures.h"
#include "orchestrator/gnuplot.h"
#include "orchestrator/result_groups.h"
#include "orchestrator/svg_marks.h"

namespace sdm::orchestrator {
namespace fs = std::filesystem;
namespace {

class PlotCommand final : public Command {
 public:
  const char* name() const override { return "plot"; }
  const char* summary() const override {
    return "Draw a store's figures with gnuplot (heatmap, bars by tissue/therapy/cancer type, ROC/PR, leakage) as "
           "SVG/PDF";
  }
  void configure(CLI::App& app) override {
    app.add_option("store", store_, "A consolidated store.h5")->required();
    app.add_option("--out", out_, "Directory for the figures, their .dat data and .gp scripts (created)")->required();
    app.add_option("--metric", metric_, "The metric of the heatmap and bar charts")->capture_default_str();
    app.add_option("--format", formats_, "svg, pdf or both (comma-separated)")->capture_default_str();
    app.add_option("--catalog", catalog_, "The dataset catalog (default: the one the sweep used)");
  }
  int run(const RunContext&) override {
    // every check before any work: options, the store, gnuplot itself
    const auto metric = parse_metrics(metric_, "--metric");
    if (metric.size() != 1) throw ConfigError({"<cli>", "--metric", metric_}, "plot takes one metric");
    const auto formats = parse_figure_formats(formats_);
    std::error_code ec;
    if (!fs::exists(store_, ec)) {
      throw IoError({store_, "", ""},
                    "no consolidated store; run `sdm consolidate " + store_ + "` (or finish the sweep)");
    }
    const std::string gnuplot = find_gnuplot();
    fs::create_directories(out_, ec);
    if (ec) throw IoError({out_, "", ""}, "cannot create the output directory: " + ec.message());

    const auto figures = build_figures(read_figure_inputs(store_, catalog_), metric.front());
    nlohmann::json manifest = nlohmann::json::array();
    int drawn = 0;
    for (const auto& f : figures) {
      if (!f.skipped.empty()) {
        spdlog::info("plot: skipped {}: {}", f.name, f.skipped);
        std::cout << "skipped " << f.name << ": " << f.skipped << "\n";
        manifest.push_back({{"name", f.name}, {"title", f.title}, {"skipped", f.skipped}});
        continue;
      }
      const auto result = draw_figure(f, gnuplot, out_, formats);
      // the SVG's marks, counted as the report counts them. Fewer than the data has is not an error: gnuplot
      // leaves out a bar of height 0 (a mean of exactly 0 on a [0:1] axis); it is worth a warning all the same
      const std::size_t marks =
          result.svg.empty() ? f.expected_marks : mark_svg(result.svg, f.data_plots, f.marks, "").marks;
      if (marks != f.expected_marks) {
        spdlog::warn("plot {}: gnuplot drew {} marks of the {} in its data", f.name, marks, f.expected_marks);
      }
      std::cout << f.name << ": " << marks << " marks ->";
      for (const auto& file : result.files) std::cout << " " << (fs::path(out_) / file).string();
      std::cout << "\n";
      manifest.push_back({{"name", f.name},
                          {"title", f.title},
                          {"files", result.files},
                          {"marks", marks},
                          {"data_marks", f.expected_marks}});
      ++drawn;
    }
    std::ofstream(fs::path(out_) / "figures.json") << manifest.dump(1) << "\n";
    std::cout << drawn << " figures drawn, " << figures.size() - static_cast<std::size_t>(drawn) << " skipped; "
              << (fs::path(out_) / "figures.json").string() << "\n";
    return 0;
  }

 private:
  std::string store_, out_, metric_ = "f1", formats_ = "svg,pdf", catalog_;
};

}  // namespace

std::unique_ptr<Command> make_plot_command() { return std::make_unique<PlotCommand>(); }

}  // namespace sdm::orchestrator
