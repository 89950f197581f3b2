// `sdm stats`: paired tests between models over matched units, Friedman + Nemenyi, critical-difference diagrams.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <iostream>

#include "common/error.h"
#include "common/text.h"
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
    app.add_option("--format", format_, "text | csv | md | latex | json | html")->capture_default_str();
    app.add_option("--what", what_,
                   "friedman (one row per group: the omnibus test) | pairs (one row per pair) | ranks (each model's "
                   "mean rank per group). Default: display formats show friedman and pairs; json writes one document "
                   "with everything; csv needs one table per file, so without --what it needs --out F and writes "
                   "F-friedman.csv, F-pairs.csv and F-ranks.csv");
    app.add_option("--digits", digits_, "Display formats (text md latex html): decimals shown")->capture_default_str();
    app.add_option("--out", out_, "Write the tables here instead of stdout");
    app.add_option("--diagram", diagram_, "Write critical-difference diagrams: FILE.svg (one group) or FILE-<group>.svg");
  }
  int run(const RunContext&) override {
    std::error_code ec;
    if (!fs::exists(store_, ec)) throw IoError({store_, "", ""}, "no consolidated store; run `sdm consolidate` first");
    check_export_format(format_);
    if (options_.resamples < 1) throw ConfigError({"", "--resamples", std::to_string(options_.resamples)}, "must be at least 1");
    check_digits(digits_);
    const std::vector<std::string> tables{"friedman", "pairs", "ranks"};
    if (!what_.empty() && std::find(tables.begin(), tables.end(), what_) == tables.end()) {
      throw ConfigError({"<cli>", "--what", what_}, "unknown table; " + suggest(what_, tables));
    }
    if (what_.empty() && format_ == "csv" && out_.empty()) {
      throw ConfigError({"<cli>", "--what", ""}, "a CSV file holds one table: choose --what friedman, pairs or ranks, "
                                                 "or give --out F to write F-friedman.csv, F-pairs.csv and F-ranks.csv");
    }
    options_.within = split_list(within_);
    const auto groups = compute_stats(read_store_cells(store_), read_store_breakdown(store_), options_);
    const auto table = [&](const std::string& what) {
      return what == "friedman" ? stats_groups_table(groups, options_)
             : what == "pairs"  ? stats_pairs_table(groups, options_)
                                : stats_ranks_table(groups, options_);
    };
    const RenderOptions render_options{digits_};
    if (!what_.empty()) {
      write_output(render(table(what_), format_, render_options), out_);
    } else if (format_ == "json") {
      write_output(stats_json(groups, options_).dump(1) + "\n", out_);
    } else if (format_ == "csv") {
      const fs::path base(out_);
      const std::string stem = (base.parent_path() / base.stem()).string();
      for (const auto& what : tables) {
        const std::string path = stem + "-" + what + ".csv";
        write_output(render(table(what), format_, render_options), path);
        std::cerr << "stats: wrote " << path << "\n";
      }
    } else {
      write_output(render(table("friedman"), format_, render_options) + "\n" + render(table("pairs"), format_, render_options), out_);
    }
    if (!diagram_.empty()) {
      const fs::path base(diagram_);
      for (const auto& g : groups) {
        if (g.friedman.mean_ranks.size() < 2) {
          std::cerr << "stats: no diagram for " << g.within << " (fewer than 2 " << options_.by << "s with common units)\n";
          continue;
        }
        const std::string path = groups.size() == 1 ? diagram_
                                                    : (base.parent_path() / (base.stem().string() + "-" + slug(g.within) + ".svg")).string();
        write_output(cd_diagram_svg(g.names, g.friedman.mean_ranks, g.critical_difference,
                                    options_.metric + ", " + g.within + ": mean rank over " +
                                        std::to_string(g.friedman.blocks) + " units"),
                     path);
        std::cerr << "stats: wrote " << path << "\n";
      }
    }
    return 0;
  }

 private:
  std::string store_, within_ = "strategy,protocol", format_ = "text", what_, out_, diagram_;
  int digits_ = 4;
  StatsOptions options_;
};

}  // namespace

std::unique_ptr<Command> make_stats_command() { return std::make_unique<StatsCommand>(); }

}  // namespace sdm::orchestrator
