#include "orchestrator/curves.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace sdm::orchestrator {
namespace {

/// The threshold of the first point: nothing is called sensitive.
constexpr double kStart = std::numeric_limits<double>::infinity();

/// Cumulative (true positives, false positives) after each distinct threshold, scores descending.
struct Counts {
  std::vector<double> tp, fp, threshold;
  double positives = 0, negatives = 0;
};

Counts threshold_counts(std::span<const std::int8_t> y_true, std::span<const double> y_score) {
  std::vector<std::size_t> order(y_true.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return y_score[a] > y_score[b]; });
  Counts c;
  double tp = 0, fp = 0;
  for (std::size_t i = 0; i < order.size(); ++i) {
    (y_true[order[i]] == 1 ? tp : fp) += 1;
    // a threshold ends where the next score differs: tied scores are one step
    if (i + 1 == order.size() || y_score[order[i + 1]] != y_score[order[i]]) {
      c.tp.push_back(tp);
      c.fp.push_back(fp);
      c.threshold.push_back(y_score[order[i]]);
    }
  }
  c.positives = tp;
  c.negatives = fp;
  return c;
}

}  // namespace

std::vector<CurvePoint> roc_curve(std::span<const std::int8_t> y_true, std::span<const double> y_score) {
  const Counts c = threshold_counts(y_true, y_score);
  if (c.positives == 0 || c.negatives == 0) return {};
  std::vector<CurvePoint> points{{0.0, 0.0, kStart}};
  for (std::size_t i = 0; i < c.tp.size(); ++i) points.push_back({c.fp[i] / c.negatives, c.tp[i] / c.positives, c.threshold[i]});
  return points;
}

std::vector<CurvePoint> pr_curve(std::span<const std::int8_t> y_true, std::span<const double> y_score) {
  const Counts c = threshold_counts(y_true, y_score);
  if (c.positives == 0) return {};
  std::vector<CurvePoint> points{{0.0, 1.0, kStart}};
  for (std::size_t i = 0; i < c.tp.size(); ++i) {
    points.push_back({c.tp[i] / c.positives, c.tp[i] / (c.tp[i] + c.fp[i]), c.threshold[i]});
  }
  return points;
}

std::vector<CurvePoint> thin_curve(const std::vector<CurvePoint>& points, double step) {
  if (points.size() <= 2) return points;
  std::vector<CurvePoint> out{points.front()};
  for (std::size_t i = 1; i + 1 < points.size(); ++i) {
    if (std::abs(points[i].x - out.back().x) >= step || std::abs(points[i].y - out.back().y) >= step) {
      out.push_back(points[i]);
    }
  }
  out.push_back(points.back());
  return out;
}

}  // namespace sdm::orchestrator
