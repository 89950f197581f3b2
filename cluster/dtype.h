#pragma once
// Element types and reduction operators that every Collective backend understands.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace sdm::cluster {

enum class DType { kFloat32, kFloat64, kBFloat16, kInt64 };
enum class ReduceOp { kSum, kAvg, kMax };

std::size_t dtype_size(DType dtype);
std::string_view dtype_name(DType dtype);
std::string_view reduce_op_name(ReduceOp op);

/// bfloat16 stored as its raw 16 bits (the upper half of a float32).
struct BFloat16 {
  std::uint16_t bits = 0;
};

inline float bf16_to_float(BFloat16 v) {
  const std::uint32_t u = std::uint32_t{v.bits} << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

/// Round-to-nearest-even, as PyTorch and NCCL do; NaN stays NaN.
inline BFloat16 float_to_bf16(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  if ((u & 0x7f800000u) == 0x7f800000u && (u & 0x007fffffu) != 0) return {static_cast<std::uint16_t>((u >> 16) | 0x40)};
  const std::uint32_t rounding = 0x7fffu + ((u >> 16) & 1u);
  return {static_cast<std::uint16_t>((u + rounding) >> 16)};
}

/// Host kernels shared by the Loopback backend and the MPI bfloat16 reduction.
/// dst[i] = op(dst[i], src[i]) for kSum/kAvg (both add) and kMax. bfloat16 is combined in float32 and
/// rounded once per combine.
void reduce_into(void* dst, const void* src, std::size_t count, DType dtype, ReduceOp op);

/// Turns a sum over `ranks` contributions into an average (float types divide; int64 divides, truncating).
void divide_by(void* buffer, std::size_t count, DType dtype, int ranks);

}  // namespace sdm::cluster
