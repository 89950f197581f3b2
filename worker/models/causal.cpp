#include "worker/models/causal.h"

#include <cmath>

#include "common/error.h"

namespace sdm::worker {

torch::Tensor causal_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                               const torch::Tensor& keep, double scale) {
  constexpr std::int64_t kBlock = 256;
  const auto L = q.size(2);
  const auto key_ok = keep.to(torch::kBool).to(q.device()).unsqueeze(1).unsqueeze(1);  // [B, 1, 1, L]
  const auto positions = torch::arange(L, torch::TensorOptions().device(q.device()));
  const auto kt = k.transpose(-2, -1);
  std::vector<torch::Tensor> parts;
  for (std::int64_t start = 0; start < L; start += kBlock) {
    const auto n = std::min(kBlock, L - start);
    auto scores = torch::matmul(q.narrow(2, start, n), kt).mul(scale).to(torch::kFloat32);  // softmax in float32
    const auto causal = positions.unsqueeze(0) <= positions.narrow(0, start, n).unsqueeze(1);  // [n, L]
    scores = scores.masked_fill(~(causal.unsqueeze(0).unsqueeze(0) & key_ok), -std::numeric_limits<float>::infinity());
    parts.push_back(torch::matmul(torch::softmax(scores, -1).to(v.scalar_type()), v));
  }
  return parts.size() == 1 ? parts.front() : torch::cat(parts, 2);
}

torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& w, double eps) {
  const auto x32 = x.to(torch::kFloat32);
  const auto normed = x32 * torch::rsqrt(x32.pow(2).mean(-1, true) + eps);
  return w * normed.to(x.scalar_type());
}

torch::Tensor rotary(const torch::Tensor& x, std::int64_t dims, double theta, bool interleaved) {
  const auto L = x.size(2);
  const auto options = torch::TensorOptions().dtype(torch::kFloat32).device(x.device());
  // inv_freq = theta^(-2j / dims), j < dims / 2 (both models compute it in float32)
  const auto inv_freq = 1.0 / torch::pow(theta, torch::arange(0, dims, 2, options) / static_cast<double>(dims));
  const auto angles = torch::outer(torch::arange(L, options), inv_freq);  // [L, dims/2]
  const auto cos = angles.cos(), sin = angles.sin();
  const auto xf = x.to(torch::kFloat32);
  if (!interleaved) {
    const auto c = torch::cat({cos, cos}, -1), s = torch::cat({sin, sin}, -1);  // [L, dh]
    const auto half = x.size(-1) / 2;
    const auto rotated = torch::cat({-xf.narrow(-1, half, half), xf.narrow(-1, 0, half)}, -1);
    return (xf * c + rotated * s).to(x.scalar_type());
  }
  const auto head = xf.narrow(-1, 0, dims);
  const auto pairs = head.reshape({x.size(0), x.size(1), L, dims / 2, 2});
  const auto a = pairs.select(-1, 0), b = pairs.select(-1, 1);
  const auto out = torch::stack({a * cos - b * sin, b * cos + a * sin}, -1).flatten(3);
  const auto rest = xf.narrow(-1, dims, x.size(-1) - dims);
  return torch::cat({out, rest}, -1).to(x.scalar_type());
}

torch::Tensor repeat_kv(const torch::Tensor& x, std::int64_t n_rep) {
  if (n_rep == 1) return x;
  const auto B = x.size(0), kv = x.size(1), L = x.size(2), dh = x.size(3);
  return x.unsqueeze(2).expand({B, kv, n_rep, L, dh}).reshape({B, kv * n_rep, L, dh});
}

ModelInputs collate_ids(const TokenizedCells& cells, const std::vector<std::size_t>& rows, std::int64_t pad_id) {
  const auto B = static_cast<std::int64_t>(rows.size());
  std::int64_t L = 1;
  for (auto r : rows) L = std::max(L, static_cast<std::int64_t>(cells.ids[r].size()));
  auto ids = torch::full({B, L}, pad_id, torch::kInt64);
  auto mask = torch::zeros({B, L}, torch::kInt64);
  for (std::int64_t b = 0; b < B; ++b) {
    const auto& seq = cells.ids[rows[static_cast<std::size_t>(b)]];
    std::copy(seq.begin(), seq.end(), ids.data_ptr<std::int64_t>() + b * L);
    std::fill_n(mask.data_ptr<std::int64_t>() + b * L, seq.size(), std::int64_t{1});
  }
  return {{"input_ids", ids}, {"attention_mask", mask}};
}

void check_id_inputs(const ModelInputs& inputs, std::int64_t vocab, std::int64_t max_length, const std::string& source) {
  const auto& ids = inputs.at("input_ids");
  check_2d(ids, "input_ids", source, -1, -1);
  check_2d(inputs.at("attention_mask"), "attention_mask", source, ids.size(0), ids.size(1));
  check_ids(ids, vocab, "input_ids", source);
  if (ids.size(1) > max_length) {
    throw DataError({source, "input_ids", std::to_string(ids.size(1))}, "longer than max_length " + std::to_string(max_length));
  }
}

}  // namespace sdm::worker
