#include "worker/task_runner.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <cmath>
#include <algorithm>
#include <limits>
#include <numeric>
#include <map>
#include <thread>

#include "cluster/collective.h"
#include "common/error.h"
#include "common/metrics.h"
#include "common/preprocess.h"
#include "jobs/models.h"
#include "worker/baselines.h"
#include "worker/finetune.h"
#include "worker/predictor.h"

namespace sdm::worker {

WorkerState::WorkerState() = default;
WorkerState::~WorkerState() = default;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::string join_ids(const nlohmann::json& ids) {
  std::string out;
  for (const auto& id : ids) out += (out.empty() ? "" : ",") + id.get<std::string>();
  return out;
}

void set_metrics(CellRecord& record, const BinaryMetrics& m) {
  record.set("n_test", m.n_test);
  for (const auto& name : BinaryMetrics::names()) record.set(name, m.value(name));
  record.set("metric_notes", m.notes);
}

void set_no_metrics(CellRecord& record, const std::string& note) {
  record.set("n_test", std::int64_t{0});
  for (const auto& name : BinaryMetrics::names()) record.set(name, kNaN);
  record.set("metric_notes", note);
}

HeadTraining head_training(const nlohmann::json& config) {
  HeadTraining h;
  const auto& head = config.at("head");
  h.layers = head.at("layers").get<std::vector<int>>();
  h.epochs = head.at("epochs").get<int>();
  h.batch_size = head.at("batch_size").get<int>();
  h.lr = head.at("lr").get<double>();
  h.weight_decay = config.at("train").at("weight_decay").get<double>();
  return h;
}

Split protocol_split(const nlohmann::json& config, const Pool& pool);

/// How pooled genes are named: Ensembl ids only when every dataset lacks symbols (make_pool's rule).
std::string gene_key_of(const std::vector<std::shared_ptr<const LoadedDataset>>& datasets) {
  const bool all_ensembl = std::all_of(datasets.begin(), datasets.end(), [](const auto& d) { return d->keys_are_ensembl; });
  return all_ensembl ? "ensembl" : "symbol";
}

/// Few-shot: k labelled cells per class of the held-out dataset move from test into training (seeded choice; a
/// class keeps at least one test cell). Returns a note when a class had fewer than k + 1 cells.
std::string move_shots(Split& split, const Pool& pool, int k, std::uint64_t seed) {
  std::string note;
  std::vector<std::size_t> keep;
  std::vector<std::size_t> by_class[2];
  for (auto r : split.test) by_class[pool.y[r] == 1 ? 1 : 0].push_back(r);
  std::vector<bool> moved_flag(pool.y.size(), false);
  for (int c = 0; c < 2; ++c) {
    const auto& members = by_class[c];
    const auto n = static_cast<std::int64_t>(members.size());
    const auto take = std::min<std::int64_t>(k, std::max<std::int64_t>(0, n - 1));
    if (take < k) {
      note += (note.empty() ? "" : "; ") + std::string("few-shot: the target has ") + std::to_string(n) + " " +
              (c == 1 ? "sensitive" : "resistant") + " cells, " + std::to_string(take) + " used as shots";
    }
    const auto perm = torch_randperm(n, seed + 3 + static_cast<std::uint64_t>(c));
    for (std::int64_t i = 0; i < take; ++i) {
      const auto r = members[static_cast<std::size_t>(perm[static_cast<std::size_t>(i)])];
      moved_flag[r] = true;
      split.train.push_back(r);
    }
  }
  for (auto r : split.test) {
    if (!moved_flag[r]) keep.push_back(r);
  }
  split.test = keep;
  return note;
}

/// Train/test rows of the pool for this cell's protocol and strategy. `note` collects what the metrics should
/// mention (a few-shot target with too few cells).
Split split_for(const nlohmann::json& config, const Pool& pool, std::string* note = nullptr) {
  Split s = protocol_split(config, pool);
  const auto& strategy = config.at("strategy");
  if (strategy.at("name") == "few-shot") {
    const std::string n = move_shots(s, pool, strategy.at("options").at("k").get<int>(), config.at("seed").get<std::uint64_t>());
    if (note) *note = n;
  }
  if (s.train.empty() || s.test.empty()) {
    throw DataError({"", "protocol", config.at("test_group").get<std::string>()}, "the split leaves no training or no test cells");
  }
  const auto sensitive = std::count_if(s.train.begin(), s.train.end(), [&](auto r) { return pool.y[r] == 1; });
  if (sensitive == 0 || sensitive == static_cast<std::ptrdiff_t>(s.train.size())) {
    throw DataError({"", "train", config.at("test_group").get<std::string>()},
                    "the training cells are all " + std::string(sensitive == 0 ? "resistant" : "sensitive") +
                        " (one class): a classifier needs both; check the label mapping (data.label)");
  }
  return s;
}

/// Train/test rows of the pool for this cell's protocol.
Split protocol_split(const nlohmann::json& config, const Pool& pool) {
  const auto& protocol = config.at("protocol");
  const std::string name = protocol.at("name");
  const auto seed = config.at("seed").get<std::uint64_t>();
  if (name == "cross-data") return by_dataset(pool, config.at("test_datasets").get<std::vector<std::string>>());
  if (name == "paper") {
    // random_split(dataset, [0.8, 0.2]) order: the first floor(0.8 n) (+ remainder) of a seeded randperm train.
    const auto n = static_cast<std::int64_t>(pool.y.size());
    const auto perm = torch_randperm(n, protocol.at("split_seed").get<std::uint64_t>());
    std::int64_t n_train = static_cast<std::int64_t>(std::floor(0.8 * static_cast<double>(n)));
    const std::int64_t n_test = static_cast<std::int64_t>(std::floor(0.2 * static_cast<double>(n)));
    if (n - n_train - n_test > 0) ++n_train;  // remainder goes round-robin from the first subset
    Split s;
    for (std::int64_t i = 0; i < n; ++i) (i < n_train ? s.train : s.test).push_back(static_cast<std::size_t>(perm[i]));
    return s;
  }
  const int folds = protocol.at("folds");
  const int fold = config.at("fold");
  if (protocol.at("split") == "sample") return grouped_fold(pool.groups, pool.y, folds, fold, seed);
  return stratified_fold(pool.y, folds, fold, seed);
}

/// Predictions, metrics and the per-dataset breakdown of a cell from its test rows' scores.
void score(CellRecord& record, const nlohmann::json& config, const Pool& pool, const std::vector<std::size_t>& test,
           const std::vector<double>& scores, const std::string& note) {
  Predictions& p = record.predictions;
  for (std::size_t i = 0; i < test.size(); ++i) {
    const auto r = test[i];
    p.obs_name.push_back(pool.obs_names[r]);
    p.dataset.push_back(pool.dataset_ids[pool.dataset[r]]);
    p.y_true.push_back(pool.y[r]);
    p.y_pred.push_back(scores[i] >= 0.5 ? 1 : 0);
    p.y_score.push_back(scores[i]);
  }
  set_metrics(record, binary_metrics(p.y_true, p.y_score));
  if (!note.empty()) {
    const std::string notes = record.text("metric_notes");
    record.set("metric_notes", notes.empty() ? note : notes + "; " + note);
  }
  if (config.at("protocol").at("name") != "cross-data" && pool.dataset_ids.size() > 1) {
    std::map<std::string, std::pair<std::vector<std::int8_t>, std::vector<double>>> per;
    for (std::size_t i = 0; i < p.size(); ++i) {
      per[p.dataset[i]].first.push_back(p.y_true[i]);
      per[p.dataset[i]].second.push_back(p.y_score[i]);
    }
    for (const auto& [dataset, ys] : per) {
      const BinaryMetrics m = binary_metrics(ys.first, ys.second);
      BreakdownRow row{dataset, {{"n_test", static_cast<double>(m.n_test)}}};
      for (const auto& name : BinaryMetrics::names()) row.metrics[name] = m.value(name);
      record.breakdown.push_back(std::move(row));
    }
  }
}

void run_baseline(CellRecord& record, const nlohmann::json& task, WorkerState& state) {
  const auto& config = task.at("config");
  const std::string model = config.at("model").at("name");
  const std::string key = task.value("feature_key", std::string());
  if (key.empty() || key != state.features_key) {
    state.features_key.clear();
    const DataOptions options = DataOptions::from_config(config.at("data"));
    std::vector<std::string> ids = config.at("train_datasets").get<std::vector<std::string>>();
    for (const auto& id : config.at("test_datasets")) {
      if (std::find(ids.begin(), ids.end(), id.get<std::string>()) == ids.end()) ids.push_back(id);
    }
    std::vector<std::shared_ptr<const LoadedDataset>> loaded;
    for (const auto& id : ids) loaded.push_back(state.datasets.get(id, task.at("paths").at(id), options));
    auto pool = std::make_shared<Pool>(make_pool(loaded));
    const Split split = split_for(config, *pool, &state.split_note);
    const auto& pre = config.at("preprocess");
    std::vector<std::int32_t> genes;
    CsrMatrix X = pool->X;
    if (options.values == ValueKind::kCounts) {
      genes = highly_variable_genes(pool->X, pre.at("hvg").get<std::size_t>(), split.train).genes;
      normalize_log1p(X, pre.at("target_sum").get<double>());
    } else {
      // Already log-normalized: rank genes by their variance on the training cells.
      const GeneMoments m = gene_moments(X, split.train);
      std::vector<std::int32_t> order(static_cast<std::size_t>(X.cols));
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(), [&](auto a, auto b) { return m.var[a] > m.var[b]; });
      order.resize(std::min<std::size_t>(order.size(), pre.at("hvg").get<std::size_t>()));
      std::sort(order.begin(), order.end());
      genes = order;
    }
    X = select_columns(X, genes);
    state.features = std::make_shared<Features>(
        pca_features(X, split.train, split.test, pre.at("pca").get<int>(), config.at("seed").get<std::uint64_t>()));
    // what a predictor made from these features needs to rebuild them for new cells
    for (auto g : genes) state.features->genes.push_back(pool->genes[static_cast<std::size_t>(g)]);
    if (options.values == ValueKind::kCounts) state.features->norm_genes = pool->genes;
    state.features->gene_key = gene_key_of(loaded);
    state.pool = pool;
    state.test_rows = std::make_shared<std::vector<std::size_t>>(split.test);
    state.train_y.clear();
    for (auto r : split.train) state.train_y.push_back(pool->y[r]);
    state.features_key = key;
  }
  const bool keep = !task.value("artifact_dir", std::string()).empty();
  NamedArrays fitted;
  const auto scores = fit_predict(model, config.at("model").at("config"), head_training(config), *state.features,
                                  state.train_y, config.at("seed").get<std::uint64_t>(), keep ? &fitted : nullptr);
  score(record, config, *state.pool, *state.test_rows, scores, state.split_note);
  if (keep) save_baseline_predictor(task, *state.features, fitted);
}

/// A frozen foundation model: the cached embeddings of each dataset, pooled, split, and the head fitted on them.
void run_frozen(CellRecord& record, const nlohmann::json& task) {
  const auto& config = task.at("config");
  Pool pool;
  std::vector<float> X;
  std::int64_t d = -1;
  std::vector<std::vector<std::string>> train_genes;
  const auto train_ids = config.at("train_datasets").get<std::vector<std::string>>();
  std::vector<std::string> ids = config.at("train_datasets").get<std::vector<std::string>>();
  for (const auto& id : config.at("test_datasets")) {
    if (std::find(ids.begin(), ids.end(), id.get<std::string>()) == ids.end()) ids.push_back(id);
  }
  for (const auto& id : ids) {
    const auto& entry = task.at("embeddings").at(id);
    const CachedEmbeddings e = read_embedding_cache(entry.at("path"), entry.at("key"));
    if (d >= 0 && e.d != d) throw DataError({entry.at("path"), "cell_embedding", std::to_string(e.d)}, "embedding width differs between datasets");
    d = e.d;
    if (std::find(train_ids.begin(), train_ids.end(), id) != train_ids.end()) train_genes.push_back(e.gene_keys);
    const auto index = static_cast<std::int32_t>(pool.dataset_ids.size());
    pool.dataset_ids.push_back(id);
    X.insert(X.end(), e.values.begin(), e.values.end());
    for (std::int64_t r = 0; r < e.n; ++r) {
      pool.y.push_back(e.y[static_cast<std::size_t>(r)]);
      pool.dataset.push_back(index);
      pool.obs_names.push_back(e.obs_names[static_cast<std::size_t>(r)]);
      pool.groups.push_back(id + "/" + e.groups[static_cast<std::size_t>(r)]);
    }
  }
  std::string note;
  const Split split = split_for(config, pool, &note);
  Features f;
  f.dim = d;
  std::vector<std::int8_t> train_y;
  for (auto r : split.train) {
    f.train.insert(f.train.end(), X.begin() + static_cast<long>(r) * d, X.begin() + static_cast<long>(r + 1) * d);
    train_y.push_back(pool.y[r]);
  }
  for (auto r : split.test) f.test.insert(f.test.end(), X.begin() + static_cast<long>(r) * d, X.begin() + static_cast<long>(r + 1) * d);
  const bool keep = !task.value("artifact_dir", std::string()).empty();
  NamedArrays fitted;
  const auto scores = fit_predict("mlp", nlohmann::json::object(), head_training(config), f, train_y,
                                  config.at("seed").get<std::uint64_t>(), keep ? &fitted : nullptr);
  score(record, config, pool, split.test, scores, note);
  if (keep) save_encoder_predictor(task, train_genes, "symbol", fitted);
}

/// A LoRA cell's data: every cell of its datasets tokenized by the model, pooled with labels and samples.
struct TokenPool {
  TokenizedCells tokens;
  Pool pool;
  std::vector<std::vector<std::string>> train_genes;  ///< gene keys of each training dataset
  std::string gene_key = "symbol";
};

TokenPool tokenize_pool(const nlohmann::json& task, WorkerState& state, const LoadedModel& model) {
  const auto& config = task.at("config");
  const DataOptions options = DataOptions::from_config(config.at("data"));
  std::vector<std::string> ids = config.at("train_datasets").get<std::vector<std::string>>();
  for (const auto& id : config.at("test_datasets")) {
    if (std::find(ids.begin(), ids.end(), id.get<std::string>()) == ids.end()) ids.push_back(id);
  }
  const auto seed = config.at("model").at("config").value("tokenizer_seed", std::uint64_t{0});
  TokenPool out;
  for (const auto& id : ids) {
    const auto d = state.datasets.get(id, task.at("paths").at(id), options);
    if (options.values != ValueKind::kCounts) {
      throw ConfigError({d->path, "data.values", "log1p"}, "foundation models tokenize raw counts; use values: counts");
    }
    TokenizedCells t = tokenize_cells(model, d->X, d->genes.symbols, d->genes.ensembl, d->obs_names, seed);
    check_vocabulary_overlap(t.cells_without_genes, t.size(), d->path, model.name);
    const auto& train_ids = config.at("train_datasets");
    if (std::find(train_ids.begin(), train_ids.end(), id) != train_ids.end()) out.train_genes.push_back(d->gene_keys);
    if (d->keys_are_ensembl) out.gene_key = "ensembl";
    const auto index = static_cast<std::int32_t>(out.pool.dataset_ids.size());
    out.pool.dataset_ids.push_back(id);
    for (std::size_t r = 0; r < t.size(); ++r) {
      out.tokens.ids.push_back(std::move(t.ids[r]));
      if (!t.values.empty()) out.tokens.values.push_back(std::move(t.values[r]));
      out.pool.y.push_back(d->y[r]);
      out.pool.dataset.push_back(index);
      out.pool.obs_names.push_back(d->obs_names[r]);
      out.pool.groups.push_back(id + "/" + d->groups[r]);
    }
    out.tokens.cells_without_genes += t.cells_without_genes;
  }
  return out;
}

/// This rank's part of a LoRA cell: load the model, tokenize and split the data (the group agrees that every
/// rank managed), then fine-tune together. The result's scores are filled on group rank 0.
FineTuneResult lora_share(const nlohmann::json& task, WorkerState& state, TokenPool& data, Split& split, std::string& note) {
  const auto& config = task.at("config");
  const auto& model = config.at("model");
  const auto files = task.value("model_files", nlohmann::json::object());
  cluster::Collective* group = uses_group(task) ? state.group : nullptr;  // else the leader alone
  LoadedModel loaded;
  std::string error;
  try {
    // A fresh copy per cell: merging the adapters changes its weights.
    loaded = LoadedModel::load(model.at("name"), model.at("config"), files.value("weights", ""), files.value("vocab", ""), false,
                               files.value("pinned", std::vector<std::string>{}));
    data = tokenize_pool(task, state, loaded);
    split = split_for(config, data.pool, &note);
  } catch (const std::exception& e) {
    error = e.what();
  }
  if (!all_ranks_ok(group, error.empty())) {
    if (!error.empty()) throw DataError(error);
    throw ClusterError("another rank of this cell's group failed to prepare its data (see that rank's log)");
  }
  FineTuneInput input{&data.tokens, split.train, {}, split.test};
  for (auto r : split.train) input.y_train.push_back(data.pool.y[r]);
  const bool leader = !group || group->rank() == 0;
  return finetune_lora(loaded, config, input, group, leader ? task.value("artifact_dir", std::string()) : "");
}

void run_lora(CellRecord& record, const nlohmann::json& task, WorkerState& state) {
  TokenPool data;
  Split split;
  std::string note;
  const FineTuneResult result = lora_share(task, state, data, split, note);
  score(record, task.at("config"), data.pool, split.test, result.test_scores, note);
  record.set("device", result.log.value("device", std::string("cpu")));
  if (!task.value("artifact_dir", std::string()).empty()) save_encoder_predictor(task, data.train_genes, data.gene_key, {});
  spdlog::info("lora cell {}: {} steps on {} rank(s), final loss {:.4f}, {:.1f} s", task.at("cell_id").get<std::string>().substr(0, 12),
               result.log.value("steps", 0), result.log.value("ranks", 1),
               result.log.at("step_loss").empty() ? NAN : result.log.at("step_loss").back().get<double>(),
               result.log.value("train_s", 0.0));
}

}  // namespace

bool uses_group(const nlohmann::json& task) {
  // CellPLM attends across the cells of a batch: sharding a batch over ranks would change what each cell sees, so
  // its LoRA cells run on the group leader alone (CONTRACTS §10).
  return task.contains("config") && task.at("config").at("strategy").at("name") == "lora" &&
         !jobs::attends_across_cells(task.at("config").at("model").at("name").get<std::string>());
}

std::string run_group_share(const nlohmann::json& task, WorkerState& state) {
  try {
    TokenPool data;
    Split split;
    std::string note;
    lora_share(task, state, data, split, note);
  } catch (const std::exception& e) {
    spdlog::warn("group share of cell {} failed: {}", task.value("cell_id", std::string("?")).substr(0, 12), e.what());
    return e.what();
  }
  return "";
}

void fill_identity(CellRecord& record, const nlohmann::json& task) {
  const auto& config = task.at("config");
  record.config_json = config.dump();
  record.set("cell_id", task.at("cell_id").get<std::string>());
  record.set("model", config.at("model").at("name").get<std::string>());
  record.set("preset", config.at("model").at("preset").get<std::string>());
  record.set("weights_sha256", config.at("model").at("weights_sha256").get<std::string>());
  record.set("strategy", config.at("strategy").at("name").get<std::string>());
  record.set("protocol", config.at("protocol").at("name").get<std::string>());
  record.set("split", config.at("protocol").at("split").get<std::string>());
  record.set("fold", config.at("fold").get<std::int64_t>());
  record.set("test_group", config.at("test_group").get<std::string>());
  record.set("train_groups", join_ids(config.at("train_datasets")));
  record.set("seed", config.at("seed").get<std::int64_t>());
  record.set("attempts", task.at("attempt").get<std::int64_t>());
  record.set("artifact_path", task.value("artifact_dir", std::string()));
  record.set("gpu_s", kNaN);
  record.set("device", std::string("cpu"));
}

CellRecord failed_record(const nlohmann::json& task, const std::string& error) {
  CellRecord record;
  fill_identity(record, task);
  record.set("status", std::string("failed"));
  record.set("error", error);
  set_no_metrics(record, "cell failed");
  return record;
}

nlohmann::json run_embed(const nlohmann::json& task, WorkerState& state) {
  nlohmann::json result{{"kind", "embed"}, {"key", task.at("key")}, {"attempt", task.at("attempt")}, {"status", "done"},
                        {"error", ""}};
  const auto t0 = std::chrono::steady_clock::now();
  try {
    const auto& model = task.at("model");
    const std::string model_key = model.dump() + task.at("model_files").dump();
    if (model_key != state.model_key) {
      state.model_key.clear();
      const auto& files = task.at("model_files");
      state.model = LoadedModel::load(model.at("name"), model.at("config"), files.value("weights", ""),
                                      files.value("vocab", ""), false, files.value("pinned", std::vector<std::string>{}));
      state.model_key = model_key;
    }
    const DataOptions options = DataOptions::from_config(task.at("data"));
    const std::string id = task.at("dataset_id");
    const auto d = state.datasets.get(id, task.at("path"), options);
    if (options.values != ValueKind::kCounts) {
      throw ConfigError({d->path, "data.values", "log1p"}, "foundation models tokenize raw counts; use values: counts");
    }
    const Embeddings e = embed_cells(state.model, d->X, d->genes.symbols, d->genes.ensembl, d->obs_names,
                                     model.at("config").value("batch_size", 32),
                                     model.at("config").value("tokenizer_seed", std::uint64_t{0}));
    check_vocabulary_overlap(e.cells_without_genes, static_cast<std::size_t>(e.n), d->path,
                             model.at("name").get<std::string>());
    write_embedding_cache(task.at("cache_path"), task.at("key"), CachedEmbeddings{e.values, e.n, e.d, d->obs_names, d->y, d->groups, d->gene_keys});
    spdlog::info("embedded {} ({} cells, {} tokens) with {} in {:.2f} s", id, e.n, e.tokens,
                 model.at("name").get<std::string>(), e.forward_s);
  } catch (const std::exception& e) {
    state.model_key.clear();
    result["status"] = "failed";
    result["error"] = e.what();
    spdlog::warn("embedding {} failed: {}", task.value("dataset_id", std::string("?")), e.what());
  }
  result["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return result;
}

CellRecord run_cell(const nlohmann::json& task, WorkerState& state) {
  CellRecord record;
  try {
    fill_identity(record, task);
    const auto& config = task.at("config");
    const std::string model = config.at("model").at("name");
    if (model == "noop") {
      const auto ms = config.at("model").at("config").value("sleep_ms", 0);
      if (ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(ms));
      set_no_metrics(record, "noop model: no predictions");
    } else if (model == "logreg" || model == "mlp") {
      run_baseline(record, task, state);
    } else if (config.at("strategy").at("name") == "lora") {
      run_lora(record, task, state);
    } else if (task.contains("embeddings")) {
      run_frozen(record, task);
    } else {
      throw ConfigError({"", "model", model}, "no implementation in this build");
    }
    record.set("status", std::string("done"));
    record.set("error", std::string());
  } catch (const std::exception& e) {
    state.features_key.clear();
    const std::string what = e.what();
    spdlog::warn("cell {} failed: {}", task.value("cell_id", std::string("?")).substr(0, 12), what);
    if (task.contains("config")) return failed_record(task, what);
    CellRecord failed;  // a task without a configuration: nothing to identify the cell by but its error
    failed.set("status", std::string("failed"));
    failed.set("error", what);
    return failed;
  }
  return record;
}

}  // namespace sdm::worker
