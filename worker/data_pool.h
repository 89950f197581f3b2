#pragma once
// A cell's data: the labelled cells of its datasets pooled on their common genes, and the protocol's split of
// them into train and test. Torch-free; datasets are read once per worker and kept in a small cache.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/cell_matrix.h"
#include "common/preprocess.h"

namespace sdm::worker {

/// How a cell wants its files read: the `data` block of the cell config.
struct DataOptions {
  LabelMapping label;
  std::string group_column = "sample";
  std::string matrix = "X";
  ValueKind values = ValueKind::kCounts;
  static DataOptions from_config(const nlohmann::json& data);
};

struct LoadedDataset {
  std::string id;
  std::string path;
  CsrMatrix X;                          ///< labelled cells only, as read (counts or log1p values)
  std::vector<std::int8_t> y;
  std::vector<std::string> obs_names;
  std::vector<std::string> groups;      ///< group_column values (sample ids)
  std::vector<std::string> gene_keys;   ///< normalized symbols (or Ensembl ids when the file has no symbols)
  bool keys_are_ensembl = false;
  GeneKeys genes;                       ///< symbols and Ensembl ids as the file has them (for encoders)
  std::string label_summary;
};

/// Reads datasets with the checks of CONTRACTS §4 and keeps the most recent ones up to a memory budget.
class DatasetCache {
 public:
  explicit DatasetCache(std::size_t budget_bytes = std::size_t{2} << 30) : budget_(budget_bytes) {}
  std::shared_ptr<const LoadedDataset> get(const std::string& id, const std::string& path, const DataOptions& options);

 private:
  std::size_t budget_;
  std::size_t used_ = 0;
  std::list<std::pair<std::string, std::shared_ptr<const LoadedDataset>>> entries_;  // most recent first
};

struct Pool {
  CsrMatrix X;                            ///< cells x common genes
  std::vector<std::int8_t> y;
  std::vector<std::int32_t> dataset;      ///< index into dataset_ids per cell
  std::vector<std::string> dataset_ids;
  std::vector<std::string> obs_names;
  std::vector<std::string> groups;        ///< "<dataset>/<sample>"
  std::vector<std::string> genes;
};

/// Pools datasets on the genes they all share (by symbol, or by Ensembl id when any lacks symbols). Throws
/// DataError when they share no gene.
Pool make_pool(const std::vector<std::shared_ptr<const LoadedDataset>>& datasets);

struct Split {
  std::vector<std::size_t> train;
  std::vector<std::size_t> test;
};

/// Stratified K-fold by label: each class shuffled (seeded) and dealt round-robin into folds.
Split stratified_fold(const std::vector<std::int8_t>& y, int folds, int fold, std::uint64_t seed);
/// Grouped K-fold: whole groups go to one fold; groups of each label are shuffled and dealt to the fold with
/// the fewest cells, so folds stay balanced. Throws DataError with fewer groups than folds.
Split grouped_fold(const std::vector<std::string>& groups, const std::vector<std::int8_t>& y, int folds, int fold,
                   std::uint64_t seed);
/// Cross-data: cells of `test_ids` are the test set, the rest train.
Split by_dataset(const Pool& pool, const std::vector<std::string>& test_ids);

}  // namespace sdm::worker
