#include "common/metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "common/error.h"

namespace sdm {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

double ratio(double num, double den) { return den > 0 ? num / den : kNaN; }

std::vector<std::size_t> by_score_descending(std::span<const double> y_score) {
  std::vector<std::size_t> order(y_score.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return y_score[a] > y_score[b]; });
  return order;
}

}  // namespace

const std::vector<std::string>& BinaryMetrics::names() {
  static const std::vector<std::string> kNames{"f1",     "auroc",    "auprc",           "precision",
                                               "recall", "accuracy", "balanced_accuracy", "mcc"};
  return kNames;
}

double BinaryMetrics::value(const std::string& name) const {
  if (name == "f1") return f1;
  if (name == "auroc") return auroc;
  if (name == "auprc") return auprc;
  if (name == "precision") return precision;
  if (name == "recall") return recall;
  if (name == "accuracy") return accuracy;
  if (name == "balanced_accuracy") return balanced_accuracy;
  if (name == "mcc") return mcc;
  throw Error("unknown metric '" + name + "'");
}

double roc_auc(std::span<const std::int8_t> y_true, std::span<const double> y_score) {
  const auto order = by_score_descending(y_score);
  double positives = 0, negatives = 0, area = 0;
  // Walk tied groups from the highest score: each negative scores the positives above it, half of its tied ones.
  for (std::size_t i = 0; i < order.size();) {
    std::size_t j = i;
    double pos = 0, neg = 0;
    while (j < order.size() && y_score[order[j]] == y_score[order[i]]) {
      (y_true[order[j]] ? pos : neg) += 1;
      ++j;
    }
    area += neg * (positives + 0.5 * pos);
    positives += pos;
    negatives += neg;
    i = j;
  }
  return positives > 0 && negatives > 0 ? area / (positives * negatives) : kNaN;
}

double average_precision(std::span<const std::int8_t> y_true, std::span<const double> y_score) {
  const auto order = by_score_descending(y_score);
  double total_pos = 0;
  for (auto y : y_true) total_pos += y != 0;
  if (total_pos == 0) return kNaN;
  double tp = 0, fp = 0, ap = 0, last_recall = 0;
  for (std::size_t i = 0; i < order.size();) {
    std::size_t j = i;
    while (j < order.size() && y_score[order[j]] == y_score[order[i]]) {
      (y_true[order[j]] ? tp : fp) += 1;
      ++j;
    }
    const double recall = tp / total_pos;
    ap += (recall - last_recall) * (tp / (tp + fp));
    last_recall = recall;
    i = j;
  }
  return ap;
}

BinaryMetrics binary_metrics(std::span<const std::int8_t> y_true, std::span<const double> y_score) {
  if (y_true.size() != y_score.size()) throw Error("binary_metrics: y_true and y_score differ in length");
  BinaryMetrics m{};
  m.n_test = static_cast<std::int64_t>(y_true.size());
  std::vector<std::string> notes;
  double tp = 0, fp = 0, tn = 0, fn = 0;
  for (std::size_t i = 0; i < y_true.size(); ++i) {
    if (!std::isfinite(y_score[i])) throw Error("binary_metrics: non-finite score at test cell " + std::to_string(i));
    const bool pred = y_score[i] >= 0.5;
    if (y_true[i]) {
      (pred ? tp : fn) += 1;
    } else {
      (pred ? fp : tn) += 1;
    }
  }
  const double pos = tp + fn, neg = tn + fp, n = pos + neg;
  if (n == 0) notes.push_back("empty test set");
  if (n > 0 && pos == 0) notes.push_back("no sensitive cells in the test set: recall, AUROC, AUPRC, balanced accuracy undefined");
  if (n > 0 && neg == 0) notes.push_back("no resistant cells in the test set: AUROC, balanced accuracy undefined");
  if (n > 0 && tp + fp == 0) notes.push_back("no cell predicted sensitive: precision undefined");
  m.accuracy = ratio(tp + tn, n);
  m.precision = ratio(tp, tp + fp);
  m.recall = ratio(tp, pos);
  m.f1 = ratio(2 * tp, 2 * tp + fp + fn);
  if (n > 0 && 2 * tp + fp + fn == 0) notes.push_back("no sensitive cells and none predicted: F1 undefined");
  m.balanced_accuracy = pos > 0 && neg > 0 ? 0.5 * (tp / pos + tn / neg) : kNaN;
  const double den = (tp + fp) * (tp + fn) * (tn + fp) * (tn + fn);
  m.mcc = den > 0 ? (tp * tn - fp * fn) / std::sqrt(den) : kNaN;
  if (n > 0 && den == 0) notes.push_back("a confusion-matrix margin is zero: MCC undefined");
  m.auroc = roc_auc(y_true, y_score);
  m.auprc = average_precision(y_true, y_score);
  for (std::size_t i = 0; i < notes.size(); ++i) m.notes += (i ? "; " : "") + notes[i];
  return m;
}

}  // namespace sdm
