// Metrics against scikit-learn on random test sets with ties (tests/common/metrics_reference.py), and the
// undefined cases, which must be NaN with a note (CONTRACTS §6), never 0.
#include "common/metrics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "tests/common/python_reference.h"

namespace sdm {
namespace {

TEST(Metrics, AgreeWithScikitLearn) {
  const auto cases = testing::python_json("metrics_reference.py");
  ASSERT_TRUE(cases.is_array());
  ASSERT_GE(cases.size(), 30U);
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const auto& c = cases[i];
    const auto y64 = c["y"].get<std::vector<int>>();
    const std::vector<std::int8_t> y(y64.begin(), y64.end());
    const auto score = c["score"].get<std::vector<double>>();
    const BinaryMetrics m = binary_metrics(y, score);
    EXPECT_EQ(m.n_test, static_cast<std::int64_t>(y.size()));
    for (const auto& name : BinaryMetrics::names()) {
      EXPECT_NEAR(m.value(name), c[name].get<double>(), 1e-12) << "case " << i << " metric " << name;
    }
  }
}

TEST(Metrics, SingleClassTestSetIsNaNWithNote) {
  const std::vector<std::int8_t> y{1, 1, 1};
  const std::vector<double> s{0.9, 0.2, 0.7};
  const BinaryMetrics m = binary_metrics(y, s);
  EXPECT_TRUE(std::isnan(m.auroc));
  EXPECT_TRUE(std::isnan(m.balanced_accuracy));
  EXPECT_TRUE(std::isnan(m.mcc));
  EXPECT_FALSE(std::isnan(m.recall));
  EXPECT_NEAR(m.recall, 2.0 / 3.0, 1e-12);
  EXPECT_NE(m.notes.find("no resistant cells"), std::string::npos) << m.notes;
}

TEST(Metrics, NoPredictedPositiveLeavesPrecisionUndefined) {
  const std::vector<std::int8_t> y{1, 0, 0};
  const std::vector<double> s{0.4, 0.2, 0.1};
  const BinaryMetrics m = binary_metrics(y, s);
  EXPECT_TRUE(std::isnan(m.precision));
  EXPECT_EQ(m.f1, 0.0);  // defined: the one sensitive cell was missed
  EXPECT_DOUBLE_EQ(m.auroc, 1.0);
  EXPECT_NE(m.notes.find("precision undefined"), std::string::npos);
}

TEST(Metrics, EmptyTestSetIsAllNaN) {
  const BinaryMetrics m = binary_metrics({}, {});
  for (const auto& name : BinaryMetrics::names()) EXPECT_TRUE(std::isnan(m.value(name))) << name;
  EXPECT_NE(m.notes.find("empty"), std::string::npos);
}

}  // namespace
}  // namespace sdm
