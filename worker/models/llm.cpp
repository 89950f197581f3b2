// The LLM path (reference/models.md §9): a cell becomes a cell sentence, the language model's own tokenizer
// reads it, and the cell embedding is the mean of the last hidden states (after the final norm) over the prompt's
// tokens, BOS / ChatGLM's [gMASK] sop included. Two architectures, one translation unit:
//   LLaMA-3 (HF modeling_llama): RMSNorm pre-norm, RoPE (rotate_half, theta configurable), grouped-query attention,
//     SwiGLU, no biases; q_proj k_proj v_proj o_proj gate_proj up_proj down_proj.
//   ChatGLM2/3 (modeling_chatglm): fused query_key_value with bias and multi-query groups, RoPE on the first half of
//     each head's dims in interleaved pairs, SwiGLU dense_h_to_4h (two halves) and dense_4h_to_h, no other biases.
// Published sizes keep their parameters in the checkpoint's dtype (bfloat16) as views of the mapped safetensors
// shards: an 8B model is never copied in memory (ParamSet::defer_allocation).
#include <spdlog/spdlog.h>

#include <cmath>

#include "common/error.h"
#include "worker/models/causal.h"
#include "worker/models/encoder.h"
#include "worker/models/text_tokenizers.h"

namespace sdm::worker {
namespace {

torch::ScalarType dtype_named(const std::string& name) {
  if (name == "float32") return torch::kFloat32;
  if (name == "bfloat16") return torch::kBFloat16;
  if (name == "float16") return torch::kFloat16;
  throw ConfigError({"", "torch_dtype", name}, "expected float32, bfloat16 or float16");
}

CellSentenceOptions sentence_options(const nlohmann::json& c) {
  CellSentenceOptions o;
  o.order = c.at("sentence_order");
  o.genes = c.at("sentence_genes");
  o.values = c.at("sentence_values");
  o.bins = c.at("sentence_bins");
  o.item = c.at("sentence_item");
  o.keep_zero_genes = c.at("keep_zero_genes");
  o.validate();
  return o;
}

class LanguageModel final : public Encoder {
 public:
  LanguageModel(std::string name, const nlohmann::json& c, const EncoderFiles& files)
      : name_(std::move(name)), glm_(name_ == "chatglm"), sentence_(sentence_options(c)), max_length_(c.at("max_length")) {
    if (glm_) {
      vocab_size_ = c.at("padded_vocab_size");
      d_ = c.at("hidden_size");
      layers_ = c.at("num_layers");
      heads_ = c.at("num_attention_heads");
      head_dim_ = c.at("kv_channels");
      kv_heads_ = c.at("multi_query_attention").get<bool>() ? c.at("multi_query_group_num").get<std::int64_t>() : heads_;
      ffn_ = c.at("ffn_hidden_size");
      eps_ = c.at("layernorm_epsilon");
      theta_ = 10000.0 * c.at("rope_ratio").get<double>();
      qkv_bias_ = c.at("add_qkv_bias");
      linear_bias_ = c.at("add_bias_linear");
      if (head_dim_ % 4 != 0) throw ConfigError({"", "kv_channels", std::to_string(head_dim_)}, "must be a multiple of 4 (RoPE on half, in pairs)");
    } else {
      vocab_size_ = c.at("vocab_size");
      d_ = c.at("hidden_size");
      layers_ = c.at("num_hidden_layers");
      heads_ = c.at("num_attention_heads");
      kv_heads_ = c.at("num_key_value_heads");
      ffn_ = c.at("intermediate_size");
      eps_ = c.at("rms_norm_eps");
      theta_ = c.at("rope_theta");
      if (heads_ <= 0 || d_ % heads_ != 0) throw ConfigError({"", "hidden_size", std::to_string(d_)}, "must be a multiple of num_attention_heads");
      head_dim_ = d_ / heads_;
    }
    if (kv_heads_ <= 0 || heads_ % kv_heads_ != 0) {
      throw ConfigError({"", glm_ ? "multi_query_group_num" : "num_key_value_heads", std::to_string(kv_heads_)},
                        "must divide the number of attention heads " + std::to_string(heads_));
    }
    if (max_length_ < 2) throw ConfigError({"", "max_length", std::to_string(max_length_)}, "at least 2 tokens");
    tokenizer_ = make_text_tokenizer(name_, files.vocab);
    tokenizer_source_ = files.vocab.empty() ? "byte tokenizer (no tokenizer file)" : files.vocab;
    // checked when the tokenizer is used: a --tokenized file brings its own ids
    tokenizer_fits_ = tokenizer_->vocab_size() <= vocab_size_;
    const auto dtype = dtype_named(c.at("torch_dtype"));
    params_.defer_allocation(dtype);
    glm_ ? add_chatglm_params() : add_llama_params();
    spdlog::debug("{}: tokenizer {}", name_, tokenizer_->describe());
  }

  std::string name() const override { return name_; }
  std::int64_t dim() const override { return d_; }
  std::vector<std::string> input_names() const override { return {"input_ids", "attention_mask"}; }

  TokenizedCells tokenize(const CsrMatrix& X, const GeneInputs& genes, const std::vector<std::uint64_t>&) const override {
    if (!tokenizer_fits_) {
      throw ConfigError({tokenizer_source_, glm_ ? "padded_vocab_size" : "vocab_size", std::to_string(vocab_size_)},
                        "smaller than the tokenizer's " + std::to_string(tokenizer_->vocab_size()) + " ids");
    }
    const auto& symbols = genes.symbols.empty() ? genes.ensembl : genes.symbols;
    TokenizedCells out;
    for (std::int64_t r = 0; r < X.rows; ++r) {
      const auto text = cell_sentence(X, r, symbols, sentence_);
      auto ids = tokenizer_->encode(text, static_cast<std::size_t>(max_length_));  // truncation, as the study's
      if (text.empty()) ++out.cells_without_genes;
      out.ids.push_back(std::move(ids));
    }
    return out;
  }

  ModelInputs collate(const TokenizedCells& cells, const std::vector<std::size_t>& rows) const override {
    return collate_ids(cells, rows, 0);
  }

  void check_inputs(const ModelInputs& inputs, const std::string& source) const override {
    check_id_inputs(inputs, vocab_size_, max_length_, source);
  }

  EncoderOutput forward(const ModelInputs& inputs, bool want_states) override {
    const auto& embed = params_.at(glm_ ? "transformer.embedding.word_embeddings.weight" : "model.embed_tokens.weight");
    const auto ids = inputs.at("input_ids").to(embed.device(), torch::kInt64);
    const auto keep = inputs.at("attention_mask").to(embed.device()).to(torch::kBool);
    auto h = torch::embedding(embed, ids);
    for (std::int64_t i = 0; i < layers_; ++i) h = glm_ ? chatglm_layer(h, keep, i) : llama_layer(h, keep, i);
    h = rms_norm(h, params_.at(glm_ ? "transformer.encoder.final_layernorm.weight" : "model.norm.weight"), eps_);
    EncoderOutput out;
    out.cell_embedding = masked_mean(h.to(torch::kFloat32), keep.to(torch::kFloat32));
    if (want_states) out.token_states = h.to(torch::kFloat32);
    return out;
  }

  LoadReport load_weights(const StateDict& dict, const std::string& source, const LoadOptions& options) override {
    // LM heads are not part of the embedding path; ChatGLM's inv_freq buffer is recomputed from rope_ratio.
    return params_.load(dict, source, options, {},
                        {"lm_head.", "transformer.output_layer.", "transformer.rotary_pos_emb."});
  }

  std::int64_t num_layers() const override { return layers_; }

  LoraSite lora_site(const std::string& target, std::int64_t i) const override {
    const auto kv = kv_heads_ * head_dim_, q = heads_ * head_dim_;
    if (glm_) {
      const auto p = "transformer.encoder.layers." + std::to_string(i) + ".";
      if (target == "query_key_value") {
        return {Projection::kInProj, 0, q + 2 * kv, d_, p + "self_attention.query_key_value.weight", p + "self_attention.query_key_value"};
      }
      if (target == "dense") return {Projection::kOutProj, 0, d_, q, p + "self_attention.dense.weight", p + "self_attention.dense"};
      if (target == "dense_h_to_4h") return {Projection::kFf1, 0, 2 * ffn_, d_, p + "mlp.dense_h_to_4h.weight", p + "mlp.dense_h_to_4h"};
      if (target == "dense_4h_to_h") return {Projection::kFf2, 0, d_, ffn_, p + "mlp.dense_4h_to_h.weight", p + "mlp.dense_4h_to_h"};
      throw ConfigError({"", "lora.targets", target}, "chatglm adapts query_key_value, dense, dense_h_to_4h or dense_4h_to_h");
    }
    const auto p = "model.layers." + std::to_string(i) + ".";
    const std::vector<std::tuple<std::string, Projection, std::int64_t, std::int64_t, std::string>> sites{
        {"q_proj", Projection::kQ, q, d_, "self_attn."},      {"k_proj", Projection::kK, kv, d_, "self_attn."},
        {"v_proj", Projection::kV, kv, d_, "self_attn."},     {"o_proj", Projection::kOutProj, d_, q, "self_attn."},
        {"gate_proj", Projection::kGate, ffn_, d_, "mlp."},   {"up_proj", Projection::kFf1, ffn_, d_, "mlp."},
        {"down_proj", Projection::kFf2, d_, ffn_, "mlp."}};
    for (const auto& [name, where, rows, in, module] : sites) {
      if (target == name) return {where, 0, rows, in, p + module + name + ".weight", p + module + name};
    }
    throw ConfigError({"", "lora.targets", target}, "llama adapts q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj or down_proj");
  }

 private:
  void add_llama_params() {
    const auto q = heads_ * head_dim_, kv = kv_heads_ * head_dim_;
    params_.add("model.embed_tokens.weight", {vocab_size_, d_});
    for (std::int64_t i = 0; i < layers_; ++i) {
      const auto p = "model.layers." + std::to_string(i) + ".";
      params_.add(p + "input_layernorm.weight", {d_});
      params_.add(p + "self_attn.q_proj.weight", {q, d_});
      params_.add(p + "self_attn.k_proj.weight", {kv, d_});
      params_.add(p + "self_attn.v_proj.weight", {kv, d_});
      params_.add(p + "self_attn.o_proj.weight", {d_, q});
      params_.add(p + "post_attention_layernorm.weight", {d_});
      params_.add(p + "mlp.gate_proj.weight", {ffn_, d_});
      params_.add(p + "mlp.up_proj.weight", {ffn_, d_});
      params_.add(p + "mlp.down_proj.weight", {d_, ffn_});
    }
    params_.add("model.norm.weight", {d_});
  }

  void add_chatglm_params() {
    const auto qkv = heads_ * head_dim_ + 2 * kv_heads_ * head_dim_;
    params_.add("transformer.embedding.word_embeddings.weight", {vocab_size_, d_});
    for (std::int64_t i = 0; i < layers_; ++i) {
      const auto p = "transformer.encoder.layers." + std::to_string(i) + ".";
      params_.add(p + "input_layernorm.weight", {d_});
      params_.add(p + "self_attention.query_key_value.weight", {qkv, d_});
      if (qkv_bias_) params_.add(p + "self_attention.query_key_value.bias", {qkv});
      params_.add(p + "self_attention.dense.weight", {d_, heads_ * head_dim_});
      if (linear_bias_) params_.add(p + "self_attention.dense.bias", {d_});
      params_.add(p + "post_attention_layernorm.weight", {d_});
      params_.add(p + "mlp.dense_h_to_4h.weight", {2 * ffn_, d_});
      if (linear_bias_) params_.add(p + "mlp.dense_h_to_4h.bias", {2 * ffn_});
      params_.add(p + "mlp.dense_4h_to_h.weight", {d_, ffn_});
      if (linear_bias_) params_.add(p + "mlp.dense_4h_to_h.bias", {d_});
    }
    params_.add("transformer.encoder.final_layernorm.weight", {d_});
  }

  torch::Tensor bias(const std::string& name, bool present) { return present ? params_.at(name) : torch::Tensor(); }

  torch::Tensor heads_view(const torch::Tensor& x, std::int64_t n) const {
    return x.view({x.size(0), x.size(1), n, head_dim_}).transpose(1, 2);  // [B, n, L, dh]
  }

  torch::Tensor llama_layer(const torch::Tensor& h, const torch::Tensor& keep, std::int64_t i) {
    const auto p = "model.layers." + std::to_string(i) + ".";
    PostLnLayer adapters;
    attach_lora(adapters, i);
    const auto B = h.size(0), L = h.size(1);
    const auto a = rms_norm(h, params_.at(p + "input_layernorm.weight"), eps_);
    const auto proj = [&](const char* n, Projection where) {
      return adapted_linear(a, params_.at(p + "self_attn." + n + ".weight"), {}, adapters, where);
    };
    const auto q = rotary(heads_view(proj("q_proj", Projection::kQ), heads_), head_dim_, theta_, false);
    const auto k = rotary(heads_view(proj("k_proj", Projection::kK), kv_heads_), head_dim_, theta_, false);
    const auto v = heads_view(proj("v_proj", Projection::kV), kv_heads_);
    const auto n_rep = heads_ / kv_heads_;
    const auto ctx = causal_attention(q, repeat_kv(k, n_rep), repeat_kv(v, n_rep), keep, 1.0 / std::sqrt(static_cast<double>(head_dim_)))
                         .transpose(1, 2).reshape({B, L, heads_ * head_dim_});
    const auto x = h + adapted_linear(ctx, params_.at(p + "self_attn.o_proj.weight"), {}, adapters, Projection::kOutProj);
    const auto m = rms_norm(x, params_.at(p + "post_attention_layernorm.weight"), eps_);
    const auto gate = adapted_linear(m, params_.at(p + "mlp.gate_proj.weight"), {}, adapters, Projection::kGate);
    const auto up = adapted_linear(m, params_.at(p + "mlp.up_proj.weight"), {}, adapters, Projection::kFf1);
    return x + adapted_linear(torch::silu(gate) * up, params_.at(p + "mlp.down_proj.weight"), {}, adapters, Projection::kFf2);
  }

  torch::Tensor chatglm_layer(const torch::Tensor& h, const torch::Tensor& keep, std::int64_t i) {
    const auto p = "transformer.encoder.layers." + std::to_string(i) + ".";
    PostLnLayer adapters;
    attach_lora(adapters, i);
    const auto B = h.size(0), L = h.size(1);
    const auto q_width = heads_ * head_dim_, kv_width = kv_heads_ * head_dim_;
    const auto a = rms_norm(h, params_.at(p + "input_layernorm.weight"), eps_);
    const auto qkv = adapted_linear(a, params_.at(p + "self_attention.query_key_value.weight"),
                                    bias(p + "self_attention.query_key_value.bias", qkv_bias_), adapters, Projection::kInProj);
    const auto rot = head_dim_ / 2;  // RoPE on the first half of each head's dims, interleaved pairs
    const auto q = rotary(heads_view(qkv.narrow(-1, 0, q_width), heads_), rot, theta_, true);
    const auto k = rotary(heads_view(qkv.narrow(-1, q_width, kv_width), kv_heads_), rot, theta_, true);
    const auto v = heads_view(qkv.narrow(-1, q_width + kv_width, kv_width), kv_heads_);
    const auto n_rep = heads_ / kv_heads_;
    const auto ctx = causal_attention(q, repeat_kv(k, n_rep), repeat_kv(v, n_rep), keep, 1.0 / std::sqrt(static_cast<double>(head_dim_)))
                         .transpose(1, 2).reshape({B, L, q_width});
    const auto x = h + adapted_linear(ctx, params_.at(p + "self_attention.dense.weight"),
                                      bias(p + "self_attention.dense.bias", linear_bias_), adapters, Projection::kOutProj);
    const auto m = rms_norm(x, params_.at(p + "post_attention_layernorm.weight"), eps_);
    const auto up = adapted_linear(m, params_.at(p + "mlp.dense_h_to_4h.weight"), bias(p + "mlp.dense_h_to_4h.bias", linear_bias_),
                                   adapters, Projection::kFf1);
    const auto halves = up.chunk(2, -1);
    return x + adapted_linear(torch::silu(halves[0]) * halves[1], params_.at(p + "mlp.dense_4h_to_h.weight"),
                              bias(p + "mlp.dense_4h_to_h.bias", linear_bias_), adapters, Projection::kFf2);
  }

  std::string name_;
  bool glm_;
  CellSentenceOptions sentence_;
  std::int64_t max_length_;
  std::int64_t vocab_size_ = 0, d_ = 0, layers_ = 0, heads_ = 0, kv_heads_ = 0, head_dim_ = 0, ffn_ = 0;
  double eps_ = 1e-5, theta_ = 10000;
  bool qkv_bias_ = false, linear_bias_ = false;
  std::unique_ptr<TextTokenizer> tokenizer_;
  std::string tokenizer_source_;
  bool tokenizer_fits_ = true;
};

}  // namespace

std::unique_ptr<Encoder> make_llama(const nlohmann::json& config, const EncoderFiles& files) {
  return std::make_unique<LanguageModel>("llama", config, files);
}

std::unique_ptr<Encoder> make_chatglm(const nlohmann::json& config, const EncoderFiles& files) {
  return std::make_unique<LanguageModel>("chatglm", config, files);
}

}  // namespace sdm::worker
