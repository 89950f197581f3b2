#include "cluster/mpi_collective.h"

#include <algorithm>
#include <climits>
#include <vector>

#include "common/error.h"

namespace sdm::cluster {
namespace {

// MPI counts are int: large buffers go in chunks of at most this many elements.
constexpr std::size_t kMaxChunk = std::size_t{1} << 30;

void bf16_sum(void* in, void* inout, int* len, MPI_Datatype*) {
  reduce_into(inout, in, static_cast<std::size_t>(*len), DType::kBFloat16, ReduceOp::kSum);
}
void bf16_max(void* in, void* inout, int* len, MPI_Datatype*) {
  reduce_into(inout, in, static_cast<std::size_t>(*len), DType::kBFloat16, ReduceOp::kMax);
}

MPI_Datatype builtin_type(DType dtype) {
  switch (dtype) {
    case DType::kFloat32: return MPI_FLOAT;
    case DType::kFloat64: return MPI_DOUBLE;
    case DType::kInt64: return MPI_INT64_T;
    case DType::kBFloat16: return MPI_DATATYPE_NULL;
  }
  return MPI_DATATYPE_NULL;
}

}  // namespace

MpiCollective::MpiCollective(MPI_Comm comm) : comm_(MpiComm::dup(comm)) {
  rank_ = comm_.rank();
  size_ = comm_.size();
  check_mpi(MPI_Type_contiguous(2, MPI_BYTE, &bf16_type_), "MPI_Type_contiguous");
  check_mpi(MPI_Type_commit(&bf16_type_), "MPI_Type_commit");
  check_mpi(MPI_Op_create(&bf16_sum, /*commute=*/1, &bf16_sum_), "MPI_Op_create");
  check_mpi(MPI_Op_create(&bf16_max, /*commute=*/1, &bf16_max_), "MPI_Op_create");
}

MpiCollective::~MpiCollective() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (finalized) return;
  if (bf16_sum_ != MPI_OP_NULL) MPI_Op_free(&bf16_sum_);
  if (bf16_max_ != MPI_OP_NULL) MPI_Op_free(&bf16_max_);
  if (bf16_type_ != MPI_DATATYPE_NULL) MPI_Type_free(&bf16_type_);
}

void MpiCollective::allreduce(void* buffer, std::size_t count, DType dtype, ReduceOp op) {
  MPI_Datatype type = dtype == DType::kBFloat16 ? bf16_type_ : builtin_type(dtype);
  MPI_Op mpi_op;
  if (dtype == DType::kBFloat16) mpi_op = op == ReduceOp::kMax ? bf16_max_ : bf16_sum_;
  else mpi_op = op == ReduceOp::kMax ? MPI_MAX : MPI_SUM;

  auto* bytes = static_cast<char*>(buffer);
  const std::size_t elem = dtype_size(dtype);
  for (std::size_t done = 0; done < count;) {
    const std::size_t n = std::min(kMaxChunk, count - done);
    check_mpi(MPI_Allreduce(MPI_IN_PLACE, bytes + done * elem, static_cast<int>(n), type, mpi_op, comm_.get()),
              "MPI_Allreduce");
    done += n;
  }
  if (op == ReduceOp::kAvg) divide_by(buffer, count, dtype, size_);
}

void MpiCollective::broadcast(void* buffer, std::size_t count, DType dtype, int root) {
  if (root < 0 || root >= size_)
    throw ClusterError("broadcast: root " + std::to_string(root) + " outside 0.." + std::to_string(size_ - 1));
  broadcast_bytes(buffer, count * dtype_size(dtype), root);
}

void MpiCollective::broadcast_bytes(void* buffer, std::size_t total, int root) {
  auto* bytes = static_cast<char*>(buffer);
  for (std::size_t done = 0; done < total;) {
    const std::size_t n = std::min(kMaxChunk, total - done);
    check_mpi(MPI_Bcast(bytes + done, static_cast<int>(n), MPI_BYTE, root, comm_.get()), "MPI_Bcast");
    done += n;
  }
}

void MpiCollective::allgather(const void* send, void* recv, std::size_t count, DType dtype) {
  const std::size_t bytes = count * dtype_size(dtype);
  if (bytes <= static_cast<std::size_t>(INT_MAX)) {
    check_mpi(MPI_Allgather(send, static_cast<int>(bytes), MPI_BYTE, recv, static_cast<int>(bytes), MPI_BYTE,
                            comm_.get()),
              "MPI_Allgather");
    return;
  }
  // Beyond 2 GiB per rank: one broadcast per source rank, in chunks.
  auto* out = static_cast<char*>(recv);
  std::copy_n(static_cast<const char*>(send), bytes, out + static_cast<std::size_t>(rank_) * bytes);
  for (int r = 0; r < size_; ++r) broadcast_bytes(out + static_cast<std::size_t>(r) * bytes, bytes, r);
}

void MpiCollective::barrier() { check_mpi(MPI_Barrier(comm_.get()), "MPI_Barrier"); }

}  // namespace sdm::cluster
