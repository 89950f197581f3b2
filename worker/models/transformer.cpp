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

/// The training path: [B, heads, L, L] scores with padded keys masked, every op differentiable.
torch::Tensor dense_attention(const torch::Tensor& qkv, std::int64_t heads, const KeyMask& mask) {
  const auto B = qkv.size(0), L = qkv.size(1), d = qkv.size(2) / 3, dh = d / heads;
  const auto parts = qkv.view({B, L, 3, heads, dh}).permute({2, 0, 3, 1, 4});  // [3, B, h, L, dh]
  auto scores = torch::matmul(parts[0], parts[1].transpose(-2, -1)) / std::sqrt(static_cast<double>(dh));
  torch::Tensor bias = mask.bias;
  if (!bias.defined()) {
    const auto lengths = torch::tensor(mask.lengths, torch::kInt64).to(qkv.device());
    bias = torch::zeros({B, L}, qkv.options().requires_grad(false))
               .masked_fill_(torch::arange(L, lengths.options()).unsqueeze(0) >= lengths.unsqueeze(1),
                             -std::numeric_limits<float>::infinity());
  }
  // A cell without any real token would softmax over nothing (NaN); let it see its first position instead.
  bias = bias.clone();
  bias.select(1, 0).masked_fill_(bias.select(1, 0).isinf().logical_and(bias.isinf().all(1)), 0.0);
  scores = scores + bias.to(scores.dtype()).view({B, 1, 1, L});
  const auto ctx = torch::matmul(torch::softmax(scores, -1), parts[2]);  // [B, h, L, dh]
  return ctx.permute({0, 2, 1, 3}).reshape({B, L, d});
}

}  // namespace

torch::Tensor adapted_linear(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b,
                             const PostLnLayer& layer, Projection projection) {
  return add_adapters(torch::linear(x, w, b), x, layer, projection);
}

torch::Tensor add_adapters(torch::Tensor y, const torch::Tensor& x, const PostLnLayer& layer, Projection projection) {
  for (const auto& [where, a] : layer.lora) {
    if (where != projection) continue;
    // adapters stay float32 when the base weights are bfloat16 (an LLM): compute in theirs, add in the model's
    const auto xa = x.scalar_type() == a->A.scalar_type() ? x : x.to(a->A.scalar_type());
    const auto in = a->dropout > 0 ? torch::dropout(xa, a->dropout, layer.training) : xa;
    auto delta = (torch::linear(torch::linear(in, a->A), a->B) * a->scaling).to(y.scalar_type());
    const auto rows = a->B.size(0), total = y.size(-1);
    if (rows != total) delta = torch::constant_pad_nd(delta, {a->offset, total - a->offset - rows});
    y = y + delta;
  }
  return y;
}

KeyMask KeyMask::from_keep(const torch::Tensor& keep) {
  KeyMask mask;
  const auto k = keep.to(torch::kBool).cpu().contiguous();
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
    mask.bias = torch::zeros({B, L}).masked_fill_(k.logical_not(), -std::numeric_limits<float>::infinity()).to(keep.device());
    for (std::int64_t b = 0; b < B; ++b) mask.lengths[static_cast<std::size_t>(b)] = k[b].sum().item<std::int64_t>();
  }
  return mask;
}

namespace {

/// The rest of the layer once attention has given its context (`ctx`, before the output projection) for the rows
/// of `residual`: x = LN1(residual + out(ctx)); LN2(x + W2 act(W1 x)).
torch::Tensor after_attention(const torch::Tensor& ctx, const torch::Tensor& residual, const PostLnLayer& layer) {
  const auto d = residual.size(-1);
  auto h = adapted_linear(ctx, layer.out_w, layer.out_b, layer, Projection::kOutProj);
  h.add_(residual);  // in place is safe under autograd: add's backward keeps neither operand
  h = torch::layer_norm(h, {d}, layer.ln1_w, layer.ln1_b, layer.eps);
  auto f = adapted_linear(h, layer.ff1_w, layer.ff1_b, layer, Projection::kFf1);
  f = layer.gelu ? torch::gelu(f) : f.relu_();
  auto out = adapted_linear(f, layer.ff2_w, layer.ff2_b, layer, Projection::kFf2);
  out.add_(h);
  return torch::layer_norm(out, {d}, layer.ln2_w, layer.ln2_b, layer.eps);
}

}  // namespace

torch::Tensor post_ln_forward(const torch::Tensor& x, const PostLnLayer& layer, const KeyMask& mask) {
  const auto qkv = adapted_linear(x, layer.in_w, layer.in_b, layer, Projection::kInProj);
  const auto ctx = qkv.requires_grad() ? dense_attention(qkv, layer.heads, mask) : attention(qkv, layer.heads, mask);
  return after_attention(ctx, x, layer);
}

bool first_position_suffices(const torch::Tensor& x, const PostLnLayer& layer) {
  return layer.lora.empty() && !x.requires_grad() && !layer.in_w.requires_grad() && !layer.ff1_w.requires_grad();
}

torch::Tensor post_ln_forward_first(const torch::Tensor& x, const PostLnLayer& layer, const KeyMask& mask) {
  const auto B = x.size(0), L = x.size(1), d = x.size(2), heads = layer.heads, dh = d / heads;
  const auto rows = [&](const torch::Tensor& t, std::int64_t from, std::int64_t n) {
    return t.defined() ? t.narrow(0, from, n) : t;
  };
  const auto kv = torch::linear(x, layer.in_w.narrow(0, d, 2 * d), rows(layer.in_b, d, 2 * d));  // [B, L, 2d]
  const auto x0 = x.select(1, 0);                                                                  // [B, d]
  const auto q = torch::linear(x0, layer.in_w.narrow(0, 0, d), rows(layer.in_b, 0, d)) *
                 (1.0 / std::sqrt(static_cast<double>(dh)));
  auto ctx = torch::zeros({B, d}, x.options());  // a cell without tokens keeps a zero context, as in attention()
  for (std::int64_t b = 0; b < B; ++b) {
    const auto n = mask.right_padded() ? std::min<std::int64_t>(mask.lengths[static_cast<std::size_t>(b)], L) : L;
    if (n <= 0) continue;
    const auto keys = kv[b].narrow(0, 0, n).view({n, 2, heads, dh}).permute({1, 2, 0, 3});  // [2, h, n, dh]
    auto scores = torch::bmm(q[b].view({heads, 1, dh}), keys[0].transpose(1, 2));           // [h, 1, n]
    if (!mask.right_padded()) scores.add_(mask.bias[b].view({1, 1, L}));
    ctx[b].copy_(torch::bmm(torch::softmax(scores, -1), keys[1]).view({d}));
  }
  return after_attention(ctx, x0, layer);
}

torch::Tensor masked_mean(const torch::Tensor& states, const torch::Tensor& weights) {
  const auto w = weights.to(states.dtype());
  const auto sum = torch::bmm(w.unsqueeze(1), states).squeeze(1);  // [B, d]
  return sum / w.sum(1, true).clamp_min(1.0);
}

}  // namespace sdm::worker
