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

TEST(TensorCollective, GradientBucketsReduceViewsInPlace) {
  LoopbackGroup::run(3, [](Collective& c) {
    // Mixed sizes and dtypes and one tensor larger than a bucket: every view is summed once, with few calls.
    const std::vector<at::Tensor> like{at::zeros({10, 7}), at::zeros({3}), at::zeros({5}, at::kDouble), at::zeros({300}),
                                       at::zeros({4, 6})};
    GradientBuckets buckets(like, 512);  // 512 B: several buckets
    ASSERT_EQ(buckets.views().size(), like.size());
    std::size_t bytes = 0;
    for (std::size_t i = 0; i < like.size(); ++i) {
      EXPECT_EQ(buckets.views()[i].sizes(), like[i].sizes());
      EXPECT_EQ(buckets.views()[i].scalar_type(), like[i].scalar_type());
      buckets.views()[i].fill_(static_cast<double>(c.rank() + 1) * static_cast<double>(i + 1));
      bytes += like[i].nbytes();
    }
    // [10x7] (280 B) + [3] fit one bucket; the double goes alone; [300] (1200 B) alone; [4x6] alone after it.
    EXPECT_EQ(buckets.size(), 4U);
    const BucketStats stats = buckets.allreduce(c, ReduceOp::kSum);
    EXPECT_EQ(stats.bytes, bytes);
    EXPECT_EQ(stats.buckets, 4U);
    for (std::size_t i = 0; i < like.size(); ++i) {
      EXPECT_TRUE(at::equal(buckets.views()[i], at::full_like(like[i], 6.0 * static_cast<double>(i + 1)))) << i;
    }
    buckets.zero();
    for (const auto& v : buckets.views()) EXPECT_EQ(v.abs().sum().item<double>(), 0.0);
    // The default 25 MB bucket holds a whole float run: one call for the floats before the double, one for it, one after.
    GradientBuckets big({at::ones({8}), at::ones({8}), at::ones({2}, at::kDouble), at::ones({8})});
    EXPECT_EQ(big.size(), 3U);
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
