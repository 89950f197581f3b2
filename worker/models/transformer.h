#pragma once
// The post-LN transformer encoder layer that scGPT and Geneformer (BERT) share, written for CPU inference:
// attention runs per cell (over blocks of queries for very long cells), so the [B, heads, L, L] score tensor of
// the classic path is never materialized (368 MB per layer for scGPT at B = 8); with right padding a cell attends
// over its own length only, so padding costs no attention work. When the projections carry gradients (LoRA
// training), attention runs batched and differentiable instead, with padded keys masked.
#include <torch/torch.h>

#include <string>
#include <vector>

namespace sdm::worker {

/// Which keys each cell may attend to.
struct KeyMask {
  std::vector<std::int64_t> lengths;  ///< real tokens per cell; with right padding they are the first ones
  torch::Tensor bias;                 ///< [B, L] additive 0 / -inf, only when the mask is not right padding
  /// From a [B, L] "keep" mask (true = real token).
  static KeyMask from_keep(const torch::Tensor& keep);
  bool right_padded() const { return !bias.defined(); }
};

/// One LoRA adapter (Hu et al. 2021, as PEFT applies it to a Linear): y += scaling * B(A(dropout(x))), with
/// A [r, in] and B [rows, r]. It adds to `rows` outputs of its projection starting at `offset`, which is how an
/// adapter on one of BERT's separate query/key/value Linears lands in our fused q/k/v projection.
struct LoraAdapter {
  torch::Tensor A, B;
  double scaling = 1.0;
  double dropout = 0.0;
  std::int64_t offset = 0;
};

/// The projections of a layer an adapter can sit on: the fused q/k/v projection, or separate ones (LLaMA, CellPLM),
/// the attention output, the feed-forward's first (up), second (down) and gate projections.
enum class Projection { kInProj, kOutProj, kFf1, kFf2, kQ, kK, kV, kGate };

struct PostLnLayer {
  torch::Tensor in_w, in_b;    ///< fused q, k, v projection [3d, d] (torch's in_proj layout)
  torch::Tensor out_w, out_b;  ///< attention output projection
  torch::Tensor ff1_w, ff1_b, ff2_w, ff2_b;
  torch::Tensor ln1_w, ln1_b, ln2_w, ln2_b;
  std::int64_t heads = 1;
  double eps = 1e-5;
  bool gelu = false;  ///< activation: relu (both models' published configs) or exact gelu
  /// Adapters by projection (none when LoRA is off or merged).
  std::vector<std::pair<Projection, const LoraAdapter*>> lora;
  bool training = false;  ///< adapter dropout active
};

/// `y` (the projection of `x`) plus the layer's adapters on `projection`.
torch::Tensor add_adapters(torch::Tensor y, const torch::Tensor& x, const PostLnLayer& layer, Projection projection);

/// linear(x, w, b) plus the layer's adapters on `projection`.
torch::Tensor adapted_linear(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b,
                             const PostLnLayer& layer, Projection projection);

/// x = LN1(x + Attn(x)); x = LN2(x + W2 act(W1 x)). `x` is [B, L, d]. With right padding, outputs at padded
/// positions are not computed from attention (their context is zero) and carry no meaning.
torch::Tensor post_ln_forward(const torch::Tensor& x, const PostLnLayer& layer, const KeyMask& mask);

/// The same layer's output at position 0 only ([B, d]), for models whose cell embedding is the last layer's
/// <cls> output: keys and values still come from every token, but the query, attention, output projection and
/// feed-forward run for one position, which saves ~4/5 of the last layer's work. Exact (the same values as
/// post_ln_forward(...).select(1, 0)); for inference only: see first_position_suffices.
torch::Tensor post_ln_forward_first(const torch::Tensor& x, const PostLnLayer& layer, const KeyMask& mask);

/// Whether post_ln_forward_first may stand in for the layer: no adapters (unmerged LoRA) and nothing that needs
/// gradients.
bool first_position_suffices(const torch::Tensor& x, const PostLnLayer& layer);

/// Per cell, the mean of `states` [B, L, d] weighted by `weights` [B, L] (1 = include); a cell with no weight
/// gets zeros.
torch::Tensor masked_mean(const torch::Tensor& states, const torch::Tensor& weights);

}  // namespace sdm::worker
