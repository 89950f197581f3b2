// tGPT (deeplearningplus/tGPT; HF lixiangchun/transcriptome-gpt-1024-8-16-64): a cell is the sentence of its gene
// symbols ranked by expression, `</b>` + up to 62 genes + `</s>`, read by a GPT-2 trunk (pre-LN, causal, learned
// positions, gelu_new, Conv1D weights stored [in, out]); cell embedding = mean of the final states between BOS and
// EOS (reference/models.md §7).
#include <spdlog/spdlog.h>

#include <cmath>

#include "common/error.h"
#include "worker/models/causal.h"
#include "worker/models/encoder.h"

namespace sdm::worker {
namespace {

/// tGPT's vocabulary keys: '-' and '.' become '_' (its README's regex; the HF pre-tokenizer splits on them).
std::string tgpt_key(std::string symbol) {
  for (char& c : symbol) {
    if (c == '-' || c == '.') c = '_';
  }
  return symbol;
}

class Tgpt final : public Encoder {
 public:
  Tgpt(const nlohmann::json& c, const EncoderFiles& files)
      : vocab_size_(c.at("vocab_size")), d_(c.at("n_embd")), layers_(c.at("n_layer")), heads_(c.at("n_head")),
        inner_(c.at("n_inner")), positions_(c.at("n_positions")), eps_(c.at("layer_norm_epsilon")),
        bos_(c.at("bos_token_id")), eos_(c.at("eos_token_id")), pad_(c.at("pad_token_id")),
        unk_(c.at("unk_token_id")), max_length_(c.at("max_length")) {
    if (c.at("activation_function") != "gelu_new") {
      throw ConfigError({"", "activation_function", c.at("activation_function").dump()}, "tGPT uses gelu_new");
    }
    if (d_ <= 0 || heads_ <= 0 || d_ % heads_ != 0) throw ConfigError({"", "n_embd", std::to_string(d_)}, "must be a positive multiple of n_head");
    if (max_length_ < 3 || max_length_ > positions_) {
      throw ConfigError({"", "max_length", std::to_string(max_length_)}, "needs 3..n_positions (BOS, genes, EOS)");
    }
    vocab_ = files.vocab.empty() ? GeneVocab::hashed(vocab_size_, 4) : GeneVocab::load(files.vocab);
    if (vocab_.size() > vocab_size_) {
      throw ConfigError({files.vocab, "vocab_size", std::to_string(vocab_.size())}, "the vocabulary is larger than the model's");
    }
    if (!files.vocab.empty()) {
      bos_ = vocab_.special("</b>", bos_);
      eos_ = vocab_.special("</s>", eos_);
      pad_ = vocab_.special("<pad>", pad_);
      unk_ = vocab_.special("<unk>", unk_);
    }
    params_.add("transformer.wte.weight", {vocab_size_, d_});
    params_.add("transformer.wpe.weight", {positions_, d_});
    for (std::int64_t i = 0; i < layers_; ++i) {
      const auto p = "transformer.h." + std::to_string(i) + ".";
      for (const char* n : {"ln_1", "ln_2"}) {
        params_.add(p + n + ".weight", {d_});
        params_.add(p + n + ".bias", {d_});
      }
      params_.add(p + "attn.c_attn.weight", {d_, 3 * d_});  // Conv1D: [in, out]
      params_.add(p + "attn.c_attn.bias", {3 * d_});
      params_.add(p + "attn.c_proj.weight", {d_, d_});
      params_.add(p + "attn.c_proj.bias", {d_});
      params_.add(p + "mlp.c_fc.weight", {d_, inner_});
      params_.add(p + "mlp.c_fc.bias", {inner_});
      params_.add(p + "mlp.c_proj.weight", {inner_, d_});
      params_.add(p + "mlp.c_proj.bias", {d_});
    }
    params_.add("transformer.ln_f.weight", {d_});
    params_.add("transformer.ln_f.bias", {d_});
  }

  std::string name() const override { return "tgpt"; }
  std::int64_t dim() const override { return d_; }
  std::vector<std::string> input_names() const override { return {"input_ids", "attention_mask"}; }

  TokenizedCells tokenize(const CsrMatrix& X, const GeneInputs& genes, const std::vector<std::uint64_t>&) const override {
    const auto& symbols = genes.symbols.empty() ? genes.ensembl : genes.symbols;
    std::vector<std::int64_t> ids_of(symbols.size());
    for (std::size_t g = 0; g < symbols.size(); ++g) {
      const auto id = vocab_.find(tgpt_key(symbols[g]));
      ids_of[g] = id < 0 ? unk_ : id;  // the WordLevel tokenizer maps an unknown symbol to <unk>
    }
    TokenizedCells out;
    const auto genes_max = static_cast<std::size_t>(max_length_ - 2);
    for (std::int64_t r = 0; r < X.rows; ++r) {
      std::map<std::int64_t, double> counts;  // column -> count (duplicates summed)
      for (auto k = X.indptr[static_cast<std::size_t>(r)]; k < X.indptr[static_cast<std::size_t>(r) + 1]; ++k) {
        counts[X.indices[static_cast<std::size_t>(k)]] += X.data[static_cast<std::size_t>(k)];
      }
      std::vector<std::pair<double, std::int64_t>> ranked;
      for (const auto& [col, v] : counts) {
        if (v > 0) ranked.emplace_back(v, col);
      }
      // descending expression; ties in column order (the original ranks offline and leaves ties unspecified)
      std::stable_sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
      if (ranked.size() > genes_max) ranked.resize(genes_max);
      std::vector<std::int64_t> ids{bos_};
      for (const auto& [v, col] : ranked) ids.push_back(ids_of[static_cast<std::size_t>(col)]);
      ids.push_back(eos_);
      if (ranked.empty()) ++out.cells_without_genes;
      out.ids.push_back(std::move(ids));
    }
    return out;
  }

  ModelInputs collate(const TokenizedCells& cells, const std::vector<std::size_t>& rows) const override {
    return collate_ids(cells, rows, pad_);
  }

  void check_inputs(const ModelInputs& inputs, const std::string& source) const override {
    check_id_inputs(inputs, vocab_size_, max_length_, source);
  }

  EncoderOutput forward(const ModelInputs& inputs, bool want_states) override {
    const auto& wte = params_.at("transformer.wte.weight");
    const auto ids = inputs.at("input_ids").to(wte.device(), torch::kInt64);
    const auto keep = inputs.at("attention_mask").to(wte.device()).to(torch::kBool);
    const auto B = ids.size(0), L = ids.size(1), dh = d_ / heads_;
    auto h = torch::embedding(wte, ids) + params_.at("transformer.wpe.weight").narrow(0, 0, L).unsqueeze(0);
    for (std::int64_t i = 0; i < layers_; ++i) {
      const auto p = "transformer.h." + std::to_string(i) + ".";
      PostLnLayer adapters;
      attach_lora(adapters, i);
      auto a = torch::layer_norm(h, {d_}, params_.at(p + "ln_1.weight"), params_.at(p + "ln_1.bias"), eps_);
      const auto qkv = add_adapters(torch::addmm(params_.at(p + "attn.c_attn.bias"), a.reshape({B * L, d_}),
                                                 params_.at(p + "attn.c_attn.weight")).view({B, L, 3 * d_}),
                                    a, adapters, Projection::kInProj);
      const auto split = [&](std::int64_t j) { return qkv.narrow(-1, j * d_, d_).view({B, L, heads_, dh}).transpose(1, 2); };
      const auto ctx = causal_attention(split(0), split(1), split(2), keep, 1.0 / std::sqrt(static_cast<double>(dh)))
                           .transpose(1, 2).reshape({B, L, d_});
      h = h + conv1d(ctx, p + "attn.c_proj", adapters, Projection::kOutProj);
      a = torch::layer_norm(h, {d_}, params_.at(p + "ln_2.weight"), params_.at(p + "ln_2.bias"), eps_);
      auto f = conv1d(a, p + "mlp.c_fc", adapters, Projection::kFf1);
      f = torch::gelu(f, "tanh");  // gelu_new
      h = h + conv1d(f, p + "mlp.c_proj", adapters, Projection::kFf2);
    }
    h = torch::layer_norm(h, {d_}, params_.at("transformer.ln_f.weight"), params_.at("transformer.ln_f.bias"), eps_);
    // mean over positions 1 .. eos_idx - 1 (eos_idx = real tokens - 1): the genes, without BOS and EOS
    const auto lengths = keep.sum(1, true);
    const auto pos = torch::arange(L, ids.options()).unsqueeze(0);
    const auto genes = (pos >= 1) & (pos < lengths - 1);
    EncoderOutput out;
    out.cell_embedding = masked_mean(h, genes.to(h.scalar_type())).to(torch::kFloat32);
    if (want_states) out.token_states = h.to(torch::kFloat32);
    return out;
  }

  LoadReport load_weights(const StateDict& dict, const std::string& source, const LoadOptions& options) override {
    // Older transformers saved the causal-mask buffers attn.bias / attn.masked_bias; the LM head is tied to wte.
    StateDict filtered;
    for (const auto& [name, t] : dict) {
      const bool buffer = (name.size() > 10 && name.compare(name.size() - 10, 10, ".attn.bias") == 0) ||
                          name.find(".attn.masked_bias") != std::string::npos;
      if (!buffer) filtered[name.rfind("transformer.", 0) == 0 || name.rfind("lm_head.", 0) == 0 ? name : "transformer." + name] = t;
    }
    return params_.load(filtered, source, options, {}, {"lm_head."});
  }

  std::int64_t num_layers() const override { return layers_; }

  LoraSite lora_site(const std::string& target, std::int64_t i) const override {
    const auto p = "transformer.h." + std::to_string(i) + ".";
    LoraSite site;
    if (target == "c_attn") {
      site = {Projection::kInProj, 0, 3 * d_, d_, p + "attn.c_attn.weight", p + "attn.c_attn"};
    } else if (target == "c_proj") {
      site = {Projection::kOutProj, 0, d_, d_, p + "attn.c_proj.weight", p + "attn.c_proj"};
    } else if (target == "c_fc") {
      site = {Projection::kFf1, 0, inner_, d_, p + "mlp.c_fc.weight", p + "mlp.c_fc"};
    } else if (target == "mlp.c_proj") {
      site = {Projection::kFf2, 0, d_, inner_, p + "mlp.c_proj.weight", p + "mlp.c_proj"};
    } else {
      throw ConfigError({"", "lora.targets", target}, "tgpt adapts c_attn, c_proj (attention), c_fc or mlp.c_proj");
    }
    site.transposed = true;  // Conv1D
    return site;
  }

 private:
  /// GPT-2's Conv1D: x W + b with W [in, out], plus adapters.
  torch::Tensor conv1d(const torch::Tensor& x, const std::string& name, const PostLnLayer& adapters, Projection where) {
    const auto& w = params_.at(name + ".weight");
    auto shape = x.sizes().vec();
    shape.back() = w.size(1);
    const auto y = torch::addmm(params_.at(name + ".bias"), x.reshape({-1, x.size(-1)}), w).view(shape);
    return add_adapters(y, x, adapters, where);
  }

  std::int64_t vocab_size_, d_, layers_, heads_, inner_, positions_;
  double eps_;
  std::int64_t bos_, eos_, pad_, unk_, max_length_;
  GeneVocab vocab_;
};

}  // namespace

std::unique_ptr<Encoder> make_tgpt(const nlohmann::json& config, const EncoderFiles& files) {
  return std::make_unique<Tgpt>(config, files);
}

}  // namespace sdm::worker
