#include "jobs/expand.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "common/error.h"
#include "common/hash.h"
#include "common/safetensors.h"
#include "common/text.h"
#include "jobs/models.h"

namespace sdm::jobs {
namespace fs = std::filesystem;

namespace {

std::string join_path(const std::string& root, const std::string& file) {
  return fs::path(file).is_absolute() ? file : (fs::path(root) / file).lexically_normal().string();
}

}  // namespace

std::vector<InputDataset> resolve_inputs(const SweepSpec& spec) {
  std::vector<InputDataset> out;
  std::set<std::string> seen;
  auto add = [&](InputDataset d) {
    if (seen.insert(d.id).second) out.push_back(std::move(d));
  };
  const auto& data = spec.data;
  if (!data.catalog.empty()) {
    const Catalog catalog = Catalog::load(data.catalog);
    for (const auto& choice : data.datasets) {
      if (choice.id == "all") {
        for (const auto& d : catalog.datasets()) add({d.id, join_path(data.root, d.file), d.collection, "", 0});
      } else if (!choice.id.empty()) {
        const auto& d = catalog.at(choice.id);
        add({d.id, join_path(data.root, d.file), d.collection, "", 0});
      } else {
        for (const auto* d : catalog.select(choice.selector)) add({d->id, join_path(data.root, d->file), d->collection, "", 0});
      }
    }
  } else {
    for (const auto& choice : data.datasets) {
      if (choice.id.empty() || choice.id == "all") {
        throw ConfigError({spec.source_file, "sweep.data.datasets", choice.id.empty() ? "{...}" : choice.id},
                          "selectors and 'all' need `data.catalog`; without a catalog list the files (relative to "
                          "data.root)");
      }
      const auto normal = fs::path(choice.id).lexically_normal();
      if (!normal.is_absolute() && !normal.empty() && *normal.begin() == "..") {
        throw ConfigError({spec.source_file, "sweep.data.datasets", choice.id},
                          "a relative path must stay inside data.root (give an absolute path for a file elsewhere)");
      }
      add({fs::path(choice.id).stem().string(), join_path(data.root, choice.id), "", "", 0});
    }
  }
  std::vector<std::string> missing;
  for (auto& d : out) {
    std::error_code ec;
    d.bytes = fs::file_size(d.path, ec);
    if (ec) missing.push_back(d.path);
  }
  if (!missing.empty()) {
    std::string hint = data.catalog.empty() ? "" : " (for the synthetic collection run `sdm synth --out " + data.root + "`)";
    throw ConfigError({spec.source_file, "sweep.data", data.root},
                      std::to_string(missing.size()) + " dataset file(s) not found: " +
                          join(std::vector<std::string>(missing.begin(), missing.begin() + std::min<std::size_t>(5, missing.size())), ", ") +
                          (missing.size() > 5 ? ", ..." : "") + hint);
  }
  if (out.empty()) throw ConfigError({spec.source_file, "sweep.data.datasets", ""}, "selects no dataset");
  return out;
}

void hash_inputs(std::vector<InputDataset>& inputs, const std::string& cache_file) {
  nlohmann::json cache = nlohmann::json::object();
  if (!cache_file.empty()) {
    std::ifstream in(cache_file);
    if (in) {
      try {
        cache = nlohmann::json::parse(in);
      } catch (const std::exception&) {
        cache = nlohmann::json::object();  // a damaged cache is only a cache: rehash
      }
    }
  }
  bool changed = false;
  for (auto& d : inputs) {
    const auto abs = fs::absolute(d.path).lexically_normal().string();
    const auto mtime = fs::last_write_time(d.path).time_since_epoch().count();
    const auto& hit = cache.contains(abs) ? cache[abs] : nlohmann::json();
    if (hit.is_object() && hit.value("bytes", std::uintmax_t{0}) == d.bytes && hit.value("mtime", std::int64_t{0}) == mtime) {
      d.sha256 = hit.value("sha256", "");
    }
    if (d.sha256.empty()) {
      d.sha256 = sha256_file_hex(d.path);
      cache[abs] = {{"bytes", d.bytes}, {"mtime", static_cast<std::int64_t>(mtime)}, {"sha256", d.sha256}};
      changed = true;
    }
  }
  if (changed && !cache_file.empty()) {
    std::error_code ec;
    fs::create_directories(fs::path(cache_file).parent_path(), ec);
    const std::string tmp = cache_file + ".tmp";
    std::ofstream(tmp) << cache.dump(1);
    fs::rename(tmp, cache_file, ec);
  }
}

std::string Cell::field(const std::string& name) const {
  if (name == "model") return model;
  if (name == "preset") return preset;
  if (name == "strategy") return strategy;
  if (name == "protocol") return protocol;
  if (name == "split") return split;
  if (name == "fold") return std::to_string(fold);
  if (name == "test_group") return test_group;
  if (name == "seed") return std::to_string(seed);
  if (name == "cell_id") return id;
  static const std::vector<std::string> kKeys{"model", "preset", "strategy", "protocol", "split",
                                              "fold",  "test_group", "seed", "cell_id"};
  throw ConfigError({"<cli>", "--only", name}, "unknown cell field; " + suggest(name, kKeys));
}

namespace {

struct Partition {
  std::string split;
  int folds = 0;
  int fold = -1;
  std::string test_group;
  std::vector<std::string> train, test;
};

std::vector<Partition> partitions(const ProtocolSpec& p, const std::vector<const InputDataset*>& chosen,
                                  const std::string& spec_file) {
  std::vector<std::string> ids;
  for (const auto* d : chosen) ids.push_back(d->id);
  std::vector<Partition> out;
  if (p.name == "pooled") {
    auto pool = [&](const std::vector<std::string>& members, const std::string& prefix) {
      for (int k = 0; k < p.folds; ++k) {
        out.push_back({p.split, p.folds, k, prefix + "fold-" + std::to_string(k + 1) + "/" + std::to_string(p.folds),
                       members, members});
      }
    };
    if (p.per_dataset) {
      for (const auto& id : ids) pool({id}, id + ":");
    } else {
      pool(ids, "");
    }
  } else if (p.name == "cross-data") {
    if (p.mode == "leave-one-out") {
      if (ids.size() < 2) throw ConfigError({spec_file, "sweep.protocols", "cross-data"}, "leave-one-out needs at least 2 datasets");
      for (const auto& held : ids) {
        std::vector<std::string> train;
        for (const auto& id : ids) {
          if (id != held) train.push_back(id);
        }
        out.push_back({"dataset", 0, -1, held, train, {held}});
      }
    } else {
      std::vector<std::string> primary, external;
      for (const auto* d : chosen) (d->collection == "external" ? external : primary).push_back(d->id);
      if (primary.empty() || external.empty()) {
        throw ConfigError({spec_file, "sweep.protocols", "primary-to-external"},
                          "needs both primary and external datasets among the selected ones");
      }
      for (const auto& held : external) out.push_back({"dataset", 0, -1, held, primary, {held}});
    }
  } else {
    out.push_back({"cell", 0, -1, "test-20%", ids, ids});
  }
  return out;
}

/// A strategy's options with every default filled in (what the cell runs with, so its id hashes it).
nlohmann::json strategy_json(const std::string& strategy, const ModelInfo& info, const SweepSpec& spec) {
  nlohmann::json j{{"name", strategy}};
  const nlohmann::json given = spec.strategy_options.value(strategy, nlohmann::json::object());
  if (strategy == "lora") {
    nlohmann::json o{{"r", 8}, {"alpha", 8.0}, {"dropout", 0.05}, {"targets", info.lora_targets}};
    for (const auto& [key, value] : given.items()) o[key] = value;
    o["alpha"] = o["alpha"].get<double>();
    const auto& allowed = info.lora_modules.empty() ? info.lora_targets : info.lora_modules;
    for (const auto& t : o["targets"]) {
      const std::string target = t.get<std::string>();
      if (std::find(allowed.begin(), allowed.end(), target) == allowed.end()) {
        throw ConfigError({spec.source_file, "sweep.strategy_options.lora.targets", target},
                          "not a module " + info.name + " can adapt; " + suggest(target, allowed));
      }
    }
    j["options"] = o;
  } else if (strategy == "few-shot") {
    j["options"] = {{"k", given.value("k", 5)}};
  }
  return j;
}

}  // namespace

Expansion expand(const SweepSpec& spec, const std::vector<InputDataset>& inputs) {
  Expansion result;
  std::map<std::string, const InputDataset*> by_id;
  for (const auto& d : inputs) by_id[d.id] = &d;
  std::unique_ptr<Catalog> catalog;
  if (!spec.data.catalog.empty()) catalog = std::make_unique<Catalog>(Catalog::load(spec.data.catalog));

  std::map<std::string, std::string> file_hash;  // weights/vocab path -> content hash, each file read once
  for (const auto& model : spec.models) {
    for (const auto* path : {&model.weights, &model.vocab}) {
      if (!path->empty() && !file_hash.count(*path)) {
        file_hash[*path] = path == &model.weights ? checkpoint_content_hash(*path) : sha256_file_hex(*path);
      }
    }
  }

  std::set<std::string> dropped;
  for (const auto& protocol : spec.protocols) {
    std::set<std::string> selected;  // ids the protocol's `select` admits (unused when it has none)
    if (!protocol.select.empty()) {
      if (catalog) {
        for (const auto* entry : catalog->select(protocol.select)) selected.insert(entry->id);
      } else if (protocol.select.size() == 1 && protocol.select.count("id")) {
        selected.insert(protocol.select.at("id").begin(), protocol.select.at("id").end());
      } else {
        throw ConfigError({spec.source_file, "sweep.protocols.select", ""}, "selectors other than `id` need data.catalog");
      }
    }
    std::vector<const InputDataset*> chosen;
    for (const auto& d : inputs) {
      if (protocol.select.empty() || selected.count(d.id)) chosen.push_back(&d);
    }
    if (chosen.empty()) {
      throw ConfigError({spec.source_file, "sweep.protocols", protocol.name}, "its `select` matches none of the datasets");
    }
    const auto parts = partitions(protocol, chosen, spec.source_file);
    for (const auto& model : spec.models) {
      const ModelInfo& info = model_info(model.name, "sweep.models");
      const std::string weights_sha = model.weights.empty() ? "" : file_hash.at(model.weights);
      nlohmann::json model_json{{"name", model.name}, {"preset", model.preset}, {"config", model.config},
                                {"weights_sha256", weights_sha}};
      if (!model.vocab.empty()) model_json["vocab_sha256"] = file_hash.at(model.vocab);
      for (const auto& strategy : spec.strategies) {
        if (std::find(info.strategies.begin(), info.strategies.end(), strategy) == info.strategies.end()) {
          dropped.insert(strategy + " x " + model.name + ": " + model.name + " supports only " + join(info.strategies, ", "));
          continue;
        }
        if (needs_held_out_dataset(strategy) && protocol.name != "cross-data") {
          dropped.insert(strategy + " x " + protocol.name + ": " + strategy +
                         " trains on source datasets and tests on a held-out one (protocol cross-data)");
          continue;
        }
        const nlohmann::json strategy_block = strategy_json(strategy, info, spec);
        // The paper protocol trains as the released scripts did: their MLP head settings, and for LoRA the
        // model's own fine-tuning epochs and batch.
        TrainSpec train = protocol.name == "paper" ? TrainSpec{} : spec.train;
        if (protocol.name == "paper" && strategy == "lora") {
          train.epochs = info.paper_finetune_epochs;
          if (info.paper_finetune_batch > 0) train.batch_size = info.paper_finetune_batch;
        }
        const TrainSpec head_train = protocol.name == "paper" ? TrainSpec{} : spec.head.train;
        for (const auto seed : spec.seeds) {
          for (const auto& part : parts) {
            Cell c;
            c.model = model.name;
            c.preset = model.preset;
            c.strategy = strategy;
            c.protocol = protocol.name;
            c.split = part.split;
            c.folds = part.folds;
            c.fold = part.fold;
            c.test_group = part.test_group;
            c.train_datasets = part.train;
            c.test_datasets = part.test;
            c.seed = seed;
            c.weights_sha256 = weights_sha;
            nlohmann::json inputs_json = nlohmann::json::object();
            std::set<std::string> used(part.train.begin(), part.train.end());
            used.insert(part.test.begin(), part.test.end());
            double bytes = 0;
            for (const auto& id : used) {
              inputs_json[id] = by_id.at(id)->sha256;
              bytes += static_cast<double>(by_id.at(id)->bytes);
            }
            nlohmann::json data_json{{"label", {{"column", spec.data.label.column},
                                                {"sensitive", spec.data.label.sensitive},
                                                {"resistant", spec.data.label.resistant}}},
                                     {"group_column", spec.data.group_column},
                                     {"matrix", spec.data.matrix},
                                     {"values", spec.data.values}};
            c.config = {
                {"id_version", kCellIdVersion},
                {"model", model_json},
                {"strategy", strategy_block},
                {"head", {{"layers", protocol.name == "paper" ? std::vector<int>{512, 512} : spec.head.layers},
                          {"epochs", head_train.epochs}, {"lr", head_train.lr}, {"batch_size", head_train.batch_size}}},
                {"protocol", protocol.to_json()},
                {"fold", part.fold},
                {"train_datasets", part.train},
                {"test_datasets", part.test},
                {"test_group", part.test_group},
                {"seed", seed},
                {"train", train.to_json()},
                {"data", data_json},
                {"preprocess", spec.preprocess.to_json()},
                {"inputs", inputs_json},
            };
            c.id = content_id(c.config);
            nlohmann::json features{{"protocol", c.config["protocol"]}, {"fold", part.fold}, {"train", part.train},
                                    {"test", part.test}, {"seed", seed}, {"data", data_json},
                                    {"preprocess", c.config["preprocess"]}, {"inputs", inputs_json}};
            if (strategy == "few-shot") features["few_shot"] = strategy_block;  // it moves target cells into training
            c.feature_key = content_id(features);
            c.expected_cost = info.relative_cost * std::max(1.0, bytes / 1e6);
            c.model_files = {{"weights", model.weights}, {"vocab", model.vocab}, {"pinned", model.pinned}};
            if (info.has_encoder() && strategy != "lora") {
              // Reading options that change which cells and values an encoder sees; labels are part of it
              // because the cache holds the labelled cells only.
              for (const auto& id : used) {
                c.embed_keys[id] = content_id(nlohmann::json{{"id_version", kCellIdVersion}, {"model", model_json},
                                                             {"data", data_json}, {"input", by_id.at(id)->sha256}});
              }
            }
            result.cells.push_back(std::move(c));
          }
        }
      }
    }
  }
  result.dropped.assign(dropped.begin(), dropped.end());
  std::set<std::string> ids;
  for (const auto& c : result.cells) {
    if (!ids.insert(c.id).second) {
      throw ConfigError({spec.source_file, "sweep", c.model + " " + c.protocol + " " + c.test_group},
                        "two cells resolve to the same configuration (a protocol or model is listed twice)");
    }
  }
  return result;
}

std::vector<Cell> filter_cells(const std::vector<Cell>& cells, const std::string& only) {
  if (only.empty()) return cells;
  std::map<std::string, std::set<std::string>> want;
  std::size_t start = 0;
  while (start <= only.size()) {
    const auto end = std::min(only.find(',', start), only.size());
    const std::string term = only.substr(start, end - start);
    const auto eq = term.find('=');
    if (eq == std::string::npos || eq == 0) throw ConfigError({"<cli>", "--only", term}, "expected key=value");
    want[term.substr(0, eq)].insert(term.substr(eq + 1));
    start = end + 1;
  }
  std::vector<Cell> out;
  for (const auto& c : cells) {
    bool keep = true;
    for (const auto& [key, values] : want) {
      const auto v = c.field(key);
      keep = keep && (values.count(v) || (key == "cell_id" && std::any_of(values.begin(), values.end(), [&](const std::string& p) {
                                                return !p.empty() && v.rfind(p, 0) == 0;
                                              })));
    }
    if (keep) out.push_back(c);
  }
  return out;
}

}  // namespace sdm::jobs
