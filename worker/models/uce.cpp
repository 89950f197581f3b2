// UCE (snap-stanford/UCE, 4- and 33-layer): a cell sentence of genes sampled in proportion to log1p counts,
// grouped by chromosome (chromosome order shuffled, genes by genomic start) between chromosome tokens, after
// <cls>, padded to a fixed length; tokens are rows of a protein-embedding table, L2-normalized, projected,
// sinusoidal positions, a post-LN transformer, a decoder MLP; cell embedding = the decoded <cls>, L2-normalized
// (reference/models.md §4).
#include <cmath>
#include <fstream>
#include <map>
#include <numeric>
#include <sstream>

#include "common/error.h"
#include "common/preprocess.h"
#include "worker/models/encoder.h"
#include "worker/models/transformer.h"

namespace sdm::worker {
namespace {

/// Gene symbol -> (token row, chromosome code, genomic start): UCE's species offsets + protein-embedding index +
/// species_chrom.csv, flattened into one TSV `gene<TAB>token<TAB>chromosome<TAB>start` (header allowed).
struct UceGene {
  std::int64_t token = -1;
  std::int64_t chromosome = 0;
  std::int64_t start = 0;
};

class UceGeneTable {
 public:
  static UceGeneTable load(const std::string& path) {
    UceGeneTable t;
    std::ifstream in(path);
    if (!in) throw IoError({path, "", ""}, "cannot read the UCE gene table");
    std::string line;
    std::size_t line_no = 0;
    while (std::getline(in, line)) {
      ++line_no;
      if (line.empty() || line[0] == '#') continue;
      std::istringstream f(line);
      std::string gene, token, chrom, start;
      std::getline(f, gene, '\t');
      std::getline(f, token, '\t');
      std::getline(f, chrom, '\t');
      std::getline(f, start, '\t');
      try {
        t.genes_[normalize_gene_name(gene)] = {std::stoll(token), std::stoll(chrom), std::stoll(start)};
      } catch (const std::exception&) {
        if (line_no == 1) continue;  // header
        throw DataError({path, "line " + std::to_string(line_no), line}, "expected gene<TAB>token<TAB>chromosome<TAB>start");
      }
    }
    if (t.genes_.empty()) throw DataError({path, "", ""}, "the UCE gene table has no genes");
    return t;
  }
  /// No table (tiny presets): token, chromosome and start are stable hashes of the gene symbol.
  static UceGeneTable hashed(std::int64_t first_token, std::int64_t end_token, std::int64_t chromosomes) {
    UceGeneTable t;
    t.hashed_ = true;
    t.first_ = first_token;
    t.end_ = end_token;
    t.chromosomes_ = std::max<std::int64_t>(1, chromosomes);
    return t;
  }
  UceGene find(const std::string& gene) const {
    const auto key = normalize_gene_name(gene);
    if (hashed_) {
      SplitMix64 h{cell_seed(0x5543450aULL, key)};
      const auto a = h.next(), b = h.next(), c = h.next();
      return {first_ + static_cast<std::int64_t>(a % static_cast<std::uint64_t>(end_ - first_)),
              static_cast<std::int64_t>(b % static_cast<std::uint64_t>(chromosomes_)), static_cast<std::int64_t>(c % 1000000000ULL)};
    }
    const auto it = genes_.find(key);
    return it == genes_.end() ? UceGene{} : it->second;
  }

 private:
  std::map<std::string, UceGene> genes_;
  bool hashed_ = false;
  std::int64_t first_ = 4, end_ = 4, chromosomes_ = 1;
};

class Uce final : public Encoder {
 public:
  Uce(const nlohmann::json& c, const EncoderFiles& files)
      : token_dim_(c.at("token_dim")), d_(c.at("d_model")), heads_(c.at("nhead")), d_hid_(c.at("d_hid")),
        layers_(c.at("nlayers")), out_dim_(c.at("output_dim")), dec_hidden_(c.at("decoder_hidden")),
        pad_length_(c.at("pad_length")), sample_size_(c.at("sample_size")), n_tokens_(c.at("n_tokens")),
        chrom_offset_(c.at("chrom_token_offset")),
        // UCE's PositionalEncoding keeps max_len = 1536 rows whatever length a cell is padded to; a checkpoint
        // says its own (make_encoder), and a shorter pad_length uses the first rows
        pe_rows_(c.value("max_len", std::max<std::int64_t>(1536, c.at("pad_length").get<std::int64_t>()))),
        mask_mode_(c.at("mask_mode")) {
    if (pad_length_ > pe_rows_) {
      throw ConfigError({"", "pad_length", std::to_string(pad_length_)},
                        "longer than the positional table (" + std::to_string(pe_rows_) + " rows)");
    }
    if (d_ <= 0 || heads_ <= 0 || d_ % heads_ != 0) throw ConfigError({"", "d_model", std::to_string(d_)}, "must be a positive multiple of nhead");
    if (mask_mode_ != "additive" && mask_mode_ != "exclude") {
      throw ConfigError({"", "mask_mode", mask_mode_}, "additive (UCE's float mask: padded keys get +1, the published embeddings) or exclude");
    }
    if (chrom_offset_ <= 4 || chrom_offset_ >= n_tokens_) {
      throw ConfigError({"", "chrom_token_offset", std::to_string(chrom_offset_)}, "must lie between the gene tokens and n_tokens");
    }
    genes_ = files.vocab.empty() ? UceGeneTable::hashed(4, chrom_offset_, n_tokens_ - chrom_offset_) : UceGeneTable::load(files.vocab);
    params_.add("pe_embedding.weight", {n_tokens_, token_dim_});
    params_.add("encoder.0.weight", {d_, token_dim_});
    params_.add("encoder.0.bias", {d_});
    params_.add("encoder.2.weight", {d_});
    params_.add("encoder.2.bias", {d_});
    params_.add("pos_encoder.pe", {pe_rows_, 1, d_});
    for (std::int64_t i = 0; i < layers_; ++i) {
      const auto p = prefix(i);
      add_torch_layer_params(params_, p, d_, d_hid_);
    }
    const std::vector<std::int64_t> widths{d_, dec_hidden_, out_dim_, out_dim_};
    for (int b = 0; b < 3; ++b) {
      const auto p = "decoder." + std::to_string(b) + ".";
      params_.add(p + "0.weight", {widths[static_cast<std::size_t>(b) + 1], widths[static_cast<std::size_t>(b)]});
      params_.add(p + "0.bias", {widths[static_cast<std::size_t>(b) + 1]});
      params_.add(p + "1.weight", {widths[static_cast<std::size_t>(b) + 1]});
      params_.add(p + "1.bias", {widths[static_cast<std::size_t>(b) + 1]});
    }
    params_.add("decoder.3.weight", {out_dim_, out_dim_});
    params_.add("decoder.3.bias", {out_dim_});
  }

  std::string name() const override { return "uce"; }
  std::int64_t dim() const override { return out_dim_; }
  std::vector<std::string> input_names() const override { return {"batch_sentences", "mask"}; }

  TokenizedCells tokenize(const CsrMatrix& X, const GeneInputs& genes, const std::vector<std::uint64_t>& seeds) const override {
    std::vector<UceGene> table;
    for (const auto& g : genes.symbols.empty() ? genes.ensembl : genes.symbols) table.push_back(genes_.find(g));
    TokenizedCells out;
    for (std::int64_t r = 0; r < X.rows; ++r) {
      std::vector<std::int64_t> cols;
      std::vector<double> cumulative;
      double sum = 0;
      for (auto k = X.indptr[static_cast<std::size_t>(r)]; k < X.indptr[static_cast<std::size_t>(r) + 1]; ++k) {
        const auto col = X.indices[static_cast<std::size_t>(k)];
        const double v = X.data[static_cast<std::size_t>(k)];
        if (v <= 0 || table[static_cast<std::size_t>(col)].token < 0) continue;
        sum += std::log1p(v);  // p proportional to log1p(count)
        cols.push_back(col);
        cumulative.push_back(sum);
      }
      std::vector<std::int64_t> sentence{kCls};
      if (cols.empty()) {
        ++out.cells_without_genes;
        out.ids.push_back(sentence);
        continue;
      }
      SplitMix64 rng{seeds[static_cast<std::size_t>(r)]};
      std::vector<std::int64_t> chosen;  // sample_size genes with replacement
      for (std::int64_t i = 0; i < sample_size_; ++i) {
        const double u = rng.uniform() * sum;
        const auto at = std::upper_bound(cumulative.begin(), cumulative.end(), u) - cumulative.begin();
        chosen.push_back(cols[static_cast<std::size_t>(std::min<std::ptrdiff_t>(at, static_cast<std::ptrdiff_t>(cols.size()) - 1))]);
      }
      std::map<std::int64_t, std::vector<std::int64_t>> by_chrom;
      for (auto col : chosen) by_chrom[table[static_cast<std::size_t>(col)].chromosome].push_back(col);
      std::vector<std::int64_t> order;
      for (const auto& [chrom, unused] : by_chrom) order.push_back(chrom);
      for (std::size_t i = order.size(); i > 1; --i) {  // shuffled chromosome order (Fisher-Yates)
        const auto j = static_cast<std::size_t>(rng.uniform() * static_cast<double>(i));
        std::swap(order[i - 1], order[std::min(j, i - 1)]);
      }
      for (auto chrom : order) {
        auto& cols_of = by_chrom[chrom];
        std::stable_sort(cols_of.begin(), cols_of.end(), [&](auto a, auto b) {
          return table[static_cast<std::size_t>(a)].start < table[static_cast<std::size_t>(b)].start;
        });
        sentence.push_back(chrom_offset_ + chrom);
        for (auto col : cols_of) sentence.push_back(table[static_cast<std::size_t>(col)].token);
        sentence.push_back(kChromClose);
      }
      if (static_cast<std::int64_t>(sentence.size()) > pad_length_) sentence.resize(static_cast<std::size_t>(pad_length_));
      out.ids.push_back(std::move(sentence));
    }
    return out;
  }

  ModelInputs collate(const TokenizedCells& cells, const std::vector<std::size_t>& rows) const override {
    // Every cell padded to pad_length: with the +1 mask quirk padding is attended, so a fixed length keeps a
    // cell's embedding independent of its batch (CONTRACTS §8).
    const auto B = static_cast<std::int64_t>(rows.size());
    auto ids = torch::full({B, pad_length_}, kPad, torch::kInt64);
    auto mask = torch::zeros({B, pad_length_}, torch::kFloat32);
    for (std::int64_t b = 0; b < B; ++b) {
      const auto& s = cells.ids[rows[static_cast<std::size_t>(b)]];
      std::copy(s.begin(), s.end(), ids.data_ptr<std::int64_t>() + b * pad_length_);
      std::fill_n(mask.data_ptr<float>() + b * pad_length_, s.size(), 1.0f);
    }
    return {{"batch_sentences", ids}, {"mask", mask}};
  }

  void check_inputs(const ModelInputs& inputs, const std::string& source) const override {
    const auto& ids = inputs.at("batch_sentences");
    check_2d(ids, "batch_sentences", source, -1, -1);
    check_2d(inputs.at("mask"), "mask", source, ids.size(0), ids.size(1));
    check_ids(ids, n_tokens_, "batch_sentences", source);
    if (ids.size(1) > pad_length_) {
      throw DataError({source, "batch_sentences", std::to_string(ids.size(1))}, "longer than pad_length " + std::to_string(pad_length_));
    }
  }

  EncoderOutput forward(const ModelInputs& inputs, bool want_states) override {
    const auto ids = inputs.at("batch_sentences").to(torch::kInt64);
    const auto real = inputs.at("mask").to(torch::kFloat32);
    const auto B = ids.size(0), L = ids.size(1);
    auto e = torch::embedding(params_.at("pe_embedding.weight"), ids);
    e = e / e.norm(2, {-1}, true).clamp_min(1e-12);  // F.normalize per token
    auto h = torch::gelu(torch::linear(e, params_.at("encoder.0.weight"), params_.at("encoder.0.bias")));
    h = torch::layer_norm(h, {d_}, params_.at("encoder.2.weight"), params_.at("encoder.2.bias"), 1e-5) * std::sqrt(static_cast<double>(d_));
    h = h + params_.at("pos_encoder.pe").narrow(0, 0, L).view({1, L, d_});
    KeyMask mask;
    if (mask_mode_ == "additive") {
      // UCE passes the float (1 - mask) as src_key_padding_mask, which torch adds to the logits: pads get +1
      mask.bias = (1.0 - real).contiguous();
      mask.lengths.assign(static_cast<std::size_t>(B), L);
    } else {
      mask = KeyMask::from_keep(real > 0.5);
    }
    // the decoder reads the last layer's position 0 only: without token states, that is all it computes
    const bool first_only = !want_states && layers_ > 0;
    for (std::int64_t i = 0; i < layers_ - (first_only ? 1 : 0); ++i) h = post_ln_forward(h, layer(i), mask);
    torch::Tensor dec;
    if (!first_only) {
      dec = h.select(1, 0);
    } else {
      const auto last = layer(layers_ - 1);
      dec = first_position_suffices(h, last) ? post_ln_forward_first(h, last, mask)
                                             : post_ln_forward(h, last, mask).select(1, 0);
    }
    for (int b = 0; b < 3; ++b) {
      const auto p = "decoder." + std::to_string(b) + ".";
      dec = torch::linear(dec, params_.at(p + "0.weight"), params_.at(p + "0.bias"));
      dec = torch::gelu(torch::layer_norm(dec, {dec.size(-1)}, params_.at(p + "1.weight"), params_.at(p + "1.bias"), 1e-5));
    }
    dec = torch::linear(dec, params_.at("decoder.3.weight"), params_.at("decoder.3.bias"));
    EncoderOutput out;
    out.cell_embedding = dec / dec.norm(2, {-1}, true).clamp_min(1e-12);
    if (want_states) out.token_states = h;
    return out;
  }

  LoadReport load_weights(const StateDict& dict, const std::string& source, const LoadOptions& options) override {
    // Pretraining heads; pos_encoder.pe is a buffer some exports leave out (it is recomputed then).
    StateDict with_pe = dict;
    if (!with_pe.count("pos_encoder.pe")) with_pe["pos_encoder.pe"] = sinusoid();
    return params_.load(with_pe, source, options, {}, {"binary_decoder.", "gene_embedding_layer."});
  }

  void after_random_init(std::uint64_t) override {
    torch::NoGradGuard no_grad;
    params_.at("pos_encoder.pe").copy_(sinusoid());
  }

  std::int64_t num_layers() const override { return layers_; }

  LoraSite lora_site(const std::string& target, std::int64_t i) const override {
    if (const auto site = torch_layer_lora_site(target, prefix(i), d_, d_hid_, "in_proj")) return *site;
    throw ConfigError({"", "lora.targets", target}, "uce adapts out_proj, in_proj, linear1 or linear2");
  }

 private:
  static constexpr std::int64_t kPad = 0, kChromClose = 2, kCls = 3;

  static std::string prefix(std::int64_t i) { return "transformer_encoder.layers." + std::to_string(i) + "."; }

  /// PositionalEncoding's buffer: pe[p, 0, 2i] = sin(p w_i), pe[p, 0, 2i + 1] = cos(p w_i), w_i = 10000^(-2i/d).
  torch::Tensor sinusoid() const {
    const auto position = torch::arange(pe_rows_, torch::kFloat32).unsqueeze(1);
    const auto div = torch::exp(torch::arange(0, d_, 2, torch::kFloat32) * (-std::log(10000.0) / static_cast<double>(d_)));
    auto pe = torch::zeros({pe_rows_, 1, d_});
    pe.select(1, 0).slice(1, 0, d_, 2).copy_(torch::sin(position * div));
    pe.select(1, 0).slice(1, 1, d_, 2).copy_(torch::cos(position * div).narrow(1, 0, d_ / 2));
    return pe;
  }

  PostLnLayer layer(std::int64_t i) {
    PostLnLayer l = torch_layer(params_, prefix(i), heads_, 1e-5);
    attach_lora(l, i);
    return l;
  }

  std::int64_t token_dim_, d_, heads_, d_hid_, layers_, out_dim_, dec_hidden_, pad_length_, sample_size_, n_tokens_,
      chrom_offset_, pe_rows_;
  std::string mask_mode_;
  UceGeneTable genes_;
};

}  // namespace

std::unique_ptr<Encoder> make_uce(const nlohmann::json& config, const EncoderFiles& files) {
  return std::make_unique<Uce>(config, files);
}

}  // namespace sdm::worker
