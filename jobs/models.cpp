#include "jobs/models.h"

#include "common/error.h"
#include "common/text.h"

#include <fstream>

namespace sdm::jobs {

namespace {

using nlohmann::json;

std::vector<ModelPreset> same_presets(const json& config) {
  return {{"default", "", config}, {"scdrugmap", "as the study ran it (same as default)", config}};
}

json scgpt_config(int embsize, int nheads, int d_hid, int nlayers, int max_seq_len) {
  // Keys as in scGPT's args.json; ntoken (vocabulary size), value_max, cell_emb_style, layer_norm_eps,
  // init_seed and tokenizer_seed are ours (fixed in the original code, or only needed without a checkpoint).
  return {{"embsize", embsize}, {"nheads", nheads}, {"d_hid", d_hid}, {"nlayers", nlayers}, {"n_bins", 51},
          {"pad_value", -2}, {"max_seq_len", max_seq_len}, {"dropout", 0.2}, {"ntoken", 60697},
          {"pad_token", "<pad>"}, {"cls_token", "<cls>"}, {"value_max", 512}, {"cell_emb_style", "cls"},
          {"layer_norm_eps", 1e-5}, {"init_seed", 0}, {"tokenizer_seed", 0}};
}

json geneformer_config(int hidden, int layers, int heads, int ffn, int vocab, int max_len, bool special_tokens) {
  // Keys as in the Hugging Face config.json; special_tokens, model_input_size, emb_layer, emb_mode and
  // init_seed are ours (the original passes them to its tokenizer and embedding extractor).
  return {{"hidden_size", hidden}, {"num_hidden_layers", layers}, {"num_attention_heads", heads},
          {"intermediate_size", ffn}, {"vocab_size", vocab}, {"max_position_embeddings", max_len},
          {"layer_norm_eps", 1e-12}, {"hidden_act", "relu"}, {"type_vocab_size", 2}, {"pad_token_id", 0},
          {"hidden_dropout_prob", 0.02}, {"attention_probs_dropout_prob", 0.02}, {"special_tokens", special_tokens},
          {"model_input_size", max_len}, {"emb_layer", -1}, {"emb_mode", "cell"}, {"init_seed", 0}};
}

std::vector<ModelPreset> scgpt_presets() {
  const json whole_human = scgpt_config(512, 8, 512, 12, 1200);
  json tiny = scgpt_config(64, 4, 128, 2, 256);
  return {{"default", "whole-human checkpoint sizes (512/12/8, 1200 genes)", whole_human},
          {"scdrugmap", "as the study ran it: <cls> of the last layer, 1200 genes (same as default)", whole_human},
          {"tiny", "64/2/4, 256 genes, random weights from init_seed: tests and the demo", tiny}};
}

std::vector<ModelPreset> geneformer_presets() {
  const json v2 = geneformer_config(768, 12, 12, 3072, 20275, 4096, true);
  const json v1 = geneformer_config(256, 6, 4, 512, 25426, 2048, false);
  json study = v1;
  study["emb_layer"] = 0;  // the study averaged the final layer (hidden_states[6]), not the penultimate
  json tiny = geneformer_config(64, 2, 4, 128, 25426, 2048, false);
  tiny["model_input_size"] = 256;
  json tiny_v2 = geneformer_config(64, 2, 4, 128, 20275, 4096, true);
  tiny_v2["model_input_size"] = 256;
  return {{"default", "Geneformer-V2-104M (768/12/12, <cls> + 4094 genes + <eos>)", v2},
          {"v1", "Geneformer-V1-10M (256/6/4, 2048 genes, no special tokens)", v1},
          {"v2-316m", "Geneformer-V2-316M (1152/18/18)", geneformer_config(1152, 18, 18, 4608, 20275, 4096, true)},
          {"scdrugmap", "as the study ran it: V1 6L, mean over the final layer", study},
          {"tiny", "V1-style 64/2/4, 256 genes, random weights from init_seed", tiny},
          {"tiny-v2", "V2-style (<cls>/<eos>) 64/2/4, 256 genes, random weights", tiny_v2}};
}

}  // namespace

const std::vector<ModelInfo>& model_infos() {
  const std::vector<std::string> fm_strategies{"freeze", "lora", "zero-shot", "few-shot"};
  const std::vector<std::string> baseline_strategies{"freeze", "zero-shot", "few-shot"};
  const auto none = same_presets(json::object());
  static const std::vector<ModelInfo> kModels{
      {"logreg", "baseline", "L2 logistic regression on PCA of log1p-normalized HVG counts", baseline_strategies, true,
       same_presets(json{{"l2", 1.0}, {"max_iter", 100}}), {}, 0.3, {}, 0, 0},
      {"mlp", "baseline", "the study's head d-512-512-2 (ReLU, BCE on one-hot, AdamW) on the same PCA features",
       baseline_strategies, true, none, {}, 1.0, {}, 0, 0},
      {"noop", "test", "does nothing: measures scheduling and commit overhead", {"freeze"}, true,
       same_presets(json{{"sleep_ms", 0}}), {}, 0.001, {}, 0, 0},
      {"scgpt", "foundation", "scGPT whole-human transformer: binned values, <cls> embedding", fm_strategies, true,
       scgpt_presets(), {"out_proj"}, 20, {"Wqkv", "out_proj", "linear1", "linear2"}, 256, 3},
      {"geneformer", "foundation", "Geneformer rank-value BERT: mean of a layer's gene tokens", fm_strategies, true,
       geneformer_presets(), {"query", "key", "value"}, 20,
       {"query", "key", "value", "attention.output.dense", "intermediate.dense", "output.dense"}, 10, 3},
      {"scfoundation", "foundation", "scFoundation xTrimoGene", fm_strategies, false, none, {"out_proj"}, 30, {}, 1, 3},
      {"uce", "foundation", "Universal Cell Embeddings", fm_strategies, false, none, {"out_proj"}, 30, {}, 80, 3},
      {"scbert", "foundation", "scBERT Performer", fm_strategies, false, none, {"to_q", "to_k", "to_v"}, 20, {}, 3, 3},
      {"celllm", "foundation", "CellLM (OpenBioMed)", fm_strategies, false, none, {"to_q", "to_k", "to_v"}, 20, {}, 10, 3},
      {"cellplm", "foundation", "CellPLM", fm_strategies, false, none,
       {"query_projection", "key_projection", "value_projection"}, 20, {}, 1, 3},
      {"tgpt", "foundation", "tGPT", fm_strategies, false, none, {"c_attn"}, 20, {}, 128, 2},
      {"llama", "llm", "LLaMA-3 on gene-text prompts", {"freeze", "zero-shot", "few-shot"}, false, none, {}, 100, {}, 0, 0},
      {"chatglm", "llm", "ChatGLM on gene-text prompts", {"freeze", "zero-shot", "few-shot"}, false, none, {}, 100, {}, 0, 0},
  };
  return kModels;
}

const ModelPreset& ModelInfo::preset(const std::string& preset_name, const std::string& field) const {
  std::vector<std::string> names;
  for (const auto& p : presets) {
    if (p.name == preset_name) return p;
    names.push_back(p.name);
  }
  throw ConfigError({"", field, preset_name}, "unknown preset of " + name + "; " + suggest(preset_name, names));
}

namespace {

std::string kind_of(const json& v) {
  if (v.is_boolean()) return "bool";
  if (v.is_number()) return "number";
  if (v.is_string()) return "string";
  return v.type_name();
}

}  // namespace

json resolve_model_config(const ModelInfo& info, const std::string& preset, const json& overrides, bool ignore_unknown,
                          const std::string& source) {
  json config = info.preset(preset, "preset").config;
  if (overrides.is_null()) return config;
  if (!overrides.is_object()) throw ConfigError({source, "config", overrides.dump()}, "expected a map of hyperparameters");
  std::vector<std::string> known;
  for (const auto& [k, unused] : config.items()) known.push_back(k);
  for (const auto& [key, value] : overrides.items()) {
    if (!config.contains(key)) {
      if (ignore_unknown) continue;
      throw ConfigError({source, "config." + key, value.dump()}, "unknown hyperparameter for " + info.name + "; " + suggest(key, known));
    }
    if (kind_of(config[key]) != kind_of(value)) {
      throw ConfigError({source, "config." + key, value.dump()}, "expected a " + kind_of(config[key]));
    }
    config[key] = value;
  }
  return config;
}

json read_published_config(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw IoError({path, "", ""}, "cannot read the model config file");
  json j;
  try {
    j = json::parse(in);
  } catch (const std::exception& e) {
    throw ConfigError({path, "", ""}, std::string("not a JSON config: ") + e.what());
  }
  if (!j.is_object()) throw ConfigError({path, "", ""}, "expected a JSON object of hyperparameters");
  return j;
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

bool needs_held_out_dataset(const std::string& strategy) { return strategy == "zero-shot" || strategy == "few-shot"; }

const std::vector<std::string>& protocol_names() {
  static const std::vector<std::string> kNames{"pooled", "cross-data", "paper"};
  return kNames;
}

}  // namespace sdm::jobs
