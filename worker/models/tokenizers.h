#pragma once
// Cells -> token sequences, as each original model's data pipeline builds them. Torch-free: sequences are plain
// vectors, padded into tensors by the encoder. Every random choice (scGPT's tie-breaking and subsampling) draws
// from a per-cell seed, so a cell's tokens never depend on which other cells share its batch.
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/cell_matrix.h"

namespace sdm::worker {

/// Gene key -> token id. Keys are compared after normalize_gene_name (upper case, no Ensembl version); names in
/// angle brackets (`<pad>`, `<cls>`, ...) are special tokens and kept verbatim.
class GeneVocab {
 public:
  /// scGPT's vocab.json or Geneformer's token dictionary: a JSON object {gene: id}, or our converter's
  /// {"token_dictionary": {...}, "gene_median": {...}, "ensembl_mapping": {...}}; or a TSV `gene<TAB>id[<TAB>median]`.
  static GeneVocab load(const std::string& path);
  /// No vocabulary file (tiny presets): a gene's id is a stable hash of its key into [first, size).
  static GeneVocab hashed(std::int64_t size, std::int64_t first);

  /// Token id of a gene, or -1 when the vocabulary does not have it.
  std::int64_t find(const std::string& gene) const;
  /// Id of a special token such as "<cls>"; `fallback` when the file does not name it.
  std::int64_t special(const std::string& name, std::int64_t fallback) const;
  /// Per-gene median factor (Geneformer); 1 where the file gives none.
  double median(std::int64_t token) const;
  bool has_medians() const { return !median_.empty(); }
  /// One more than the largest id.
  std::int64_t size() const { return size_; }
  const std::string& source() const { return source_; }

 private:
  std::unordered_map<std::string, std::int64_t> ids_;
  std::unordered_map<std::string, std::int64_t> specials_;
  std::unordered_map<std::string, std::string> mapping_;  ///< Geneformer's ensembl_mapping_dict (id -> id)
  std::unordered_map<std::int64_t, double> median_;
  std::int64_t size_ = 0;
  std::int64_t hash_first_ = -1;  ///< >= 0: hashed vocabulary
  std::string source_;
};

/// Token id per column of a matrix (-1 = not in the vocabulary).
std::vector<std::int64_t> map_genes(const std::vector<std::string>& genes, const GeneVocab& vocab);

struct TokenizedCells {
  std::vector<std::vector<std::int64_t>> ids;
  std::vector<std::vector<float>> values;  ///< scGPT's binned values; empty for rank-value models
  std::size_t cells_without_genes = 0;     ///< cells that share no gene with the vocabulary
  std::size_t size() const { return ids.size(); }
};

/// splitmix64: small, seedable, and the same on every platform.
struct SplitMix64 {
  std::uint64_t state;
  std::uint64_t next();
  /// Uniform in [0, 1) with 53 random bits.
  double uniform();
};

/// A cell's own seed: `seed` mixed with a hash of its obs name.
std::uint64_t cell_seed(std::uint64_t seed, const std::string& obs_name);

struct ScgptTokenizer {
  int n_bins = 51;
  float pad_value = -2;
  std::int64_t max_seq_len = 1200;  ///< including <cls>
  std::int64_t cls_id = 0;
  /// Bins of a cell's nonzero values (scGPT `binning`): edges = the values' quantiles at linspace(0, 1,
  /// n_bins - 1) (numpy's linear interpolation); a value gets ceil(l - u (l - r)) with l and r numpy's
  /// digitize of the value against the edges (right=False / right=True) and u uniform in [0, 1) from `rng`, so
  /// a value that sits on several equal edges (ties) lands in one of them at random, and others in their bin.
  std::vector<float> bin(const std::vector<double>& nonzero, SplitMix64& rng) const;
  /// `<cls>` (value pad_value) then the cell's nonzero genes that are in the vocabulary, in column order, with
  /// binned values; more than max_seq_len - 1 genes: a random subset in random order (the original collator's
  /// randperm), `<cls>` kept first.
  TokenizedCells tokenize(const CsrMatrix& X, const std::vector<std::int64_t>& gene_ids,
                          const std::vector<std::uint64_t>& seeds) const;
};

struct GeneformerTokenizer {
  std::int64_t input_size = 2048;
  bool special_tokens = false;  ///< V2: <cls> first and <eos> last, both inside input_size
  std::int64_t cls_id = 2;
  std::int64_t eos_id = 3;
  /// Rank-value encoding: per cell, counts of genes that map to one token are summed, divided by the cell's
  /// total count (`totals`, over all genes) x 10,000 and by the token's median factor; zeros dropped; tokens
  /// sorted by that value descending (ties: lower token id first, where numpy's unstable argsort is arbitrary)
  /// and cut to input_size.
  TokenizedCells tokenize(const CsrMatrix& X, const std::vector<std::int64_t>& gene_ids, const GeneVocab& vocab,
                          const std::vector<double>& totals) const;
};

}  // namespace sdm::worker
