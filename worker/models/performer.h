#pragma once
// The Performer layer scBERT and CellLM share (performer-pytorch as both vendor it): pre-LN, FAVOR+ linear
// attention with the softmax kernel and a fixed random-feature projection (a buffer of the checkpoint, so it is
// loaded, never redrawn), GELU feed-forward. Written once; the models only assemble layers from their parameters.
#include <torch/torch.h>

#include <vector>

#include "worker/models/transformer.h"

namespace sdm::worker {

struct PerformerLayer {
  torch::Tensor ln1_w, ln1_b;       ///< attention's pre-norm
  torch::Tensor qkv_w;              ///< to_q, to_k, to_v stacked [3 inner, dim] (no bias in both models)
  torch::Tensor out_w, out_b;       ///< to_out
  torch::Tensor projection;         ///< fast_attention.projection_matrix [nb_features, dim_head]
  torch::Tensor ln2_w, ln2_b;       ///< feed-forward's pre-norm
  torch::Tensor ff1_w, ff1_b, ff2_w, ff2_b;
  std::int64_t heads = 1;
  double eps = 1e-5;
  /// LoRA adapters (Projection::kInProj with offsets 0 / inner / 2 inner = to_q / to_k / to_v; kOutProj = to_out;
  /// kFf1 / kFf2 = w1 / w2), carried by a PostLnLayer used only for them and its training flag.
  PostLnLayer adapters;
};

/// FAVOR+ feature map of performer-pytorch's softmax_kernel for `data` [B, h, L, dh] and projection [m, dh]:
/// ratio * (exp(x P^T / dh^1/4 - |x|^2 / (2 sqrt(dh)) - max) + 1e-4), ratio = m^-1/2. Queries subtract their own
/// row max; keys the max over everything of the cell (upstream takes it over the whole batch, which makes a
/// cell's result depend on its batch through the 1e-4 term; per cell equals upstream at batch size 1).
torch::Tensor favor_features(const torch::Tensor& data, const torch::Tensor& projection, bool is_query);

/// x + Attn(LN(x)); x + FF(LN(x)). `keep` [B, L] (optional): CellLM zeroes the values of padded positions before
/// the linear attention (their keys still count, as upstream).
torch::Tensor performer_forward(const torch::Tensor& x, const PerformerLayer& layer, const torch::Tensor& keep);

}  // namespace sdm::worker
