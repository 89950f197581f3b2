#include "cluster/tensor_collective.h"

#include <sstream>

#include "common/error.h"

namespace sdm::cluster {
namespace {

void check_usable(const Collective& collective, const at::Tensor& t, const char* what) {
  if (!t.defined()) throw ClusterError(std::string(what) + ": undefined tensor");
  if (!t.is_contiguous()) throw ClusterError(std::string(what) + ": tensor must be contiguous");
  const bool on_cuda = t.is_cuda();
  const bool wants_cuda = collective.memory_space() == MemorySpace::kCuda;
  if (on_cuda != wants_cuda) {
    std::ostringstream msg;
    msg << what << ": a " << t.device() << " tensor cannot go through the " << collective.backend()
        << " backend (it needs " << (wants_cuda ? "CUDA" : "CPU") << " tensors)";
    throw ClusterError(msg.str());
  }
}

}  // namespace

DType dtype_of(const at::Tensor& tensor) {
  switch (tensor.scalar_type()) {
    case at::kFloat: return DType::kFloat32;
    case at::kDouble: return DType::kFloat64;
    case at::kBFloat16: return DType::kBFloat16;
    case at::kLong: return DType::kInt64;
    default: {
      std::ostringstream msg;
      msg << "collectives support float32, float64, bfloat16 and int64 tensors, not " << tensor.scalar_type();
      throw ClusterError(msg.str());
    }
  }
}

void allreduce(Collective& collective, const at::Tensor& tensor, ReduceOp op) {
  check_usable(collective, tensor, "allreduce");
  collective.allreduce(tensor.data_ptr(), static_cast<std::size_t>(tensor.numel()), dtype_of(tensor), op);
}

void broadcast(Collective& collective, const at::Tensor& tensor, int root) {
  check_usable(collective, tensor, "broadcast");
  collective.broadcast(tensor.data_ptr(), static_cast<std::size_t>(tensor.numel()), dtype_of(tensor), root);
}

void allgather(Collective& collective, const at::Tensor& tensor, const at::Tensor& out) {
  check_usable(collective, tensor, "allgather");
  check_usable(collective, out, "allgather");
  if (out.scalar_type() != tensor.scalar_type())
    throw ClusterError("allgather: output dtype differs from input dtype");
  if (out.numel() != tensor.numel() * collective.size())
    throw ClusterError("allgather: output has " + std::to_string(out.numel()) + " elements, needs " +
                       std::to_string(tensor.numel() * collective.size()));
  collective.allgather(tensor.data_ptr(), out.data_ptr(), static_cast<std::size_t>(tensor.numel()),
                       dtype_of(tensor));
}

GradientBuckets::GradientBuckets(const std::vector<at::Tensor>& like, std::size_t bucket_bytes) {
  std::size_t i = 0;
  while (i < like.size()) {
    const at::Tensor& first = like[i];
    if (!first.defined()) throw ClusterError("GradientBuckets: tensor " + std::to_string(i) + " is undefined");
    // The run of tensors that share dtype and device and fit in one bucket (at least one tensor).
    std::size_t end = i, bytes = 0;
    while (end < like.size() && like[end].defined() && like[end].scalar_type() == first.scalar_type() &&
           like[end].device() == first.device() && (end == i || bytes + like[end].nbytes() <= bucket_bytes)) {
      bytes += like[end].nbytes();
      ++end;
    }
    std::int64_t numel = 0;
    for (std::size_t k = i; k < end; ++k) numel += like[k].numel();
    at::Tensor flat = first.new_zeros({numel});
    std::int64_t offset = 0;
    for (std::size_t k = i; k < end; ++k) {
      views_.push_back(flat.narrow(0, offset, like[k].numel()).view(like[k].sizes()));
      offset += like[k].numel();
    }
    buckets_.push_back(flat);
    i = end;
  }
}

void GradientBuckets::zero() {
  for (auto& b : buckets_) b.zero_();
}

BucketStats GradientBuckets::allreduce(Collective& collective, ReduceOp op) {
  BucketStats stats;
  for (auto& b : buckets_) {
    cluster::allreduce(collective, b, op);
    stats.bytes += b.nbytes();
    ++stats.buckets;
  }
  collective.synchronize();
  return stats;
}

}  // namespace sdm::cluster
