// `sdm report STORE -o report.html`: the store as one self-contained HTML page (report.h).
#include <CLI/CLI.hpp>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "common/error.h"
#include "orchestrator/command.h"
#include "orchestrator/report.h"
#include "orchestrator/result_groups.h"

namespace sdm::orchestrator {
namespace fs = std::filesystem;
namespace {

class ReportCommand final : public Command {
 public:
  const char* name() const override { return "report"; }
  const char* summary() const override {
    return "One self-contained HTML page: provenance, status, sortable result tables and the figures inlined as SVG";
  }
  void configure(CLI::App& app) override {
    app.add_option("store", options_.store, "A consolidated store.h5")->required();
    app.add_option("-o,--out", out_, "The HTML file to write")->required();
    app.add_option("--metric", options_.metric, "The metric of the model tables, heatmap and bar charts")
        ->capture_default_str();
    app.add_option("--catalog", options_.catalog, "The dataset catalog (default: the one the sweep used)");
  }
  int run(const RunContext&) override {
    if (parse_metrics(options_.metric, "--metric").size() != 1) {
      throw ConfigError({"<cli>", "--metric", options_.metric}, "report takes one metric");
    }
    std::error_code ec;
    if (!fs::exists(options_.store, ec)) {
      throw IoError({options_.store, "", ""},
                    "no consolidated store; run `sdm consolidate " + options_.store + "` first");
    }
    const std::string html = build_report(options_);
    // written whole under a temporary name and renamed, so a browser never opens half a page
    const std::string tmp = out_ + ".tmp";
    {
      std::ofstream out(tmp, std::ios::binary);
      out << html;
      if (!out) throw IoError({tmp, "", ""}, "cannot write");
    }
    fs::rename(tmp, out_, ec);
    if (ec) throw IoError({out_, "", ""}, "cannot write: " + ec.message());
    std::cout << out_ << ": " << html.size() / 1024 << " KiB\n";
    return 0;
  }

 private:
  ReportOptions options_;
  std::string out_;
};

}  // namespace

std::unique_ptr<Command> make_report_command() { return std::make_unique<ReportCommand>(); }

}  // namespace sdm::orchestrator
