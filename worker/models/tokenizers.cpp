#include "worker/models/tokenizers.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <numeric>
#include <sstream>

#include "common/error.h"
#include "common/preprocess.h"

namespace sdm::worker {

namespace {

bool is_special(const std::string& name) { return name.size() > 2 && name.front() == '<' && name.back() == '>'; }

std::uint64_t fnv1a(const std::string& s) {
  std::uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

}  // namespace

std::uint64_t SplitMix64::next() {
  std::uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

double SplitMix64::uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

std::uint64_t cell_seed(std::uint64_t seed, const std::string& obs_name) {
  SplitMix64 mix{seed ^ fnv1a(obs_name)};
  return mix.next();
}

GeneVocab GeneVocab::load(const std::string& path) {
  GeneVocab v;
  v.source_ = path;
  std::ifstream in(path);
  if (!in) throw IoError({path, "", ""}, "cannot read the vocabulary file");
  const auto add = [&](const std::string& gene, std::int64_t id, const std::string& where) {
    if (id < 0) throw DataError({path, where, std::to_string(id)}, "token ids must be non-negative");
    if (is_special(gene)) {
      v.specials_[gene] = id;
    } else {
      v.ids_[normalize_gene_name(gene)] = id;
    }
    v.size_ = std::max(v.size_, id + 1);
  };
  const bool json_file = path.size() >= 5 && path.substr(path.size() - 5) == ".json";
  if (json_file) {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(in);
    } catch (const std::exception& e) {
      throw DataError({path, "", ""}, std::string("not valid JSON: ") + e.what());
    }
    if (!j.is_object()) throw DataError({path, "", ""}, "expected a JSON object {gene: id}");
    if (j.contains("gene_list") && j["gene_list"].is_array()) {  // CellPLM's <prefix>.config.json: ids by position
      std::int64_t id = 0;
      for (const auto& gene : j["gene_list"]) {
        if (!gene.is_string()) throw DataError({path, "gene_list", gene.dump()}, "expected gene names");
        add(gene.get<std::string>(), id++, "gene_list");
      }
      return v;
    }
    const bool bundle = j.contains("token_dictionary");
    // A Hugging Face tokenizer.json with a word-level model (tGPT): the vocabulary is model.vocab
    const bool hf = !bundle && j.contains("model") && j["model"].is_object() && j["model"].contains("vocab");
    const nlohmann::json& dict = bundle ? j["token_dictionary"] : hf ? j["model"]["vocab"] : j;
    for (const auto& [gene, id] : dict.items()) {
      if (!id.is_number_integer()) throw DataError({path, gene, id.dump()}, "expected an integer token id");
      add(gene, id.get<std::int64_t>(), gene);
    }
    if (bundle && j.contains("gene_median")) {
      for (const auto& [gene, m] : j["gene_median"].items()) {
        if (!m.is_number() || !(m.get<double>() > 0)) throw DataError({path, "gene_median." + gene, m.dump()}, "expected a positive number");
        const auto id = v.find(gene);
        if (id >= 0) v.median_[id] = m.get<double>();
      }
    }
    if (bundle && j.contains("ensembl_mapping")) {
      for (const auto& [from, to] : j["ensembl_mapping"].items()) {
        if (to.is_string()) v.mapping_[normalize_gene_name(from)] = normalize_gene_name(to.get<std::string>());
      }
    }
  } else {
    std::string line;
    std::size_t line_no = 0;
    while (std::getline(in, line)) {
      ++line_no;
      if (line.empty() || line[0] == '#') continue;
      std::istringstream fields(line);
      std::string gene, id_text, median_text;
      std::getline(fields, gene, '\t');
      std::getline(fields, id_text, '\t');
      std::getline(fields, median_text, '\t');
      const std::string where = "line " + std::to_string(line_no);
      std::size_t used = 0;
      std::int64_t id = -1;
      try {
        id = std::stoll(id_text, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (used == 0 || used != id_text.size()) {
        if (line_no == 1) continue;  // a header line
        throw DataError({path, where, id_text}, "expected gene<TAB>token id[<TAB>median]");
      }
      add(gene, id, where);
      if (!median_text.empty()) v.median_[id] = std::stod(median_text);
    }
  }
  if (v.ids_.empty()) throw DataError({path, "", ""}, "the vocabulary has no genes");
  return v;
}

GeneVocab GeneVocab::hashed(std::int64_t size, std::int64_t first) {
  GeneVocab v;
  v.size_ = size;
  v.hash_first_ = first;
  v.source_ = "hashed(" + std::to_string(size) + ")";
  return v;
}

std::int64_t GeneVocab::find(const std::string& gene) const {
  if (is_special(gene)) return special(gene, -1);
  std::string key = normalize_gene_name(gene);
  if (const auto m = mapping_.find(key); m != mapping_.end()) key = m->second;
  if (hash_first_ >= 0) return hash_first_ + static_cast<std::int64_t>(fnv1a(key) % static_cast<std::uint64_t>(size_ - hash_first_));
  const auto it = ids_.find(key);
  return it == ids_.end() ? -1 : it->second;
}

std::int64_t GeneVocab::special(const std::string& name, std::int64_t fallback) const {
  const auto it = specials_.find(name);
  return it == specials_.end() ? fallback : it->second;
}

double GeneVocab::median(std::int64_t token) const {
  const auto it = median_.find(token);
  return it == median_.end() ? 1.0 : it->second;
}

std::vector<std::int64_t> map_genes(const std::vector<std::string>& genes, const GeneVocab& vocab) {
  std::vector<std::int64_t> ids(genes.size());
  for (std::size_t i = 0; i < genes.size(); ++i) ids[i] = vocab.find(genes[i]);
  return ids;
}

std::vector<float> ScgptTokenizer::bin(const std::vector<double>& nonzero, SplitMix64& rng) const {
  std::vector<float> out(nonzero.size());
  if (nonzero.empty()) return out;
  std::vector<double> sorted = nonzero;
  std::sort(sorted.begin(), sorted.end());
  const int n_edges = n_bins - 1;
  const double n = static_cast<double>(sorted.size());
  std::vector<double> edges(static_cast<std::size_t>(n_edges));
  const double step = 1.0 / static_cast<double>(n_edges - 1);
  for (int i = 0; i < n_edges; ++i) {
    const double q = i == n_edges - 1 ? 1.0 : static_cast<double>(i) * step;  // numpy linspace
    const double index = q * (n - 1);
    const double lo = std::floor(index);
    const double gamma = index - lo;
    const auto a = sorted[static_cast<std::size_t>(lo)];
    const auto b = sorted[std::min(static_cast<std::size_t>(lo) + 1, sorted.size() - 1)];
    // numpy's _lerp: from whichever end is nearer, so the result is exact at both ends
    edges[static_cast<std::size_t>(i)] = gamma >= 0.5 ? b - (b - a) * (1 - gamma) : a + (b - a) * gamma;
  }
  for (std::size_t i = 0; i < nonzero.size(); ++i) {
    const double x = nonzero[i];
    const auto left = static_cast<double>(std::upper_bound(edges.begin(), edges.end(), x) - edges.begin());
    const auto right = static_cast<double>(std::lower_bound(edges.begin(), edges.end(), x) - edges.begin());
    out[i] = static_cast<float>(std::ceil(rng.uniform() * (right - left) + left));
  }
  return out;
}

TokenizedCells ScgptTokenizer::tokenize(const CsrMatrix& X, const std::vector<std::int64_t>& gene_ids,
                                        const std::vector<std::uint64_t>& seeds) const {
  TokenizedCells t;
  t.ids.resize(static_cast<std::size_t>(X.rows));
  t.values.resize(static_cast<std::size_t>(X.rows));
  for (std::int64_t r = 0; r < X.rows; ++r) {
    SplitMix64 rng{seeds[static_cast<std::size_t>(r)]};
    std::vector<std::int64_t> genes;
    std::vector<double> values;
    for (auto k = X.indptr[static_cast<std::size_t>(r)]; k < X.indptr[static_cast<std::size_t>(r) + 1]; ++k) {
      const auto id = gene_ids[static_cast<std::size_t>(X.indices[static_cast<std::size_t>(k)])];
      const double value = X.data[static_cast<std::size_t>(k)];
      if (id < 0 || value == 0) continue;
      genes.push_back(id);
      values.push_back(value);
    }
    if (genes.empty()) ++t.cells_without_genes;
    const auto bins = bin(values, rng);
    std::vector<std::size_t> order(genes.size());
    std::iota(order.begin(), order.end(), 0);
    const auto keep = static_cast<std::size_t>(std::max<std::int64_t>(0, max_seq_len - 1));
    if (order.size() > keep) {
      // randperm of all gene positions, first `keep` taken: a random subset in random order
      for (std::size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[rng.next() % i]);
      order.resize(keep);
    }
    auto& ids = t.ids[static_cast<std::size_t>(r)];
    auto& vals = t.values[static_cast<std::size_t>(r)];
    ids.reserve(order.size() + 1);
    vals.reserve(order.size() + 1);
    ids.push_back(cls_id);
    vals.push_back(pad_value);
    for (auto i : order) {
      ids.push_back(genes[i]);
      vals.push_back(bins[i]);
    }
  }
  return t;
}

TokenizedCells GeneformerTokenizer::tokenize(const CsrMatrix& X, const std::vector<std::int64_t>& gene_ids,
                                             const GeneVocab& vocab, const std::vector<double>& totals) const {
  TokenizedCells t;
  t.ids.resize(static_cast<std::size_t>(X.rows));
  const std::int64_t room = special_tokens ? input_size - 2 : input_size;
  std::vector<std::pair<std::int64_t, double>> counts;
  for (std::int64_t r = 0; r < X.rows; ++r) {
    counts.clear();
    for (auto k = X.indptr[static_cast<std::size_t>(r)]; k < X.indptr[static_cast<std::size_t>(r) + 1]; ++k) {
      const auto id = gene_ids[static_cast<std::size_t>(X.indices[static_cast<std::size_t>(k)])];
      if (id >= 0 && X.data[static_cast<std::size_t>(k)] != 0) counts.emplace_back(id, X.data[static_cast<std::size_t>(k)]);
    }
    std::sort(counts.begin(), counts.end());
    std::vector<std::pair<double, std::int64_t>> ranked;  // (-value, token)
    for (std::size_t i = 0; i < counts.size();) {
      const auto token = counts[i].first;
      double sum = 0;
      for (; i < counts.size() && counts[i].first == token; ++i) sum += counts[i].second;
      const double total = totals[static_cast<std::size_t>(r)];
      ranked.emplace_back(-(sum / total * 10000.0 / vocab.median(token)), token);
    }
    std::sort(ranked.begin(), ranked.end());
    if (ranked.empty()) ++t.cells_without_genes;
    auto& ids = t.ids[static_cast<std::size_t>(r)];
    if (special_tokens) ids.push_back(cls_id);
    for (std::size_t i = 0; i < ranked.size() && static_cast<std::int64_t>(i) < room; ++i) ids.push_back(ranked[i].second);
    if (special_tokens) ids.push_back(eos_id);
  }
  return t;
}

}  // namespace sdm::worker
