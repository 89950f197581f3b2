#include "worker/models/performer.h"

#include <cmath>

namespace sdm::worker {

torch::Tensor favor_features(const torch::Tensor& data, const torch::Tensor& projection, bool is_query) {
  const auto dh = static_cast<double>(data.size(-1));
  const double normalizer = std::pow(dh, -0.25);
  const double ratio = std::pow(static_cast<double>(projection.size(0)), -0.5);
  const auto dash = torch::matmul(data * normalizer, projection.t());                    // [B, h, L, m]
  const auto diag = (data * data).sum(-1, true) * (0.5 * normalizer * normalizer);       // [B, h, L, 1]
  torch::Tensor max;
  if (is_query) {
    max = std::get<0>(dash.max(-1, true));
  } else {
    max = std::get<0>(dash.flatten(1).max(1, true)).view({-1, 1, 1, 1});  // per cell
  }
  return ratio * (torch::exp(dash - diag - max) + 1e-4);
}

torch::Tensor performer_forward(const torch::Tensor& x, const PerformerLayer& layer, const torch::Tensor& keep) {
  const auto B = x.size(0), L = x.size(1), d = x.size(2);
  const auto inner = layer.qkv_w.size(0) / 3, dh = inner / layer.heads;
  auto h = torch::layer_norm(x, {d}, layer.ln1_w, layer.ln1_b, layer.eps);
  const auto qkv = adapted_linear(h, layer.qkv_w, torch::Tensor(), layer.adapters, Projection::kInProj)
                       .view({B, L, 3, layer.heads, dh})
                       .permute({2, 0, 3, 1, 4});  // [3, B, h, L, dh]
  auto v = qkv[2];
  if (keep.defined()) v = v.masked_fill(keep.logical_not().view({B, 1, L, 1}), 0.0);
  const auto q = favor_features(qkv[0], layer.projection, true);
  const auto k = favor_features(qkv[1], layer.projection, false);
  // Non-causal linear attention: out = Q (K^T V) / (Q . sum K)
  const auto d_inv = 1.0 / torch::matmul(q, k.sum(-2).unsqueeze(-1));  // [B, h, L, 1]
  const auto ctx = torch::matmul(q, torch::matmul(k.transpose(-2, -1), v)) * d_inv;
  const auto merged = ctx.permute({0, 2, 1, 3}).reshape({B, L, inner});
  auto out = x + adapted_linear(merged, layer.out_w, layer.out_b, layer.adapters, Projection::kOutProj);
  h = torch::layer_norm(out, {d}, layer.ln2_w, layer.ln2_b, layer.eps);
  auto f = torch::gelu(adapted_linear(h, layer.ff1_w, layer.ff1_b, layer.adapters, Projection::kFf1));
  return out + adapted_linear(f, layer.ff2_w, layer.ff2_b, layer.adapters, Projection::kFf2);
}

}  // namespace sdm::worker
