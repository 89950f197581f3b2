#include "cluster/tensor_collective.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "cluster/loopback_collective.h"
#include "common/error.h"

namespace sdm::cluster {
namespace {

/// A backend that claims CUDA memory, to check that CPU tensors are refused before any data moves.
class CudaOnlyCollective final : public Collective {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string_view backend() const override { return "fake-cuda"; }
  MemorySpace memory_space() const override { return MemorySpace::kCuda; }
  void allreduce(void*, std::size_t, DType, ReduceOp) override { ADD_FAILURE() << "must not be reached"; }
  void broadcast(void*, std::size_t, DType, int) override { ADD_FAILURE() << "must not be reached"; }
  void allgather(const void*, void*, std::size_t, DType) override { ADD_FAILURE() << "must not be reached"; }
  void barrier() override {}
};

}  // namespace

TEST(TensorCollective, AllreduceBroadcastAllgatherOnCpuTensors) {
  LoopbackGroup::run(2, [](Collective& c) {
    for (auto dtype : {at::kFloat, at::kDouble, at::kBFloat16, at::kLong}) {
      auto t = at::full({2, 3}, c.rank() + 1, at::TensorOptions().dtype(dtype));
      allreduce(c, t, ReduceOp::kSum);
      EXPECT_TRUE(at::equal(t, at::full({2, 3}, 3, t.options()))) << dtype;
    }
    auto avg = at::arange(6, at::kFloat).reshape({2, 3}) * (c.rank() + 1);
    allreduce(c, avg, ReduceOp::kAvg);
    EXPECT_TRUE(at::allclose(avg, at::arange(6, at::kFloat).reshape({2, 3}) * 1.5));

    auto b = c.rank() == 0 ? at::arange(4, at::kDouble) : at::zeros({4}, at::kDouble);
    broadcast(c, b, 0);
    EXPECT_TRUE(at::equal(b, at::arange(4, at::kDouble)));

    auto mine = at::full({3}, c.rank(), at::kLong);
    auto all = at::empty({2, 3}, at::kLong);
    allgather(c, mine, all);
    EXPECT_TRUE(at::equal(all[0], at::zeros({3}, at::kLong)));
    EXPECT_TRUE(at::equal(all[1], at::ones({3}, at::kLong)));
  });
}

TEST(TensorCollective, RejectsWhatItCannotReduce) {
  LoopbackGroup group(1);
  Collective& c = group.member(0);
  EXPECT_THROW(allreduce(c, at::ones({4}, at::kInt), ReduceOp::kSum), ClusterError);
  EXPECT_THROW(allreduce(c, at::ones({4, 4}).t(), ReduceOp::kSum), ClusterError);  // non-contiguous
  EXPECT_THROW(allgather(c, at::ones({4}), at::empty({3})), ClusterError);           // wrong output size
  CudaOnlyCollective cuda;
  try {
    allreduce(cuda, at::ones({4}), ReduceOp::kSum);
    FAIL();
  } catch (const ClusterError& e) {
    EXPECT_NE(std::string(e.what()).find("cpu tensor cannot go through the fake-cuda backend"), std::string::npos)
        << e.what();
  }
}

}  // namespace sdm::cluster
