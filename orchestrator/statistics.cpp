#include "orchestrator/statistics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>
#include <stdexcept>

#include "common/splitmix.h"

namespace sdm::orchestrator {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

/// Regularized lower incomplete gamma P(a, x) by its series (x < a + 1) and the upper Q by Lentz's continued
/// fraction otherwise; returns Q.
double gamma_q(double a, double x) {
  if (x <= 0) return 1.0;
  const double log_prefix = -x + a * std::log(x) - std::lgamma(a);
  if (x < a + 1) {
    double term = 1.0 / a, sum = term;
    for (int n = 1; n < 10000; ++n) {
      term *= x / (a + n);
      sum += term;
      if (std::abs(term) < std::abs(sum) * 1e-16) break;
    }
    return 1.0 - sum * std::exp(log_prefix);
  }
  const double tiny = 1e-300;
  double b = x + 1 - a, c = 1 / tiny, d = 1 / b, h = d;
  for (int i = 1; i < 10000; ++i) {
    const double an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (std::abs(d) < tiny) d = tiny;
    c = b + an / c;
    if (std::abs(c) < tiny) c = tiny;
    d = 1 / d;
    const double delta = d * c;
    h *= delta;
    if (std::abs(delta - 1) < 1e-16) break;
  }
  return std::exp(log_prefix) * h;
}

/// Sizes of the groups of equal values (only groups of 2 or more), as scipy's find_repeats.
std::vector<double> tie_sizes(const std::vector<double>& values) {
  std::map<double, int> count;
  for (double v : values) ++count[v];
  std::vector<double> out;
  for (const auto& [v, n] : count) {
    if (n > 1) out.push_back(n);
  }
  return out;
}


template <class Statistic>
Interval bootstrap(const std::vector<double>& values, int resamples, double level, std::uint64_t seed, Statistic stat) {
  if (values.empty() || resamples < 1) return {kNaN, kNaN};
  SplitMix rng{seed};
  std::vector<double> stats, sample(values.size());
  stats.reserve(static_cast<std::size_t>(resamples));
  for (int b = 0; b < resamples; ++b) {
    for (auto& s : sample) s = values[rng.next() % values.size()];
    stats.push_back(stat(sample));
  }
  std::sort(stats.begin(), stats.end());
  const double tail = (1 - level) / 2;
  return {percentile_sorted(stats, tail), percentile_sorted(stats, 1 - tail)};
}

double phi(double z) { return std::exp(-0.5 * z * z) / std::sqrt(2 * M_PI); }
double Phi(double z) { return 0.5 * std::erfc(-z / std::sqrt(2.0)); }

/// P(range of k iid standard normals <= w) = k ∫ φ(z) (Φ(z + w) - Φ(z))^(k-1) dz, by Simpson's rule.
double range_cdf(int k, double w) {
  const int n = 4000;
  const double lo = -9, hi = 9, h = (hi - lo) / n;
  double sum = 0;
  for (int i = 0; i <= n; ++i) {
    const double z = lo + i * h;
    const double f = phi(z) * std::pow(Phi(z + w) - Phi(z), k - 1);
    sum += f * (i == 0 || i == n ? 1 : (i % 2 ? 4 : 2));
  }
  return k * sum * h / 3;
}

}  // namespace

double normal_sf(double z) { return 0.5 * std::erfc(z / std::sqrt(2.0)); }

double chi2_sf(double x, double dof) {
  if (std::isnan(x) || dof <= 0) return kNaN;
  return gamma_q(dof / 2, x / 2);
}

std::vector<double> average_ranks(const std::vector<double>& values) {
  std::vector<std::size_t> order(values.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](auto a, auto b) { return values[a] < values[b]; });
  std::vector<double> ranks(values.size());
  for (std::size_t i = 0; i < order.size();) {
    std::size_t j = i;
    while (j + 1 < order.size() && values[order[j + 1]] == values[order[i]]) ++j;
    const double mean_rank = (static_cast<double>(i) + static_cast<double>(j)) / 2 + 1;
    for (std::size_t t = i; t <= j; ++t) ranks[order[t]] = mean_rank;
    i = j + 1;
  }
  return ranks;
}

WilcoxonResult wilcoxon_signed_rank(const std::vector<double>& x, const std::vector<double>& y) {
  if (x.size() != y.size()) throw std::invalid_argument("wilcoxon: x and y differ in length");
  WilcoxonResult r;
  std::vector<double> d;
  for (std::size_t i = 0; i < x.size(); ++i) d.push_back(x[i] - y[i]);
  if (d.empty()) return {kNaN, kNaN, 0, false};
  const bool zeros = std::any_of(d.begin(), d.end(), [](double v) { return v == 0; });
  r.exact = d.size() <= 50 && !zeros;
  if (!r.exact) {
    d.erase(std::remove(d.begin(), d.end(), 0.0), d.end());
    if (d.empty()) return {kNaN, kNaN, 0, false};
  }
  r.n = static_cast<std::int64_t>(d.size());
  std::vector<double> magnitude;
  for (double v : d) magnitude.push_back(std::abs(v));
  const auto ranks = average_ranks(magnitude);
  double r_plus = 0, r_minus = 0;
  for (std::size_t i = 0; i < d.size(); ++i) (d[i] > 0 ? r_plus : r_minus) += ranks[i];
  r.statistic = std::min(r_plus, r_minus);
  const auto n = static_cast<double>(r.n);
  if (r.exact) {
    // Null distribution of R+: subsets of {1..n} by their sum, each with probability 2^-n.
    const auto max_sum = static_cast<std::size_t>(r.n * (r.n + 1) / 2);
    std::vector<double> count(max_sum + 1, 0.0);
    count[0] = 1;
    for (std::int64_t v = 1; v <= r.n; ++v) {
      for (std::size_t s = max_sum; s >= static_cast<std::size_t>(v); --s) count[s] += count[s - static_cast<std::size_t>(v)];
    }
    const double total = std::ldexp(1.0, static_cast<int>(r.n));
    // SciPy 1.10 truncates a tied (half-integer) R+ to an integer here; we do the same to agree with it.
    const auto k = static_cast<std::size_t>(r_plus);
    if (k == max_sum / 2) {  // the centre of the distribution, (len(pmf) - 1) // 2
      r.p = 1.0;
    } else {
      double less = 0, greater = 0;
      for (std::size_t s = 0; s <= max_sum; ++s) {
        if (s <= k) less += count[s];
        if (s >= k) greater += count[s];
      }
      r.p = std::clamp(2 * std::min(less, greater) / total, 0.0, 1.0);
    }
    return r;
  }
  const double mean = n * (n + 1) / 4;
  double var = n * (n + 1) * (2 * n + 1);
  for (double t : tie_sizes(ranks)) var -= 0.5 * t * (t * t - 1);
  const double z = (r.statistic - mean) / std::sqrt(var / 24);
  r.p = 2 * normal_sf(std::abs(z));
  return r;
}

std::vector<double> holm_adjust(const std::vector<double>& p) {
  std::vector<std::size_t> order;
  for (std::size_t i = 0; i < p.size(); ++i) {
    if (!std::isnan(p[i])) order.push_back(i);
  }
  std::stable_sort(order.begin(), order.end(), [&](auto a, auto b) { return p[a] < p[b]; });
  std::vector<double> out(p.size(), kNaN);
  const auto m = static_cast<double>(order.size());
  double running = 0;
  for (std::size_t j = 0; j < order.size(); ++j) {
    running = std::max(running, std::min(1.0, (m - static_cast<double>(j)) * p[order[j]]));
    out[order[j]] = running;
  }
  return out;
}

double percentile_sorted(const std::vector<double>& sorted, double q) {
  const double pos = q * static_cast<double>(sorted.size() - 1);
  const auto lo = static_cast<std::size_t>(std::floor(pos));
  const auto hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (pos - static_cast<double>(lo)) * (sorted[hi] - sorted[lo]);
}

double median(std::vector<double> values) {
  if (values.empty()) return kNaN;
  std::sort(values.begin(), values.end());
  const auto n = values.size();
  return n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

Interval bootstrap_median_ci(const std::vector<double>& values, int resamples, double level, std::uint64_t seed) {
  return bootstrap(values, resamples, level, seed, [](const std::vector<double>& s) { return median(s); });
}

Interval bootstrap_mean_ci(const std::vector<double>& values, int resamples, double level, std::uint64_t seed) {
  return bootstrap(values, resamples, level, seed, [](const std::vector<double>& s) {
    return std::accumulate(s.begin(), s.end(), 0.0) / static_cast<double>(s.size());
  });
}

FriedmanResult friedman(const std::vector<std::vector<double>>& table) {
  FriedmanResult r;
  if (table.empty()) return {kNaN, kNaN, {}, 0};
  const auto k = table.front().size();
  const auto n = static_cast<double>(table.size());
  r.blocks = static_cast<std::int64_t>(table.size());
  std::vector<double> rank_sum(k, 0.0), best_first(k, 0.0);
  double ties = 0;
  for (const auto& row : table) {
    if (row.size() != k) throw std::invalid_argument("friedman: rows differ in length");
    const auto ranks = average_ranks(row);
    for (std::size_t j = 0; j < k; ++j) rank_sum[j] += ranks[j];
    for (double t : tie_sizes(ranks)) ties += t * (t * t - 1);
    std::vector<double> negated;
    for (double v : row) negated.push_back(-v);
    const auto best = average_ranks(negated);
    for (std::size_t j = 0; j < k; ++j) best_first[j] += best[j];
  }
  for (auto& v : best_first) v /= n;
  r.mean_ranks = best_first;
  if (k < 3) return {kNaN, kNaN, best_first, r.blocks};
  const double kk = static_cast<double>(k);
  const double c = 1 - ties / (kk * (kk * kk - 1) * n);
  double ss = 0;
  for (double s : rank_sum) ss += s * s;
  r.statistic = (12.0 / (kk * n * (kk + 1)) * ss - 3 * n * (kk + 1)) / c;
  r.p = chi2_sf(r.statistic, kk - 1);
  return r;
}

double nemenyi_q_computed(int k, double alpha) {
  if (k < 2) return kNaN;
  double lo = 0, hi = 12;
  for (int i = 0; i < 80; ++i) {
    const double mid = (lo + hi) / 2;
    (range_cdf(k, mid) < 1 - alpha ? lo : hi) = mid;
  }
  return (lo + hi) / 2 / std::sqrt(2.0);
}

double nemenyi_q(int k, double alpha) {
  // Demšar (2006), Table 5(a): critical values of the two-tailed Nemenyi test, k = 2..10.
  static const double q05[] = {1.960, 2.343, 2.569, 2.728, 2.850, 2.949, 3.031, 3.102, 3.164};
  static const double q10[] = {1.645, 2.052, 2.291, 2.459, 2.589, 2.693, 2.780, 2.855, 2.920};
  if (k < 2) return kNaN;
  if (k <= 10 && (alpha == 0.05 || alpha == 0.10)) return (alpha == 0.05 ? q05 : q10)[k - 2];
  return nemenyi_q_computed(k, alpha);
}

double critical_difference(int k, std::int64_t blocks, double alpha) {
  if (k < 2 || blocks < 1) return kNaN;
  return nemenyi_q(k, alpha) * std::sqrt(static_cast<double>(k) * (k + 1) / (6.0 * static_cast<double>(blocks)));
}

}  // namespace sdm::orchestrator
