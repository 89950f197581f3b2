#pragma once
// The classical baselines of the benchmark, in LibTorch: PCA features fitted on training cells only, L2
// logistic regression, and the study's MLP head. Torch stays behind this header (plain vectors in and out), so
// the task runner compiles without torch/torch.h.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "common/cell_matrix.h"

namespace sdm::worker {

/// A float32 array by name, row-major: how fitted parameters leave this torch-free header (a cell's artifact
/// stores them as safetensors).
struct NamedArray {
  std::string name;
  std::vector<std::int64_t> shape;
  std::vector<float> values;
};
using NamedArrays = std::vector<NamedArray>;

/// What pca_features fitted, enough to project new cells: (x - mean) . components / scale.
struct PcaBasis {
  std::vector<float> mean;        ///< [genes]
  std::vector<float> components;  ///< [genes x k] row-major
  std::vector<float> scale;       ///< [k]
};

/// Row-major features: train [n_train x dim], test [n_test x dim].
struct Features {
  std::vector<float> train;
  std::vector<float> test;
  std::int64_t dim = 0;
  PcaBasis basis;                         ///< empty unless the features are PCA scores
  std::vector<std::string> genes;         ///< the columns PCA was fitted on (gene keys), when known
  std::vector<std::string> norm_genes;    ///< the genes library sizes were computed over, when normalized
  std::string gene_key = "symbol";        ///< what `genes` are: symbol (normalized) or ensembl ids
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
/// `fitted` (optional) receives the trained parameters: logreg `head.weight` [1, dim] and `head.bias` [1]; mlp
/// `head.0.weight`, `head.0.bias`, ... as nn.Sequential names them (the last Linear has 2 outputs).
std::vector<double> fit_predict(const std::string& model, const nlohmann::json& config, const HeadTraining& head,
                                const Features& features, const std::vector<std::int8_t>& y_train, std::uint64_t seed,
                                NamedArrays* fitted = nullptr);

/// The probability of sensitive for rows `x` [n x dim] under parameters fit_predict returned.
std::vector<double> apply_head(const std::string& model, const NamedArrays& fitted, const std::vector<float>& x, std::int64_t dim);

/// PCA scores of new rows `x` [n x genes] under a fitted basis.
std::vector<float> apply_pca(const PcaBasis& basis, const std::vector<float>& x, std::int64_t genes);

/// torch.randperm(n) under torch.Generator().manual_seed(seed): the released scripts' random_split order.
std::vector<std::int64_t> torch_randperm(std::int64_t n, std::uint64_t seed);

}  // namespace sdm::worker
