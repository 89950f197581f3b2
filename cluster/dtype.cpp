#include "cluster/dtype.h"

#include <algorithm>

#include "common/error.h"

namespace sdm::cluster {

std::size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::kFloat32: return 4;
    case DType::kFloat64: return 8;
    case DType::kBFloat16: return 2;
    case DType::kInt64: return 8;
  }
  throw Error("unknown dtype");
}

std::string_view dtype_name(DType dtype) {
  switch (dtype) {
    case DType::kFloat32: return "float32";
    case DType::kFloat64: return "float64";
    case DType::kBFloat16: return "bfloat16";
    case DType::kInt64: return "int64";
  }
  return "?";
}

std::string_view reduce_op_name(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum: return "sum";
    case ReduceOp::kAvg: return "avg";
    case ReduceOp::kMax: return "max";
  }
  return "?";
}

namespace {

template <class T>
void combine(T* dst, const T* src, std::size_t n, ReduceOp op) {
  if (op == ReduceOp::kMax) {
    for (std::size_t i = 0; i < n; ++i) dst[i] = std::max(dst[i], src[i]);
  } else {
    for (std::size_t i = 0; i < n; ++i) dst[i] += src[i];
  }
}

void combine_bf16(BFloat16* dst, const BFloat16* src, std::size_t n, ReduceOp op) {
  for (std::size_t i = 0; i < n; ++i) {
    const float a = bf16_to_float(dst[i]), b = bf16_to_float(src[i]);
    dst[i] = float_to_bf16(op == ReduceOp::kMax ? std::max(a, b) : a + b);
  }
}

}  // namespace

void reduce_into(void* dst, const void* src, std::size_t count, DType dtype, ReduceOp op) {
  switch (dtype) {
    case DType::kFloat32:
      return combine(static_cast<float*>(dst), static_cast<const float*>(src), count, op);
    case DType::kFloat64:
      return combine(static_cast<double*>(dst), static_cast<const double*>(src), count, op);
    case DType::kInt64:
      return combine(static_cast<std::int64_t*>(dst), static_cast<const std::int64_t*>(src), count, op);
    case DType::kBFloat16:
      return combine_bf16(static_cast<BFloat16*>(dst), static_cast<const BFloat16*>(src), count, op);
  }
}

void divide_by(void* buffer, std::size_t count, DType dtype, int ranks) {
  switch (dtype) {
    case DType::kFloat32: {
      auto* p = static_cast<float*>(buffer);
      for (std::size_t i = 0; i < count; ++i) p[i] /= static_cast<float>(ranks);
      return;
    }
    case DType::kFloat64: {
      auto* p = static_cast<double*>(buffer);
      for (std::size_t i = 0; i < count; ++i) p[i] /= ranks;
      return;
    }
    case DType::kInt64: {
      auto* p = static_cast<std::int64_t*>(buffer);
      for (std::size_t i = 0; i < count; ++i) p[i] /= ranks;
      return;
    }
    case DType::kBFloat16: {
      auto* p = static_cast<BFloat16*>(buffer);
      for (std::size_t i = 0; i < count; ++i) p[i] = float_to_bf16(bf16_to_float(p[i]) / static_cast<float>(ranks));
      return;
    }
  }
}

}  // namespace sdm::cluster
