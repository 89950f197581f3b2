#include "worker/models/transformer.h"


#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>


namespace sdm::worker {

namespace {

/// Score block per (cell, query block): small enough to stay in cache between the two matrix products.
std::int64_t block_bytes() {
  static const std::int64_t bytes = [] {
    const char* env = std::getenv("SDM_ATTENTION_BLOCK_BYTES");
    const long long v = env ? std::atoll(env) : 0;
    return v > 0 ? static_cast<std::int64_t>(v) : std::int64_t{64} << 20;
  }();
  return bytes;
}

/// Softmax attention for every cell; returns the context [B, L, d] before the output projection. Per cell, all
/// heads go through one batched product over blocks of queries; a cell attends over its own length only.
/// (Measured on 2 cores: one (cell, head) task per thread with single-threaded BLAS was slower, and blocks
/// below ~32 MiB lose more in small-GEMM efficiency than they gain in cache reuse.)
torch::Tensor attention(const torch::Tensor& qkv, std::int64_t heads, const KeyMask& mask) {
  const auto B = qkv.size(0), L = qkv.size(1), d = qkv.size(2) / 3, dh = d / heads;
  const double scale = 1.0 / std::sqrt(static_cast<double>(dh));
  auto ctx = torch::empty({B, L, d}, qkv.options());
  for (std::int64_t b = 0; b < B; ++b) {
    const auto n = mask.right_padded() ? std::min<std::int64_t>(mask.lengths[static_cast<std::size_t>(b)], L) : L;
    auto out_b = ctx[b];
    if (n < L) out_b.narrow(0, n, L - n).zero_();
    if (n <= 0) continue;
    const auto parts = qkv[b].narrow(0, 0, n).view({n, 3, heads, dh}).permute({1, 2, 0, 3});  // [3, h, n, dh]
    const auto q = (parts[0] * scale).contiguous();
    const auto kt = parts[1].contiguous().transpose(1, 2);  // [h, dh, n]
    const auto v = parts[2].contiguous();
    const auto block = std::clamp<std::int64_t>(block_bytes() / (heads * n * 4), 16, n);
    torch::Tensor bias;
    if (!mask.right_padded()) bias = mask.bias[b].view({1, 1, L});
    for (std::int64_t q0 = 0; q0 < n; q0 += block) {
      const auto m = std::min(block, n - q0);
      auto scores = torch::bmm(q.narrow(1, q0, m), kt);  // [h, m, n]
      if (bias.defined()) scores.add_(bias);
      const auto o = torch::bmm(torch::softmax(scores, -1), v);  // [h, m, dh]
      out_b.narrow(0, q0, m).view({m, heads, dh}).copy_(o.permute({1, 0, 2}));
    }
  }
  return ctx;
}

}  // namespace

KeyMask KeyMask::from_keep(const torch::Tensor& keep) {
  KeyMask mask;
  const auto k = keep.to(torch::kBool).contiguous();
  const auto B = k.size(0), L = k.size(1);
  const auto* p = k.data_ptr<bool>();
  bool prefix = true;
  for (std::int64_t b = 0; b < B; ++b) {
    std::int64_t n = 0;
    while (n < L && p[b * L + n]) ++n;
    for (std::int64_t i = n; i < L; ++i) prefix = prefix && !p[b * L + i];
    mask.lengths.push_back(n);
  }
  if (!prefix) {
    mask.bias = torch::zeros({B, L}).masked_fill_(k.logical_not(), -std::numeric_limits<float>::infinity());
    for (std::int64_t b = 0; b < B; ++b) mask.lengths[static_cast<std::size_t>(b)] = k[b].sum().item<std::int64_t>();
  }
  return mask;
}

torch::Tensor post_ln_forward(const torch::Tensor& x, const PostLnLayer& layer, const KeyMask& mask) {
  const auto d = x.size(2);
  const auto ctx = attention(torch::linear(x, layer.in_w, layer.in_b), layer.heads, mask);
  auto h = torch::linear(ctx, layer.out_w, layer.out_b);
  h.add_(x);
  h = torch::layer_norm(h, {d}, layer.ln1_w, layer.ln1_b, layer.eps);
  auto f = torch::linear(h, layer.ff1_w, layer.ff1_b);
  f = layer.gelu ? torch::gelu(f) : f.relu_();
  auto out = torch::linear(f, layer.ff2_w, layer.ff2_b);
  out.add_(h);
  return torch::layer_norm(out, {d}, layer.ln2_w, layer.ln2_b, layer.eps);
}

torch::Tensor masked_mean(const torch::Tensor& states, const torch::Tensor& weights) {
  const auto w = weights.to(states.dtype());
  const auto sum = torch::bmm(w.unsqueeze(1), states).squeeze(1);  // [B, d]
  return sum / w.sum(1, true).clamp_min(1.0);
}

}  // namespace sdm::worker
