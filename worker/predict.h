#pragma once
// Applying a trained cell to new cells (`sdm predict`): rebuild the cell's features from its artifact — the
// baselines' log-normalization, gene selection and PCA basis, or the encoder (with its LoRA adapters merged) —
// and its fitted head, then score every cell of the input. Torch stays behind this header.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "common/cell_matrix.h"

namespace sdm::worker {

struct PredictOptions {
  double min_coverage = 0.8;  ///< refuse inputs that have less than this share of the genes the cell needs
  std::string weights;        ///< override of the encoder checkpoint path recorded in the artifact (hash-checked)
  std::string vocab;          ///< likewise for the vocabulary
  std::int64_t batch_size = 0;  ///< encoder batch size (0 = the cell's)
};

struct PredictResult {
  std::vector<double> p_sensitive;  ///< per input row
  double coverage = 1;              ///< share of the needed genes the input has
  std::size_t genes_needed = 0;
  std::size_t genes_found = 0;
  nlohmann::json manifest;          ///< the artifact's predictor.json
};

/// Scores every row of `cells` with the predictor in `artifact_dir`. Throws DataError when the input's genes
/// cover less than options.min_coverage of the genes the cell needs (the message gives the coverage and missing
/// genes), IoError for a missing or damaged artifact, and DataError when a checkpoint's hash differs from the one
/// the cell was trained with.
PredictResult predict_with_artifact(const std::string& artifact_dir, const CellMatrix& cells, const std::string& input_path,
                                    const PredictOptions& options);

}  // namespace sdm::worker
