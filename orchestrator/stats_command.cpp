// `sdm stats`: paired tests between models over matched units, Friedman + Nemenyi, critical-difference diagrams.
#include <CLI/CLI.hpp>

#include <cctype>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "common/error.h"
#include "orchestrator/cd_diagram.h"
#include "orchestrator/command.h"
#include "orchestrator/stats_table.h"

namespace sdm::orchestrator {
namespace fs = std::filesystem;
namespace {

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  std::string item;
  for (char c : text + ",") {
    if (c != ',') {
      item += c;
    } else if (!item.empty()) {
      out.push_back(item);
      item.clear();
    }
  }
  return out;
}

std::string slug(const std::string& text) {
  std::string out;
  for (char c : text) {
    const bool keep = std::isalnum(static_cast<unsigned char>(c)) || c == '-';
    if (keep) out += c;
    else if (!out.empty() && out.back() != '_') out += '_';
  }
  while (!out.empty() && out.back() == '_') out.pop_back();
  return out;
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  if (!out) throw IoError({path, "", ""}, "cannot write");
}

class StatsCommand final : public Command {
 public:
  const char* name() const override { return "stats"; }
  const char* summary() const override {
    return "Paired Wilcoxon tests (Holm) between models over matched units, Friedman + Nemenyi critical difference, CD diagrams";
  }
  void configure(CLI::App& app) override {
    app.add_option("store", store_, "A consolidated store.h5")->required();
    app.add_option("--metric", options_.metric, "The metric compared")->capture_default_str();
    app.add_option("--by", options_.by, "The cell field whose values are compared (models)")->capture_default_str();
    app.add_option("--within", within_, "Cell fields that separate groups; tests never mix them")->capture_default_str();
    app.add_option("--alpha", options_.alpha, "Significance level (Holm-adjusted p, Nemenyi CD)")->capture_default_str();
    app.add_option("--resamples", options_.resamples, "Bootstrap resamples of the median difference")->capture_default_str();
    app.add_option("--seed", options_.seed, "Bootstrap seed")->capture_default_str();
    app.add_option("--format", format_, "text | csv | md | latex | json")->capture_default_str();
    app.add_option("--out", out_, "Write the tables here instead of stdout");
    app.add_option("--diagram", diagram_, "Write critical-difference diagrams: FILE.svg (one group) or FILE-<group>.svg");
  }
  int run(const RunContext&) override {
    std::error_code ec;
    if (!fs::exists(store_, ec)) throw IoError({store_, "", ""}, "no consolidated store; run `sdm consolidate` first");
    check_export_format(format_);
    if (options_.resamples < 1) throw ConfigError({"", "--resamples", std::to_string(options_.resamples)}, "must be at least 1");
    options_.within = split_list(within_);
    const auto groups = compute_stats(read_store_cells(store_), read_store_breakdown(store_), options_);
    std::string text;
    if (format_ == "json") {
      text = stats_json(groups, options_).dump(1) + "\n";
    } else {
      text = render(stats_groups_table(groups, options_), format_) + "\n" + render(stats_pairs_table(groups, options_), format_);
    }
    if (out_.empty()) std::cout << text;
    else write_file(out_, text);
    if (!diagram_.empty()) {
      const fs::path base(diagram_);
      for (const auto& g : groups) {
        if (g.friedman.mean_ranks.size() < 2) {
          std::cerr << "stats: no diagram for " << g.within << " (fewer than 2 " << options_.by << "s with common units)\n";
          continue;
        }
        const std::string path = groups.size() == 1 ? diagram_
                                                    : (base.parent_path() / (base.stem().string() + "-" + slug(g.within) + ".svg")).string();
        write_file(path, cd_diagram_svg(g.names, g.friedman.mean_ranks, g.critical_difference,
                                        options_.metric + ", " + g.within + ": mean rank over " +
                                            std::to_string(g.friedman.blocks) + " units"));
        std::cerr << "stats: wrote " << path << "\n";
      }
    }
    return 0;
  }

 private:
  std::string store_, within_ = "strategy,protocol", format_ = "text", out_, diagram_;
  StatsOptions options_;
};

}  // namespace

std::unique_ptr<Command> make_stats_command() { return std::make_unique<StatsCommand>(); }

}  // namespace sdm::orchestrator
