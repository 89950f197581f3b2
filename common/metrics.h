#pragma once
// Binary classification metrics of one test set (CONTRACTS §6): positive class = sensitive (y = 1), scores are
// the probability of sensitive, y_pred = (score >= 0.5). A metric that is undefined for the test set is NaN and
// `notes` says why; it is never silently 0.
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace sdm {

struct BinaryMetrics {
  std::int64_t n_test = 0;
  double f1, auroc, auprc, precision, recall, accuracy, balanced_accuracy, mcc;
  std::string notes;  ///< "; "-joined reasons for the NaNs

  /// The metric columns in store-schema order: f1 auroc auprc precision recall accuracy balanced_accuracy mcc.
  static const std::vector<std::string>& names();
  double value(const std::string& name) const;
};

BinaryMetrics binary_metrics(std::span<const std::int8_t> y_true, std::span<const double> y_score);

/// Area under the ROC curve (ties count one half, as the trapezoidal ROC does); NaN with one class.
double roc_auc(std::span<const std::int8_t> y_true, std::span<const double> y_score);
/// Average precision, sum over distinct thresholds of (R_n - R_{n-1}) P_n; NaN without positives.
double average_precision(std::span<const std::int8_t> y_true, std::span<const double> y_score);

}  // namespace sdm
