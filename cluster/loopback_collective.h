#pragma once
// Collective over threads of one process: N "ranks" are N threads sharing a LoopbackGroup. It exists so
// that unit tests can exercise every collective code path (and catch mismatched calls) without mpirun.
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "cluster/collective.h"

namespace sdm::cluster {

class LoopbackCollective;

class LoopbackGroup {
 public:
  explicit LoopbackGroup(int size);
  ~LoopbackGroup();

  int size() const { return size_; }
  /// The member for rank r; each member must be used by exactly one thread.
  Collective& member(int r);

  /// Runs fn on `size` threads, one per rank. If any rank throws, the others are released from their
  /// waits (they throw too) and the first exception is rethrown here, so a failing test never hangs.
  static void run(int size, const std::function<void(Collective&)>& fn);

 private:
  friend class LoopbackCollective;
  struct Call {
    int kind = 0;
    std::size_t count = 0;
    DType dtype = DType::kFloat32;
    int root = 0;
    const void* buffer = nullptr;
  };

  /// Posts this rank's call, waits for all ranks, and checks that they all made the same call.
  void post_and_wait(int rank, const Call& call);
  void wait_all();
  void break_group();

  int size_;
  std::mutex mu_;
  std::condition_variable cv_;
  int arrived_ = 0;
  std::uint64_t generation_ = 0;
  bool broken_ = false;
  std::vector<Call> calls_;
  std::vector<std::unique_ptr<LoopbackCollective>> members_;
};

class LoopbackCollective final : public Collective {
 public:
  LoopbackCollective(LoopbackGroup& group, int rank) : group_(group), rank_(rank) {}

  int rank() const override { return rank_; }
  int size() const override { return group_.size(); }
  std::string_view backend() const override { return "loopback"; }

  using Collective::allgather;  // keep the typed overloads visible next to the overrides
  using Collective::allreduce;
  using Collective::broadcast;
  void allreduce(void* buffer, std::size_t count, DType dtype, ReduceOp op) override;
  void broadcast(void* buffer, std::size_t count, DType dtype, int root) override;
  void allgather(const void* send, void* recv, std::size_t count, DType dtype) override;
  void barrier() override;

 private:
  LoopbackGroup& group_;
  int rank_;
};

}  // namespace sdm::cluster
