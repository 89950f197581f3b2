// CellPLM (OmicsML/CellPLM, 20230926_85M; reference/models.md §6): a cell is one token. Cell tokens are
// log1p(counts) times the gene-embedding matrix, then Linear-ReLU-GroupNorm(4); Flowformer layers (pre-LN,
// Flow-Attention) attend ACROSS THE CELLS OF A BATCH; after pre_latent_norm the GMVAE inference network gives the
// 512-d latent mean, the cell embedding.
//
// Two deliberate, documented departures: (1) a cell's embedding depends on the other cells of its forward batch, so
// cells are embedded in fixed groups of `batch_cells` in input order (cells_per_forward), whatever batch size the
// caller asks for; (2) the original samples the GMVAE cluster y with hard Gumbel noise even in eval; we take
// argmax(logits), which makes the embedding deterministic (it will not match the original bit for bit).
#include <spdlog/spdlog.h>

#include <cmath>

#include "common/error.h"
#include "worker/models/encoder.h"

namespace sdm::worker {
namespace {

constexpr double kFlowEps = 1e-6;
constexpr std::int64_t kGroups = 4;  // GroupNorm(4, enc_hid) in extra_linear
const std::string kLatent = "latent.layers.1.inference.";

/// Flowformer's Flow-Attention (thuml/Flowformer as CellPLM vendors it) for q, k, v [1, h, N, dh], N = S = L.
torch::Tensor flow_attention(torch::Tensor q, torch::Tensor k, const torch::Tensor& v) {
  q = torch::sigmoid(q);
  k = torch::sigmoid(k);
  const auto L = static_cast<double>(q.size(2)), S = static_cast<double>(k.size(2));
  const auto dot = [](const torch::Tensor& x, const torch::Tensor& y) { return torch::matmul(x, y.unsqueeze(-1)).squeeze(-1); };
  const auto sink_incoming = 1.0 / dot(q + kFlowEps, k.sum(2) + kFlowEps);       // [1, h, N]
  const auto source_outgoing = 1.0 / dot(k + kFlowEps, q.sum(2) + kFlowEps);
  const auto conserved_sink = dot(q + kFlowEps, (k * source_outgoing.unsqueeze(-1)).sum(2) + kFlowEps);
  const auto conserved_source = dot(k + kFlowEps, (q * sink_incoming.unsqueeze(-1)).sum(2) + kFlowEps).clamp(-1.0, 1.0);
  const auto sink_allocation = torch::sigmoid(conserved_sink * (L / S));
  const auto source_competition = torch::softmax(conserved_source, -1) * S;
  const auto kv = torch::matmul(k.transpose(-2, -1), v * source_competition.unsqueeze(-1));  // [1, h, dh, dh]
  return torch::matmul(q * sink_incoming.unsqueeze(-1), kv) * sink_allocation.unsqueeze(-1);
}

class Cellplm final : public Encoder {
 public:
  Cellplm(const nlohmann::json& c, const EncoderFiles& files)
      : d_(c.at("enc_hid")), layers_(c.at("enc_layers")), heads_(c.at("enc_head")), latent_(c.at("post_latent_dim")),
        clusters_(c.at("num_clusters")), genes_(c.at("gene_num")), batch_cells_(c.at("batch_cells")),
        max_genes_(c.at("max_genes")) {
    if (d_ <= 0 || heads_ <= 0 || d_ % heads_ != 0 || d_ % kGroups != 0) {
      throw ConfigError({"", "enc_hid", std::to_string(d_)}, "must be a positive multiple of enc_head and of 4 (GroupNorm)");
    }
    if (batch_cells_ < 1) throw ConfigError({"", "batch_cells", std::to_string(batch_cells_)}, "at least 1 cell per forward");
    if (max_genes_ < 0) throw ConfigError({"", "max_genes", std::to_string(max_genes_)}, "0 (all) or a count");
    vocab_ = files.vocab.empty() ? GeneVocab::hashed(genes_, 0) : GeneVocab::load(files.vocab);
    if (vocab_.size() > genes_) {
      throw ConfigError({files.vocab, "gene_num", std::to_string(vocab_.size())}, "the gene list is longer than gene_num");
    }
    params_.add("embedder.feat_enc.emb", {genes_, d_});
    params_.add("embedder.extra_linear.0.weight", {d_, d_});
    params_.add("embedder.extra_linear.0.bias", {d_});
    params_.add("embedder.extra_linear.3.weight", {d_});
    params_.add("embedder.extra_linear.3.bias", {d_});
    for (std::int64_t i = 0; i < layers_; ++i) {
      const auto p = "encoder.layers." + std::to_string(i) + ".";
      for (const char* n : {"query", "key", "value", "out"}) {
        params_.add(p + "self_attn." + n + "_projection.weight", {d_, d_});
        params_.add(p + "self_attn." + n + "_projection.bias", {d_});
      }
      params_.add(p + "_ff_block.0.weight", {2 * d_, d_});
      params_.add(p + "_ff_block.0.bias", {2 * d_});
      params_.add(p + "_ff_block.3.weight", {d_, 2 * d_});
      params_.add(p + "_ff_block.3.bias", {d_});
      for (const char* n : {"norm1", "norm2"}) {
        params_.add(p + n + ".weight", {d_});
        params_.add(p + n + ".bias", {d_});
      }
    }
    params_.add("pre_latent_norm.norm.weight", {d_});
    params_.add("pre_latent_norm.norm.bias", {d_});
    params_.add(kLatent + "inference_qyx.0.logits.weight", {clusters_, d_});
    params_.add(kLatent + "inference_qyx.0.logits.bias", {clusters_});
    params_.add(kLatent + "inference_qzyx.0.weight", {latent_, d_ + clusters_});
    params_.add(kLatent + "inference_qzyx.0.bias", {latent_});
    params_.add(kLatent + "inference_qzyx.2.mu.weight", {latent_, latent_});
    params_.add(kLatent + "inference_qzyx.2.mu.bias", {latent_});
  }

  std::string name() const override { return "cellplm"; }
  std::int64_t dim() const override { return latent_; }
  std::vector<std::string> input_names() const override { return {"x"}; }
  std::int64_t cells_per_forward() const override { return batch_cells_; }

  TokenizedCells tokenize(const CsrMatrix& X, const GeneInputs& genes, const std::vector<std::uint64_t>&) const override {
    // Genes outside the pretrained list are dropped; the rest keep their list position. With max_genes (the study:
    // 2,048), only the first max_genes of the file's genes that are in the list are read.
    auto panel = map_genes(genes.ensembl.empty() ? genes.symbols : genes.ensembl, vocab_);
    if (!genes.ensembl.empty() && !genes.symbols.empty()) {  // the list is Ensembl; symbols are converted
      const auto by_symbol = map_genes(genes.symbols, vocab_);
      for (std::size_t g = 0; g < panel.size(); ++g) panel[g] = panel[g] >= 0 ? panel[g] : by_symbol[g];
    }
    if (max_genes_ > 0) {
      std::int64_t seen = 0;
      for (auto& pos : panel) {
        if (pos >= 0 && ++seen > max_genes_) pos = -1;
      }
    }
    TokenizedCells out;
    for (std::int64_t r = 0; r < X.rows; ++r) {
      std::map<std::int64_t, double> counts;
      for (auto k = X.indptr[static_cast<std::size_t>(r)]; k < X.indptr[static_cast<std::size_t>(r) + 1]; ++k) {
        const auto pos = panel[static_cast<std::size_t>(X.indices[static_cast<std::size_t>(k)])];
        if (pos >= 0 && X.data[static_cast<std::size_t>(k)] != 0) counts[pos] += X.data[static_cast<std::size_t>(k)];
      }
      std::vector<std::int64_t> ids;
      std::vector<float> values;
      for (const auto& [pos, v] : counts) {
        ids.push_back(pos);
        values.push_back(static_cast<float>(v));
      }
      if (ids.empty()) ++out.cells_without_genes;
      out.ids.push_back(std::move(ids));
      out.values.push_back(std::move(values));
    }
    return out;
  }

  ModelInputs collate(const TokenizedCells& cells, const std::vector<std::size_t>& rows) const override {
    auto x = torch::zeros({static_cast<std::int64_t>(rows.size()), genes_});  // raw counts over the gene list
    auto* p = x.data_ptr<float>();
    for (std::size_t b = 0; b < rows.size(); ++b) {
      const auto r = rows[b];
      for (std::size_t i = 0; i < cells.ids[r].size(); ++i) p[static_cast<std::int64_t>(b) * genes_ + cells.ids[r][i]] = cells.values[r][i];
    }
    return {{"x", x}};
  }

  void check_inputs(const ModelInputs& inputs, const std::string& source) const override {
    const auto& x = inputs.at("x");
    check_2d(x, "x", source, -1, genes_);
    if (!x.is_floating_point()) throw DataError({source, "x", std::string(c10::toString(x.scalar_type()))}, "expected counts as floats");
    if (x.numel() > 0 && !(x.min().item<double>() >= 0)) throw DataError({source, "x", "negative or NaN"}, "counts must be >= 0");
  }

  EncoderOutput forward(const ModelInputs& inputs, bool want_states) override {
    const auto& emb = params_.at("embedder.feat_enc.emb");
    const auto x = inputs.at("x").to(emb.device(), torch::kFloat32);
    const auto N = x.size(0);
    auto h = torch::mm(torch::log1p(x), emb);  // no library-size normalization, as the original
    h = torch::relu(torch::linear(h, params_.at("embedder.extra_linear.0.weight"), params_.at("embedder.extra_linear.0.bias")));
    h = torch::group_norm(h, kGroups, params_.at("embedder.extra_linear.3.weight"), params_.at("embedder.extra_linear.3.bias"), 1e-5);
    h = h.unsqueeze(0);  // [1, N, d]: the batch's cells are one sequence
    const auto dh = d_ / heads_;
    for (std::int64_t i = 0; i < layers_; ++i) {
      const auto p = "encoder.layers." + std::to_string(i) + ".";
      PostLnLayer adapters;
      attach_lora(adapters, i);
      const auto a = torch::layer_norm(h, {d_}, params_.at(p + "norm1.weight"), params_.at(p + "norm1.bias"), 1e-5);
      const auto proj = [&](const std::string& n, Projection where) {
        return adapted_linear(a, params_.at(p + "self_attn." + n + "_projection.weight"),
                              params_.at(p + "self_attn." + n + "_projection.bias"), adapters, where)
            .view({1, N, heads_, dh})
            .transpose(1, 2);
      };
      const auto ctx = flow_attention(proj("query", Projection::kQ), proj("key", Projection::kK), proj("value", Projection::kV))
                           .transpose(1, 2).reshape({1, N, d_});
      h = h + adapted_linear(ctx, params_.at(p + "self_attn.out_projection.weight"), params_.at(p + "self_attn.out_projection.bias"),
                             adapters, Projection::kOutProj);
      const auto b = torch::layer_norm(h, {d_}, params_.at(p + "norm2.weight"), params_.at(p + "norm2.bias"), 1e-5);
      auto f = torch::gelu(adapted_linear(b, params_.at(p + "_ff_block.0.weight"), params_.at(p + "_ff_block.0.bias"), adapters, Projection::kFf1));
      h = h + adapted_linear(f, params_.at(p + "_ff_block.3.weight"), params_.at(p + "_ff_block.3.bias"), adapters, Projection::kFf2);
    }
    h = torch::layer_norm(h.squeeze(0), {d_}, params_.at("pre_latent_norm.norm.weight"), params_.at("pre_latent_norm.norm.bias"), 1e-5);
    const auto logits = torch::linear(h, params_.at(kLatent + "inference_qyx.0.logits.weight"), params_.at(kLatent + "inference_qyx.0.logits.bias"));
    const auto y = torch::one_hot(logits.argmax(-1), clusters_).to(h.scalar_type());  // argmax, not a Gumbel sample
    auto z = torch::relu(torch::linear(torch::cat({h, y}, 1), params_.at(kLatent + "inference_qzyx.0.weight"),
                                       params_.at(kLatent + "inference_qzyx.0.bias")));
    z = torch::linear(z, params_.at(kLatent + "inference_qzyx.2.mu.weight"), params_.at(kLatent + "inference_qzyx.2.mu.bias"));
    EncoderOutput out;
    out.cell_embedding = z;
    if (want_states) out.token_states = h.unsqueeze(1);  // [N, 1, d]: the cell token after pre_latent_norm
    return out;
  }

  LoadReport load_weights(const StateDict& dict, const std::string& source, const LoadOptions& options) override {
    // Pretraining parts (decoder, objective, masking, positional encoder, the GMVAE's variance and prior) are skipped.
    return params_.load(dict, source, options, {},
                        {"embedder.norm0.", "embedder.pe_enc.", "latent.", "decoder.", "objective.", "mask_model."});
  }

  std::int64_t num_layers() const override { return layers_; }

  LoraSite lora_site(const std::string& target, std::int64_t i) const override {
    const auto p = "encoder.layers." + std::to_string(i) + ".";
    const std::vector<std::pair<std::string, Projection>> attention{
        {"query_projection", Projection::kQ}, {"key_projection", Projection::kK},
        {"value_projection", Projection::kV}, {"out_projection", Projection::kOutProj}};
    for (const auto& [name, where] : attention) {
      if (target == name) return {where, 0, d_, d_, p + "self_attn." + name + ".weight", p + "self_attn." + name};
    }
    if (target == "_ff_block.0") return {Projection::kFf1, 0, 2 * d_, d_, p + "_ff_block.0.weight", p + "_ff_block.0"};
    if (target == "_ff_block.3") return {Projection::kFf2, 0, d_, 2 * d_, p + "_ff_block.3.weight", p + "_ff_block.3"};
    throw ConfigError({"", "lora.targets", target},
                      "cellplm adapts query_projection, key_projection, value_projection, out_projection, _ff_block.0 or _ff_block.3");
  }

 private:
  std::int64_t d_, layers_, heads_, latent_, clusters_, genes_, batch_cells_, max_genes_;
  GeneVocab vocab_;
};

}  // namespace

std::unique_ptr<Encoder> make_cellplm(const nlohmann::json& config, const EncoderFiles& files) {
  return std::make_unique<Cellplm>(config, files);
}

}  // namespace sdm::worker
