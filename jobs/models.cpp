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

json scfoundation_config(int hidden, int depth, int heads, int seq_len) {
  // The checkpoint's own config dict (nested `encoder`); tgthighres, pool_type and max_tokens are get_embedding.py
  // arguments (and the study's FT truncation), init_seed ours.
  return {{"encoder", {{"hidden_dim", hidden}, {"depth", depth}, {"heads", heads}, {"dim_head", 64}}},
          {"seq_len", seq_len}, {"bin_num", 100}, {"bin_alpha", 1.0}, {"pad_token_id", 103}, {"mask_token_id", 102},
          {"tgthighres", "t4"}, {"pool_type", "all"}, {"max_tokens", 0}, {"init_seed", 0}};
}

std::vector<ModelPreset> scfoundation_presets() {
  const json published = scfoundation_config(768, 12, 12, 19266);
  json study = published;
  study["max_tokens"] = 100;  // the study's FT script cut every cell to its first 100 tokens
  return {{"default", "xTrimoGene 01B 'cell' model: 768/12/12, 19,264-gene panel + T + S, 3072-d pooled", published},
          {"scdrugmap", "as the study fine-tuned it: each cell cut to its first 100 tokens", study},
          {"tiny", "64/2/4, 128-gene panel, random weights from init_seed", scfoundation_config(64, 2, 4, 130)}};
}

json uce_config(int token_dim, int d_model, int nhead, int d_hid, int nlayers, int output_dim, int decoder_hidden,
                int pad_length, int sample_size, int n_tokens, int chrom_offset) {
  // UCE's argument names; decoder_hidden (1024 in the code), pad_length, sample_size, the token layout and
  // mask_mode are ours.
  return {{"token_dim", token_dim}, {"d_model", d_model}, {"nhead", nhead}, {"d_hid", d_hid}, {"nlayers", nlayers},
          {"output_dim", output_dim}, {"dropout", 0.05}, {"decoder_hidden", decoder_hidden}, {"pad_length", pad_length},
          {"sample_size", sample_size}, {"n_tokens", n_tokens}, {"chrom_token_offset", chrom_offset},
          {"mask_mode", "additive"}, {"init_seed", 0}, {"tokenizer_seed", 0}};
}

std::vector<ModelPreset> uce_presets() {
  const json four = uce_config(5120, 1280, 20, 5120, 4, 1280, 1024, 1536, 1024, 145469, 143574);
  json deep = four;
  deep["nlayers"] = 33;
  return {{"default", "4-layer model (4layer_model.torch): 1280/4/20, 1024 sampled genes, padded to 1536", four},
          {"scdrugmap", "as the study ran it: the 4-layer model (same as default)", four},
          {"33l", "33-layer model (33l_8ep_1024t_1280.torch)", deep},
          {"tiny", "64/2/4, 64 sampled genes on 24 chromosomes, padded to 128, random weights, hashed gene table",
           uce_config(32, 64, 4, 128, 2, 64, 64, 128, 64, 2048, 2024)}};
}

json performer_config(int tokens, int dim, int depth, int heads, int max_seq_len, int nb_features, int gene_num) {
  // PerformerLM's argument names; bin_num, gene_num, target_sum (normalize_total) and init_seed are ours.
  return {{"num_tokens", tokens}, {"dim", dim}, {"depth", depth}, {"heads", heads}, {"dim_head", dim >= 128 ? 64 : 16},
          {"max_seq_len", max_seq_len}, {"nb_features", nb_features}, {"ff_mult", 4}, {"bin_num", 5},
          {"gene_num", gene_num}, {"target_sum", 1e4}, {"init_seed", 0}};
}

std::vector<ModelPreset> scbert_presets() {
  json published = performer_config(7, 200, 6, 10, 16907, 266, 16906);
  published["max_genes"] = 0;  // ours: read only the first max_genes panel genes (0 = all)
  json study = published;
  study["max_genes"] = 6000;  // the study fed the first 6,000 genes (+ the appended token)
  json tiny = performer_config(7, 64, 2, 4, 201, 32, 200);
  tiny["max_genes"] = 0;
  return {{"default", "Panglao-pretrained 200/6/10, all 16,906 panel genes + 1 token, mean-pooled", published},
          {"scdrugmap", "as the study ran it: the first 6,000 panel genes + 1 token", study},
          {"tiny", "64/2/4, 200-gene hashed panel, random weights", tiny}};
}

std::vector<ModelPreset> celllm_presets() {
  const json published = performer_config(8, 512, 10, 16, 6000, 266, 19379);
  return {{"default", "CellLM 512/10/16, <cls> + nonzero genes padded to 6000, <cls> embedding", published},
          {"scdrugmap", "as the study ran it (same as default)", published},
          {"tiny", "64/2/4, 200-gene hashed panel, 128 tokens, random weights", performer_config(8, 64, 2, 4, 128, 32, 200)}};
}

json cellplm_config(int hid, int layers, int heads, int latent, int genes, int batch_cells) {
  // Keys as in CellPLM's <prefix>.config.json (enc_hid, enc_layers, post_latent_dim, model_dropout); enc_head is
  // the code's default; num_clusters (the GMVAE's 16), gene_num (the gene list's length), batch_cells (cells per
  // forward: they attend to each other), max_genes (the study's truncation) and init_seed are ours.
  return {{"enc_mod", "flowformer"}, {"enc_hid", hid}, {"enc_layers", layers}, {"enc_head", heads},
          {"post_latent_dim", latent}, {"latent_mod", "gmvae"}, {"num_clusters", 16}, {"model_dropout", 0.2},
          {"gene_num", genes}, {"batch_cells", batch_cells}, {"max_genes", 0}, {"init_seed", 0}};
}

std::vector<ModelPreset> cellplm_presets() {
  const json published = cellplm_config(1024, 4, 8, 512, 19374, 256);
  json study = published;
  study["max_genes"] = 2048;  // the study's pickled inputs kept 2,048 genes
  json tiny = cellplm_config(64, 2, 4, 32, 256, 64);
  tiny["num_clusters"] = 4;
  return {{"default", "20230926_85M: Flowformer 1024/4/8 over the cells of a batch (256 cells per forward), 512-d GMVAE mean", published},
          {"scdrugmap", "as the study ran it: the first 2,048 listed genes", study},
          {"tiny", "64/2/4 over 64-cell groups, 256-gene hashed list, random weights", tiny}};
}

json tgpt_config(int vocab, int d, int layers, int heads, int max_length) {
  // Hugging Face GPT2Config keys; unk_token_id and max_length (BOS + genes + EOS: the "-64" checkpoint) are ours.
  return {{"vocab_size", vocab}, {"n_embd", d}, {"n_layer", layers}, {"n_head", heads}, {"n_inner", 4 * d},
          {"n_positions", 1024}, {"layer_norm_epsilon", 1e-5}, {"activation_function", "gelu_new"},
          {"bos_token_id", 1}, {"eos_token_id", 2}, {"pad_token_id", 0}, {"unk_token_id", 3},
          {"max_length", max_length}, {"init_seed", 0}};
}

std::vector<ModelPreset> tgpt_presets() {
  const json published = tgpt_config(21150, 1024, 8, 16, 64);
  json long_context = published;
  long_context["max_length"] = 128;
  return {{"default", "transcriptome-gpt-1024-8-16-64: BOS + 62 ranked genes + EOS, mean between them", published},
          {"128", "transcriptome-gpt-1024-8-16-128: 126 genes", long_context},
          {"scdrugmap", "as the study ran it (the -64 checkpoint; same as default)", published},
          {"tiny", "64/2/4, 30 genes, hashed vocabulary, random weights", tgpt_config(2048, 64, 2, 4, 32)}};
}

json sentence_options(std::int64_t genes, int max_length) {
  // Ours: how a cell becomes text (worker/models/text_tokenizers.h) and the token budget.
  return {{"sentence_order", "rank"}, {"sentence_genes", genes}, {"sentence_values", "none"}, {"sentence_bins", 10},
          {"sentence_item", "{gene} {value}"}, {"keep_zero_genes", false}, {"max_length", max_length}, {"init_seed", 0}};
}

/// The study's LLaMA text: every gene column in file order as GENE<value>, zeros kept, cut at 4,096 tokens.
json study_sentences(json c) {
  c["sentence_order"] = "column";
  c["sentence_genes"] = 0;
  c["sentence_values"] = "raw";
  c["sentence_item"] = "{gene}{value}";
  c["keep_zero_genes"] = true;
  c["max_length"] = 4096;
  return c;
}

json llama_config(int vocab, int hidden, int ffn, int layers, int heads, int kv_heads, const std::string& dtype) {
  json c = {{"vocab_size", vocab}, {"hidden_size", hidden}, {"intermediate_size", ffn}, {"num_hidden_layers", layers},
            {"num_attention_heads", heads}, {"num_key_value_heads", kv_heads}, {"rms_norm_eps", 1e-5},
            {"rope_theta", 500000.0}, {"max_position_embeddings", 8192}, {"bos_token_id", 128000},
            {"eos_token_id", 128001}, {"torch_dtype", dtype}};
  c.update(sentence_options(100, 1024));
  return c;
}

std::vector<ModelPreset> llama_presets() {
  const json eight_b = llama_config(128256, 4096, 14336, 32, 32, 8, "bfloat16");
  json tiny = llama_config(264, 64, 160, 2, 4, 2, "float32");
  tiny["sentence_genes"] = 16;  // ~110 byte tokens: the demo's LoRA cells stay cheap
  tiny["max_length"] = 128;
  return {{"default", "Meta-Llama-3-8B (4096/32/32, 8 KV heads), bfloat16 weights mapped from the shards; top 100 genes", eight_b},
          {"scdrugmap", "as the study ran it: every gene as GENE<value>, zeros kept, 4,096 tokens", study_sentences(eight_b)},
          {"tiny", "64/2/4 (2 KV heads), byte tokens without a tokenizer file, top 16 genes, random weights", tiny}};
}

json chatglm_config(int vocab, int hidden, int layers, int heads, int kv_channels, int groups, int ffn, const std::string& dtype) {
  json c = {{"padded_vocab_size", vocab}, {"hidden_size", hidden}, {"num_layers", layers},
            {"num_attention_heads", heads}, {"kv_channels", kv_channels}, {"multi_query_attention", true},
            {"multi_query_group_num", groups}, {"ffn_hidden_size", ffn}, {"layernorm_epsilon", 1e-5},
            {"add_qkv_bias", true}, {"add_bias_linear", false}, {"rope_ratio", 1.0}, {"seq_length", 8192},
            {"torch_dtype", dtype}};
  c.update(sentence_options(100, 1024));
  return c;
}

std::vector<ModelPreset> chatglm_presets() {
  const json six_b = chatglm_config(65024, 4096, 28, 32, 128, 2, 13696, "bfloat16");
  json tiny = chatglm_config(264, 64, 2, 4, 16, 2, 96, "float32");
  tiny["sentence_genes"] = 16;
  tiny["max_length"] = 128;
  return {{"default", "ChatGLM3-6B (4096/28/32, 2 query groups), bfloat16 weights mapped from the shards; top 100 genes", six_b},
          {"scdrugmap", "the study's LLaMA text recipe on ChatGLM: every gene as GENE<value>, zeros kept, 4,096 tokens",
           study_sentences(six_b)},
          {"tiny", "64/2/4 (2 query groups), byte tokens without a tokenizer file, top 16 genes, random weights", tiny}};
}

}  // namespace

bool attends_across_cells(const std::string& model) { return model == "cellplm"; }

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
      {"scfoundation", "foundation", "scFoundation xTrimoGene: auto-binned values of nonzero genes + T/S tokens, 4 pooled vectors",
       fm_strategies, true, scfoundation_presets(), {"out_proj"}, 30, {"out_proj", "in_proj", "linear1", "linear2"}, 1, 3},
      {"uce", "foundation", "Universal Cell Embeddings: sampled, chromosome-ordered protein tokens, decoded <cls>",
       fm_strategies, true, uce_presets(), {"out_proj"}, 30, {"out_proj", "in_proj", "linear1", "linear2"}, 80, 3},
      {"scbert", "foundation", "scBERT Performer over every panel gene's expression bin, mean-pooled", fm_strategies, true,
       scbert_presets(), {"to_q", "to_k", "to_v"}, 20, {"to_q", "to_k", "to_v", "to_out", "w1", "w2"}, 3, 3},
      {"celllm", "foundation", "CellLM Performer over <cls> + nonzero genes' bins, <cls> embedding", fm_strategies, true,
       celllm_presets(), {"to_q", "to_k", "to_v"}, 20, {"to_q", "to_k", "to_v", "to_out", "w1", "w2"}, 10, 3},
      {"cellplm", "foundation", "CellPLM: each cell one token, Flowformer across the cells of a batch, GMVAE mean",
       fm_strategies, true, cellplm_presets(), {"query_projection", "key_projection", "value_projection"}, 20,
       {"query_projection", "key_projection", "value_projection", "out_projection", "_ff_block.0", "_ff_block.3"}, 1, 3},
      {"tgpt", "foundation", "tGPT: GPT-2 over expression-ranked gene symbols, mean between BOS and EOS", fm_strategies, true,
       tgpt_presets(), {"c_attn"}, 20, {"c_attn", "c_proj", "c_fc", "mlp.c_proj"}, 128, 2},
      {"llama", "llm", "LLaMA-3 on cell sentences (top genes as text), mean of the last hidden states", fm_strategies, true,
       llama_presets(), {"q_proj", "v_proj"}, 100,
       {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}, 1, 1},
      {"chatglm", "llm", "ChatGLM2/3 on cell sentences, mean of the last hidden states", fm_strategies, true,
       chatglm_presets(), {"query_key_value"}, 100, {"query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"}, 1, 1},
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

std::vector<std::string> pinned_keys(const json& config, const json& overrides) {
  std::vector<std::string> keys;
  if (!overrides.is_object()) return keys;
  for (const auto& [key, unused] : overrides.items()) {
    if (config.contains(key)) keys.push_back(key);
  }
  return keys;
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
