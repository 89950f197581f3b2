// scBERT (TencentAILabHealthcare/scBERT) and CellLM (PharMolix/OpenBioMed PerformerLM_CellLM): Performer encoders
// over binned log2 expression with gene2vec positions (reference/models.md §5, §8). One family, one translation
// unit. scBERT reads every panel gene (zeros too) plus one appended 0 token and is mean-pooled; CellLM reads a
// <cls> token and the cell's nonzero genes at their panel positions, padded to max_seq_len, and uses <cls>.
#include <spdlog/spdlog.h>

#include <cmath>

#include "common/error.h"
#include "worker/models/encoder.h"
#include "worker/models/performer.h"

namespace sdm::worker {
namespace {

class PerformerEncoder final : public Encoder {
 public:
  PerformerEncoder(std::string name, const nlohmann::json& c, const EncoderFiles& files)
      : name_(std::move(name)), celllm_(name_ == "celllm"), tokens_(c.at("num_tokens")), dim_(c.at("dim")),
        depth_(c.at("depth")), heads_(c.at("heads")), dim_head_(c.at("dim_head")), max_seq_(c.at("max_seq_len")),
        features_(c.at("nb_features")), ff_(c.at("ff_mult")), bin_num_(c.at("bin_num")), genes_(c.at("gene_num")),
        target_sum_(c.at("target_sum")), max_genes_(c.value("max_genes", std::int64_t{0})) {
    if (dim_ <= 0 || depth_ <= 0 || heads_ <= 0 || dim_head_ <= 0 || features_ <= 0 || ff_ <= 0) {
      throw ConfigError({"", "dim", std::to_string(dim_)}, "dim, depth, heads, dim_head, nb_features, ff_mult must be positive");
    }
    if (tokens_ < bin_num_ + (celllm_ ? 3 : 2)) {
      throw ConfigError({"", "num_tokens", std::to_string(tokens_)}, "too few for bin_num " + std::to_string(bin_num_));
    }
    if (!celllm_ && max_seq_ != genes_ + 1) {
      throw ConfigError({"", "max_seq_len", std::to_string(max_seq_)},
                        "scBERT reads every panel gene plus one appended token: gene_num + 1 = " + std::to_string(genes_ + 1));
    }
    if (max_genes_ < 0) throw ConfigError({"", "max_genes", std::to_string(max_genes_)}, "0 (all panel genes) or a count");
    // scBERT reads the first max_genes panel genes (the study: 6,000) + the appended token; positions keep their rows
    length_ = celllm_ ? max_seq_ : (max_genes_ > 0 ? std::min(max_genes_, genes_) : genes_) + 1;
    // CellLM: bins 1..bin_num, <cls> = bin_num + 1, <pad> = bin_num + 2 (6 and 7 for the published 8 tokens)
    cls_token_ = bin_num_ + 1;
    pad_token_ = bin_num_ + 2;
    vocab_ = files.vocab.empty() ? GeneVocab::hashed(genes_, 0) : GeneVocab::load(files.vocab);
    if (vocab_.size() > genes_) {
      throw ConfigError({files.vocab, "gene_num", std::to_string(vocab_.size())}, "the gene panel has more positions than gene_num");
    }
    const std::int64_t inner = heads_ * dim_head_;
    params_.add("token_emb.weight", {tokens_, dim_});
    params_.add("pos_emb.emb.weight", {celllm_ ? genes_ + 2 : max_seq_, dim_});
    for (std::int64_t i = 0; i < depth_; ++i) {
      const auto p = "performer.net.layers." + std::to_string(i) + ".";
      params_.add(p + "0.norm.weight", {dim_});
      params_.add(p + "0.norm.bias", {dim_});
      for (const char* n : {"to_q", "to_k", "to_v"}) params_.add(p + "0.fn." + n + ".weight", {inner, dim_});
      params_.add(p + "0.fn.to_out.weight", {dim_, inner});
      params_.add(p + "0.fn.to_out.bias", {dim_});
      params_.add(p + "0.fn.fast_attention.projection_matrix", {features_, dim_head_});
      params_.add(p + "1.norm.weight", {dim_});
      params_.add(p + "1.norm.bias", {dim_});
      params_.add(p + "1.fn.fn.w1.weight", {dim_ * ff_, dim_});
      params_.add(p + "1.fn.fn.w1.bias", {dim_ * ff_});
      params_.add(p + "1.fn.fn.w2.weight", {dim_, dim_ * ff_});
      params_.add(p + "1.fn.fn.w2.bias", {dim_});
    }
    params_.add("norm.weight", {dim_});
    params_.add("norm.bias", {dim_});
  }

  std::string name() const override { return name_; }
  std::int64_t dim() const override { return dim_; }
  std::vector<std::string> input_names() const override {
    return celllm_ ? std::vector<std::string>{"x", "gene_pos", "mask"} : std::vector<std::string>{"x"};
  }

  TokenizedCells tokenize(const CsrMatrix& X, const GeneInputs& genes, const std::vector<std::uint64_t>&) const override {
    // normalize_total(target_sum) over the panel genes, log2(1 + x), clamp to bin_num, truncate: the bins
    const auto panel = map_genes(genes.symbols.empty() ? genes.ensembl : genes.symbols, vocab_);
    TokenizedCells out;
    for (std::int64_t r = 0; r < X.rows; ++r) {
      std::vector<std::pair<std::int64_t, double>> entries;  // panel position, count
      double total = 0;
      for (auto k = X.indptr[static_cast<std::size_t>(r)]; k < X.indptr[static_cast<std::size_t>(r) + 1]; ++k) {
        const auto pos = panel[static_cast<std::size_t>(X.indices[static_cast<std::size_t>(k)])];
        const double v = X.data[static_cast<std::size_t>(k)];
        if (pos < 0 || v == 0) continue;
        entries.emplace_back(pos, v);
        total += v;
      }
      std::sort(entries.begin(), entries.end());
      std::vector<std::int64_t> ids;
      std::vector<float> bins;
      for (std::size_t i = 0; i < entries.size(); ++i) {
        double v = entries[i].second;
        while (i + 1 < entries.size() && entries[i + 1].first == entries[i].first) v += entries[++i].second;  // one position
        const double value = std::log2(1.0 + v / total * target_sum_);
        const auto bin = static_cast<std::int64_t>(std::min(value, static_cast<double>(bin_num_)));
        if (!celllm_ && (bin == 0 || entries[i].first >= length_ - 1)) continue;  // 0 in the dense row anyway, or cut
        ids.push_back(entries[i].first);
        bins.push_back(static_cast<float>(bin));
      }
      if (ids.empty()) ++out.cells_without_genes;
      if (celllm_ && static_cast<std::int64_t>(ids.size()) > max_seq_ - 1) {  // <cls> + the first genes by position
        ids.resize(static_cast<std::size_t>(max_seq_ - 1));
        bins.resize(static_cast<std::size_t>(max_seq_ - 1));
      }
      out.ids.push_back(std::move(ids));
      out.values.push_back(std::move(bins));
    }
    return out;
  }

  ModelInputs collate(const TokenizedCells& cells, const std::vector<std::size_t>& rows) const override {
    const auto B = static_cast<std::int64_t>(rows.size());
    if (!celllm_) {
      auto x = torch::zeros({B, length_}, torch::kInt64);  // every panel gene, zeros included, + the extra 0
      auto* p = x.data_ptr<std::int64_t>();
      for (std::int64_t b = 0; b < B; ++b) {
        const auto r = rows[static_cast<std::size_t>(b)];
        for (std::size_t i = 0; i < cells.ids[r].size(); ++i) p[b * length_ + cells.ids[r][i]] = static_cast<std::int64_t>(cells.values[r][i]);
      }
      return {{"x", x}};
    }
    // CellLM pads every cell to max_seq_len, as the original dataset does (a cell never depends on its batch)
    auto x = torch::full({B, max_seq_}, pad_token_, torch::kInt64);
    auto pos = torch::full({B, max_seq_}, genes_ + 1, torch::kInt64);
    auto mask = torch::zeros({B, max_seq_}, torch::kUInt8);
    for (std::int64_t b = 0; b < B; ++b) {
      const auto r = rows[static_cast<std::size_t>(b)];
      auto* xp = x.data_ptr<std::int64_t>() + b * max_seq_;
      auto* pp = pos.data_ptr<std::int64_t>() + b * max_seq_;
      xp[0] = cls_token_;
      pp[0] = genes_;
      for (std::size_t i = 0; i < cells.ids[r].size(); ++i) {
        xp[i + 1] = static_cast<std::int64_t>(cells.values[r][i]);
        pp[i + 1] = cells.ids[r][i];
      }
      std::fill_n(mask.data_ptr<std::uint8_t>() + b * max_seq_, cells.ids[r].size() + 1, std::uint8_t{1});
    }
    return {{"x", x}, {"gene_pos", pos}, {"mask", mask}};
  }

  void check_inputs(const ModelInputs& inputs, const std::string& source) const override {
    const auto& x = inputs.at("x");
    check_2d(x, "x", source, -1, length_);
    check_ids(x, tokens_, "x", source);
    if (celllm_) {
      check_2d(inputs.at("gene_pos"), "gene_pos", source, x.size(0), max_seq_);
      check_2d(inputs.at("mask"), "mask", source, x.size(0), max_seq_);
      check_ids(inputs.at("gene_pos"), genes_ + 2, "gene_pos", source);
    }
  }

  EncoderOutput forward(const ModelInputs& inputs, bool want_states) override {
    const auto x = inputs.at("x").to(torch::kInt64);
    const auto L = x.size(1);
    auto h = torch::embedding(params_.at("token_emb.weight"), x);
    torch::Tensor keep;
    if (celllm_) {
      h = h + torch::embedding(params_.at("pos_emb.emb.weight"), inputs.at("gene_pos").to(torch::kInt64));
      keep = inputs.at("mask").to(torch::kBool);
    } else {
      h = h + params_.at("pos_emb.emb.weight").narrow(0, 0, L).unsqueeze(0);
    }
    for (std::int64_t i = 0; i < depth_; ++i) h = performer_forward(h, layer(i), keep);
    h = torch::layer_norm(h, {dim_}, params_.at("norm.weight"), params_.at("norm.bias"), 1e-5);
    EncoderOutput out;
    if (celllm_) {
      h = h * keep.unsqueeze(-1).to(h.dtype());
      out.cell_embedding = h.select(1, 0).contiguous();
    } else {
      out.cell_embedding = h.mean(1);
    }
    if (want_states) out.token_states = h;
    return out;
  }

  LoadReport load_weights(const StateDict& dict, const std::string& source, const LoadOptions& options) override {
    // The MLM head (to_out) and the redraw counter are not part of the encoder.
    return params_.load(dict, source, options, {}, {"to_out.", "performer.calls_since_last_redraw"});
  }

  void after_random_init(std::uint64_t seed) override {
    // Random init: FAVOR+ features need N(0, 1) projections (the generic N(0, 0.02) would flatten them).
    torch::NoGradGuard no_grad;
    auto gen = at::detail::createCPUGenerator(seed + 1);
    for (std::int64_t i = 0; i < depth_; ++i) {
      params_.at("performer.net.layers." + std::to_string(i) + ".0.fn.fast_attention.projection_matrix").normal_(0.0, 1.0, gen);
    }
  }

  std::int64_t num_layers() const override { return depth_; }

  LoraSite lora_site(const std::string& target, std::int64_t i) const override {
    const auto p = "performer.net.layers." + std::to_string(i) + ".";
    const std::int64_t inner = heads_ * dim_head_;
    const std::vector<std::string> qkv{"to_q", "to_k", "to_v"};
    for (std::int64_t j = 0; j < 3; ++j) {
      if (target == qkv[static_cast<std::size_t>(j)]) {
        return {Projection::kInProj, j * inner, inner, dim_, p + "0.fn." + target + ".weight", p + "0.fn." + target};
      }
    }
    if (target == "to_out") return {Projection::kOutProj, 0, dim_, inner, p + "0.fn.to_out.weight", p + "0.fn.to_out"};
    if (target == "w1") return {Projection::kFf1, 0, dim_ * ff_, dim_, p + "1.fn.fn.w1.weight", p + "1.fn.fn.w1"};
    if (target == "w2") return {Projection::kFf2, 0, dim_, dim_ * ff_, p + "1.fn.fn.w2.weight", p + "1.fn.fn.w2"};
    throw ConfigError({"", "lora.targets", target}, name_ + " adapts to_q, to_k, to_v, to_out, w1 or w2");
  }

 private:
  PerformerLayer layer(std::int64_t i) {
    const auto p = "performer.net.layers." + std::to_string(i) + ".";
    PerformerLayer l;
    l.ln1_w = params_.at(p + "0.norm.weight");
    l.ln1_b = params_.at(p + "0.norm.bias");
    l.qkv_w = torch::cat({params_.at(p + "0.fn.to_q.weight"), params_.at(p + "0.fn.to_k.weight"), params_.at(p + "0.fn.to_v.weight")});
    l.out_w = params_.at(p + "0.fn.to_out.weight");
    l.out_b = params_.at(p + "0.fn.to_out.bias");
    l.projection = params_.at(p + "0.fn.fast_attention.projection_matrix");
    l.ln2_w = params_.at(p + "1.norm.weight");
    l.ln2_b = params_.at(p + "1.norm.bias");
    l.ff1_w = params_.at(p + "1.fn.fn.w1.weight");
    l.ff1_b = params_.at(p + "1.fn.fn.w1.bias");
    l.ff2_w = params_.at(p + "1.fn.fn.w2.weight");
    l.ff2_b = params_.at(p + "1.fn.fn.w2.bias");
    l.heads = heads_;
    attach_lora(l.adapters, i);
    return l;
  }

  std::string name_;
  bool celllm_;
  std::int64_t tokens_, dim_, depth_, heads_, dim_head_, max_seq_, features_, ff_, bin_num_, genes_;
  double target_sum_;
  std::int64_t max_genes_, length_ = 0;
  std::int64_t cls_token_ = 6, pad_token_ = 7;
  GeneVocab vocab_;
};

}  // namespace

std::unique_ptr<Encoder> make_scbert(const nlohmann::json& config, const EncoderFiles& files) {
  return std::make_unique<PerformerEncoder>("scbert", config, files);
}

std::unique_ptr<Encoder> make_celllm(const nlohmann::json& config, const EncoderFiles& files) {
  return std::make_unique<PerformerEncoder>("celllm", config, files);
}

}  // namespace sdm::worker
