#pragma once
// Expansion of a sweep spec into cells (CONTRACTS §4-5): resolve the datasets, hash their content, build one
// cell per (model+preset, strategy, protocol+split, fold or held-out dataset, seed), and give each the id that
// hashes its complete resolved configuration.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "jobs/sweep_spec.h"

namespace sdm::jobs {

struct InputDataset {
  std::string id;
  std::string path;
  std::string collection;  ///< primary | external | "" (bring-your-own)
  std::string sha256;      ///< filled by hash_inputs
  std::uintmax_t bytes = 0;
};

/// The datasets the spec selects, with their files. A missing file is one ConfigError listing every missing
/// path (and, for a catalog, how to make them with `sdm synth`).
std::vector<InputDataset> resolve_inputs(const SweepSpec& spec);

/// Content SHA-256 of each file. `cache_file` (may be empty) remembers hashes by path, size and mtime, so a
/// resumed sweep over large files does not re-read them.
void hash_inputs(std::vector<InputDataset>& inputs, const std::string& cache_file);

struct Cell {
  std::string id;
  std::string model;
  std::string preset;
  std::string strategy;
  std::string protocol;
  std::string split;
  int folds = 0;
  int fold = -1;                        ///< -1 where the protocol has no folds
  std::string test_group;               ///< "fold-2/5", a held-out dataset id, or "test-20%"
  std::vector<std::string> train_datasets;
  std::vector<std::string> test_datasets;
  std::int64_t seed = 0;
  std::string weights_sha256;
  nlohmann::json config;                ///< everything the id hashes (CONTRACTS §5)
  std::string feature_key;              ///< equal for cells that share data, split and preprocessing
  double expected_cost = 1;
  /// Frozen foundation-model cells: dataset id -> key of its cached embeddings (the embed task that makes them
  /// runs before this cell). Equal keys = same model, weights, vocabulary, dataset content and reading options.
  std::map<std::string, std::string> embed_keys;
  nlohmann::json model_files = nlohmann::json::object();  ///< {weights, vocab} paths, pinned config keys (not hashed)

  /// A field by name for --only filters and tables: model preset strategy protocol split fold test_group seed.
  std::string field(const std::string& name) const;
};

struct Expansion {
  std::vector<Cell> cells;
  std::vector<std::string> dropped;  ///< "lora x logreg: logreg has no encoder to adapt" (each combination once)
};

Expansion expand(const SweepSpec& spec, const std::vector<InputDataset>& inputs);

/// Keeps the cells matching every "key=value" term (comma-separated; a key may repeat to allow several values).
/// An unknown key is a ConfigError listing the valid ones.
std::vector<Cell> filter_cells(const std::vector<Cell>& cells, const std::string& only);

inline constexpr int kCellIdVersion = 1;

}  // namespace sdm::jobs
