#include "worker/baselines.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "common/error.h"

namespace sdm::worker {
namespace {

torch::Tensor dense_rows(const CsrMatrix& X, const std::vector<std::size_t>& rows) {
  auto out = torch::zeros({static_cast<std::int64_t>(rows.size()), X.cols}, torch::kFloat32);
  auto acc = out.accessor<float, 2>();
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const auto r = static_cast<std::int64_t>(rows[i]);
    for (std::int64_t k = X.indptr[r]; k < X.indptr[r + 1]; ++k) acc[static_cast<std::int64_t>(i)][X.indices[k]] = X.data[k];
  }
  return out;
}

std::vector<float> to_vector(const torch::Tensor& t) {
  auto c = t.contiguous().to(torch::kFloat32);
  return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}

torch::Tensor from_vector(const std::vector<float>& v, std::int64_t dim) {
  return torch::from_blob(const_cast<float*>(v.data()), {static_cast<std::int64_t>(v.size()) / std::max<std::int64_t>(dim, 1), dim},
                          torch::kFloat32)
      .clone();
}

torch::Generator seeded(std::uint64_t seed) {
  auto gen = at::detail::createCPUGenerator(seed);
  return gen;
}

}  // namespace

Features pca_features(const CsrMatrix& X, const std::vector<std::size_t>& train, const std::vector<std::size_t>& test,
                      int components, std::uint64_t seed) {
  torch::NoGradGuard no_grad;
  if (train.size() < 2) throw DataError({"", "train", std::to_string(train.size())}, "too few training cells for PCA");
  const auto xt = dense_rows(X, train);
  const auto mean = xt.mean(0, true);
  const auto xc = xt - mean;
  const std::int64_t k = std::min<std::int64_t>({components, X.cols, static_cast<std::int64_t>(train.size()) - 1});
  const std::int64_t q = std::min<std::int64_t>(k + 10, std::min<std::int64_t>(X.cols, static_cast<std::int64_t>(train.size())));
  // Randomized range finder with two power iterations (Halko et al.), then an exact SVD of the small projection.
  auto gen = seeded(seed);
  auto omega = torch::randn({X.cols, q}, gen, torch::kFloat32);
  auto Q = std::get<0>(torch::linalg_qr(xc.matmul(omega)));
  for (int it = 0; it < 2; ++it) {
    auto Z = std::get<0>(torch::linalg_qr(xc.t().matmul(Q)));
    Q = std::get<0>(torch::linalg_qr(xc.matmul(Z)));
  }
  const auto B = Q.t().matmul(xc);
  auto svd = torch::linalg_svd(B, false);
  const auto components_t = std::get<2>(svd).slice(0, 0, k).t();  // genes x k
  auto scores_train = xc.matmul(components_t);
  const auto scale = scores_train.std(0, true, true).clamp_min(1e-6);
  scores_train = scores_train / scale;
  Features f;
  f.dim = k;
  f.train = to_vector(scores_train);
  if (!test.empty()) f.test = to_vector((dense_rows(X, test) - mean).matmul(components_t) / scale);
  f.basis = {to_vector(mean), to_vector(components_t), to_vector(scale)};
  return f;
}

namespace {

std::vector<double> probabilities(const torch::Tensor& p) {
  auto c = p.contiguous().to(torch::kFloat64);
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

NamedArray named(const std::string& name, const torch::Tensor& t) {
  return {name, std::vector<std::int64_t>(t.sizes().begin(), t.sizes().end()), to_vector(t.detach())};
}

std::vector<double> fit_logreg(const nlohmann::json& config, const Features& f, const torch::Tensor& y, NamedArrays* fitted) {
  const double l2 = config.value("l2", 1.0);
  const int max_iter = config.value("max_iter", 100);
  const auto x = from_vector(f.train, f.dim);
  auto w = torch::zeros({f.dim}, torch::requires_grad());
  auto b = torch::zeros({1}, torch::requires_grad());
  const double n = static_cast<double>(x.size(0));
  // sklearn's C = 1/l2: minimise sum(log-loss) + l2/2 |w|^2, here divided by n for a well-scaled LBFGS.
  torch::optim::LBFGS opt({w, b}, torch::optim::LBFGSOptions(1.0).max_iter(max_iter).line_search_fn("strong_wolfe"));
  auto closure = [&] {
    opt.zero_grad();
    auto loss = torch::binary_cross_entropy_with_logits(x.matmul(w) + b, y) + 0.5 * l2 / n * w.pow(2).sum();
    loss.backward();
    return loss;
  };
  opt.step(closure);
  torch::NoGradGuard no_grad;
  if (fitted) *fitted = {named("head.weight", w.reshape({1, f.dim})), named("head.bias", b)};
  return probabilities(torch::sigmoid(from_vector(f.test, f.dim).matmul(w) + b));
}

std::vector<double> fit_mlp(const HeadTraining& head, const Features& f, const torch::Tensor& y, std::uint64_t seed,
                            NamedArrays* fitted) {
  torch::manual_seed(seed);
  torch::nn::Sequential net;
  std::int64_t in = f.dim;
  for (int width : head.layers) {
    net->push_back(torch::nn::Linear(in, width));
    net->push_back(torch::nn::ReLU());
    in = width;
  }
  net->push_back(torch::nn::Linear(in, 2));
  torch::optim::AdamW opt(net->parameters(), torch::optim::AdamWOptions(head.lr).weight_decay(head.weight_decay));
  const auto x = from_vector(f.train, f.dim);
  const auto target = torch::stack({1 - y, y}, 1);  // one-hot: column 1 = sensitive
  const std::int64_t n = x.size(0);
  auto gen = seeded(seed + 1);
  net->train();
  for (int epoch = 0; epoch < head.epochs; ++epoch) {
    const auto order = torch::randperm(n, gen, torch::kInt64);
    for (std::int64_t start = 0; start < n; start += head.batch_size) {
      const auto idx = order.slice(0, start, std::min(n, start + head.batch_size));
      opt.zero_grad();
      auto loss = torch::binary_cross_entropy_with_logits(net->forward(x.index_select(0, idx)), target.index_select(0, idx));
      loss.backward();
      opt.step();
    }
  }
  net->eval();
  torch::NoGradGuard no_grad;
  if (fitted) {
    fitted->clear();
    for (const auto& item : net->named_parameters()) fitted->push_back(named("head." + item.key(), item.value()));
  }
  return probabilities(torch::softmax(net->forward(from_vector(f.test, f.dim)), 1).select(1, 1));
}

torch::Tensor tensor_of(const NamedArrays& arrays, const std::string& name) {
  for (const auto& a : arrays) {
    if (a.name == name) {
      return torch::from_blob(const_cast<float*>(a.values.data()), a.shape, torch::kFloat32).clone();
    }
  }
  throw DataError({"", "head", name}, "the fitted head has no parameter of this name");
}

}  // namespace

std::vector<double> fit_predict(const std::string& model, const nlohmann::json& config, const HeadTraining& head,
                                const Features& features, const std::vector<std::int8_t>& y_train, std::uint64_t seed,
                                NamedArrays* fitted) {
  if (features.test.empty() && !fitted) return {};
  std::vector<float> yf(y_train.begin(), y_train.end());
  const auto y = torch::from_blob(yf.data(), {static_cast<std::int64_t>(yf.size())}, torch::kFloat32).clone();
  if (model == "logreg") return fit_logreg(config, features, y, fitted);
  if (model == "mlp") return fit_mlp(head, features, y, seed, fitted);
  throw ConfigError({"", "model", model}, "not a baseline model");
}

std::vector<double> apply_head(const std::string& model, const NamedArrays& fitted, const std::vector<float>& x, std::int64_t dim) {
  torch::NoGradGuard no_grad;
  const auto rows = from_vector(x, dim);
  if (model == "logreg") {
    return probabilities(torch::sigmoid(rows.matmul(tensor_of(fitted, "head.weight").t()).squeeze(1) + tensor_of(fitted, "head.bias")));
  }
  if (model != "mlp") throw ConfigError({"", "head", model}, "not a head kind (logreg or mlp)");
  // Linear layers head.0, head.2, ... with ReLU between them, as make_head/fit_mlp build them.
  std::vector<int> layers;
  for (const auto& a : fitted) {
    const auto dot = a.name.find('.', 5);
    if (a.name.rfind("head.", 0) != 0 || dot == std::string::npos || a.name.substr(dot) != ".weight") continue;
    const std::string index = a.name.substr(5, dot - 5);
    if (!index.empty() && std::all_of(index.begin(), index.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      layers.push_back(std::stoi(index));
    }
  }
  std::sort(layers.begin(), layers.end());
  if (layers.empty()) throw DataError({"", "head", "head.0.weight"}, "the fitted head has no Linear layer");
  auto h = rows;
  for (std::size_t i = 0; i < layers.size(); ++i) {
    const std::string prefix = "head." + std::to_string(layers[i]);
    h = torch::nn::functional::linear(h, tensor_of(fitted, prefix + ".weight"), tensor_of(fitted, prefix + ".bias"));
    if (i + 1 < layers.size()) h = torch::relu(h);
  }
  if (h.size(1) != 2) throw DataError({"", "head", std::to_string(h.size(1))}, "the head's last layer must have 2 outputs");
  return probabilities(torch::softmax(h, 1).select(1, 1));
}

std::vector<float> apply_pca(const PcaBasis& basis, const std::vector<float>& x, std::int64_t genes) {
  torch::NoGradGuard no_grad;
  const auto k = static_cast<std::int64_t>(basis.scale.size());
  if (static_cast<std::int64_t>(basis.mean.size()) != genes || static_cast<std::int64_t>(basis.components.size()) != genes * k) {
    throw DataError({"", "pca", std::to_string(genes)}, "the PCA basis does not match the gene count");
  }
  const auto mean = from_vector(basis.mean, genes);
  const auto components = from_vector(basis.components, k);
  const auto scale = from_vector(basis.scale, k);
  return to_vector((from_vector(x, genes) - mean).matmul(components) / scale);
}

std::vector<std::int64_t> torch_randperm(std::int64_t n, std::uint64_t seed) {
  auto gen = seeded(seed);
  const auto p = torch::randperm(n, gen, torch::kInt64);
  return std::vector<std::int64_t>(p.data_ptr<std::int64_t>(), p.data_ptr<std::int64_t>() + n);
}

}  // namespace sdm::worker
