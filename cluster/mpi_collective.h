#pragma once
// Collective over MPI for host memory. It works on a private duplicate of the given communicator, so
// its traffic can never be confused with the scheduler's point-to-point messages.
#include "cluster/collective.h"
#include "cluster/mpi.h"

namespace sdm::cluster {

class MpiCollective final : public Collective {
 public:
  explicit MpiCollective(MPI_Comm comm);
  ~MpiCollective() override;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string_view backend() const override { return "mpi"; }

  using Collective::allgather;  // keep the typed overloads visible next to the overrides
  using Collective::allreduce;
  using Collective::broadcast;
  void allreduce(void* buffer, std::size_t count, DType dtype, ReduceOp op) override;
  void broadcast(void* buffer, std::size_t count, DType dtype, int root) override;
  void allgather(const void* send, void* recv, std::size_t count, DType dtype) override;
  void barrier() override;

 private:
  void broadcast_bytes(void* buffer, std::size_t bytes, int root);

  MpiComm comm_;
  int rank_ = 0;
  int size_ = 1;
  // bfloat16 has no MPI type: a 2-byte type plus user reductions that add (or max) in float32.
  MPI_Datatype bf16_type_ = MPI_DATATYPE_NULL;
  MPI_Op bf16_sum_ = MPI_OP_NULL;
  MPI_Op bf16_max_ = MPI_OP_NULL;
};

}  // namespace sdm::cluster
