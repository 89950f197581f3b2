#pragma once
// ROC and precision-recall curve points of one set of predictions (CONTRACTS §6: y = 1 is sensitive, the score
// is the probability of sensitive), for the figures of `sdm plot`. The areas under them are common/metrics.h's
// roc_auc and average_precision; these are the points those areas integrate.
#include <cstdint>
#include <limits>
#include <span>
#include <vector>

namespace sdm::orchestrator {

struct CurvePoint {
  double x;
  double y;
  /// The score threshold the point stands for (score >= threshold is called sensitive); +inf for the start.
  double threshold = std::numeric_limits<double>::infinity();
};

/// (false positive rate, true positive rate) from (0, 0) to (1, 1), one point per distinct score threshold
/// (tied scores move together, so the curve is the one the trapezoidal AUROC integrates). Empty without both
/// classes.
std::vector<CurvePoint> roc_curve(std::span<const std::int8_t> y_true, std::span<const double> y_score);

/// (recall, precision) by increasing recall, starting at (0, 1) as scikit-learn does, one point per distinct
/// score threshold. Empty without positives.
std::vector<CurvePoint> pr_curve(std::span<const std::int8_t> y_true, std::span<const double> y_score);

/// Drops points closer than `step` (in both coordinates) to the last kept one, keeping the first and the last:
/// a figure of 100k predictions needs hundreds of points, not 100k.
std::vector<CurvePoint> thin_curve(const std::vector<CurvePoint>& points, double step);

}  // namespace sdm::orchestrator
