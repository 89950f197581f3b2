#pragma once
// Runs one sweep cell on this rank and returns its record: load and pool the data, split it as the protocol
// says, build features, fit the model, predict the test cells, compute metrics. Any failure becomes a record
// with status "failed" and the error text; nothing here talks to rank 0.
#include <nlohmann/json.hpp>

#include <map>
#include <memory>
#include <string>

#include "common/cell_record.h"
#include "worker/data_pool.h"
#include "worker/embedding.h"

namespace sdm::cluster {
class Collective;
}

namespace sdm::worker {

struct Features;

/// What a worker keeps between cells: datasets read, and the PCA features of the last (data, split) seen, so
/// logreg and mlp on the same fold reuse them (the scheduler sends such cells to the same worker).
class WorkerState {
 public:
  WorkerState();
  ~WorkerState();
  DatasetCache datasets;
  std::string features_key;
  std::shared_ptr<Features> features;
  std::shared_ptr<std::vector<std::size_t>> test_rows;
  std::shared_ptr<Pool> pool;
  std::vector<std::int8_t> train_y;
  std::string model_key;  ///< the encoder kept loaded for the next embed task
  LoadedModel model;
  /// The rank group of `resources.ranks_per_task` > 1 (not owned; null = this rank alone). LoRA cells train on
  /// the whole group; other cells run on its rank 0.
  cluster::Collective* group = nullptr;
  std::string split_note;  ///< what the metrics of the cached split should mention
};

/// The task message: {cell_id, attempt, config, paths: {dataset id: file}, artifact_dir, feature_key}.
CellRecord run_cell(const nlohmann::json& task, WorkerState& state);

/// A LoRA cell on a group member (group rank > 0): the member's share of the data-parallel training. Returns
/// an empty string or the error that made this rank give up (the leader's record carries the cell's outcome).
std::string run_group_share(const nlohmann::json& task, WorkerState& state);

/// True when the cell trains data-parallel on the whole rank group.
bool uses_group(const nlohmann::json& task);

/// An embed task: {kind: "embed", key, attempt, model: {name, preset, config, ...}, model_files: {weights,
/// vocab}, dataset_id, path, data, cache_path}. Embeds the dataset's labelled cells into the cache file and
/// returns {kind, key, attempt, status, error, seconds}.
nlohmann::json run_embed(const nlohmann::json& task, WorkerState& state);

/// A failed record for a cell that could not run (also used by the orchestrator when a worker dies).
CellRecord failed_record(const nlohmann::json& task, const std::string& error);

/// Fills the identity columns (cell_id model preset ... seed) of a record from a task.
void fill_identity(CellRecord& record, const nlohmann::json& task);

}  // namespace sdm::worker
