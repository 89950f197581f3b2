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

}  // namespace sdm::cluster
