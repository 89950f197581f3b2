#include "worker/predictor.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <span>
#include <unordered_map>

#include "common/error.h"
#include "common/safetensors.h"

namespace sdm::worker {

void write_predictor(const std::string& dir, nlohmann::json manifest, const NamedArrays& arrays) {
  std::filesystem::create_directories(dir);
  if (!arrays.empty()) {
    std::vector<SafetensorsTensor> tensors;
    for (const auto& a : arrays) {
      tensors.push_back({a.name, "F32", a.shape,
                         std::span<const std::byte>(reinterpret_cast<const std::byte*>(a.values.data()), a.values.size() * sizeof(float))});
    }
    write_safetensors(dir + "/" + kPredictorTensors, tensors, {{"format", "sdm-predictor"}});
    manifest["parameters"] = kPredictorTensors;
  }
  manifest["format"] = "sdm-predictor";
  manifest["version"] = 1;
  const std::string path = dir + "/" + kPredictorManifest;
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp);
    out << manifest.dump(1) << "\n";
    if (!out) throw IoError({tmp, "", ""}, "cannot write the predictor manifest");
  }
  std::filesystem::rename(tmp, path);
}

namespace {

/// What every predictor records about its cell: identity, the model and its files, how data was read and labelled.
nlohmann::json manifest_base(const nlohmann::json& task) {
  const auto& config = task.at("config");
  nlohmann::json model = config.at("model");
  const auto files = task.value("model_files", nlohmann::json::object());
  model["weights"] = files.value("weights", "");
  model["vocab"] = files.value("vocab", "");
  model["pinned"] = files.value("pinned", nlohmann::json::array());
  return {{"cell_id", task.at("cell_id")},   {"model", model},
          {"strategy", config.at("strategy")}, {"data", config.at("data")},
          {"seed", config.at("seed")},         {"train_datasets", config.at("train_datasets")},
          {"labels", {{"1", "sensitive"}, {"0", "resistant"}}}};
}

}  // namespace

void save_baseline_predictor(const nlohmann::json& task, const Features& features, const NamedArrays& head) {
  const auto& config = task.at("config");
  nlohmann::json m = manifest_base(task);
  m["kind"] = "baseline";
  m["head"] = config.at("model").at("name");
  m["genes"] = features.genes;
  m["gene_key"] = features.gene_key;
  m["norm_genes"] = features.norm_genes;
  m["target_sum"] = config.at("preprocess").at("target_sum");
  NamedArrays arrays = head;
  const auto genes = static_cast<std::int64_t>(features.genes.size());
  const auto k = static_cast<std::int64_t>(features.basis.scale.size());
  arrays.push_back({"pca.mean", {genes}, features.basis.mean});
  arrays.push_back({"pca.components", {genes, k}, features.basis.components});
  arrays.push_back({"pca.scale", {k}, features.basis.scale});
  write_predictor(task.at("artifact_dir"), m, arrays);
}

void save_encoder_predictor(const nlohmann::json& task, const std::vector<std::vector<std::string>>& train_genes,
                            const std::string& gene_key, const NamedArrays& head) {
  nlohmann::json m = manifest_base(task);
  m["kind"] = "encoder";
  m["head"] = "mlp";
  bool known = !train_genes.empty();
  for (const auto& g : train_genes) known = known && !g.empty();
  m["genes"] = known ? common_genes(train_genes) : std::vector<std::string>{};
  m["genes_known"] = known;  // false: embedding caches from before gene keys were kept; coverage cannot be checked
  m["gene_key"] = gene_key;
  if (head.empty()) {
    m["parameters"] = kLoraTensors;
    m["lora"] = true;
  }
  write_predictor(task.at("artifact_dir"), m, head);
}

nlohmann::json read_predictor_manifest(const std::string& dir) {
  const std::string path = dir + "/" + kPredictorManifest;
  std::ifstream in(path);
  if (!in) throw IoError({path, "", ""}, "no predictor here (the cell failed, ran before artifacts existed, or is a noop cell)");
  nlohmann::json m;
  try {
    m = nlohmann::json::parse(in);
  } catch (const std::exception& e) {
    throw DataError({path, "", ""}, std::string("not valid JSON: ") + e.what());
  }
  if (!m.is_object() || m.value("format", "") != "sdm-predictor") throw DataError({path, "format", ""}, "not an sdm predictor manifest");
  if (m.value("version", 0) != 1) throw DataError({path, "version", m.value("version", nlohmann::json()).dump()}, "unsupported predictor version (this build reads 1)");
  const std::string kind = m.value("kind", "");
  if (kind != "baseline" && kind != "encoder") throw DataError({path, "kind", kind}, "expected baseline or encoder");
  const std::string head = m.value("head", "");
  if (head != "logreg" && head != "mlp") throw DataError({path, "head", head}, "expected logreg or mlp");
  if (!m.contains("genes") || !m.at("genes").is_array()) throw DataError({path, "genes", ""}, "missing the gene list");
  if (!m.contains("parameters") || !m.at("parameters").is_string()) throw DataError({path, "parameters", ""}, "missing the parameter file name");
  return m;
}

NamedArrays read_named_arrays(const std::string& path) {
  const auto file = SafetensorsFile::open(path);
  NamedArrays out;
  for (const auto& e : file.entries()) {
    if (e.dtype != "F32") throw DataError({path, e.name, e.dtype}, "predictor tensors are float32");
    const auto bytes = file.bytes(e);
    NamedArray a{e.name, e.shape, std::vector<float>(static_cast<std::size_t>(e.numel()))};
    std::memcpy(a.values.data(), bytes.data(), bytes.size());
    out.push_back(std::move(a));
  }
  return out;
}

std::vector<std::string> common_genes(const std::vector<std::vector<std::string>>& gene_lists) {
  if (gene_lists.empty()) return {};
  std::vector<std::set<std::string>> sets;
  for (std::size_t i = 1; i < gene_lists.size(); ++i) sets.emplace_back(gene_lists[i].begin(), gene_lists[i].end());
  std::vector<std::string> out;
  std::set<std::string> seen;
  for (const auto& g : gene_lists.front()) {
    bool everywhere = true;
    for (const auto& s : sets) everywhere = everywhere && s.count(g) > 0;
    if (everywhere && seen.insert(g).second) out.push_back(g);
  }
  return out;
}

std::vector<std::string> GeneMatch::missing(const std::vector<std::string>& needed, std::size_t limit) const {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < column.size() && out.size() < limit; ++i) {
    if (column[i] < 0) out.push_back(needed[i]);
  }
  return out;
}

GeneMatch match_genes(const std::vector<std::string>& needed, const std::vector<std::string>& available) {
  std::unordered_map<std::string, std::int64_t> where;
  for (std::size_t j = 0; j < available.size(); ++j) where.emplace(available[j], static_cast<std::int64_t>(j));  // first wins
  GeneMatch m;
  m.column.reserve(needed.size());
  for (const auto& g : needed) {
    const auto it = where.find(g);
    m.column.push_back(it == where.end() ? -1 : it->second);
    if (it != where.end()) ++m.found;
  }
  return m;
}

}  // namespace sdm::worker
