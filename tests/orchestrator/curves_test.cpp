// ROC and precision-recall points for `sdm plot`, checked by hand and against the areas common/metrics.h reports.
#include "orchestrator/curves.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "common/metrics.h"

namespace sdm::orchestrator {
namespace {

void expect_points(const std::vector<CurvePoint>& got, const std::vector<CurvePoint>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    EXPECT_DOUBLE_EQ(got[i].x, want[i].x) << "point " << i;
    EXPECT_DOUBLE_EQ(got[i].y, want[i].y) << "point " << i;
  }
}

double trapezoid(const std::vector<CurvePoint>& p) {
  double area = 0;
  for (std::size_t i = 1; i < p.size(); ++i) area += (p[i].x - p[i - 1].x) * (p[i].y + p[i - 1].y) / 2;
  return area;
}

// scores 0.9 (sensitive), 0.8 (resistant), then a tie at 0.4 of one of each: the tie is one step
const std::vector<std::int8_t> kTruth{1, 0, 1, 0};
const std::vector<double> kScore{0.9, 0.8, 0.4, 0.4};

TEST(Curves, RocPointsByHandWithTiesAsOneStep) {
  const auto roc = roc_curve(kTruth, kScore);
  expect_points(roc, {{0, 0}, {0, 0.5}, {0.5, 0.5}, {1, 1}});
  // each point's threshold is the lowest score called sensitive there (scikit-learn's roc_curve thresholds)
  ASSERT_EQ(roc.size(), 4U);
  EXPECT_TRUE(std::isinf(roc[0].threshold));
  EXPECT_EQ(roc[1].threshold, 0.9);
  EXPECT_EQ(roc[2].threshold, 0.8);
  EXPECT_EQ(roc[3].threshold, 0.4);
  EXPECT_DOUBLE_EQ(trapezoid(roc), 0.625);
  EXPECT_DOUBLE_EQ(trapezoid(roc), roc_auc(kTruth, kScore));
}

TEST(Curves, PrecisionRecallPointsByHand) {
  const auto pr = pr_curve(kTruth, kScore);
  expect_points(pr, {{0, 1}, {0.5, 1}, {0.5, 0.5}, {1, 0.5}});
  // average precision = sum over steps of (recall gain) x precision = 0.5 x 1 + 0.5 x 0.5
  double ap = 0;
  for (std::size_t i = 1; i < pr.size(); ++i) ap += (pr[i].x - pr[i - 1].x) * pr[i].y;
  EXPECT_DOUBLE_EQ(ap, 0.75);
  EXPECT_DOUBLE_EQ(ap, average_precision(kTruth, kScore));
}

TEST(Curves, OneClassHasNoCurve) {
  const std::vector<std::int8_t> ones{1, 1};
  const std::vector<std::int8_t> zeros{0, 0};
  const std::vector<double> s{0.2, 0.7};
  EXPECT_TRUE(roc_curve(ones, s).empty());
  EXPECT_TRUE(roc_curve(zeros, s).empty());
  EXPECT_TRUE(pr_curve(zeros, s).empty());
  EXPECT_EQ(pr_curve(ones, s).size(), 3U);  // all positive: precision 1 throughout
}

TEST(Curves, RandomScoresAgreeWithTheMetricsAndThinningKeepsTheEnds) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> u(0, 1);
  std::vector<std::int8_t> y;
  std::vector<double> s;
  for (int i = 0; i < 5000; ++i) {
    y.push_back(u(rng) < 0.4 ? 1 : 0);
    s.push_back(std::round((u(rng) * 0.6 + (y.back() ? 0.3 : 0.0)) * 1000) / 1000);  // some ties
  }
  const auto roc = roc_curve(y, s);
  EXPECT_NEAR(trapezoid(roc), roc_auc(y, s), 1e-12);
  const auto thin = thin_curve(roc, 0.01);
  EXPECT_LT(thin.size(), roc.size());
  EXPECT_LE(thin.size(), 205U);  // at most one point per 0.01 step of either coordinate, with slack
  EXPECT_DOUBLE_EQ(thin.front().x, 0);
  EXPECT_DOUBLE_EQ(thin.back().x, 1);
  EXPECT_DOUBLE_EQ(thin.back().y, 1);
  EXPECT_NEAR(trapezoid(thin), roc_auc(y, s), 0.01);
}

}  // namespace
}  // namespace sdm::orchestrator
