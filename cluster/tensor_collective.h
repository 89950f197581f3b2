#pragma once
// Tensor adapters over Collective: the tensor's dtype, device and layout are checked, then its storage
// goes to the raw-buffer call. CPU tensors pair with host backends (MPI, Loopback); CUDA tensors with the
// NCCL backend. Only ATen's core Tensor header is needed here, not torch/torch.h.
#include <ATen/core/Tensor.h>

#include <vector>

#include "cluster/collective.h"

namespace sdm::cluster {

/// float32, float64, bfloat16 or int64; anything else throws ClusterError naming the dtype.
DType dtype_of(const at::Tensor& tensor);

/// In place over the tensor's storage (the handle is const; the data is not).
void allreduce(Collective& collective, const at::Tensor& tensor, ReduceOp op);
void broadcast(Collective& collective, const at::Tensor& tensor, int root);
/// `out` must hold size() x tensor.numel() elements of the same dtype (e.g. shape [size, *tensor.shape]).
void allgather(Collective& collective, const at::Tensor& tensor, const at::Tensor& out);

/// PyTorch DDP's default bucket size.
inline constexpr std::size_t kDefaultBucketBytes = std::size_t{25} << 20;

struct BucketStats {
  std::size_t bytes = 0;    ///< payload all-reduced
  std::size_t buckets = 0;  ///< collective calls made
};

/// Gradient buckets as DDP lays them out (gradient_as_bucket_view): tensors shaped like `like` live as views
/// inside a few flat buffers of at most `bucket_bytes` (consecutive tensors of one dtype and device share a
/// buffer; a tensor larger than a bucket gets its own). Used as the parameters' gradients, autograd accumulates
/// straight into the buckets, and one collective call per bucket reduces them: no packing or unpacking copies.
/// Every rank must build it from the same shapes in the same order.
class GradientBuckets {
 public:
  explicit GradientBuckets(const std::vector<at::Tensor>& like, std::size_t bucket_bytes = kDefaultBucketBytes);
  /// One view per tensor of `like`, in order, with its shape.
  const std::vector<at::Tensor>& views() const { return views_; }
  std::size_t size() const { return buckets_.size(); }
  void zero();
  /// Reduces every bucket in place (then, on device backends, waits for it).
  BucketStats allreduce(Collective& collective, ReduceOp op);

 private:
  std::vector<at::Tensor> buckets_;
  std::vector<at::Tensor> views_;
};

}  // namespace sdm::cluster
