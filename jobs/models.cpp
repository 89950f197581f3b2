#include "jobs/models.h"

#include "common/error.h"
#include "common/text.h"

namespace sdm::jobs {

const std::vector<ModelInfo>& model_infos() {
  using nlohmann::json;
  const std::vector<std::string> fm_strategies{"freeze", "lora", "zero-shot", "few-shot"};
  static const std::vector<ModelInfo> kModels{
      {"logreg", "baseline", "L2 logistic regression on PCA of log1p-normalized HVG counts", {"freeze"}, true,
       json{{"l2", 1.0}, {"max_iter", 100}}, 0.3},
      {"mlp", "baseline", "the study's head d-512-512-2 (ReLU, BCE on one-hot, AdamW) on the same PCA features",
       {"freeze"}, true, json::object(), 1.0},
      {"noop", "test", "does nothing: measures scheduling and commit overhead", {"freeze"}, true,
       json{{"sleep_ms", 0}}, 0.001},
      {"scgpt", "foundation", "scGPT whole-human transformer", fm_strategies, false, json::object(), 20},
      {"geneformer", "foundation", "Geneformer rank-value transformer", fm_strategies, false, json::object(), 20},
      {"scfoundation", "foundation", "scFoundation xTrimoGene", fm_strategies, false, json::object(), 30},
      {"uce", "foundation", "Universal Cell Embeddings", fm_strategies, false, json::object(), 30},
      {"scbert", "foundation", "scBERT Performer", fm_strategies, false, json::object(), 20},
      {"celllm", "foundation", "CellLM (OpenBioMed)", fm_strategies, false, json::object(), 20},
      {"cellplm", "foundation", "CellPLM", fm_strategies, false, json::object(), 20},
      {"tgpt", "foundation", "tGPT", fm_strategies, false, json::object(), 20},
      {"llama", "llm", "LLaMA-3 on gene-text prompts", {"freeze", "zero-shot", "few-shot"}, false, json::object(), 100},
      {"chatglm", "llm", "ChatGLM on gene-text prompts", {"freeze", "zero-shot", "few-shot"}, false, json::object(), 100},
  };
  return kModels;
}

const ModelInfo& model_info(const std::string& name, const std::string& field) {
  std::vector<std::string> names;
  for (const auto& m : model_infos()) {
    if (m.name == name) return m;
    names.push_back(m.name);
  }
  throw ConfigError({"", field, name}, "unknown model; " + suggest(name, names));
}

const std::vector<std::string>& strategy_names() {
  static const std::vector<std::string> kNames{"freeze", "lora", "zero-shot", "few-shot"};
  return kNames;
}

const std::vector<std::string>& protocol_names() {
  static const std::vector<std::string> kNames{"pooled", "cross-data", "paper"};
  return kNames;
}

}  // namespace sdm::jobs
