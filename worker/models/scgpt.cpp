// scGPT (bowang-lab/scGPT, whole-human checkpoint): gene embedding + continuous value encoder, post-LN
// transformer, cell embedding = the <cls> output of the last layer, L2-normalized (reference/models.md §1).
#include <spdlog/spdlog.h>

#include "common/error.h"
#include "worker/models/encoder.h"
#include "worker/models/transformer.h"

namespace sdm::worker {
namespace {

class ScGpt final : public Encoder {
 public:
  ScGpt(const nlohmann::json& c, const EncoderFiles& files)
      : d_(c.at("embsize")), heads_(c.at("nheads")), d_hid_(c.at("d_hid")), layers_(c.at("nlayers")),
        ntoken_(c.at("ntoken")), eps_(c.at("layer_norm_eps")), value_max_(c.at("value_max")),
        emb_style_(c.at("cell_emb_style")) {
    if (d_ <= 0 || heads_ <= 0 || d_ % heads_ != 0) throw ConfigError({"", "embsize", std::to_string(d_)}, "must be a positive multiple of nheads");
    if (emb_style_ != "cls" && emb_style_ != "avg-pool") {
      throw ConfigError({"", "cell_emb_style", emb_style_}, "supported: cls (the published model) or avg-pool");
    }
    tokenizer_.n_bins = c.at("n_bins");
    tokenizer_.pad_value = c.at("pad_value");
    tokenizer_.max_seq_len = c.at("max_seq_len");
    if (files.vocab.empty()) {
      // Whole-human layout without a vocabulary file: genes hashed below the three appended specials.
      vocab_ = GeneVocab::hashed(ntoken_ - 3, 0);
      pad_id_ = ntoken_ - 3;
      tokenizer_.cls_id = ntoken_ - 2;
    } else {
      vocab_ = GeneVocab::load(files.vocab);
      ntoken_ = vocab_.size();  // the original sizes the embedding by len(vocab)
      pad_id_ = vocab_.special(c.at("pad_token"), -1);
      tokenizer_.cls_id = vocab_.special(c.at("cls_token"), -1);
      if (pad_id_ < 0 || tokenizer_.cls_id < 0) {
        throw DataError({files.vocab, "", ""}, "the vocabulary lacks " + c.at("pad_token").get<std::string>() + " or " +
                                                    c.at("cls_token").get<std::string>());
      }
    }
    params_.add("encoder.embedding.weight", {ntoken_, d_});
    params_.add("encoder.enc_norm.weight", {d_});
    params_.add("encoder.enc_norm.bias", {d_});
    params_.add("value_encoder.linear1.weight", {d_, 1});
    params_.add("value_encoder.linear1.bias", {d_});
    params_.add("value_encoder.linear2.weight", {d_, d_});
    params_.add("value_encoder.linear2.bias", {d_});
    params_.add("value_encoder.norm.weight", {d_});
    params_.add("value_encoder.norm.bias", {d_});
    for (std::int64_t i = 0; i < layers_; ++i) {
      const auto p = "transformer_encoder.layers." + std::to_string(i) + ".";
      add_torch_layer_params(params_, p, d_, d_hid_);
    }
  }

  std::string name() const override { return "scgpt"; }
  std::int64_t dim() const override { return d_; }
  std::vector<std::string> input_names() const override { return {"src", "values", "src_key_padding_mask"}; }

  TokenizedCells tokenize(const CsrMatrix& X, const GeneInputs& genes, const std::vector<std::uint64_t>& seeds) const override {
    // scGPT's vocabulary is keyed by gene symbol
    return tokenizer_.tokenize(X, map_genes(genes.symbols.empty() ? genes.ensembl : genes.symbols, vocab_), seeds);
  }

  ModelInputs collate(const TokenizedCells& cells, const std::vector<std::size_t>& rows) const override {
    std::int64_t L = 1;
    for (auto r : rows) L = std::max<std::int64_t>(L, static_cast<std::int64_t>(cells.ids[r].size()));
    const auto B = static_cast<std::int64_t>(rows.size());
    auto src = torch::full({B, L}, pad_id_, torch::kInt64);
    auto values = torch::full({B, L}, tokenizer_.pad_value, torch::kFloat32);
    auto pad = torch::ones({B, L}, torch::kUInt8);
    for (std::int64_t b = 0; b < B; ++b) {
      const auto& ids = cells.ids[rows[static_cast<std::size_t>(b)]];
      const auto& vals = cells.values[rows[static_cast<std::size_t>(b)]];
      const auto n = static_cast<std::int64_t>(ids.size());
      std::copy(ids.begin(), ids.end(), src.data_ptr<std::int64_t>() + b * L);
      std::copy(vals.begin(), vals.end(), values.data_ptr<float>() + b * L);
      std::fill_n(pad.data_ptr<std::uint8_t>() + b * L, n, std::uint8_t{0});
    }
    return {{"src", src}, {"values", values}, {"src_key_padding_mask", pad}};
  }

  void check_inputs(const ModelInputs& inputs, const std::string& source) const override {
    const auto& src = inputs.at("src");
    check_2d(src, "src", source, -1, -1);
    check_2d(inputs.at("values"), "values", source, src.size(0), src.size(1));
    check_2d(inputs.at("src_key_padding_mask"), "src_key_padding_mask", source, src.size(0), src.size(1));
    if (src.is_floating_point()) throw DataError({source, "src", ""}, "expected integer token ids");
    check_ids(src, ntoken_, "src", source);
  }

  EncoderOutput forward(const ModelInputs& inputs, bool want_states) override {
    const auto src = inputs.at("src").to(torch::kInt64);
    const auto values = inputs.at("values").to(torch::kFloat32);
    const auto keep = inputs.at("src_key_padding_mask").to(torch::kBool).logical_not();
    auto x = torch::layer_norm(torch::embedding(params_.at("encoder.embedding.weight"), src), {d_},
                               params_.at("encoder.enc_norm.weight"), params_.at("encoder.enc_norm.bias"), 1e-5);
    auto v = torch::linear(values.clamp_max(value_max_).unsqueeze(-1), params_.at("value_encoder.linear1.weight"),
                           params_.at("value_encoder.linear1.bias"))
                 .relu_();
    v = torch::linear(v, params_.at("value_encoder.linear2.weight"), params_.at("value_encoder.linear2.bias"));
    v = torch::layer_norm(v, {d_}, params_.at("value_encoder.norm.weight"), params_.at("value_encoder.norm.bias"), 1e-5);
    x = x + v;
    const auto mask = KeyMask::from_keep(keep);
    // with <cls> pooling and no token states wanted, the last layer is needed at position 0 only
    const bool cls_only = emb_style_ == "cls" && !want_states && layers_ > 0;
    for (std::int64_t i = 0; i < layers_ - (cls_only ? 1 : 0); ++i) x = post_ln_forward(x, layer(i), mask);
    EncoderOutput out;
    torch::Tensor cell;
    if (cls_only) {
      const auto last = layer(layers_ - 1);
      cell = first_position_suffices(x, last) ? post_ln_forward_first(x, last, mask)
                                              : post_ln_forward(x, last, mask).select(1, 0);
    } else {
      cell = emb_style_ == "cls" ? x.select(1, 0) : x.mean(1);
    }
    out.cell_embedding = cell / cell.norm(2, {1}, true);
    if (want_states) out.token_states = x;
    return out;
  }

  std::int64_t num_layers() const override { return layers_; }

  LoraSite lora_site(const std::string& target, std::int64_t i) const override {
    // The published model's attention is flash-attn's fused Wqkv (one Linear of 3d outputs: one adapter over all
    // of q, k and v); torch's MultiheadAttention keeps in_proj as a bare Parameter PEFT cannot target.
    const auto p = "transformer_encoder.layers." + std::to_string(i) + ".";
    if (const auto site = torch_layer_lora_site(target, p, d_, d_hid_, "Wqkv")) return *site;
    throw ConfigError({"", "lora.targets", target}, "scgpt adapts out_proj, Wqkv, linear1 or linear2");
  }

  LoadReport load_weights(const StateDict& dict, const std::string& source, const LoadOptions& options) override {
    // Published checkpoints were saved with flash-attention's fused layer; its Wqkv has in_proj's layout.
    return params_.load(dict, source, options, {{"self_attn.Wqkv.", "self_attn.in_proj_"}, {"self_attn._impl.", "self_attn."}},
                        {"decoder.", "cls_decoder.", "mvc_decoder.", "flag_encoder.", "dab.", "grad_reverse_discriminator.",
                         "batch_encoder.", "dsbn.", "bns.", "sim."});
  }

 private:
  PostLnLayer layer(std::int64_t i) {
    PostLnLayer l = torch_layer(params_, "transformer_encoder.layers." + std::to_string(i) + ".", heads_, eps_);
    attach_lora(l, i);
    return l;
  }

  std::int64_t d_, heads_, d_hid_, layers_, ntoken_;
  double eps_, value_max_;
  std::string emb_style_;
  std::int64_t pad_id_ = 0;
  GeneVocab vocab_;
  ScgptTokenizer tokenizer_;
};

}  // namespace

std::unique_ptr<Encoder> make_scgpt(const nlohmann::json& config, const EncoderFiles& files) {
  return std::make_unique<ScGpt>(config, files);
}

}  // namespace sdm::worker
