#pragma once
// Tensor adapters over Collective: the tensor's dtype, device and layout are checked, then its storage
// goes to the raw-buffer call. CPU tensors pair with host backends (MPI, Loopback); CUDA tensors with the
// NCCL backend. Only ATen's core Tensor header is needed here, not torch/torch.h.
#include <ATen/core/Tensor.h>

#include "cluster/collective.h"

namespace sdm::cluster {

/// float32, float64, bfloat16 or int64; anything else throws ClusterError naming the dtype.
DType dtype_of(const at::Tensor& tensor);

/// In place over the tensor's storage (the handle is const; the data is not).
void allreduce(Collective& collective, const at::Tensor& tensor, ReduceOp op);
void broadcast(Collective& collective, const at::Tensor& tensor, int root);
/// `out` must hold size() x tensor.numel() elements of the same dtype (e.g. shape [size, *tensor.shape]).
void allgather(Collective& collective, const at::Tensor& tensor, const at::Tensor& out);

}  // namespace sdm::cluster
