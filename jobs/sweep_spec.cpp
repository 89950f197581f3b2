#include "jobs/sweep_spec.h"

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

#include "common/error.h"
#include "common/text.h"
#include "common/yaml.h"
#include "jobs/models.h"

namespace sdm::jobs {
namespace {

nlohmann::json yaml_to_json(const YAML::Node& node) {
  if (node.IsMap()) {
    nlohmann::json out = nlohmann::json::object();
    for (const auto& kv : node) out[kv.first.as<std::string>()] = yaml_to_json(kv.second);
    return out;
  }
  if (node.IsSequence()) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& item : node) out.push_back(yaml_to_json(item));
    return out;
  }
  if (!node.IsScalar()) return nullptr;
  const std::string s = node.Scalar();
  if (node.Tag() != "!") {  // unquoted: try bool, integer, float
    if (s == "true" || s == "True") return true;
    if (s == "false" || s == "False") return false;
    try {
      std::size_t used = 0;
      const long long i = std::stoll(s, &used);
      if (used == s.size()) return i;
      const double d = std::stod(s, &used);
      if (used == s.size()) return d;
    } catch (const std::exception&) {
    }
  }
  return s;
}

Selector parse_selector_map(const YamlView& v) {
  v.expect_keys(Catalog::selector_keys());
  Selector s;
  for (const auto& key : v.keys()) s[key] = v[key].as<std::vector<std::string>>();
  return s;
}

DataSpec parse_data(const YamlView& v) {
  v.expect_keys({"root", "catalog", "datasets", "label", "group_column", "matrix", "values"});
  DataSpec d;
  d.root = v.get<std::string>("root", d.root);
  d.catalog = v.get<std::string>("catalog", "");
  if (v["datasets"].defined()) {
    for (const auto& item : v["datasets"].items(true)) {
      if (item.is_map()) {
        d.datasets.push_back({"", parse_selector_map(item)});
      } else {
        d.datasets.push_back({item.as<std::string>(), {}});
      }
    }
  }
  if (d.datasets.empty()) d.datasets.push_back({"all", {}});
  if (auto label = v["label"]; label.defined()) {
    label.expect_keys({"column", "sensitive", "resistant"});
    d.label.column = label.get<std::string>("column", d.label.column);
    if (label["sensitive"].defined()) d.label.sensitive = label["sensitive"].as<std::vector<std::string>>();
    if (label["resistant"].defined()) d.label.resistant = label["resistant"].as<std::vector<std::string>>();
    if (d.label.sensitive.empty() || d.label.resistant.empty()) label.fail("both `sensitive` and `resistant` need values");
    for (const auto& s : d.label.sensitive) {
      if (std::find(d.label.resistant.begin(), d.label.resistant.end(), s) != d.label.resistant.end()) {
        label.fail("value '" + s + "' is listed as both sensitive and resistant");
      }
    }
  }
  d.group_column = v.get<std::string>("group_column", d.group_column);
  d.matrix = v.get<std::string>("matrix", d.matrix);
  if (d.matrix != "X" && d.matrix != "raw" && d.matrix.rfind("layer:", 0) != 0) {
    v["matrix"].fail("expected X, raw or layer:<name>");
  }
  d.values = v.get<std::string>("values", d.values);
  v["values"].expect_one_of(d.values, {"counts", "log1p"});
  return d;
}

ModelSpec parse_model(const YamlView& v) {
  ModelSpec m;
  if (v.is_scalar()) {
    m.name = v.as<std::string>();
  } else {
    v.expect_keys({"name", "preset", "config", "weights", "vocab"});
    m.name = v.require("name").as<std::string>();
    m.preset = v.get<std::string>("preset", m.preset);
    m.weights = v.get<std::string>("weights", "");
    m.vocab = v.get<std::string>("vocab", "");
  }
  const ModelInfo& info = model_info(m.name, v.path() + ".name");
  if (!info.implemented) {
    std::vector<std::string> available;
    for (const auto& other : model_infos()) {
      if (other.implemented) available.push_back(other.name);
    }
    v.fail("model '" + m.name + "' is part of the benchmark but not implemented in this build yet; available: " +
           join(available, ", "));
  }
  try {
    info.preset(m.preset, "");
  } catch (const ConfigError& e) {
    v["preset"].fail(e.problem());
  }
  m.config = info.preset(m.preset, "").config;
  if (v.is_map() && v["config"].defined()) {
    const auto user = yaml_to_json(v["config"].node());
    if (user.is_string()) {
      // The model's own published config file (args.json, config.json): its known keys overlay the preset.
      const auto published = read_published_config(user.get<std::string>());
      m.config = resolve_model_config(info, m.preset, published, true, user.get<std::string>());
      m.pinned = pinned_keys(m.config, published);
    } else {
      if (!user.is_object()) v["config"].fail("expected a map of hyperparameters or the path of a config file");
      for (const auto& [key, value] : user.items()) {
        try {
          m.config = resolve_model_config(info, m.preset, nlohmann::json{{key, value}}, false, "");
        } catch (const ConfigError& e) {
          v["config"][key].fail(e.problem());
        }
      }
      m.config = resolve_model_config(info, m.preset, user, false, "");
      m.pinned = pinned_keys(m.config, user);
    }
  }
  return m;
}

ProtocolSpec parse_protocol(const YamlView& v) {
  ProtocolSpec p;
  if (v.is_scalar()) {
    p.name = v.as<std::string>();
  } else {
    v.expect_keys({"name", "folds", "split", "per_dataset", "mode", "select"});
    p.name = v.require("name").as<std::string>();
  }
  (v.is_map() ? v["name"] : v).expect_one_of(p.name, protocol_names());
  if (!v.is_map()) return p;
  auto forbid = [&](const std::string& key) {
    if (v[key].defined()) v[key].fail("not an option of protocol '" + p.name + "'");
  };
  if (p.name == "pooled") {
    p.folds = v.get<int>("folds", p.folds);
    if (p.folds < 2) v["folds"].fail("need at least 2 folds");
    p.split = v.get<std::string>("split", p.split);
    v["split"].expect_one_of(p.split, {"cell", "sample"});
    p.per_dataset = v.get<bool>("per_dataset", false);
    forbid("mode");
  } else if (p.name == "cross-data") {
    p.mode = v.get<std::string>("mode", p.mode);
    v["mode"].expect_one_of(p.mode, {"leave-one-out", "primary-to-external"});
    p.split = "dataset";
    p.folds = 0;
    for (const auto* key : {"folds", "split", "per_dataset"}) forbid(key);
  } else {  // paper: fixed by the released scripts
    p.split = "cell";
    p.folds = 0;
    for (const auto* key : {"folds", "split", "per_dataset", "mode"}) forbid(key);
  }
  if (v["select"].defined()) p.select = parse_selector_map(v["select"]);
  if (p.name != "pooled") p.folds = 0;
  return p;
}

void parse_train(const YamlView& v, TrainSpec& t, bool head) {
  if (head) {
    v.expect_keys({"layers", "epochs", "lr", "batch_size"});
  } else {
    v.expect_keys({"epochs", "batch_size", "lr", "weight_decay", "clip_norm", "schedule", "warmup", "validation",
                   "patience"});
    t.weight_decay = v.get<double>("weight_decay", t.weight_decay);
    t.clip_norm = v.get<double>("clip_norm", t.clip_norm);
    t.schedule = v.get<std::string>("schedule", t.schedule);
    v["schedule"].expect_one_of(t.schedule, {"constant", "linear", "cosine"});
    t.warmup = v.get<double>("warmup", t.warmup);
    t.validation = v.get<double>("validation", t.validation);
    t.patience = v.get<int>("patience", t.patience);
    if (t.weight_decay < 0) v["weight_decay"].fail("must not be negative");
    if (t.clip_norm < 0) v["clip_norm"].fail("must not be negative (0 = no clipping)");
    if (t.warmup < 0 || t.warmup >= 1) v["warmup"].fail("a fraction of the steps in [0, 1)");
    if (t.validation < 0 || t.validation >= 0.5) v["validation"].fail("a fraction of the training cells in [0, 0.5)");
    if (t.patience < 0) v["patience"].fail("must not be negative");
    if (t.patience > 0 && t.validation == 0) v["patience"].fail("early stopping needs a validation fraction (train.validation)");
  }
  t.epochs = v.get<int>("epochs", t.epochs);
  t.batch_size = v.get<int>("batch_size", t.batch_size);
  t.lr = v.get<double>("lr", t.lr);
  if (t.epochs < 1) v["epochs"].fail("must be at least 1");
  if (t.batch_size < 1) v["batch_size"].fail("must be at least 1");
  if (!(t.lr > 0)) v["lr"].fail("must be positive");
}

}  // namespace

nlohmann::json ProtocolSpec::to_json() const {
  nlohmann::json j{{"name", name}, {"split", split}};
  if (name == "pooled") {
    j["folds"] = folds;
    j["per_dataset"] = per_dataset;
  }
  if (name == "cross-data") j["mode"] = mode;
  if (name == "paper") {
    j["train_fraction"] = 0.8;
    j["split_seed"] = 24;
    j["stratified"] = false;
  }
  if (!select.empty()) j["select"] = select;
  return j;
}

nlohmann::json TrainSpec::to_json() const {
  nlohmann::json j{{"epochs", epochs}, {"batch_size", batch_size}, {"lr", lr}, {"weight_decay", weight_decay}};
  if (clip_norm > 0) j["clip_norm"] = clip_norm;
  if (schedule != "constant") j["schedule"] = schedule;
  if (warmup > 0) j["warmup"] = warmup;
  if (validation > 0) j["validation"] = validation;
  if (patience > 0) j["patience"] = patience;
  return j;
}

nlohmann::json PreprocessSpec::to_json() const {
  return {{"target_sum", target_sum}, {"hvg", hvg}, {"pca", pca}, {"log1p", true}, {"hvg_flavor", "seurat_v3"}};
}

const std::vector<std::string>& sweep_top_keys() {
  static const std::vector<std::string> kKeys{"name",  "store",           "data",      "models",    "strategies",
                                              "protocols", "seeds",       "train",     "head",      "strategy_options",
                                              "resources", "preprocess"};
  return kKeys;
}

SweepSpec SweepSpec::load(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw IoError({path, "", ""}, "cannot read the sweep spec");
  std::stringstream text;
  text << in.rdbuf();
  return parse(text.str(), path);
}

SweepSpec SweepSpec::parse(const std::string& text, const std::string& file) {
  const YamlView root = YamlView::load_string(text, "sweep", file);
  root.expect_keys(sweep_top_keys());
  SweepSpec s;
  s.source_file = file;
  s.yaml_text = text;
  s.name = root.require("name").as<std::string>();
  s.store = root.require("store").as<std::string>();
  if (s.store.size() < 4 || s.store.substr(s.store.size() - 3) != ".h5") root["store"].fail("expected a path ending in .h5");
  s.data = parse_data(root.require("data"));
  for (const auto& m : root.require("models").items()) s.models.push_back(parse_model(m));
  if (s.models.empty()) root["models"].fail("list at least one model");
  if (root["strategies"].defined()) {
    s.strategies.clear();
    for (const auto& item : root["strategies"].items(true)) {
      const auto name = item.as<std::string>();
      item.expect_one_of(name, strategy_names());
      s.strategies.push_back(name);
    }
  }
  for (const auto& p : root.require("protocols").items()) s.protocols.push_back(parse_protocol(p));
  if (s.protocols.empty()) root["protocols"].fail("list at least one protocol");
  if (root["seeds"].defined()) s.seeds = root["seeds"].as<std::vector<std::int64_t>>();
  if (s.seeds.empty()) root["seeds"].fail("list at least one seed");
  if (std::set<std::int64_t>(s.seeds.begin(), s.seeds.end()).size() != s.seeds.size()) root["seeds"].fail("repeated seed");
  if (root["train"].defined()) parse_train(root["train"], s.train, false);
  s.head.train = s.train;
  if (auto head = root["head"]; head.defined()) {
    parse_train(head, s.head.train, true);
    if (head["layers"].defined()) {
      s.head.layers.clear();
      for (auto n : head["layers"].as<std::vector<std::int64_t>>()) {
        if (n < 1) head["layers"].fail("layer sizes must be positive");
        s.head.layers.push_back(static_cast<int>(n));
      }
    }
  }
  if (auto so = root["strategy_options"]; so.defined()) {
    so.expect_keys({"lora", "few-shot"});
    if (auto lora = so["lora"]; lora.defined()) {
      lora.expect_keys({"r", "alpha", "dropout", "targets"});
      if (lora.get<int>("r", 8) < 1) lora["r"].fail("the adapter rank must be at least 1");
      if (!(lora.get<double>("alpha", 8) > 0)) lora["alpha"].fail("must be positive");
      const double dropout = lora.get<double>("dropout", 0.05);
      if (dropout < 0 || dropout >= 1) lora["dropout"].fail("a probability in [0, 1)");
      if (lora["targets"].defined() && lora["targets"].as<std::vector<std::string>>().empty()) {
        lora["targets"].fail("list at least one module (or leave it out for the model's default)");
      }
    }
    if (auto few = so["few-shot"]; few.defined()) {
      few.expect_keys({"k"});
      if (few.get<int>("k", 5) < 1) few["k"].fail("labelled target cells per class: at least 1");
    }
    s.strategy_options = yaml_to_json(so.node());
  }
  if (auto r = root["resources"]; r.defined()) {
    r.expect_keys({"ranks_per_task", "max_attempts", "time_per_cell_s"});
    s.resources.ranks_per_task = r.get<int>("ranks_per_task", 1);
    s.resources.max_attempts = r.get<int>("max_attempts", 2);
    s.resources.time_per_cell_s = r.get<double>("time_per_cell_s", 0.0);
    if (s.resources.ranks_per_task < 1) r["ranks_per_task"].fail("must be at least 1");
    if (s.resources.max_attempts < 1) r["max_attempts"].fail("must be at least 1");
  }
  if (auto p = root["preprocess"]; p.defined()) {
    p.expect_keys({"target_sum", "hvg", "pca"});
    s.preprocess.target_sum = p.get<double>("target_sum", s.preprocess.target_sum);
    s.preprocess.hvg = p.get<int>("hvg", s.preprocess.hvg);
    s.preprocess.pca = p.get<int>("pca", s.preprocess.pca);
    if (!(s.preprocess.target_sum > 0)) p["target_sum"].fail("must be positive");
    if (s.preprocess.hvg < 1) p["hvg"].fail("must be at least 1");
    if (s.preprocess.pca < 1) p["pca"].fail("must be at least 1");
  }
  return s;
}

}  // namespace sdm::jobs
