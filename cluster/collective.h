#pragma once
// The one interface through which ranks combine numbers: gradient all-reduce, parameter broadcast,
// metric gathering. Backends: MPI (host memory), NCCL (device memory, CUDA builds) and Loopback
// (threads in one process, for unit tests). All calls are collective: every rank of the group must
// make the same calls in the same order with the same counts and dtypes.
#include <span>
#include <string_view>
#include <type_traits>

#include "cluster/dtype.h"

namespace sdm::cluster {

/// Where a backend expects its buffers to live.
enum class MemorySpace { kHost, kCuda };

class Collective {
 public:
  virtual ~Collective() = default;

  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual std::string_view backend() const = 0;
  virtual MemorySpace memory_space() const { return MemorySpace::kHost; }

  /// In place: afterwards every rank holds op over all ranks' buffers.
  virtual void allreduce(void* buffer, std::size_t count, DType dtype, ReduceOp op) = 0;
  /// Every rank receives root's buffer.
  virtual void broadcast(void* buffer, std::size_t count, DType dtype, int root) = 0;
  /// `recv` holds size() * count elements afterwards, rank r's `send` at offset r * count.
  virtual void allgather(const void* send, void* recv, std::size_t count, DType dtype) = 0;
  virtual void barrier() = 0;
  /// Waits until queued work is finished (device backends enqueue asynchronously; host ones are synchronous).
  virtual void synchronize() {}

  // Typed conveniences over the raw calls above.
  template <class T>
  void allreduce(std::span<T> values, ReduceOp op) {
    allreduce(values.data(), values.size(), dtype_of<T>(), op);
  }
  template <class T>
  void broadcast(std::span<T> values, int root) {
    broadcast(values.data(), values.size(), dtype_of<T>(), root);
  }
  template <class T>
  void allgather(std::span<const T> send, std::span<T> recv) {
    allgather(send.data(), recv.data(), send.size(), dtype_of<T>());
  }

  template <class T>
  static constexpr DType dtype_of() {
    if constexpr (std::is_same_v<T, float>) return DType::kFloat32;
    else if constexpr (std::is_same_v<T, double>) return DType::kFloat64;
    else if constexpr (std::is_same_v<T, BFloat16>) return DType::kBFloat16;
    else {
      static_assert(std::is_same_v<T, std::int64_t>, "Collective supports float, double, BFloat16, int64_t");
      return DType::kInt64;
    }
  }
};

}  // namespace sdm::cluster
