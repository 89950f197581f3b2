#pragma once
// The classical baselines of the benchmark, in LibTorch: PCA features fitted on training cells only, L2
// logistic regression, and the study's MLP head. Torch stays behind this header (plain vectors in and out), so
// the task runner compiles without torch/torch.h.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <vector>

#include "common/cell_matrix.h"

namespace sdm::worker {

/// Row-major features: train [n_train x dim], test [n_test x dim].
struct Features {
  std::vector<float> train;
  std::vector<float> test;
  std::int64_t dim = 0;
};

/// Principal components of `X` (e.g. log1p-normalized HVG expression): centered and fitted on the `train` rows
/// only (randomized SVD, seeded), both sets projected, then scaled to unit variance on train.
Features pca_features(const CsrMatrix& X, const std::vector<std::size_t>& train, const std::vector<std::size_t>& test,
                      int components, std::uint64_t seed);

struct HeadTraining {
  std::vector<int> layers{512, 512};
  int epochs = 10;
  int batch_size = 128;
  double lr = 1e-4;
  double weight_decay = 0.01;
};

/// Probability of sensitive for each test row. `model` is logreg or mlp; `config` its resolved hyperparameters.
std::vector<double> fit_predict(const std::string& model, const nlohmann::json& config, const HeadTraining& head,
                                const Features& features, const std::vector<std::int8_t>& y_train, std::uint64_t seed);

/// torch.randperm(n) under torch.Generator().manual_seed(seed): the released scripts' random_split order.
std::vector<std::int64_t> torch_randperm(std::int64_t n, std::uint64_t seed);

}  // namespace sdm::worker
