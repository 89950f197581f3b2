#include "cluster/dtype.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

namespace sdm::cluster {

TEST(BFloat16, ConvertsExactValuesAndRoundsToNearestEven) {
  EXPECT_EQ(float_to_bf16(1.0f).bits, 0x3f80);
  EXPECT_EQ(float_to_bf16(-2.0f).bits, 0xc000);
  EXPECT_EQ(bf16_to_float(BFloat16{0x3f80}), 1.0f);
  // 1 + 2^-8 lies exactly halfway between bf16 1.0 and 1 + 2^-7: ties go to the even mantissa (1.0).
  EXPECT_EQ(bf16_to_float(float_to_bf16(1.0f + std::ldexp(1.0f, -8))), 1.0f);
  // 1 + 3*2^-8 is halfway between 1+2^-7 (odd) and 1+2^-6 (even): rounds up to the even one.
  EXPECT_EQ(bf16_to_float(float_to_bf16(1.0f + 3 * std::ldexp(1.0f, -8))), 1.0f + std::ldexp(1.0f, -6));
  EXPECT_TRUE(std::isnan(bf16_to_float(float_to_bf16(std::numeric_limits<float>::quiet_NaN()))));
  EXPECT_TRUE(std::isinf(bf16_to_float(float_to_bf16(std::numeric_limits<float>::infinity()))));
}

TEST(HostKernels, ReduceAndAverage) {
  std::vector<double> a{1, 5, -3}, b{2, 4, -1};
  reduce_into(a.data(), b.data(), 3, DType::kFloat64, ReduceOp::kSum);
  EXPECT_EQ(a, (std::vector<double>{3, 9, -4}));
  divide_by(a.data(), 3, DType::kFloat64, 2);
  EXPECT_EQ(a, (std::vector<double>{1.5, 4.5, -2}));
  std::vector<std::int64_t> x{1, 7}, y{5, 2};
  reduce_into(x.data(), y.data(), 2, DType::kInt64, ReduceOp::kMax);
  EXPECT_EQ(x, (std::vector<std::int64_t>{5, 7}));
  std::vector<BFloat16> p{float_to_bf16(1.5f)}, q{float_to_bf16(2.25f)};
  reduce_into(p.data(), q.data(), 1, DType::kBFloat16, ReduceOp::kSum);
  EXPECT_EQ(bf16_to_float(p[0]), 3.75f);
}

TEST(DType, SizesAndNames) {
  EXPECT_EQ(dtype_size(DType::kBFloat16), 2u);
  EXPECT_EQ(dtype_size(DType::kInt64), 8u);
  EXPECT_EQ(dtype_name(DType::kFloat32), "float32");
  EXPECT_EQ(reduce_op_name(ReduceOp::kAvg), "avg");
}

}  // namespace sdm::cluster
