#include "worker/embedding.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <numeric>

#include "common/error.h"
#include "common/hdf5.h"
#include "common/text.h"
#include "worker/models/encoder.h"

namespace sdm::worker {

namespace {

using Clock = std::chrono::steady_clock;

void append_rows(Embeddings& e, const torch::Tensor& cell, const std::vector<std::size_t>& rows) {
  const auto c = cell.to(torch::kFloat32).contiguous();
  const auto* p = c.data_ptr<float>();
  for (std::size_t i = 0; i < rows.size(); ++i) {
    std::copy(p + static_cast<std::int64_t>(i) * e.d, p + static_cast<std::int64_t>(i + 1) * e.d,
              e.values.begin() + static_cast<std::int64_t>(rows[i]) * e.d);
  }
}

}  // namespace

LoadedModel LoadedModel::load(const std::string& model, const nlohmann::json& config, const std::string& weights,
                              const std::string& vocab, bool strict, const std::vector<std::string>& pinned) {
  EncoderFiles files;
  files.weights = weights;
  files.pinned = pinned;
  files.vocab = vocab;
  files.load.strict = strict;
  return {model, config, std::shared_ptr<Encoder>(make_encoder(model, config, files))};
}

TokenizedCells tokenize_cells(const LoadedModel& model, const CsrMatrix& X, const std::vector<std::string>& gene_symbols,
                              const std::vector<std::string>& gene_ensembl, const std::vector<std::string>& obs_names,
                              std::uint64_t seed) {
  std::vector<std::uint64_t> seeds;
  seeds.reserve(obs_names.size());
  for (const auto& name : obs_names) seeds.push_back(cell_seed(seed, name));
  return model.encoder->tokenize(X, GeneInputs{gene_symbols, gene_ensembl}, seeds);
}

void check_vocabulary_overlap(std::size_t cells_without_genes, std::size_t cells, const std::string& file,
                              const std::string& model) {
  if (cells_without_genes == 0) return;
  if (cells_without_genes == cells) {
    throw DataError({file, "var", "0 of " + std::to_string(cells) + " cells"},
                    "no cell shares a gene with the " + model + " vocabulary (0 % overlap): check the gene names "
                    "(symbols vs Ensembl ids, species) against the vocabulary file");
  }
  spdlog::warn("{}: {} of {} cells share no gene with the {} vocabulary; their embeddings are not meaningful", file,
               cells_without_genes, cells, model);
}

Embeddings embed_cells(const LoadedModel& model, const CsrMatrix& X, const std::vector<std::string>& gene_symbols,
                       const std::vector<std::string>& gene_ensembl, const std::vector<std::string>& obs_names,
                       std::int64_t batch_size, std::uint64_t seed) {
  Encoder& encoder = *model.encoder;
  const TokenizedCells tokens = tokenize_cells(model, X, gene_symbols, gene_ensembl, obs_names, seed);
  Embeddings e;
  e.n = X.rows;
  e.d = encoder.dim();
  e.values.assign(static_cast<std::size_t>(e.n * e.d), 0.0f);
  e.cells_without_genes = tokens.cells_without_genes;
  // Longest first, so batches hold cells of similar length and padding stays small; models whose cells attend to
  // each other (CellPLM) take fixed groups in input order instead, so results do not depend on batch_size.
  std::vector<std::size_t> order(tokens.size());
  std::iota(order.begin(), order.end(), 0);
  const auto group = encoder.cells_per_forward();
  if (group == 0) {
    std::stable_sort(order.begin(), order.end(), [&](auto a, auto b) { return tokens.ids[a].size() > tokens.ids[b].size(); });
  }
  c10::InferenceMode inference;
  const auto batch = static_cast<std::size_t>(group > 0 ? group : std::max<std::int64_t>(1, batch_size));
  for (std::size_t start = 0; start < order.size(); start += batch) {
    const std::vector<std::size_t> rows(order.begin() + static_cast<long>(start),
                                        order.begin() + static_cast<long>(std::min(order.size(), start + batch)));
    for (auto r : rows) e.tokens += tokens.ids[r].size();
    const auto inputs = encoder.collate(tokens, rows);
    const auto t0 = Clock::now();
    const auto out = encoder.forward(inputs, false);
    e.forward_s += std::chrono::duration<double>(Clock::now() - t0).count();
    append_rows(e, out.cell_embedding, rows);
  }
  return e;
}

Embeddings embed_tokenized(const LoadedModel& model, const std::string& path, std::int64_t batch_size, bool states,
                           std::vector<std::string>& obs_names) {
  Encoder& encoder = *model.encoder;
  const auto file = h5::File::open(path);
  ModelInputs all;
  for (const auto& name : encoder.input_names()) {
    if (!file.is_dataset(name)) {
      throw DataError({path, name, ""}, "missing input; " + model.name +
                                            " needs datasets named as its forward's arguments: " + join(encoder.input_names(), ", "));
    }
    std::vector<std::int64_t> shape;
    for (auto d : file.shape(name)) shape.push_back(static_cast<std::int64_t>(d));
    const std::string dtype = file.dtype_name(name);
    if (dtype.rfind("float", 0) == 0) {
      auto v = file.read<float>(name);
      all[name] = torch::from_blob(v.data(), shape, torch::kFloat32).clone();
    } else if (dtype.rfind("int", 0) == 0 || dtype.rfind("uint", 0) == 0 || dtype == "bool") {
      auto v = file.read<std::int64_t>(name);
      all[name] = torch::from_blob(v.data(), shape, torch::kInt64).clone();
    } else {
      throw DataError({path, name, dtype}, "expected a numeric dataset");
    }
  }
  encoder.check_inputs(all, path);
  const auto n = all.begin()->second.size(0);
  if (file.is_dataset("obs_names")) {
    obs_names = file.read_strings("obs_names");
    if (static_cast<std::int64_t>(obs_names.size()) != n) {
      throw DataError({path, "obs_names", std::to_string(obs_names.size())}, "does not match the " + std::to_string(n) + " rows of the inputs");
    }
  } else {
    obs_names.clear();
    for (std::int64_t i = 0; i < n; ++i) obs_names.push_back(std::to_string(i));
  }
  Embeddings e;
  e.n = n;
  e.d = encoder.dim();
  e.values.assign(static_cast<std::size_t>(e.n * e.d), 0.0f);
  c10::InferenceMode inference;
  std::vector<torch::Tensor> kept;
  const auto batch = encoder.cells_per_forward() > 0 ? encoder.cells_per_forward() : std::max<std::int64_t>(1, batch_size);
  for (std::int64_t start = 0; start < n; start += batch) {
    const auto m = std::min(batch, n - start);
    ModelInputs inputs;
    for (const auto& [name, t] : all) inputs[name] = t.narrow(0, start, m);
    std::vector<std::size_t> rows(static_cast<std::size_t>(m));
    std::iota(rows.begin(), rows.end(), static_cast<std::size_t>(start));
    const auto t0 = Clock::now();
    const auto out = encoder.forward(inputs, states);
    e.forward_s += std::chrono::duration<double>(Clock::now() - t0).count();
    append_rows(e, out.cell_embedding, rows);
    if (states) kept.push_back(out.token_states.to(torch::kFloat32));
  }
  e.tokens = static_cast<std::size_t>(all.begin()->second.numel());
  if (states && !kept.empty()) {
    const auto s = torch::cat(kept).contiguous();
    e.state_shape = {s.size(0), s.size(1), s.size(2)};
    e.states.assign(s.data_ptr<float>(), s.data_ptr<float>() + s.numel());
  }
  return e;
}

void write_embedding_cache(const std::string& path, const std::string& key, const CachedEmbeddings& e) {
  const std::string tmp = path + ".tmp";
  {
    auto file = h5::File::create(tmp);
    file.write<float>("cell_embedding", std::span<const float>(e.values),
                      {static_cast<hsize_t>(e.n), static_cast<hsize_t>(e.d)});
    file.write_strings("obs_names", e.obs_names);
    file.write("y", e.y);
    file.write_strings("groups", e.groups);
    if (!e.gene_keys.empty()) file.write_strings("gene_keys", e.gene_keys);
    file.set_attr("embedding_key", key);
    file.flush();
  }
  std::filesystem::rename(tmp, path);
}

CachedEmbeddings read_embedding_cache(const std::string& path, const std::string& key) {
  const auto file = h5::File::open(path);
  if (!file.has_attr("embedding_key") || file.attr_string("embedding_key") != key) {
    throw IoError({path, "embedding_key", ""}, "the cache file was written for another embedding");
  }
  CachedEmbeddings e;
  const auto shape = file.shape("cell_embedding");
  if (shape.size() != 2) throw IoError({path, "cell_embedding", ""}, "expected a 2-D dataset");
  e.n = static_cast<std::int64_t>(shape[0]);
  e.d = static_cast<std::int64_t>(shape[1]);
  e.values = file.read<float>("cell_embedding");
  e.obs_names = file.read_strings("obs_names");
  e.y = file.read<std::int8_t>("y");
  e.groups = file.read_strings("groups");
  if (file.exists("gene_keys")) e.gene_keys = file.read_strings("gene_keys");
  if (static_cast<std::int64_t>(e.obs_names.size()) != e.n || static_cast<std::int64_t>(e.y.size()) != e.n ||
      static_cast<std::int64_t>(e.groups.size()) != e.n) {
    throw IoError({path, "", ""}, "inconsistent row counts: truncated cache file");
  }
  return e;
}

}  // namespace sdm::worker
