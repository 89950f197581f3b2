// `sdm predict`: apply one trained cell of a store to new cells (the study's web server, on the user's machine).
// Reads the cell's artifact, scores every cell of the input and writes the probability of sensitivity and the
// label as a CSV, or as obs columns of an .h5ad copy of the input.
#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "common/anndata_writer.h"
#include "common/dataset_io.h"
#include "common/error.h"
#include "common/metrics.h"
#include "common/preprocess.h"
#include "orchestrator/command.h"
#include "orchestrator/store_files.h"
#include "orchestrator/table_writers.h"
#include "worker/predict.h"
#include "worker/predictor.h"

namespace sdm::orchestrator {
namespace fs = std::filesystem;
namespace {

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

/// The artifact directory of `cell`: an exact cell id, or a prefix that names exactly one cell with a predictor.
std::string find_artifact(const StorePaths& paths, const std::string& cell) {
  std::error_code ec;
  if (!fs::is_directory(paths.artifacts, ec)) {
    throw IoError({paths.artifacts, "", ""}, "this store has no artifacts (not a sweep store, or a sweep that trained nothing)");
  }
  if (cell.size() < 6) throw ConfigError({"", "--cell", cell}, "give at least 6 characters of the cell id");
  if (fs::exists(paths.artifacts + "/" + cell + "/" + worker::kPredictorManifest, ec)) return paths.artifacts + "/" + cell;
  std::vector<std::string> hits;
  for (const auto& entry : fs::directory_iterator(paths.artifacts)) {
    const auto name = entry.path().filename().string();
    if (name.rfind(cell, 0) == 0 && fs::exists(entry.path() / worker::kPredictorManifest, ec)) hits.push_back(name);
  }
  if (hits.size() == 1) return paths.artifacts + "/" + hits.front();
  if (hits.empty()) {
    throw ConfigError({paths.artifacts, "--cell", cell},
                      "no trained cell with a predictor has this id (see `sdm export STORE --what cells`: done cells of "
                      "baselines, frozen encoders and LoRA have one)");
  }
  throw ConfigError({paths.artifacts, "--cell", cell}, std::to_string(hits.size()) + " cells start with this; give more of the id");
}

/// Metrics against the input's own labels, when it has the column the cell was trained on.
void report_labels(const CellMatrix& cells, const nlohmann::json& manifest, const std::vector<double>& p, const std::string& path) {
  const auto& label = manifest.at("data").at("label");
  LabelMapping mapping;
  mapping.column = label.at("column").get<std::string>();
  mapping.sensitive = label.at("sensitive").get<std::vector<std::string>>();
  mapping.resistant = label.at("resistant").get<std::vector<std::string>>();
  if (!cells.obs.find(mapping.column)) return;
  const LabeledCells labels = map_labels(cells.obs, mapping, path);
  std::vector<double> scores;
  for (auto r : labels.rows) scores.push_back(p[r]);
  const BinaryMetrics m = binary_metrics(labels.y, scores);
  std::fprintf(stderr, "predict: %zu cells labelled by obs '%s': f1 %.4f auroc %.4f auprc %.4f accuracy %.4f%s%s\n",
               labels.rows.size(), mapping.column.c_str(), m.value("f1"), m.value("auroc"), m.value("auprc"), m.value("accuracy"),
               m.notes.empty() ? "" : " — ", m.notes.c_str());
}

class PredictCommand final : public Command {
 public:
  const char* name() const override { return "predict"; }
  const char* summary() const override {
    return "Apply a trained cell of a store to new cells: probability of sensitivity and label, as CSV or .h5ad obs columns";
  }
  void configure(CLI::App& app) override {
    app.add_option("--store", store_, "The sweep's store.h5 (or its directory)")->required();
    app.add_option("--cell", cell_, "The cell id (or a unique prefix of at least 6 characters)")->required();
    app.add_option("--input", input_, "New cells: .h5ad, 10x .h5, .loom or the scDrugMap TSV layout (raw counts)")->required();
    app.add_option("--out", out_, "preds.csv, or an .h5ad: a copy of the input (.h5ad) with obs columns sdm_p_sensitive "
                                  "and sdm_prediction (the input itself when --out names it)")
        ->required();
    app.add_option("--matrix", matrix_, "Which matrix of the input: X, raw or layer:<name> (default: the one the cell trained on)");
    app.add_option("--min-coverage", options_.min_coverage, "Refuse inputs with less than this share of the genes the cell needs")
        ->capture_default_str();
    app.add_option("--weights", options_.weights, "The encoder checkpoint, when it moved since training (its hash must match)");
    app.add_option("--vocab", options_.vocab, "The vocabulary, when it moved since training (its hash must match)");
    app.add_option("--batch-size", options_.batch_size, "Encoder batch size (default: the cell's)");
  }

  int run(const RunContext&) override {
    const bool to_h5ad = ends_with(out_, ".h5ad");
    if (!to_h5ad && !ends_with(out_, ".csv")) throw ConfigError({"", "--out", out_}, "must end in .csv or .h5ad");
    std::error_code ec;
    const std::string store = fs::is_directory(store_, ec) ? store_ + "/store.h5" : store_;
    const std::string dir = find_artifact(StorePaths::for_store(store), cell_);
    const nlohmann::json manifest = worker::read_predictor_manifest(dir);
    if (to_h5ad && detect_format(input_) != FileFormat::kH5ad) {
      throw ConfigError({input_, "--out", out_}, "obs columns can be added to an .h5ad input only; write a .csv");
    }
    ReadOptions read;
    read.matrix = matrix_.empty() ? manifest.at("data").value("matrix", std::string("X")) : matrix_;
    const CellMatrix cells = read_cells(input_, read);
    const auto result = worker::predict_with_artifact(dir, cells, input_, options_);
    const auto& p = result.p_sensitive;
    if (to_h5ad) {
      if (fs::absolute(out_).lexically_normal() != fs::absolute(input_).lexically_normal()) {
        fs::copy_file(input_, out_, fs::copy_options::overwrite_existing);
      }
      Column prob;
      prob.name = "sdm_p_sensitive";
      prob.type = ColumnType::kFloat;
      prob.floats = p;
      Column label;
      label.name = "sdm_prediction";
      label.type = ColumnType::kCategorical;
      label.categories = {"resistant", "sensitive"};
      for (double v : p) label.ints.push_back(v >= 0.5 ? 1 : 0);
      add_obs_columns(out_, {prob, label});
    } else {
      // the scores at full precision (the table model's CSV), written under a temporary name and renamed
      Table table({TableColumn{"obs_name", ColumnKind::kText}, TableColumn{"p_sensitive", ColumnKind::kReal},
                   TableColumn{"prediction", ColumnKind::kText}});
      for (std::size_t i = 0; i < p.size(); ++i) {
        table.add_row({cells.obs.index[i], p[i], std::string(p[i] >= 0.5 ? "sensitive" : "resistant")});
      }
      const std::string tmp = out_ + ".tmp";
      write_output(render(table, "csv"), tmp);
      fs::rename(tmp, out_);
    }
    const auto sensitive = std::count_if(p.begin(), p.end(), [](double v) { return v >= 0.5; });
    std::fprintf(stderr, "predict: %zu cells of %s by cell %s (%s %s, %s): %ld sensitive, %ld resistant; gene coverage %.1f%% (%zu/%zu) -> %s\n",
                 p.size(), input_.c_str(), manifest.at("cell_id").get<std::string>().substr(0, 12).c_str(),
                 manifest.at("model").at("name").get<std::string>().c_str(),
                 manifest.at("strategy").at("name").get<std::string>().c_str(), manifest.at("head").get<std::string>().c_str(),
                 static_cast<long>(sensitive), static_cast<long>(p.size()) - static_cast<long>(sensitive), 100.0 * result.coverage,
                 result.genes_found, result.genes_needed, out_.c_str());
    report_labels(cells, manifest, p, input_);
    return 0;
  }

 private:
  std::string store_, cell_, input_, out_, matrix_;
  worker::PredictOptions options_;
};

}  // namespace

std::unique_ptr<Command> make_predict_command() { return std::make_unique<PredictCommand>(); }

}  // namespace sdm::orchestrator
