// scFoundation (biomap-research/scFoundation, xTrimoGene "01B", the 'cell' sub-model): a 19,264-gene panel, log1p
// of 10^4-normalized values, the target-resolution (T) and read-depth (S) tokens appended, only nonzero genes to
// the encoder; values embedded by auto-discretization, plus a learned table indexed by gene position; a post-LN
// transformer and a final LayerNorm. Cell embedding = S output, T output, max and mean over the gene outputs
// (3072-d), each cell pooled over its own tokens (reference/models.md §3).
#include <cmath>

#include "common/error.h"
#include "worker/models/encoder.h"
#include "worker/models/transformer.h"

namespace sdm::worker {
namespace {

class ScFoundation final : public Encoder {
 public:
  ScFoundation(const nlohmann::json& c, const EncoderFiles& files)
      : d_(c.at("encoder").at("hidden_dim")), layers_(c.at("encoder").at("depth")), heads_(c.at("encoder").at("heads")),
        seq_len_(c.at("seq_len")), bins_(c.at("bin_num")), alpha_(c.at("bin_alpha")), pad_(c.at("pad_token_id")),
        mask_(c.at("mask_token_id")), resolution_(c.at("tgthighres")), pool_(c.at("pool_type")),
        max_tokens_(c.at("max_tokens")) {
    if (d_ <= 0 || heads_ <= 0 || d_ % heads_ != 0) {
      throw ConfigError({"", "encoder.hidden_dim", std::to_string(d_)}, "must be a positive multiple of encoder.heads");
    }
    if (seq_len_ < 3) throw ConfigError({"", "seq_len", std::to_string(seq_len_)}, "the panel plus the T and S tokens");
    if (resolution_.size() < 2 || std::string("tfa").find(resolution_[0]) == std::string::npos) {
      throw ConfigError({"", "tgthighres", resolution_}, "expected tX (T = X), aX (T = log10(total) + X) or fX (T = log10(total X))");
    }
    try {
      resolution_value_ = std::stod(resolution_.substr(1));
    } catch (const std::exception&) {
      throw ConfigError({"", "tgthighres", resolution_}, "the part after t/a/f must be a number");
    }
    if (pool_ != "all" && pool_ != "max") throw ConfigError({"", "pool_type", pool_}, "expected all (3072-d) or max");
    panel_ = seq_len_ - 2;
    vocab_ = files.vocab.empty() ? GeneVocab::hashed(panel_, 0) : GeneVocab::load(files.vocab);
    if (vocab_.size() > panel_) {
      throw ConfigError({files.vocab, "seq_len", std::to_string(seq_len_)}, "the gene index has more positions than seq_len - 2");
    }
    params_.add("token_emb.mlp.weight", {bins_, 1});
    params_.add("token_emb.mlp.bias", {bins_});
    params_.add("token_emb.mlp2.weight", {bins_, bins_});
    params_.add("token_emb.mlp2.bias", {bins_});
    params_.add("token_emb.emb.weight", {bins_, d_});
    params_.add("token_emb.emb_mask.weight", {1, d_});
    params_.add("token_emb.emb_pad.weight", {1, d_});
    params_.add("pos_emb.weight", {seq_len_ + 1, d_});
    for (std::int64_t i = 0; i < layers_; ++i) {
      const auto p = prefix(i);
      add_torch_layer_params(params_, p, d_, 4 * d_);
    }
    params_.add("encoder.norm.weight", {d_});
    params_.add("encoder.norm.bias", {d_});
  }

  std::string name() const override { return "scfoundation"; }
  std::int64_t dim() const override { return pool_ == "all" ? 4 * d_ : d_; }
  std::vector<std::string> input_names() const override { return {"x", "position_gene_ids", "x_padding"}; }

  TokenizedCells tokenize(const CsrMatrix& X, const GeneInputs& genes, const std::vector<std::uint64_t>&) const override {
    // get_embedding.py, single cells, pre_normalized F: panel-aligned counts (missing genes 0, other genes
    // dropped), total over the panel, log1p(count / total x 1e4) of the nonzero genes in panel order, then T and S.
    const auto panel = map_genes(genes.symbols.empty() ? genes.ensembl : genes.symbols, vocab_);
    TokenizedCells out;
    for (std::int64_t r = 0; r < X.rows; ++r) {
      std::vector<std::pair<std::int64_t, double>> entries;
      double total = 0;
      for (auto k = X.indptr[static_cast<std::size_t>(r)]; k < X.indptr[static_cast<std::size_t>(r) + 1]; ++k) {
        const auto pos = panel[static_cast<std::size_t>(X.indices[static_cast<std::size_t>(k)])];
        if (pos < 0 || X.data[static_cast<std::size_t>(k)] == 0) continue;
        entries.emplace_back(pos, X.data[static_cast<std::size_t>(k)]);
        total += X.data[static_cast<std::size_t>(k)];
      }
      std::sort(entries.begin(), entries.end());
      std::vector<std::int64_t> ids;
      std::vector<float> values;
      for (std::size_t i = 0; i < entries.size(); ++i) {
        double v = entries[i].second;
        while (i + 1 < entries.size() && entries[i + 1].first == entries[i].first) v += entries[++i].second;
        ids.push_back(entries[i].first);
        values.push_back(static_cast<float>(std::log1p(v / total * 1e4)));
      }
      if (ids.empty()) {
        ++out.cells_without_genes;
        total = 1;  // log10(0) is undefined: such a cell gets S = 0
      }
      const double s = std::log10(total);
      const double t = resolution_[0] == 't' ? resolution_value_
                       : resolution_[0] == 'a' ? s + resolution_value_
                                               : std::log10(total * resolution_value_);
      ids.push_back(panel_);
      values.push_back(static_cast<float>(t));
      ids.push_back(panel_ + 1);
      values.push_back(static_cast<float>(s));
      if (max_tokens_ > 0 && static_cast<std::int64_t>(ids.size()) > max_tokens_) {  // the study's FT: first 100
        ids.resize(static_cast<std::size_t>(max_tokens_));
        values.resize(static_cast<std::size_t>(max_tokens_));
      }
      out.ids.push_back(std::move(ids));
      out.values.push_back(std::move(values));
    }
    return out;
  }

  ModelInputs collate(const TokenizedCells& cells, const std::vector<std::size_t>& rows) const override {
    std::int64_t L = 1;
    for (auto r : rows) L = std::max<std::int64_t>(L, static_cast<std::int64_t>(cells.ids[r].size()));
    const auto B = static_cast<std::int64_t>(rows.size());
    auto x = torch::full({B, L}, static_cast<float>(pad_), torch::kFloat32);
    auto pos = torch::full({B, L}, seq_len_, torch::kInt64);
    auto padding = torch::ones({B, L}, torch::kUInt8);
    for (std::int64_t b = 0; b < B; ++b) {
      const auto r = rows[static_cast<std::size_t>(b)];
      const auto n = static_cast<std::int64_t>(cells.ids[r].size());
      std::copy(cells.values[r].begin(), cells.values[r].end(), x.data_ptr<float>() + b * L);
      std::copy(cells.ids[r].begin(), cells.ids[r].end(), pos.data_ptr<std::int64_t>() + b * L);
      std::fill_n(padding.data_ptr<std::uint8_t>() + b * L, n, std::uint8_t{0});
    }
    return {{"x", x}, {"position_gene_ids", pos}, {"x_padding", padding}};
  }

  void check_inputs(const ModelInputs& inputs, const std::string& source) const override {
    const auto& x = inputs.at("x");
    check_2d(x, "x", source, -1, -1);
    check_2d(inputs.at("position_gene_ids"), "position_gene_ids", source, x.size(0), x.size(1));
    check_2d(inputs.at("x_padding"), "x_padding", source, x.size(0), x.size(1));
    check_ids(inputs.at("position_gene_ids"), seq_len_ + 1, "position_gene_ids", source);
  }

  EncoderOutput forward(const ModelInputs& inputs, bool want_states) override {
    const auto x = inputs.at("x").to(torch::kFloat32);
    // AutoDiscretizationEmbedding2: a soft assignment of each value to bin_num learned bins
    auto a = torch::leaky_relu(torch::linear(x.unsqueeze(-1), params_.at("token_emb.mlp.weight"), params_.at("token_emb.mlp.bias")), 0.1);
    const auto z = torch::linear(a, params_.at("token_emb.mlp2.weight"), params_.at("token_emb.mlp2.bias")) + alpha_ * a;
    auto h = torch::matmul(torch::softmax(z, -1), params_.at("token_emb.emb.weight"));
    h = torch::where((x == static_cast<float>(mask_)).unsqueeze(-1), params_.at("token_emb.emb_mask.weight")[0], h);
    h = torch::where((x == static_cast<float>(pad_)).unsqueeze(-1), params_.at("token_emb.emb_pad.weight")[0], h);
    h = h + torch::embedding(params_.at("pos_emb.weight"), inputs.at("position_gene_ids").to(torch::kInt64));
    const auto keep = inputs.at("x_padding").to(torch::kBool).logical_not();
    const auto mask = KeyMask::from_keep(keep);
    for (std::int64_t i = 0; i < layers_; ++i) h = post_ln_forward(h, layer(i), mask);
    h = torch::layer_norm(h, {d_}, params_.at("encoder.norm.weight"), params_.at("encoder.norm.bias"), 1e-5);
    EncoderOutput out;
    out.cell_embedding = pool(h, mask.lengths);
    if (want_states) out.token_states = h;
    return out;
  }

  LoadReport load_weights(const StateDict& dict, const std::string& source, const LoadOptions& options) override {
    // A 'cell' sub-model exported with its "model." prefix is accepted too; the MAE decoder is not used.
    bool prefixed = false;
    for (const auto& [name, t] : dict) prefixed = prefixed || name.rfind("model.", 0) == 0;
    StateDict renamed;
    for (const auto& [name, t] : dict) renamed[prefixed && name.rfind("model.", 0) == 0 ? name.substr(6) : name] = t;
    return params_.load(renamed, source, options, {}, {"decoder.", "decoder_embed.", "norm.", "to_final."});
  }

  std::int64_t num_layers() const override { return layers_; }

  LoraSite lora_site(const std::string& target, std::int64_t i) const override {
    // torch's MultiheadAttention keeps in_proj as a bare Parameter; scPEFT swaps in a merged Linear over q, k, v
    if (const auto site = torch_layer_lora_site(target, prefix(i), d_, 4 * d_, "in_proj")) return *site;
    throw ConfigError({"", "lora.targets", target}, "scfoundation adapts out_proj, in_proj, linear1 or linear2");
  }

 private:
  static std::string prefix(std::int64_t i) { return "encoder.transformer_encoder." + std::to_string(i) + "."; }

  /// pool_type all: [S, T, max over genes, mean over genes] of each cell's own n tokens; max: max over all n.
  torch::Tensor pool(const torch::Tensor& h, const std::vector<std::int64_t>& lengths) const {
    std::vector<torch::Tensor> rows;
    for (std::int64_t b = 0; b < h.size(0); ++b) {
      const auto n = std::max<std::int64_t>(1, std::min<std::int64_t>(lengths[static_cast<std::size_t>(b)], h.size(1)));
      const auto cell = h[b].narrow(0, 0, n);
      if (pool_ == "max") {
        rows.push_back(std::get<0>(cell.max(0)));
        continue;
      }
      const auto genes = n > 2 ? cell.narrow(0, 0, n - 2) : torch::zeros({1, d_}, h.options());
      rows.push_back(torch::cat({cell[n - 1], cell[std::max<std::int64_t>(0, n - 2)], std::get<0>(genes.max(0)), genes.mean(0)}));
    }
    return torch::stack(rows);
  }

  PostLnLayer layer(std::int64_t i) {
    PostLnLayer l = torch_layer(params_, prefix(i), heads_, 1e-5);
    attach_lora(l, i);
    return l;
  }

  std::int64_t d_, layers_, heads_, seq_len_, bins_;
  double alpha_;
  std::int64_t pad_, mask_;
  std::string resolution_, pool_;
  std::int64_t max_tokens_;
  double resolution_value_ = 4;
  std::int64_t panel_ = 0;
  GeneVocab vocab_;
};

}  // namespace

std::unique_ptr<Encoder> make_scfoundation(const nlohmann::json& config, const EncoderFiles& files) {
  return std::make_unique<ScFoundation>(config, files);
}

}  // namespace sdm::worker
