// Geneformer (ctheodoris/Geneformer): rank-value encoded Ensembl tokens into a post-LN BERT; cell embedding =
// mean over the gene tokens of one hidden state (default the penultimate layer), or <cls> (reference/models.md §2).
#include <spdlog/spdlog.h>

#include "common/error.h"
#include "worker/models/encoder.h"
#include "worker/models/transformer.h"

namespace sdm::worker {
namespace {

class Geneformer final : public Encoder {
 public:
  Geneformer(const nlohmann::json& c, const EncoderFiles& files)
      : h_(c.at("hidden_size")), layers_(c.at("num_hidden_layers")), heads_(c.at("num_attention_heads")),
        ffn_(c.at("intermediate_size")), vocab_size_(c.at("vocab_size")), max_pos_(c.at("max_position_embeddings")),
        type_vocab_(c.at("type_vocab_size")), eps_(c.at("layer_norm_eps")), emb_layer_(c.at("emb_layer")),
        emb_mode_(c.at("emb_mode")) {
    const std::string act = c.at("hidden_act");
    if (act != "relu" && act != "gelu") throw ConfigError({"", "hidden_act", act}, "supported: relu (published) or gelu");
    gelu_ = act == "gelu";
    if (h_ <= 0 || heads_ <= 0 || h_ % heads_ != 0) {
      throw ConfigError({"", "hidden_size", std::to_string(h_)}, "must be a positive multiple of num_attention_heads");
    }
    if (emb_layer_ > 0 || emb_layer_ < -layers_) {
      throw ConfigError({"", "emb_layer", std::to_string(emb_layer_)},
                        "expected -" + std::to_string(layers_) + "..0 (-1 = penultimate layer, 0 = last)");
    }
    tokenizer_.special_tokens = c.at("special_tokens");
    tokenizer_.input_size = std::min(c.at("model_input_size").get<std::int64_t>(), max_pos_);
    if (emb_mode_ != "cell" && !(emb_mode_ == "cls" && tokenizer_.special_tokens)) {
      throw ConfigError({"", "emb_mode", emb_mode_}, "expected cell, or cls with special_tokens (V2)");
    }
    pad_id_ = c.at("pad_token_id");
    if (files.vocab.empty()) {
      vocab_ = GeneVocab::hashed(vocab_size_, tokenizer_.special_tokens ? 4 : 2);  // after <pad> <mask> (<cls> <eos>)
    } else {
      vocab_ = GeneVocab::load(files.vocab);
      if (vocab_.size() > vocab_size_) {
        throw ConfigError({files.vocab, "vocab_size", std::to_string(vocab_.size())},
                          "the token dictionary has more ids than the model's vocab_size " + std::to_string(vocab_size_));
      }
      if (!vocab_.has_medians()) spdlog::warn("{}: no gene medians; every gene's median factor is 1", files.vocab);
      pad_id_ = vocab_.special("<pad>", pad_id_);
    }
    tokenizer_.cls_id = vocab_.special("<cls>", 2);
    tokenizer_.eos_id = vocab_.special("<eos>", 3);
    params_.add("bert.embeddings.word_embeddings.weight", {vocab_size_, h_});
    params_.add("bert.embeddings.position_embeddings.weight", {max_pos_, h_});
    params_.add("bert.embeddings.token_type_embeddings.weight", {type_vocab_, h_});
    params_.add("bert.embeddings.LayerNorm.weight", {h_});
    params_.add("bert.embeddings.LayerNorm.bias", {h_});
    for (std::int64_t i = 0; i < layers_; ++i) {
      const auto p = "bert.encoder.layer." + std::to_string(i) + ".";
      for (const char* n : {"query", "key", "value"}) {
        params_.add(p + "attention.self." + n + ".weight", {h_, h_});
        params_.add(p + "attention.self." + n + ".bias", {h_});
      }
      params_.add(p + "attention.output.dense.weight", {h_, h_});
      params_.add(p + "attention.output.dense.bias", {h_});
      params_.add(p + "attention.output.LayerNorm.weight", {h_});
      params_.add(p + "attention.output.LayerNorm.bias", {h_});
      params_.add(p + "intermediate.dense.weight", {ffn_, h_});
      params_.add(p + "intermediate.dense.bias", {ffn_});
      params_.add(p + "output.dense.weight", {h_, ffn_});
      params_.add(p + "output.dense.bias", {h_});
      params_.add(p + "output.LayerNorm.weight", {h_});
      params_.add(p + "output.LayerNorm.bias", {h_});
    }
  }

  std::string name() const override { return "geneformer"; }
  std::int64_t dim() const override { return h_; }
  std::vector<std::string> input_names() const override { return {"input_ids", "attention_mask"}; }

  TokenizedCells tokenize(const CsrMatrix& X, const GeneInputs& genes, const std::vector<std::uint64_t>&) const override {
    // Geneformer's dictionaries are keyed by Ensembl id; totals are over all genes, as obs["n_counts"]
    std::vector<double> totals(static_cast<std::size_t>(X.rows), 0.0);
    for (std::int64_t r = 0; r < X.rows; ++r) {
      for (auto k = X.indptr[static_cast<std::size_t>(r)]; k < X.indptr[static_cast<std::size_t>(r) + 1]; ++k) {
        totals[static_cast<std::size_t>(r)] += X.data[static_cast<std::size_t>(k)];
      }
    }
    return tokenizer_.tokenize(X, map_genes(genes.ensembl.empty() ? genes.symbols : genes.ensembl, vocab_), vocab_, totals);
  }

  ModelInputs collate(const TokenizedCells& cells, const std::vector<std::size_t>& rows) const override {
    std::int64_t L = 1;
    for (auto r : rows) L = std::max<std::int64_t>(L, static_cast<std::int64_t>(cells.ids[r].size()));
    const auto B = static_cast<std::int64_t>(rows.size());
    auto ids = torch::full({B, L}, pad_id_, torch::kInt64);
    auto mask = torch::zeros({B, L}, torch::kInt64);
    for (std::int64_t b = 0; b < B; ++b) {
      const auto& t = cells.ids[rows[static_cast<std::size_t>(b)]];
      std::copy(t.begin(), t.end(), ids.data_ptr<std::int64_t>() + b * L);
      std::fill_n(mask.data_ptr<std::int64_t>() + b * L, static_cast<std::int64_t>(t.size()), std::int64_t{1});
    }
    return {{"input_ids", ids}, {"attention_mask", mask}};
  }

  void check_inputs(const ModelInputs& inputs, const std::string& source) const override {
    const auto& ids = inputs.at("input_ids");
    check_2d(ids, "input_ids", source, -1, -1);
    check_2d(inputs.at("attention_mask"), "attention_mask", source, ids.size(0), ids.size(1));
    if (ids.is_floating_point()) throw DataError({source, "input_ids", ""}, "expected integer token ids");
    check_ids(ids, vocab_size_, "input_ids", source);
    if (ids.size(1) > max_pos_) {
      throw DataError({source, "input_ids", std::to_string(ids.size(1))},
                      "longer than max_position_embeddings " + std::to_string(max_pos_));
    }
  }

  EncoderOutput forward(const ModelInputs& inputs, bool want_states) override {
    const auto ids = inputs.at("input_ids").to(torch::kInt64);
    const auto keep = inputs.at("attention_mask").to(torch::kBool);
    const auto L = ids.size(1);
    auto x = torch::embedding(params_.at("bert.embeddings.word_embeddings.weight"), ids);
    x.add_(params_.at("bert.embeddings.position_embeddings.weight").narrow(0, 0, L));
    x.add_(params_.at("bert.embeddings.token_type_embeddings.weight")[0]);
    x = torch::layer_norm(x, {h_}, params_.at("bert.embeddings.LayerNorm.weight"), params_.at("bert.embeddings.LayerNorm.bias"), eps_);
    const auto mask = KeyMask::from_keep(keep);
    // hidden_states[0] is the embedding output, hidden_states[i] layer i's; the original's emb_layer counts back
    // from the last, so -1 is the penultimate layer.
    const auto target = layers_ + emb_layer_;
    torch::Tensor chosen = target == 0 ? x : torch::Tensor();
    const auto last = want_states ? layers_ : target;
    for (std::int64_t i = 1; i <= last; ++i) {
      x = post_ln_forward(x, layer(i - 1), mask);
      if (i == target) chosen = x;
    }
    EncoderOutput out;
    if (emb_mode_ == "cls") {
      out.cell_embedding = chosen.select(1, 0).contiguous();
    } else {
      auto weights = keep.to(torch::kFloat32);
      if (tokenizer_.special_tokens) {
        // V2: <cls> (first real token) and <eos> (last real token) are not genes
        for (std::int64_t b = 0; b < weights.size(0); ++b) {
          const auto real = keep[b].nonzero();
          if (real.size(0) == 0) continue;
          weights[b][real[0][0].item<std::int64_t>()] = 0;
          weights[b][real[real.size(0) - 1][0].item<std::int64_t>()] = 0;
        }
      }
      out.cell_embedding = masked_mean(chosen, weights);
    }
    if (want_states) out.token_states = x;
    return out;
  }

  std::int64_t num_layers() const override { return layers_; }

  LoraSite lora_site(const std::string& target, std::int64_t i) const override {
    // BERT's query, key and value are separate Linears; ours is one fused projection, so each adapter adds to
    // its third of the outputs.
    const auto p = "bert.encoder.layer." + std::to_string(i) + ".";
    const auto a = p + "attention.self.";
    if (target == "query") return {Projection::kInProj, 0, h_, h_, a + "query.weight", a + "query"};
    if (target == "key") return {Projection::kInProj, h_, h_, h_, a + "key.weight", a + "key"};
    if (target == "value") return {Projection::kInProj, 2 * h_, h_, h_, a + "value.weight", a + "value"};
    if (target == "attention.output.dense") {
      return {Projection::kOutProj, 0, h_, h_, p + "attention.output.dense.weight", p + "attention.output.dense"};
    }
    if (target == "intermediate.dense") return {Projection::kFf1, 0, ffn_, h_, p + "intermediate.dense.weight", p + "intermediate.dense"};
    if (target == "output.dense") return {Projection::kFf2, 0, h_, ffn_, p + "output.dense.weight", p + "output.dense"};
    throw ConfigError({"", "lora.targets", target},
                      "geneformer adapts query, key, value, attention.output.dense, intermediate.dense or output.dense");
  }

  LoadReport load_weights(const StateDict& dict, const std::string& source, const LoadOptions& options) override {
    // A BertModel (not ForMaskedLM) checkpoint has no "bert." prefix.
    bool prefixed = false;
    for (const auto& [name, t] : dict) prefixed = prefixed || name.rfind("bert.", 0) == 0;
    if (prefixed) return params_.load(dict, source, options, {}, kUnused);
    StateDict renamed;
    for (const auto& [name, t] : dict) renamed["bert." + name] = t;
    return params_.load(renamed, source, options, {}, kUnused);
  }

 private:
  inline static const std::vector<std::string> kUnused{"cls.", "bert.pooler.", "bert.embeddings.position_ids",
                                                       "classifier.", "bert.cls."};

  PostLnLayer layer(std::int64_t i) {
    const auto p = "bert.encoder.layer." + std::to_string(i) + ".";
    const auto& a = p + "attention.self.";
    PostLnLayer l;
    // one fused projection: three GEMMs become one
    l.in_w = torch::cat({params_.at(a + "query.weight"), params_.at(a + "key.weight"), params_.at(a + "value.weight")});
    l.in_b = torch::cat({params_.at(a + "query.bias"), params_.at(a + "key.bias"), params_.at(a + "value.bias")});
    l.out_w = params_.at(p + "attention.output.dense.weight");
    l.out_b = params_.at(p + "attention.output.dense.bias");
    l.ln1_w = params_.at(p + "attention.output.LayerNorm.weight");
    l.ln1_b = params_.at(p + "attention.output.LayerNorm.bias");
    l.ff1_w = params_.at(p + "intermediate.dense.weight");
    l.ff1_b = params_.at(p + "intermediate.dense.bias");
    l.ff2_w = params_.at(p + "output.dense.weight");
    l.ff2_b = params_.at(p + "output.dense.bias");
    l.ln2_w = params_.at(p + "output.LayerNorm.weight");
    l.ln2_b = params_.at(p + "output.LayerNorm.bias");
    l.heads = heads_;
    l.eps = eps_;
    l.gelu = gelu_;
    attach_lora(l, i);
    return l;
  }

  std::int64_t h_, layers_, heads_, ffn_, vocab_size_, max_pos_, type_vocab_;
  double eps_;
  std::int64_t emb_layer_;
  std::string emb_mode_;
  bool gelu_ = false;
  std::int64_t pad_id_ = 0;
  GeneVocab vocab_;
  GeneformerTokenizer tokenizer_;
};

}  // namespace

std::unique_ptr<Encoder> make_geneformer(const nlohmann::json& config, const EncoderFiles& files) {
  return std::make_unique<Geneformer>(config, files);
}

}  // namespace sdm::worker
