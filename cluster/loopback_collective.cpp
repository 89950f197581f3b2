#include "cluster/loopback_collective.h"

#include <cstring>
#include <exception>
#include <thread>

#include "common/error.h"

namespace sdm::cluster {
namespace {
enum CallKind { kAllreduce = 1, kBroadcast, kAllgather, kBarrier };
const char* kind_name(int k) {
  switch (k) {
    case kAllreduce: return "allreduce";
    case kBroadcast: return "broadcast";
    case kAllgather: return "allgather";
    case kBarrier: return "barrier";
  }
  return "?";
}
}  // namespace

LoopbackGroup::LoopbackGroup(int size) : size_(size), calls_(static_cast<std::size_t>(size)) {
  if (size < 1) throw ClusterError("loopback group size must be >= 1, got " + std::to_string(size));
  for (int r = 0; r < size; ++r) members_.push_back(std::make_unique<LoopbackCollective>(*this, r));
}

LoopbackGroup::~LoopbackGroup() = default;

Collective& LoopbackGroup::member(int r) { return *members_.at(static_cast<std::size_t>(r)); }

void LoopbackGroup::wait_all() {
  std::unique_lock lock(mu_);
  if (broken_) throw ClusterError("loopback: another rank failed");
  const std::uint64_t gen = generation_;
  if (++arrived_ == size_) {
    arrived_ = 0;
    ++generation_;
    cv_.notify_all();
    return;
  }
  cv_.wait(lock, [&] { return generation_ != gen || broken_; });
  if (broken_) throw ClusterError("loopback: another rank failed");
}

void LoopbackGroup::post_and_wait(int rank, const Call& call) {
  {
    std::lock_guard lock(mu_);
    calls_[static_cast<std::size_t>(rank)] = call;
  }
  wait_all();
  const Call& first = calls_[0];
  if (call.kind != first.kind || call.count != first.count || call.dtype != first.dtype || call.root != first.root) {
    throw ClusterError(std::string("loopback: mismatched collective calls: rank 0 called ") + kind_name(first.kind) +
                       "(" + std::to_string(first.count) + " x " + std::string(dtype_name(first.dtype)) + "), rank " +
                       std::to_string(rank) + " called " + kind_name(call.kind) + "(" + std::to_string(call.count) +
                       " x " + std::string(dtype_name(call.dtype)) + ")");
  }
}

void LoopbackGroup::break_group() {
  std::lock_guard lock(mu_);
  broken_ = true;
  cv_.notify_all();
}

void LoopbackGroup::run(int size, const std::function<void(Collective&)>& fn) {
  LoopbackGroup group(size);
  std::vector<std::exception_ptr> errors(static_cast<std::size_t>(size));
  std::vector<std::thread> threads;
  for (int r = 0; r < size; ++r) {
    threads.emplace_back([&, r] {
      try {
        fn(group.member(r));
      } catch (...) {
        errors[static_cast<std::size_t>(r)] = std::current_exception();
        group.break_group();
      }
    });
  }
  for (auto& t : threads) t.join();
  // Prefer the root cause over the "another rank failed" echoes.
  std::exception_ptr echo;
  for (auto& e : errors) {
    if (!e) continue;
    try {
      std::rethrow_exception(e);
    } catch (const ClusterError& ce) {
      if (std::string(ce.what()).find("another rank failed") == std::string::npos) throw;
      echo = e;
    } catch (...) {
      throw;
    }
  }
  if (echo) std::rethrow_exception(echo);
}

void LoopbackCollective::allreduce(void* buffer, std::size_t count, DType dtype, ReduceOp op) {
  group_.post_and_wait(rank_, {kAllreduce, count, dtype, static_cast<int>(op), buffer});
  // Every rank combines all contributions in rank order, so all ranks get bitwise-identical results.
  const std::size_t bytes = count * dtype_size(dtype);
  std::vector<char> result(bytes);
  std::memcpy(result.data(), group_.calls_[0].buffer, bytes);
  for (int r = 1; r < group_.size(); ++r)
    reduce_into(result.data(), group_.calls_[static_cast<std::size_t>(r)].buffer, count, dtype, op);
  group_.wait_all();  // nobody overwrites its buffer while another rank still reads it
  std::memcpy(buffer, result.data(), bytes);
  if (op == ReduceOp::kAvg) divide_by(buffer, count, dtype, group_.size());
}

void LoopbackCollective::broadcast(void* buffer, std::size_t count, DType dtype, int root) {
  if (root < 0 || root >= group_.size())
    throw ClusterError("broadcast: root " + std::to_string(root) + " outside 0.." + std::to_string(group_.size() - 1));
  group_.post_and_wait(rank_, {kBroadcast, count, dtype, root, buffer});
  if (rank_ != root)
    std::memcpy(buffer, group_.calls_[static_cast<std::size_t>(root)].buffer, count * dtype_size(dtype));
  group_.wait_all();
}

void LoopbackCollective::allgather(const void* send, void* recv, std::size_t count, DType dtype) {
  group_.post_and_wait(rank_, {kAllgather, count, dtype, 0, send});
  const std::size_t bytes = count * dtype_size(dtype);
  for (int r = 0; r < group_.size(); ++r)
    std::memcpy(static_cast<char*>(recv) + static_cast<std::size_t>(r) * bytes,
                group_.calls_[static_cast<std::size_t>(r)].buffer, bytes);
  group_.wait_all();
}

void LoopbackCollective::barrier() {
  group_.post_and_wait(rank_, {kBarrier, 0, DType::kFloat32, 0, nullptr});
  group_.wait_all();  // every call ends with a second wait, so no rank posts its next call while others check
}

}  // namespace sdm::cluster
