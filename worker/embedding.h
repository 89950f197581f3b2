#pragma once
// Running an encoder over many cells: tokenize, batch cells of similar length (little padding), forward under
// inference mode, and the HDF5 files that hold the results (`sdm embed` output, the sweep's embedding cache).
// Torch stays behind this header: results are plain row-major floats.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/cell_matrix.h"

namespace sdm::worker {

class Encoder;
struct GeneInputs;

struct Embeddings {
  std::int64_t n = 0, d = 0;
  std::vector<float> values;       ///< [n, d] row-major, in input order
  std::vector<std::int64_t> state_shape;  ///< [n, L, d] when token states were kept
  std::vector<float> states;
  double forward_s = 0;            ///< seconds in forward passes only (tokenizing and I/O excluded)
  std::size_t tokens = 0;          ///< real (non-pad) tokens processed
  std::size_t cells_without_genes = 0;
};

/// A model ready to embed: built from its resolved config and files (see make_encoder).
struct LoadedModel {
  std::string name;
  nlohmann::json config;
  std::shared_ptr<Encoder> encoder;
  /// `pinned`: the config keys a user set (jobs::pinned_keys); sizes not pinned follow the checkpoint.
  static LoadedModel load(const std::string& model, const nlohmann::json& config, const std::string& weights,
                          const std::string& vocab, bool strict, const std::vector<std::string>& pinned = {});
};

struct TokenizedCells;

/// Tokenizes the rows of `X` (raw counts) as `model` does, each cell's random choices seeded from `seed` and its
/// obs name (the same tokens embed_cells would use).
TokenizedCells tokenize_cells(const LoadedModel& model, const CsrMatrix& X, const std::vector<std::string>& gene_symbols,
                              const std::vector<std::string>& gene_ensembl, const std::vector<std::string>& obs_names,
                              std::uint64_t seed);

/// No cell of a dataset sharing a gene with the model's vocabulary (0 % overlap) is an error, not a warning: every
/// embedding would be the same special-token output and any metric made from them meaningless (usually symbols vs
/// Ensembl ids, or another species). Some cells without genes: a warning. `file` names the dataset.
void check_vocabulary_overlap(std::size_t cells_without_genes, std::size_t cells, const std::string& file,
                              const std::string& model);

/// Embeds the rows of `X` (raw counts, all genes of the file). Cells are batched by token length; each cell's
/// random choices are seeded from `seed` and its obs name, so results do not depend on batching.
Embeddings embed_cells(const LoadedModel& model, const CsrMatrix& X, const std::vector<std::string>& gene_symbols,
                       const std::vector<std::string>& gene_ensembl, const std::vector<std::string>& obs_names,
                       std::int64_t batch_size, std::uint64_t seed);

/// Embeds a --tokenized file: one HDF5 dataset per forward input (names as in the original forward), used as
/// given in consecutive batches. Also returns the file's obs_names (or "0", "1", ...).
Embeddings embed_tokenized(const LoadedModel& model, const std::string& path, std::int64_t batch_size, bool states,
                           std::vector<std::string>& obs_names);

/// The sweep's embedding cache: one file per (model, weights, vocabulary, dataset, reading options) key.
struct CachedEmbeddings {
  std::vector<float> values;  ///< [n, d]
  std::int64_t n = 0, d = 0;
  std::vector<std::string> obs_names;
  std::vector<std::int8_t> y;
  std::vector<std::string> groups;
  std::vector<std::string> gene_keys;  ///< the dataset's gene keys (what a predictor made from it needs); may be empty
};
void write_embedding_cache(const std::string& path, const std::string& key, const CachedEmbeddings& e);
/// Throws IoError when the file is missing, unreadable or written for another key.
CachedEmbeddings read_embedding_cache(const std::string& path, const std::string& key);

}  // namespace sdm::worker
