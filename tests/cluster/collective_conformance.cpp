#include "collective_conformance.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <vector>

namespace sdm::cluster::testing {
namespace {

// Value rank r contributes at index i: small integers, so float sums are exact and order-independent.
double contribution(int r, std::size_t i) { return static_cast<double>((i * 7 + static_cast<std::size_t>(r) * 3) % 11) - 5; }

template <class T>
void check_typed_allreduce(Collective& c, ReduceOp op) {
  constexpr std::size_t kCount = 257;  // odd size: no accidental alignment luck
  std::vector<T> buf(kCount);
  for (std::size_t i = 0; i < kCount; ++i) buf[i] = static_cast<T>(contribution(c.rank(), i));
  c.allreduce(std::span<T>(buf), op);
  for (std::size_t i = 0; i < kCount; ++i) {
    double expect = op == ReduceOp::kMax ? -1e300 : 0.0;
    for (int r = 0; r < c.size(); ++r)
      expect = op == ReduceOp::kMax ? std::max(expect, contribution(r, i)) : expect + contribution(r, i);
    if (op == ReduceOp::kAvg) {
      if constexpr (std::is_integral_v<T>) expect = static_cast<double>(static_cast<std::int64_t>(expect) / c.size());
      else expect /= c.size();
    }
    const double tolerance = std::is_same_v<T, float> ? 1e-6 : 1e-12;
    ASSERT_NEAR(static_cast<double>(buf[i]), expect, tolerance)
        << dtype_name(Collective::dtype_of<T>()) << " " << reduce_op_name(op) << " at " << i << " on rank " << c.rank();
  }
}

}  // namespace

void check_allreduce_all_dtypes_and_ops(Collective& c) {
  for (ReduceOp op : {ReduceOp::kSum, ReduceOp::kAvg, ReduceOp::kMax}) {
    check_typed_allreduce<float>(c, op);
    check_typed_allreduce<double>(c, op);
    check_typed_allreduce<std::int64_t>(c, op);
  }
}

void check_bfloat16_accumulates_accurately(Collective& c) {
  // Values near 1 + k/256 are not all representable in bf16 sums; float32 accumulation keeps the error
  // within one bf16 rounding per combine step (log2-depth trees or chains, at most size-1 steps).
  constexpr std::size_t kCount = 1000;
  std::vector<BFloat16> buf(kCount);
  std::vector<float> inputs(kCount);
  for (std::size_t i = 0; i < kCount; ++i) {
    const float v = 1.0f + static_cast<float>((i + static_cast<std::size_t>(c.rank()) * 13) % 97) / 64.0f;
    buf[i] = float_to_bf16(v);
  }
  c.allreduce(std::span<BFloat16>(buf), ReduceOp::kSum);
  for (std::size_t i = 0; i < kCount; ++i) {
    double exact = 0;
    for (int r = 0; r < c.size(); ++r)
      exact += bf16_to_float(float_to_bf16(1.0f + static_cast<float>((i + static_cast<std::size_t>(r) * 13) % 97) / 64.0f));
    const double got = bf16_to_float(buf[i]);
    // bf16 has 8 significant bits: relative step 2^-8 per rounding.
    ASSERT_NEAR(got, exact, exact * std::ldexp(1.0, -8) * std::max(1, c.size() - 1)) << "index " << i;
  }
  // Max is exact in any precision.
  std::vector<BFloat16> mx{float_to_bf16(static_cast<float>(c.rank()) - 0.5f)};
  c.allreduce(std::span<BFloat16>(mx), ReduceOp::kMax);
  EXPECT_EQ(bf16_to_float(mx[0]), static_cast<float>(c.size() - 1) - 0.5f);
}

void check_broadcast_from_every_root(Collective& c) {
  for (int root = 0; root < c.size(); ++root) {
    std::vector<double> buf(100, -1.0);
    if (c.rank() == root)
      for (std::size_t i = 0; i < buf.size(); ++i) buf[i] = root * 1000.0 + static_cast<double>(i);
    c.broadcast(std::span<double>(buf), root);
    for (std::size_t i = 0; i < buf.size(); ++i) ASSERT_EQ(buf[i], root * 1000.0 + static_cast<double>(i));
  }
}

void check_allgather(Collective& c) {
  std::vector<std::int64_t> mine{c.rank() * 10, c.rank() * 10 + 1, c.rank() * 10 + 2};
  std::vector<std::int64_t> all(mine.size() * static_cast<std::size_t>(c.size()), -1);
  c.allgather(std::span<const std::int64_t>(mine), std::span<std::int64_t>(all));
  for (int r = 0; r < c.size(); ++r)
    for (std::size_t k = 0; k < 3; ++k) ASSERT_EQ(all[static_cast<std::size_t>(r) * 3 + k], r * 10 + static_cast<std::int64_t>(k));
}

void check_barrier_orders_side_effects(Collective& c) {
  // Round-trip a counter through allreduce with barriers between: every rank sees every increment.
  std::vector<std::int64_t> counter{0};
  for (int round = 1; round <= 3; ++round) {
    c.barrier();
    std::vector<std::int64_t> one{1};
    c.allreduce(std::span<std::int64_t>(one), ReduceOp::kSum);
    counter[0] += one[0];
    ASSERT_EQ(counter[0], round * c.size());
  }
}

void check_large_buffer(Collective& c) {
  const std::size_t n = std::size_t{3} << 20;  // 12 MiB of float32: well past eager/rendezvous thresholds
  std::vector<float> buf(n, static_cast<float>(c.rank() + 1));
  c.allreduce(std::span<float>(buf), ReduceOp::kSum);
  const float expect = static_cast<float>(c.size() * (c.size() + 1) / 2);
  std::size_t wrong = 0;
  for (float v : buf) wrong += v != expect;
  EXPECT_EQ(wrong, 0u);
}

void run_conformance(Collective& c) {
  check_allreduce_all_dtypes_and_ops(c);
  check_bfloat16_accumulates_accurately(c);
  check_broadcast_from_every_root(c);
  check_allgather(c);
  check_barrier_orders_side_effects(c);
  check_large_buffer(c);
}

}  // namespace sdm::cluster::testing
