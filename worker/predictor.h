#pragma once
// A trained cell's artifact: what `sdm predict` needs to score new cells the way the cell scored its test set.
// Torch-free (the task runner writes it). Layout of runs/x/artifacts/<cell_id>/:
//   predictor.json         manifest (format "sdm-predictor", version 1): kind, head, genes, preprocessing, model
//   predictor.safetensors  baselines and frozen encoders: PCA basis (pca.mean/components/scale) and head.* tensors
//   adapters.safetensors   LoRA cells: the adapters by original module name and head.* (written by the trainer)
// The manifest is written last, through a temporary name and a rename: its presence means the artifact is whole.
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "worker/baselines.h"

namespace sdm::worker {

inline constexpr const char* kPredictorManifest = "predictor.json";
inline constexpr const char* kPredictorTensors = "predictor.safetensors";
inline constexpr const char* kLoraTensors = "adapters.safetensors";

/// Writes `arrays` as predictor.safetensors (when not empty), then the manifest, into `dir`.
void write_predictor(const std::string& dir, nlohmann::json manifest, const NamedArrays& arrays);

/// The artifact of a baseline cell (logreg/mlp on PCA of log-normalized genes): `features` carries the PCA basis
/// and its genes; `head` the fitted parameters.
void save_baseline_predictor(const nlohmann::json& task, const Features& features, const NamedArrays& head);

/// The artifact of an encoder cell: a frozen encoder with a fitted head (`head` given, written here) or a LoRA cell
/// (`head` empty: adapters.safetensors, already written by the trainer, holds adapters and head). `train_genes`:
/// the gene keys of each training dataset; the predictor needs the genes they all have.
void save_encoder_predictor(const nlohmann::json& task, const std::vector<std::vector<std::string>>& train_genes,
                            const std::string& gene_key, const NamedArrays& head);

/// Reads and checks a manifest (format, version, kind, head); throws IoError/DataError naming the file.
nlohmann::json read_predictor_manifest(const std::string& dir);

/// Float32 tensors of a safetensors file as NamedArrays (others are a DataError naming the tensor).
NamedArrays read_named_arrays(const std::string& path);

/// The genes that every dataset in `gene_lists` has, in the first list's order (what pooling keeps).
std::vector<std::string> common_genes(const std::vector<std::vector<std::string>>& gene_lists);

/// Where each needed gene is among the input's genes.
struct GeneMatch {
  std::vector<std::int64_t> column;  ///< per needed gene: input column, or -1 when the input lacks it
  std::size_t found = 0;
  double coverage() const { return column.empty() ? 1.0 : static_cast<double>(found) / static_cast<double>(column.size()); }
  /// Up to `limit` names of needed genes the input lacks.
  std::vector<std::string> missing(const std::vector<std::string>& needed, std::size_t limit = 10) const;
};
GeneMatch match_genes(const std::vector<std::string>& needed, const std::vector<std::string>& available);

}  // namespace sdm::worker
