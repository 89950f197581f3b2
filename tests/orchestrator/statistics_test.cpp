// The statistics of `sdm stats` on fixed inputs (values from SciPy 1.10.1 and Demšar 2006); the SciPy comparison
// on a whole store is tests/orchestrator/check_stats.py.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <regex>

#include "orchestrator/cd_diagram.h"
#include "orchestrator/statistics.h"

namespace sdm::orchestrator {
namespace {

TEST(Statistics, ChiSquareSurvival) {
  EXPECT_NEAR(chi2_sf(10, 4), 0.04042768199451279, 1e-12);
  EXPECT_NEAR(chi2_sf(3.84145882, 1), 0.0500000000206984, 1e-12);
  EXPECT_NEAR(chi2_sf(57.8, 3), 1.73428815755048e-12, 1e-20);
  EXPECT_NEAR(chi2_sf(0.5, 7), 0.9994464813904249, 1e-12);
  EXPECT_TRUE(std::isnan(chi2_sf(1, 0)));
}

TEST(Statistics, WilcoxonExactAsScipy) {
  const std::vector<double> d{6, 8, 14, 16, 23, 24, 28, 29, 41, -48, 49, 56, 60, -67, 75};
  const std::vector<double> zero(d.size(), 0.0);
  const auto r = wilcoxon_signed_rank(d, zero);
  EXPECT_TRUE(r.exact);
  EXPECT_DOUBLE_EQ(r.statistic, 24.0);
  EXPECT_NEAR(r.p, 0.041259765625, 1e-12);
  // tied magnitudes: SciPy 1.10 truncates the half-integer R+ and stays exact
  const std::vector<double> tied{1.5, -1.5, 2, 3, 3, -0.5, 4, 5, 6, -7, 8, 9};
  const auto t = wilcoxon_signed_rank(tied, std::vector<double>(tied.size(), 0.0));
  EXPECT_DOUBLE_EQ(t.statistic, 13.5);
  EXPECT_NEAR(t.p, 0.05224609375, 1e-12);
  // all differences zero: no test
  EXPECT_TRUE(std::isnan(wilcoxon_signed_rank({1, 2}, {1, 2}).p));
}

TEST(Statistics, HolmAdjustment) {
  const auto adj = holm_adjust({0.01, 0.04, 0.03, 0.005});
  const std::vector<double> want{0.03, 0.06, 0.06, 0.02};
  for (std::size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(adj[i], want[i], 1e-15);
  EXPECT_TRUE(std::isnan(holm_adjust({std::nan(""), 0.01})[0]));
}

TEST(Statistics, NemenyiQMatchesDemsarTable) {
  const double q05[] = {1.960, 2.343, 2.569, 2.728, 2.850, 2.949, 3.031, 3.102, 3.164};
  const double q10[] = {1.645, 2.052, 2.291, 2.459, 2.589, 2.693, 2.780, 2.855, 2.920};
  for (int k = 2; k <= 10; ++k) {
    EXPECT_NEAR(nemenyi_q_computed(k, 0.05), q05[k - 2], 1.5e-3) << "k " << k;
    EXPECT_NEAR(nemenyi_q_computed(k, 0.10), q10[k - 2], 1.5e-3) << "k " << k;
    EXPECT_DOUBLE_EQ(nemenyi_q(k, 0.05), q05[k - 2]);
  }
  // beyond the table (12 models: the study's 10 plus two baselines) it keeps growing
  EXPECT_GT(nemenyi_q(12, 0.05), nemenyi_q(10, 0.05));
  EXPECT_NEAR(critical_difference(4, 28, 0.05), 2.569 * std::sqrt(4.0 * 5 / (6 * 28)), 1e-12);
}

TEST(Statistics, BootstrapIntervalsCoverAtTheirLevel) {
  std::mt19937_64 rng(11);
  std::normal_distribution<double> normal(0.0, 1.0);
  int covered_median = 0, covered_mean = 0;
  const int trials = 300;
  for (int t = 0; t < trials; ++t) {
    std::vector<double> x(40);
    for (auto& v : x) v = normal(rng);
    const auto m = bootstrap_median_ci(x, 400, 0.95, static_cast<std::uint64_t>(t));
    const auto a = bootstrap_mean_ci(x, 400, 0.95, static_cast<std::uint64_t>(t));
    covered_median += m.low <= 0 && 0 <= m.high;
    covered_mean += a.low <= 0 && 0 <= a.high;
  }
  // percentile intervals at n = 40 run slightly narrow; a broken interval (e.g. a 50 % one) lands far below
  EXPECT_GT(covered_median, trials * 0.88);
  EXPECT_GT(covered_mean, trials * 0.88);
  EXPECT_LE(covered_mean, trials);
}

TEST(Statistics, FriedmanMeanRanksBestFirst) {
  const auto r = friedman({{0.9, 0.5, 0.1}, {0.8, 0.6, 0.2}, {0.7, 0.7, 0.3}});
  EXPECT_EQ(r.blocks, 3);
  EXPECT_NEAR(r.mean_ranks[0], (1 + 1 + 1.5) / 3.0, 1e-12);
  EXPECT_NEAR(r.mean_ranks[2], 3.0, 1e-12);
}

TEST(CdDiagram, CliquesAndSvgStructure) {
  const auto c = cd_cliques({1.0, 1.5, 2.6, 3.0}, 1.0);
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c[0], (std::pair<std::size_t, std::size_t>{0, 1}));
  EXPECT_EQ(c[1], (std::pair<std::size_t, std::size_t>{2, 3}));
  EXPECT_TRUE(cd_cliques({1.0, 2.5, 4.0}, 1.0).empty());

  const std::string svg = cd_diagram_svg({"scGPT", "a<b", "logreg"}, {2.5, 1.25, 2.25}, 1.9131, "f1 & co");
  const auto count = [&](const std::string& what) {
    std::size_t n = 0;
    for (auto at = svg.find(what); at != std::string::npos; at = svg.find(what, at + 1)) ++n;
    return n;
  };
  EXPECT_EQ(count("class=\"model mark\""), 3u);
  EXPECT_EQ(count("class=\"clique\""), 1u);
  EXPECT_EQ(count("class=\"cd\""), 1u);
  EXPECT_NE(svg.find("CD = 1.913"), std::string::npos);
  EXPECT_NE(svg.find("data-name=\"a&lt;b\" data-rank=\"1.250\""), std::string::npos);  // best first, escaped
  EXPECT_NE(svg.find("<title>f1 &amp; co</title>"), std::string::npos);
  EXPECT_EQ(svg.find("a<b"), std::string::npos);
  // best half labelled on the left (text-anchor end), the rest on the right
  EXPECT_TRUE(std::regex_search(svg, std::regex("data-name=\"a&lt;b\"[^\\n]*text-anchor=\"end\"")));
  EXPECT_TRUE(std::regex_search(svg, std::regex("data-name=\"scGPT\"[^\\n]*text-anchor=\"start\"")));
}

}  // namespace
}  // namespace sdm::orchestrator
