#pragma once
// The statistics behind `sdm stats`: paired Wilcoxon signed-rank tests with Holm's correction, bootstrap
// confidence intervals of the median difference, Friedman's test over k models and the Nemenyi critical
// difference (Demšar 2006). Written to agree with SciPy 1.10 (`wilcoxon(zero_method='wilcox', correction=False,
// mode='auto')`, `friedmanchisquare`), which the tests compare against.
#include <cstdint>
#include <vector>

namespace sdm::orchestrator {

/// Survival functions of the standard normal and of chi-square with `dof` degrees of freedom.
double normal_sf(double z);
double chi2_sf(double x, double dof);

/// Average ranks (1-based; ties share the mean of their ranks), as scipy.stats.rankdata.
std::vector<double> average_ranks(const std::vector<double>& values);

struct WilcoxonResult {
  double statistic = 0;  ///< min(R+, R-) over the non-zero differences
  double p = 1;
  std::int64_t n = 0;    ///< pairs used (zero differences dropped, as zero_method='wilcox')
  bool exact = false;    ///< exact null distribution (n <= 50, no zero differences), else the normal approximation
};
/// Two-sided test of x - y around 0. NaN p when there are no pairs or every difference is zero.
WilcoxonResult wilcoxon_signed_rank(const std::vector<double>& x, const std::vector<double>& y);

/// Holm-Bonferroni adjusted p-values, in the input order.
std::vector<double> holm_adjust(const std::vector<double>& p);

struct Interval {
  double low = 0, high = 0;
};
/// Percentile bootstrap interval (level 0.95 -> 2.5 % and 97.5 %) of the median of `values`, resampling them with
/// replacement `resamples` times from a seeded generator.
Interval bootstrap_median_ci(const std::vector<double>& values, int resamples = 2000, double level = 0.95, std::uint64_t seed = 0);
/// Same for the mean.
Interval bootstrap_mean_ci(const std::vector<double>& values, int resamples = 2000, double level = 0.95, std::uint64_t seed = 0);

double median(std::vector<double> values);

/// numpy's default (linear) percentile q in [0, 1] of ascending `sorted` values (not empty).
double percentile_sorted(const std::vector<double>& sorted, double q);

struct FriedmanResult {
  double statistic = 0;             ///< chi-square, tie-corrected
  double p = 1;
  std::vector<double> mean_ranks;   ///< per model, rank 1 = best (highest metric)
  std::int64_t blocks = 0;          ///< units where every model has a value
};
/// `table[block][model]` (no NaN): Friedman's chi-square over k >= 3 models (as scipy's friedmanchisquare; ranks
/// within each block, ties averaged). Mean ranks give rank 1 to the highest value.
FriedmanResult friedman(const std::vector<std::vector<double>>& table);

/// q_alpha of the Nemenyi test for k models (alpha 0.05 or 0.10): Demšar's table for k <= 10, beyond it the
/// studentized range quantile (infinite df) / sqrt(2) computed by numerical integration.
double nemenyi_q(int k, double alpha = 0.05);
/// The studentized-range based q for any k (what the table holds), for checking the table and k > 10.
double nemenyi_q_computed(int k, double alpha);
/// Critical difference of mean ranks: q sqrt(k (k + 1) / (6 N)).
double critical_difference(int k, std::int64_t blocks, double alpha = 0.05);

}  // namespace sdm::orchestrator
