#include "cluster/nccl_collective.h"

#include "cluster/environment.h"

#include <cuda_runtime.h>
#include <nccl.h>

#include <cstring>

#include "common/error.h"

namespace sdm::cluster {
namespace {

void check_nccl(ncclResult_t rc, const char* what) {
  if (rc != ncclSuccess) throw ClusterError(std::string(what) + ": " + ncclGetErrorString(rc));
}

void check_cuda(cudaError_t rc, const char* what) {
  if (rc != cudaSuccess) throw ClusterError(std::string(what) + ": " + cudaGetErrorString(rc));
}

ncclDataType_t nccl_type(DType dtype) {
  switch (dtype) {
    case DType::kFloat32: return ncclFloat32;
    case DType::kFloat64: return ncclFloat64;
    case DType::kInt64: return ncclInt64;
    case DType::kBFloat16:
#if NCCL_VERSION_CODE >= 21000
      return ncclBfloat16;
#else
      throw ClusterError("bfloat16 all-reduce needs NCCL >= 2.10");
#endif
  }
  throw ClusterError("unknown dtype");
}

ncclRedOp_t nccl_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum: return ncclSum;
    case ReduceOp::kMax: return ncclMax;
    case ReduceOp::kAvg:
#if NCCL_VERSION_CODE >= 21000
      return ncclAvg;
#else
      throw ClusterError("avg all-reduce needs NCCL >= 2.10");
#endif
  }
  throw ClusterError("unknown reduce op");
}

}  // namespace

int nccl_version_code() {
  int v = 0;
  check_nccl(ncclGetVersion(&v), "ncclGetVersion");
  return v;
}

std::string nccl_version_string() {
  const int v = nccl_version_code();
  // Codes from 2.9 on are major*10000 + minor*100 + patch; before that major*1000 + minor*100 + patch.
  const int major = v >= 10000 ? v / 10000 : v / 1000;
  const int minor = v >= 10000 ? (v / 100) % 100 : (v / 100) % 10;
  return std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(v % 100);
}

int cuda_device_count(std::string* reason) {
  int n = 0;
  const cudaError_t rc = cudaGetDeviceCount(&n);
  if (rc != cudaSuccess) {
    if (reason) *reason = cudaGetErrorString(rc);
    cudaGetLastError();  // clear the sticky error so later calls are not poisoned
    return 0;
  }
  if (n == 0 && reason) *reason = "no CUDA devices visible";
  return n;
}

int bind_local_gpu() {
  const int device = gpu_for_local_rank(launcher_local_rank().value_or(0), cuda_device_count(nullptr));
  if (device >= 0 && cudaSetDevice(device) != cudaSuccess) {
    cudaGetLastError();
    return -1;
  }
  return device;
}

std::array<char, 128> broadcast_nccl_unique_id(MPI_Comm comm, int root) {
  static_assert(sizeof(ncclUniqueId) == 128, "NCCL unique id is 128 bytes");
  ncclUniqueId id;
  std::memset(&id, 0, sizeof id);
  int rank = 0;
  MPI_Comm_rank(comm, &rank);
  if (rank == root) check_nccl(ncclGetUniqueId(&id), "ncclGetUniqueId");
  check_mpi(MPI_Bcast(&id, sizeof id, MPI_BYTE, root, comm), "MPI_Bcast(ncclUniqueId)");
  std::array<char, 128> out;
  std::memcpy(out.data(), &id, sizeof id);
  return out;
}

struct NcclCollective::State {
  MpiComm mpi;
  ncclComm_t comm = nullptr;
  cudaStream_t stream = nullptr;
  bool owns_stream = false;
  int rank = 0;
  int size = 1;
};

NcclCollective::NcclCollective(MPI_Comm comm, int device, void* stream) : state_(std::make_unique<State>()) {
  state_->mpi = MpiComm::dup(comm);
  state_->rank = state_->mpi.rank();
  state_->size = state_->mpi.size();
  check_cuda(cudaSetDevice(device), "cudaSetDevice");
  if (stream) {
    state_->stream = static_cast<cudaStream_t>(stream);
  } else {
    check_cuda(cudaStreamCreateWithFlags(&state_->stream, cudaStreamNonBlocking), "cudaStreamCreate");
    state_->owns_stream = true;
  }
  const auto raw = broadcast_nccl_unique_id(state_->mpi.get());
  ncclUniqueId id;
  std::memcpy(&id, raw.data(), sizeof id);
  check_nccl(ncclCommInitRank(&state_->comm, state_->size, id, state_->rank), "ncclCommInitRank");
}

NcclCollective::~NcclCollective() {
  if (!state_) return;
  if (state_->comm) ncclCommDestroy(state_->comm);
  if (state_->owns_stream && state_->stream) cudaStreamDestroy(state_->stream);
}

int NcclCollective::rank() const { return state_->rank; }
int NcclCollective::size() const { return state_->size; }

void NcclCollective::allreduce(void* buffer, std::size_t count, DType dtype, ReduceOp op) {
  check_nccl(ncclAllReduce(buffer, buffer, count, nccl_type(dtype), nccl_op(op), state_->comm, state_->stream),
             "ncclAllReduce");
}

void NcclCollective::broadcast(void* buffer, std::size_t count, DType dtype, int root) {
  check_nccl(ncclBroadcast(buffer, buffer, count, nccl_type(dtype), root, state_->comm, state_->stream),
             "ncclBroadcast");
}

void NcclCollective::allgather(const void* send, void* recv, std::size_t count, DType dtype) {
  check_nccl(ncclAllGather(send, recv, count, nccl_type(dtype), state_->comm, state_->stream), "ncclAllGather");
}

void NcclCollective::barrier() {
  // NCCL has no barrier: drain our stream, then meet on the MPI side.
  synchronize();
  check_mpi(MPI_Barrier(state_->mpi.get()), "MPI_Barrier");
}

void NcclCollective::synchronize() { check_cuda(cudaStreamSynchronize(state_->stream), "cudaStreamSynchronize"); }

}  // namespace sdm::cluster
