#pragma once
// A sweep spec (CONTRACTS §4, jobs/schema/sweep-v1.json): parsed and validated in this one place. Unknown keys
// are errors with their full path; names are checked against jobs/models.h; defaults are filled in here.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "common/preprocess.h"
#include "jobs/catalog.h"

namespace sdm::jobs {

struct DatasetChoice {
  std::string id;        ///< an id or "all"
  Selector selector;     ///< used when id is empty
};

struct DataSpec {
  std::string root = ".";
  std::string catalog;                   ///< empty: bring-your-own files listed in `datasets`
  std::vector<DatasetChoice> datasets;   ///< default [all]
  LabelMapping label;
  std::string group_column = "sample";
  std::string matrix = "X";              ///< X | raw | layer:<name>
  std::string values = "counts";         ///< counts | log1p
};

struct ModelSpec {
  std::string name;
  std::string preset = "default";
  nlohmann::json config;  ///< the model's defaults overlaid with the spec's `config`
  std::string weights;    ///< path, may be empty
  std::string vocab;
  /// config keys the spec set itself (jobs::pinned_keys): not hashed, travels with the weights path
  std::vector<std::string> pinned;
};

struct ProtocolSpec {
  std::string name;             ///< pooled | cross-data | paper
  int folds = 5;                ///< pooled
  std::string split = "cell";   ///< pooled: cell | sample; paper: cell
  bool per_dataset = false;     ///< pooled: one pool per dataset instead of one over all
  std::string mode = "leave-one-out";  ///< cross-data: leave-one-out | primary-to-external
  Selector select;              ///< restricts the datasets of this protocol
  nlohmann::json to_json() const;
};

/// How a network is trained. The defaults after weight_decay are the study's (no clipping, no schedule, no
/// validation split: the last epoch is evaluated on the test cells).
struct TrainSpec {
  int epochs = 10;
  int batch_size = 128;
  double lr = 1e-4;
  double weight_decay = 0.01;      ///< torch.optim.AdamW's default
  double clip_norm = 0;            ///< max global gradient L2 norm; 0 = no clipping
  std::string schedule = "constant";  ///< constant | linear | cosine (decay to 0 over the steps after warm-up)
  double warmup = 0;               ///< fraction of the steps with a linear warm-up from 0
  double validation = 0;           ///< fraction of the training cells held out (stratified) to pick the best epoch
  int patience = 0;                ///< stop after this many epochs without a better validation loss; 0 = never
  /// The hashed form: keys beyond the study's four appear only when set, so cell ids of older specs stay.
  nlohmann::json to_json() const;
};

struct HeadSpec {
  std::vector<int> layers{512, 512};
  TrainSpec train;  ///< head training: `train` overlaid with head.epochs / lr / batch_size
};

struct ResourceSpec {
  int ranks_per_task = 1;
  int max_attempts = 2;
  double time_per_cell_s = 0;  ///< 0 = unknown
};

struct PreprocessSpec {
  double target_sum = 1e4;
  int hvg = 2000;  ///< Seurat-v3 highly variable genes kept (all genes when the data has fewer)
  int pca = 50;    ///< principal components for the baselines
  nlohmann::json to_json() const;
};

struct SweepSpec {
  std::string name;
  std::string store;
  DataSpec data;
  std::vector<ModelSpec> models;
  std::vector<std::string> strategies{"freeze"};
  std::vector<ProtocolSpec> protocols;
  std::vector<std::int64_t> seeds{0};
  TrainSpec train;
  HeadSpec head;
  nlohmann::json strategy_options = nlohmann::json::object();
  ResourceSpec resources;
  PreprocessSpec preprocess;
  std::string source_file;  ///< where it was read from
  std::string yaml_text;    ///< the file's text, kept in the store

  static SweepSpec load(const std::string& path);
  static SweepSpec parse(const std::string& text, const std::string& file);
};

/// Top-level keys of a sweep spec, in CONTRACTS §4 order.
const std::vector<std::string>& sweep_top_keys();

}  // namespace sdm::jobs
