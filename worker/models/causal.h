#pragma once
// Pieces the causal (decoder-only) models share: tGPT (GPT-2), LLaMA-3 and ChatGLM2/3. Inputs are right-padded
// `input_ids` with an `attention_mask`; because attention is causal, a real token never sees the padding after
// it, so right padding changes nothing for real tokens (ChatGLM's own tokenizer pads on the left).
#include <torch/torch.h>

#include "worker/models/encoder.h"

namespace sdm::worker {

/// softmax(q k^T * scale + causal + key padding) v for q [B, h, L, dh] and k, v [B, h, L, dh] (already expanded to
/// h heads). Queries run in blocks so the score tensor stays [B, h, block, L] (a 4096-token LLaMA prompt would
/// otherwise need [B, 32, 4096, 4096]). `keep` [B, L] bool.
torch::Tensor causal_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                               const torch::Tensor& keep, double scale);

/// RMSNorm as LLaMA and ChatGLM compute it: in float32, x * rsqrt(mean(x^2) + eps), back to x's dtype, times w.
torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& w, double eps);

/// Rotary embedding on [B, h, L, dh] at positions 0..L-1. `interleaved` false: Hugging Face LLaMA's rotate_half
/// over all dh dims (frequency j on dims j and j + dh/2); true: ChatGLM's pairs (2j, 2j+1) over the first `dims`
/// dims only, the rest passing through. theta is the RoPE base.
torch::Tensor rotary(const torch::Tensor& x, std::int64_t dims, double theta, bool interleaved);

/// [B, kv, L, dh] -> [B, kv * n_rep, L, dh], kv head j serving query heads j n_rep ... (j+1) n_rep - 1 (GQA / MQA).
torch::Tensor repeat_kv(const torch::Tensor& x, std::int64_t n_rep);

/// Inputs of causal models: `input_ids` int64 and `attention_mask` int64 [B, L], right-padded with `pad_id`.
ModelInputs collate_ids(const TokenizedCells& cells, const std::vector<std::size_t>& rows, std::int64_t pad_id);
/// Checks a --tokenized file's `input_ids` / `attention_mask`: shapes, ids in [0, vocab), at most `max_length`.
void check_id_inputs(const ModelInputs& inputs, std::int64_t vocab, std::int64_t max_length, const std::string& source);

}  // namespace sdm::worker
