#include "worker/predict.h"

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "common/error.h"
#include "common/hash.h"
#include "common/preprocess.h"
#include "common/safetensors.h"
#include "worker/baselines.h"
#include "worker/embedding.h"
#include "worker/models/encoder.h"
#include "worker/predictor.h"

namespace sdm::worker {
namespace {

std::string percent(double share) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f%%", 100.0 * share);
  return buf;
}

/// The input's gene keys in the form the artifact recorded (normalized symbols or Ensembl ids).
std::vector<std::string> input_keys(const CellMatrix& cells, const std::string& gene_key) {
  const GeneKeys keys = gene_keys(cells.var);
  return gene_key == "ensembl" ? keys.ensembl : keys.symbols;
}

/// Needed genes located in the input; refuses an input below the coverage floor with what it lacks.
GeneMatch check_coverage(const nlohmann::json& m, const CellMatrix& cells, const std::string& input_path,
                         const PredictOptions& options, PredictResult& result) {
  const auto needed = m.at("genes").get<std::vector<std::string>>();
  const std::string key = m.value("gene_key", "symbol");
  const auto available = input_keys(cells, key);
  check_unique_genes(available, input_path);
  GeneMatch match = match_genes(needed, available);
  result.genes_needed = needed.size();
  result.genes_found = match.found;
  result.coverage = match.coverage();
  if (needed.empty()) {
    spdlog::warn("the artifact does not list the genes its cell trained on; gene coverage is not checked");
    return match;
  }
  if (result.coverage < options.min_coverage) {
    std::string missing;
    for (const auto& g : match.missing(needed)) missing += (missing.empty() ? "" : ", ") + g;
    throw DataError({input_path, "var", percent(result.coverage)},
                    "the input has " + std::to_string(match.found) + " of the " + std::to_string(needed.size()) + " genes (" +
                        key + "s) cell " + m.at("cell_id").get<std::string>().substr(0, 12) + " needs: coverage " +
                        percent(result.coverage) + " < " + percent(options.min_coverage) + " (--min-coverage); missing e.g. " +
                        missing);
  }
  if (match.found < needed.size()) {
    spdlog::warn("the input lacks {} of the {} genes the cell needs (coverage {}); they count as zero", needed.size() - match.found,
                 needed.size(), percent(result.coverage));
  }
  return match;
}

/// Columns `match.column` of X (missing ones all zero) as a CSR matrix in the needed genes' order.
CsrMatrix columns_in_order(const CsrMatrix& X, const GeneMatch& match) {
  std::vector<std::int32_t> target(static_cast<std::size_t>(X.cols), -1);
  for (std::size_t j = 0; j < match.column.size(); ++j) {
    if (match.column[j] >= 0) target[static_cast<std::size_t>(match.column[j])] = static_cast<std::int32_t>(j);
  }
  CsrMatrix out;
  out.rows = X.rows;
  out.cols = static_cast<std::int64_t>(match.column.size());
  for (std::int64_t r = 0; r < X.rows; ++r) {
    std::vector<std::pair<std::int32_t, float>> row;
    for (std::int64_t k = X.indptr[r]; k < X.indptr[r + 1]; ++k) {
      const auto t = target[static_cast<std::size_t>(X.indices[k])];
      if (t >= 0) row.emplace_back(t, X.data[k]);
    }
    std::sort(row.begin(), row.end());
    for (const auto& [c, v] : row) {
      out.indices.push_back(c);
      out.data.push_back(v);
    }
    out.indptr.push_back(static_cast<std::int64_t>(out.data.size()));
  }
  return out;
}

std::vector<float> dense(const CsrMatrix& X) {
  std::vector<float> out(static_cast<std::size_t>(X.rows * X.cols), 0.0f);
  for (std::int64_t r = 0; r < X.rows; ++r) {
    for (std::int64_t k = X.indptr[r]; k < X.indptr[r + 1]; ++k) out[static_cast<std::size_t>(r * X.cols + X.indices[k])] = X.data[k];
  }
  return out;
}

NamedArray take(NamedArrays& arrays, const std::string& name, const std::string& file) {
  for (auto& a : arrays) {
    if (a.name == name) return a;
  }
  throw DataError({file, name, ""}, "the predictor lacks this tensor");
}

/// Baselines: log-normalize over the genes library sizes were computed on, keep the PCA genes, project, head.
std::vector<double> predict_baseline(const nlohmann::json& m, const std::string& dir, const CellMatrix& cells,
                                     const GeneMatch& match) {
  const std::string params = dir + "/" + m.at("parameters").get<std::string>();
  NamedArrays arrays = read_named_arrays(params);
  PcaBasis basis{take(arrays, "pca.mean", params).values, take(arrays, "pca.components", params).values,
                 take(arrays, "pca.scale", params).values};
  const auto genes = m.at("genes").get<std::vector<std::string>>();
  CsrMatrix X;
  const ValueKind values = parse_value_kind(m.at("data").value("values", std::string("counts")), "data.values");
  check_values(cells.X, values, cells.source, m.at("data").value("matrix", std::string("X")));
  const auto norm_genes = m.value("norm_genes", std::vector<std::string>{});
  if (values == ValueKind::kCounts && !norm_genes.empty()) {
    // Library sizes over the pooled genes of training (as the cell computed them), then the selected genes.
    const std::string key = m.value("gene_key", "symbol");
    CsrMatrix pooled = columns_in_order(cells.X, match_genes(norm_genes, input_keys(cells, key)));
    normalize_log1p(pooled, m.at("target_sum").get<double>());
    X = columns_in_order(pooled, match_genes(genes, norm_genes));
  } else {
    X = columns_in_order(cells.X, match);
  }
  const auto scores = apply_pca(basis, dense(X), X.cols);
  return apply_head(m.at("head"), arrays, scores, static_cast<std::int64_t>(basis.scale.size()));
}

/// The checkpoint a cell used, or the user's replacement for it, checked against the hash the cell recorded.
std::string checked_file(const nlohmann::json& model, const std::string& field, const std::string& override_path) {
  const std::string recorded = model.value(field, "");
  const std::string path = override_path.empty() ? recorded : override_path;
  const std::string want = model.value(field + "_sha256", "");
  if (path.empty()) return path;
  if (!std::filesystem::exists(path)) {
    throw IoError({path, field, ""}, "the " + field + " file the cell was trained with is not here; pass --" + field + " with its new path");
  }
  const std::string have = field == "weights" ? checkpoint_content_hash(path) : sha256_file_hex(path);
  if (!want.empty() && have != want) {
    throw DataError({path, field + "_sha256", have.substr(0, 12)},
                    "differs from the file the cell was trained with (sha256 " + want.substr(0, 12) + "...)");
  }
  return path;
}

/// Encoders: the model (adapters merged for LoRA cells) embeds the cells as in training, then the head.
std::vector<double> predict_encoder(const nlohmann::json& m, const std::string& dir, const CellMatrix& cells,
                                    const PredictOptions& options) {
  const auto& model = m.at("model");
  const std::string weights = checked_file(model, "weights", options.weights);
  const std::string vocab = checked_file(model, "vocab", options.vocab);
  LoadedModel loaded = LoadedModel::load(model.at("name"), model.at("config"), weights, vocab, false,
                                         model.value("pinned", std::vector<std::string>{}));
  const std::string params = dir + "/" + m.at("parameters").get<std::string>();
  NamedArrays head;
  if (m.value("lora", false)) {
    auto adapters = loaded.encoder->add_lora(lora_options(m.at("strategy").at("options")), m.at("seed").get<std::uint64_t>());
    const StateDict saved = read_state_dict(params);
    torch::NoGradGuard no_grad;
    for (auto& [name, t] : adapters) {
      const auto it = saved.find(name);
      if (it == saved.end()) throw DataError({params, name, ""}, "the adapters file lacks this adapter");
      if (it->second.sizes() != t.sizes()) throw DataError({params, name, ""}, "adapter shape differs from the model's");
      t.copy_(it->second);
    }
    loaded.encoder->set_training(false);
    loaded.encoder->merge_lora();
    for (const auto& [name, t] : saved) {
      if (name.rfind("head.", 0) != 0) continue;
      const auto c = t.to(torch::kFloat32).contiguous();
      head.push_back({name, std::vector<std::int64_t>(c.sizes().begin(), c.sizes().end()),
                      std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel())});
    }
  } else {
    head = read_named_arrays(params);
  }
  const GeneKeys keys = gene_keys(cells.var);
  const auto& config = model.at("config");
  const std::int64_t batch = options.batch_size > 0 ? options.batch_size : config.value("batch_size", 32);
  const Embeddings e = embed_cells(loaded, cells.X, keys.symbols, keys.ensembl, cells.obs.index, batch,
                                   config.value("tokenizer_seed", std::uint64_t{0}));
  check_vocabulary_overlap(e.cells_without_genes, static_cast<std::size_t>(e.n), cells.source,
                           model.at("name").get<std::string>());
  return apply_head("mlp", head, e.values, e.d);
}

}  // namespace

PredictResult predict_with_artifact(const std::string& artifact_dir, const CellMatrix& cells, const std::string& input_path,
                                    const PredictOptions& options) {
  if (!(options.min_coverage >= 0 && options.min_coverage <= 1)) {
    throw ConfigError({"", "--min-coverage", std::to_string(options.min_coverage)}, "must lie in [0, 1]");
  }
  PredictResult result;
  result.manifest = read_predictor_manifest(artifact_dir);
  const auto& m = result.manifest;
  if (cells.X.rows == 0) throw DataError({input_path, "obs", "0"}, "the input has no cells");
  const GeneMatch match = check_coverage(m, cells, input_path, options, result);
  result.p_sensitive = m.at("kind") == "baseline" ? predict_baseline(m, artifact_dir, cells, match)
                                                  : predict_encoder(m, artifact_dir, cells, options);
  if (result.p_sensitive.size() != static_cast<std::size_t>(cells.X.rows)) {
    throw DataError({input_path, "", ""}, "the predictor returned " + std::to_string(result.p_sensitive.size()) + " scores for " +
                                             std::to_string(cells.X.rows) + " cells");
  }
  return result;
}

}  // namespace sdm::worker
