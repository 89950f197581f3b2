#include "cluster/loopback_collective.h"

#include <gtest/gtest.h>

#include "collective_conformance.h"
#include "common/error.h"

namespace sdm::cluster {

class LoopbackConformance : public ::testing::TestWithParam<int> {};

TEST_P(LoopbackConformance, PassesTheCollectiveContract) {
  LoopbackGroup::run(GetParam(), [](Collective& c) {
    EXPECT_EQ(c.backend(), "loopback");
    testing::run_conformance(c);
  });
}

INSTANTIATE_TEST_SUITE_P(Sizes, LoopbackConformance, ::testing::Values(1, 2, 3, 4));

TEST(Loopback, EveryRankGetsBitwiseIdenticalResults) {
  std::vector<std::vector<BFloat16>> results(3);
  LoopbackGroup::run(3, [&](Collective& c) {
    std::vector<BFloat16> v(64);
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = float_to_bf16(0.1f * static_cast<float>(i + c.rank()));
    c.allreduce(std::span<BFloat16>(v), ReduceOp::kAvg);
    results[static_cast<std::size_t>(c.rank())] = v;
  });
  for (std::size_t i = 0; i < 64; ++i) {
    EXPECT_EQ(results[0][i].bits, results[1][i].bits);
    EXPECT_EQ(results[0][i].bits, results[2][i].bits);
  }
}

TEST(Loopback, MismatchedCallsAreReportedNotHung) {
  try {
    LoopbackGroup::run(2, [](Collective& c) {
      std::vector<float> v(c.rank() == 0 ? 4 : 5);
      c.allreduce(std::span<float>(v), ReduceOp::kSum);
    });
    FAIL() << "mismatch not detected";
  } catch (const ClusterError& e) {
    EXPECT_NE(std::string(e.what()).find("mismatched collective calls"), std::string::npos) << e.what();
  }
}

TEST(Loopback, AFailingRankReleasesTheOthers) {
  try {
    LoopbackGroup::run(3, [](Collective& c) {
      if (c.rank() == 1) throw std::runtime_error("rank 1 exploded");
      c.barrier();  // would wait forever without the release
    });
    FAIL() << "exception lost";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "rank 1 exploded");
  }
}

TEST(Loopback, BadRootIsAnError) {
  EXPECT_THROW(LoopbackGroup::run(2,
                                  [](Collective& c) {
                                    double x = 0;
                                    c.broadcast(&x, 1, DType::kFloat64, 2);
                                  }),
               ClusterError);
}

}  // namespace sdm::cluster
