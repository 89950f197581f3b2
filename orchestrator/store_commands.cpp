// `sdm status`, `sdm export` and `sdm consolidate`: reading a store and its records after (or during) a sweep.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "common/cell_record.h"
#include "common/error.h"
#include "common/text.h"
#include "orchestrator/command.h"
#include "orchestrator/consolidate.h"
#include "orchestrator/cost_summary.h"
#include "orchestrator/result_groups.h"
#include "orchestrator/results_table.h"
#include "orchestrator/store_files.h"
#include "orchestrator/store_status.h"

namespace sdm::orchestrator {
namespace fs = std::filesystem;
namespace {

void require_store_dir(const StorePaths& paths) {
  std::error_code ec;
  if (!fs::exists(paths.records, ec) && !fs::exists(paths.store, ec)) {
    throw IoError({paths.store, "", ""}, "no sweep store here (neither the store nor " + paths.records + " exists)");
  }
}

}  // namespace

nlohmann::json store_status(const StorePaths& paths) {
  require_store_dir(paths);
  std::error_code ec;
  std::vector<std::string> expected;
  if (fs::exists(paths.expected, ec)) {
    expected = nlohmann::json::parse(read_text_file(paths.expected)).at("cells").get<std::vector<std::string>>();
  }
  std::map<std::string, CellRecord> records;
  if (fs::exists(paths.records, ec)) {
    for (const auto& entry : fs::directory_iterator(paths.records)) {
      const auto name = entry.path().filename().string();
      if (entry.path().extension() != ".h5" || name.find(".tmp") != std::string::npos) continue;
      try {
        records[entry.path().stem().string()] = read_record(entry.path().string(), false);
      } catch (const std::exception& e) {
        CellRecord broken;
        broken.set("status", std::string("failed"));
        broken.set("error", std::string("unreadable record: ") + e.what());
        records[entry.path().stem().string()] = broken;
      }
    }
  }
  if (expected.empty()) {
    for (const auto& [id, unused] : records) expected.push_back(id);
  }
  std::map<std::string, std::string> last;
  for (const auto& e : Journal::read(paths.journal)) last[e.value("cell_id", std::string())] = e.value("status", std::string());
  const bool live = fs::exists(paths.lock, ec);
  std::map<std::string, std::int64_t> counts{{"done", 0}, {"failed", 0}, {"interrupted", 0}, {"pending", 0}, {"running", 0}};
  nlohmann::json failed = nlohmann::json::array();
  for (const auto& id : expected) {
    auto it = records.find(id);
    const auto j = last.find(id);
    const bool started = j != last.end() && j->second == "running";
    if (started && (it == records.end() || live)) {
      // Started after its last record: running now, or interrupted when no sweep holds the store.
      ++counts[live ? "running" : "interrupted"];
    } else if (it == records.end()) {
      ++counts["pending"];
    } else if (it->second.text("status") == "done") {
      ++counts["done"];
    } else {
      ++counts["failed"];
      failed.push_back({{"cell_id", id}, {"error", it->second.text("error")}, {"attempts", it->second.integer("attempts")}});
    }
  }
  return {{"schema_version", kStoreSchemaVersion}, {"expected", expected.size()}, {"counts", counts},
          {"failed", failed}, {"locked", live}, {"consolidated", fs::exists(paths.store, ec)}};
}

namespace {

class StatusCommand final : public Command {
 public:
  const char* name() const override { return "status"; }
  const char* summary() const override { return "Counts of done / failed / pending cells of a store, and why cells failed"; }
  void configure(CLI::App& app) override {
    app.add_option("store", store_, "The sweep's store.h5 (its directory holds records/ and journal.jsonl)")->required();
    app.add_flag("--json", json_, "Print JSON (CONTRACTS §8)");
  }
  int run(const RunContext&) override {
    const auto s = store_status(StorePaths::for_store(store_));
    if (json_) {
      std::cout << s.dump(2) << std::endl;
      return 0;
    }
    const auto& c = s["counts"];
    std::cout << store_ << ": " << s["expected"].get<std::int64_t>() << " cells: " << c["done"] << " done, " << c["failed"]
              << " failed, " << c["running"] << " running, " << c["interrupted"] << " interrupted, " << c["pending"]
              << " pending" << (s["locked"].get<bool>() ? " (a sweep holds the lock)" : "") << "\n";
    for (const auto& f : s["failed"]) {
      std::cout << "  failed " << f["cell_id"].get<std::string>().substr(0, 12) << " after " << f["attempts"]
                << " attempt(s): " << f["error"].get<std::string>() << "\n";
    }
    return 0;
  }

 private:
  std::string store_;
  bool json_ = false;
};

/// Throws ConfigError (with a suggestion) unless `metric` is a metric column of the store.
void check_metric(const std::string& metric) {
  const auto& metrics = metric_names();
  if (std::find(metrics.begin(), metrics.end(), metric) == metrics.end()) {
    throw ConfigError({"<cli>", "--metric", metric}, "unknown metric; " + suggest(metric, metrics));
  }
}

const std::vector<std::string>& export_kinds() {
  static const std::vector<std::string> kKinds{"cells",   "predictions", "breakdown", "cost",  "cost-summary",
                                               "overhead", "summary",     "leakage",   "pivot", "curves"};
  return kKinds;
}

class ExportCommand final : public Command {
 public:
  const char* name() const override { return "export"; }
  const char* summary() const override {
    return "Write a store's cells, predictions, per-dataset breakdown, cost, summary (grouped by model, setting, "
           "tissue, therapy, cancer type), cell-vs-sample leakage or ROC/PR curve points as csv/json (lossless) or "
           "text/md/latex/html (rounded)";
  }
  void configure(CLI::App& app) override {
    app.add_option("store", store_, "A consolidated store.h5")->required();
    app.add_option("--what", what_,
                   "cells | predictions | breakdown | cost (per cell) | cost-summary (per model: hours, cells/h, metric "
                   "per device-hour) | overhead (sweep span vs cell time) | summary | leakage | pivot | curves (ROC and "
                   "PR points per cell). Default: cells for csv/json, the study's summary table (--what summary "
                   "--layout paper) for text/md/latex/html");
    app.add_option("--format", format_,
                   "csv | json (lossless: every number reads back exactly, one table per file) | md | latex | text | "
                   "html (rounded to --digits)")
        ->capture_default_str();
    app.add_option("--digits", digits_, "Display formats: decimals shown (significant digits for hours)")->capture_default_str();
    app.add_option("--out", out_, "Write here instead of stdout");
    app.add_option("--by", by_,
                   "summary: group by these fields (comma-separated): model preset strategy protocol split seed "
                   "test_group, and per test dataset: dataset tissue therapy cancer_type cancer_level2 regimen (from "
                   "the sweep's catalog); each group's mean \u00b1 s.e.m. over folds and seeds with n");
    app.add_option("--layout", layout_,
                   "summary: long (a row per group; the default with --what summary) | paper (a row per model, a "
                   "column per setting and --by value, as the study's tables; the default of display formats "
                   "without --what)");
    app.add_option("--catalog", catalog_,
                   "The dataset catalog for tissue/therapy/cancer_type (default: the one the "
                   "sweep used, from the store's sweep_yaml)");
    app.add_option("--ci", ci_,
                   "summary, pivot: add a bootstrap 95% interval per metric over `units` (the group's folds, seeds "
                   "and test datasets) or `cells` (the group's test cells, from /predictions); a column after each "
                   "metric in the long layout, after each entry in the paper layout and the pivot; summary without "
                   "--by groups by model,strategy,protocol,split");
    app.add_option("--resamples", resamples_, "--ci: bootstrap resamples")->capture_default_str();
    app.add_option("--rows", rows_, "pivot: the cell fields that make a row (comma-separated)")->capture_default_str();
    app.add_option("--cols", cols_, "pivot: the cell field whose values are the columns (test_group: held-out dataset)")
        ->capture_default_str();
    app.add_option("--metric", metric_,
                   "pivot, --layout paper: the metric (default f1); summary --by: the metrics, "
                   "comma-separated (default f1,auroc,auprc)");
  }
  int run(const RunContext&) override {
    std::error_code ec;
    if (!fs::exists(store_, ec)) {
      throw IoError({store_, "", ""}, "no consolidated store; run `sdm consolidate " + store_ + "` (or finish the sweep)");
    }
    const Plan plan = check_options();
    std::map<std::string, CellPredictions> predictions;
    CiOptions ci{ci_, resamples_, 0, nullptr};
    if (ci_ == "cells") {
      predictions = read_store_predictions(store_);
      ci.predictions = &predictions;
    }
    Table table;
    if (what_ == "cells") {
      table = read_store_group(store_, "cells", cell_fields());
    } else if (what_ == "predictions") {
      table = read_store_group(store_, "predictions", prediction_fields());
    } else if (what_ == "breakdown") {
      table = read_store_group(store_, "breakdown", breakdown_fields());
    } else if (what_ == "cost") {
      table = cost_table(read_store_cells(store_));
    } else if (what_ == "cost-summary") {
      table = cost_summary_table(read_store_cells(store_), plan.metrics.front());
    } else if (what_ == "overhead") {
      table = sweep_span_table(sweep_span(read_store_cells(store_)));
    } else if (what_ == "summary" && plan.by.empty() && !plan.paper && ci_.empty()) {
      table = summary_table(read_store_cells(store_));
    } else if (what_ == "summary") {
      const bool per_dataset = std::any_of(plan.by.begin(), plan.by.end(), is_dataset_field);
      const auto catalog = per_dataset ? store_catalog(store_, catalog_) : std::nullopt;
      const auto obs = observations(read_store_cells(store_),
                                    per_dataset ? read_store_breakdown(store_) : std::vector<BreakdownEntry>{},
                                    catalog ? &*catalog : nullptr, plan.by);
      table = plan.paper ? paper_table(obs, plan.by, plan.metrics.front(), ci) : grouped_table(obs, plan.by, plan.metrics, ci);
    } else if (what_ == "leakage") {
      table = leakage_table(read_store_cells(store_));
    } else if (what_ == "curves") {
      table = curves_table(read_store_cells(store_), read_store_predictions(store_));
    } else {  // pivot
      table = pivot_table(read_store_cells(store_), plan.rows, cols_, plan.metrics.front(), ci);
    }
    write_output(render(table, format_, RenderOptions{digits_}), out_);
    return 0;
  }

 private:
  struct Plan {
    std::vector<std::string> by, metrics, rows;
    bool paper = false;
  };

  /// Every option check, in one place and before the store is read: an unknown kind, format, field or metric,
  /// or an option the chosen table does not take, is a ConfigError naming the option.
  Plan check_options() {
    Plan plan;
    check_export_format(format_);
    check_digits(digits_);
    // what a reader wants from a display format is the study's table; a program reading csv/json, every cell
    const bool display_default = what_.empty() && !is_machine_format(format_);
    if (what_.empty()) what_ = display_default ? "summary" : "cells";
    if (layout_.empty()) layout_ = display_default ? "paper" : "long";
    if (std::find(export_kinds().begin(), export_kinds().end(), what_) == export_kinds().end()) {
      throw ConfigError({"<cli>", "--what", what_}, "unknown table; " + suggest(what_, export_kinds()));
    }
    const std::vector<std::string> layouts{"long", "paper"};
    if (std::find(layouts.begin(), layouts.end(), layout_) == layouts.end()) {
      throw ConfigError({"<cli>", "--layout", layout_}, "unknown layout; " + suggest(layout_, layouts));
    }
    plan.paper = layout_ == "paper";
    if ((!by_.empty() || plan.paper) && what_ != "summary") {
      throw ConfigError({"<cli>", plan.paper ? "--layout" : "--by", plan.paper ? layout_ : by_},
                        "grouping and the paper layout apply to --what summary");
    }
    if (!ci_.empty()) {
      if (ci_ != "units" && ci_ != "cells") throw ConfigError({"<cli>", "--ci", ci_}, "expected units or cells");
      if (what_ != "summary" && what_ != "pivot") throw ConfigError({"<cli>", "--ci", ci_}, "applies to --what summary and pivot");
      if (resamples_ < 10) throw ConfigError({"<cli>", "--resamples", std::to_string(resamples_)}, "use at least 10");
    }
    plan.by = parse_group_fields(by_.empty() && !ci_.empty() && what_ == "summary" && !plan.paper
                                     ? std::string("model,strategy,protocol,split")
                                     : by_,
                                 "--by");
    const bool one_metric = what_ == "pivot" || what_ == "cost-summary" || plan.paper;
    plan.metrics = parse_metrics(metric_.empty() ? (one_metric ? "f1" : "f1,auroc,auprc") : metric_, "--metric");
    if (one_metric && plan.metrics.size() != 1) {
      throw ConfigError({"<cli>", "--metric", metric_},
                        what_ == "pivot" || what_ == "cost-summary" ? what_ + " takes one metric" : "--layout paper takes one metric");
    }
    if (what_ == "pivot") {
      std::vector<std::string> text_fields;
      for (const auto& f : cell_fields()) {
        if (f.kind == FieldKind::kText) text_fields.push_back(f.name);
      }
      for (std::size_t start = 0; start <= rows_.size();) {
        const auto comma = std::min(rows_.find(',', start), rows_.size());
        if (comma > start) plan.rows.push_back(rows_.substr(start, comma - start));
        start = comma + 1;
      }
      for (const auto& f : plan.rows) {
        if (std::find(text_fields.begin(), text_fields.end(), f) == text_fields.end()) {
          throw ConfigError({"<cli>", "--rows", f}, "not a text field of /cells; " + suggest(f, text_fields));
        }
      }
      if (std::find(text_fields.begin(), text_fields.end(), cols_) == text_fields.end()) {
        throw ConfigError({"<cli>", "--cols", cols_}, "not a text field of /cells; " + suggest(cols_, text_fields));
      }
    }
    return plan;
  }

  std::string store_, what_, format_ = "csv", out_, by_, layout_, catalog_, ci_;
  int resamples_ = 1000, digits_ = 4;
  std::string rows_ = "model,strategy", cols_ = "test_group", metric_;
};

class CompareCommand final : public Command {
 public:
  const char* name() const override { return "compare"; }
  const char* summary() const override { return "Two stores' cells side by side: a metric in each, the delta, better / worse"; }
  void configure(CLI::App& app) override {
    app.add_option("a", a_, "The reference store.h5 (A)")->required();
    app.add_option("b", b_, "The store to compare with it (B)")->required();
    app.add_option("--metric", metric_, "f1 | auroc | auprc | precision | recall | accuracy | balanced_accuracy | mcc")
        ->capture_default_str();
    app.add_option("--tolerance", tolerance_, "|B - A| up to this is `same`")->capture_default_str()->check(CLI::NonNegativeNumber);
    app.add_option("--format", format_, "text | csv | md | latex | json | html")->capture_default_str();
    app.add_option("--digits", digits_, "Display formats: decimals shown")->capture_default_str();
    app.add_option("--out", out_, "Write the table here instead of stdout");
  }
  int run(const RunContext&) override {
    check_export_format(format_);
    check_digits(digits_);
    check_metric(metric_);
    for (const auto& s : {a_, b_}) {
      std::error_code ec;
      if (!fs::exists(s, ec)) throw IoError({s, "", ""}, "no consolidated store; run `sdm consolidate " + s + "` first");
    }
    std::map<std::string, int> n;
    const auto table = compare_table(read_store_cells(a_), read_store_cells(b_), metric_, tolerance_, &n);
    write_output(render(table, format_, RenderOptions{digits_}), out_);
    std::cerr << "compare " << metric_ << ": " << n["better"] << " better, " << n["worse"] << " worse, " << n["same"]
              << " same, " << n["n/a"] << " not comparable (NaN or failed), " << n["only_a"] << " only in A, "
              << n["only_b"] << " only in B" << std::endl;
    return 0;
  }

 private:
  std::string a_, b_, metric_ = "f1", format_ = "text", out_;
  double tolerance_ = 1e-9;
  int digits_ = 4;
};

class ConsolidateCommand final : public Command {
 public:
  const char* name() const override { return "consolidate"; }
  const char* summary() const override { return "Rebuild store.h5 from the committed records (all ranks write collectively)"; }
  void configure(CLI::App& app) override {
    app.add_option("store", store_, "The store.h5 to (re)build")->required();
  }
  bool needs_mpi() const override { return true; }
  int run(const RunContext& context) override {
    const auto paths = StorePaths::for_store(store_);
    int ok = 1;
    std::string error;
    if (context.rank == 0) {
      try {
        require_store_dir(paths);
      } catch (const std::exception& e) {
        error = e.what();
        ok = 0;
      }
    }
    MPI_Bcast(&ok, 1, MPI_INT, 0, context.world);
    if (!ok) {
      if (context.rank == 0) std::cerr << "sdm consolidate: error: " << error << std::endl;
      return 1;
    }
    const auto stats = consolidate(paths, context.world);
    if (context.rank == 0) {
      std::cout << store_ << ": " << stats.cells << " cells, " << stats.predictions << " predictions, " << stats.breakdown
                << " breakdown rows; " << context.size << " ranks in " << stats.seconds << " s (" << stats.io_mode << ")\n";
    }
    return 0;
  }

 private:
  std::string store_;
};

}  // namespace

std::unique_ptr<Command> make_status_command() { return std::make_unique<StatusCommand>(); }
std::unique_ptr<Command> make_export_command() { return std::make_unique<ExportCommand>(); }
std::unique_ptr<Command> make_compare_command() { return std::make_unique<CompareCommand>(); }
std::unique_ptr<Command> make_consolidate_command() { return std::make_unique<ConsolidateCommand>(); }

}  // namespace sdm::orchestrator
