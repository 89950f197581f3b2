#pragma once
// Collective over NCCL for CUDA device memory (built when SDM_HAVE_NCCL is defined). Buffers are raw
// device pointers; calls are enqueued on one CUDA stream and complete asynchronously (synchronize()
// waits). The NCCL unique id travels from rank 0 to the others over MPI. No CUDA or NCCL header leaks
// out of this file, so callers compile without the CUDA toolkit on their include path.
#include <array>
#include <memory>
#include <string>

#include "cluster/collective.h"
#include "cluster/mpi.h"

namespace sdm::cluster {

/// NCCL's version code as the library reports it (2.28.9 -> 22809).
int nccl_version_code();
/// "2.28.9".
std::string nccl_version_string();

/// CUDA devices this process can use; 0 with `reason` set (e.g. "no CUDA driver") when there are none.
int cuda_device_count(std::string* reason);

/// Makes this rank's GPU (gpu_for_local_rank of the launcher's local rank) the current CUDA device, so LibTorch's
/// `cuda` and NCCL use it; returns it, or -1 without GPUs.
int bind_local_gpu();

/// Root creates an NCCL unique id; every rank of `comm` returns the same 128 bytes.
std::array<char, 128> broadcast_nccl_unique_id(MPI_Comm comm, int root = 0);

class NcclCollective final : public Collective {
 public:
  /// Joins all ranks of `comm` into one NCCL communicator on CUDA device `device`. `stream` is the
  /// cudaStream_t to enqueue on (e.g. the framework's current stream); nullptr makes a private one.
  NcclCollective(MPI_Comm comm, int device, void* stream = nullptr);
  ~NcclCollective() override;

  int rank() const override;
  int size() const override;
  std::string_view backend() const override { return "nccl"; }
  MemorySpace memory_space() const override { return MemorySpace::kCuda; }

  using Collective::allgather;  // keep the typed overloads visible next to the overrides
  using Collective::allreduce;
  using Collective::broadcast;
  void allreduce(void* buffer, std::size_t count, DType dtype, ReduceOp op) override;
  void broadcast(void* buffer, std::size_t count, DType dtype, int root) override;
  void allgather(const void* send, void* recv, std::size_t count, DType dtype) override;
  void barrier() override;
  void synchronize() override;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace sdm::cluster
