#include "orchestrator/cost_summary.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <limits>
#include <map>
#include <set>

namespace sdm::orchestrator {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

double or_zero(double v) { return std::isnan(v) ? 0.0 : v; }

/// Four significant digits: hours of a small sweep are tiny, those of a large one are not.
std::string sig(double v) {
  if (std::isnan(v)) return "NaN";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

struct ModelCost {
  std::int64_t done = 0, failed = 0;
  double wall = 0, cpu = 0, gpu = 0, metric_sum = 0;
  std::int64_t metric_n = 0;
  double peak_rss = 0;
};

}  // namespace

double parse_utc(const std::string& text) {
  std::tm tm{};
  double seconds = 0;
  int year = 0, month = 0, day = 0, hour = 0, minute = 0;
  char z = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%lf%c", &year, &month, &day, &hour, &minute, &seconds, &z) != 7 || z != 'Z') {
    return kNaN;
  }
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = minute;
  return static_cast<double>(timegm(&tm)) + seconds;
}

TextTable cost_summary_table(const std::vector<CellRecord>& cells, const std::string& metric) {
  std::map<std::string, ModelCost> by_model;
  for (const auto& c : cells) {
    auto& m = by_model[c.text("model")];
    const std::string status = c.text("status");
    if (status == "done") ++m.done;
    if (status == "failed") ++m.failed;
    if (status != "done" && status != "failed") continue;
    m.wall += or_zero(c.real("wall_s"));
    m.cpu += or_zero(c.real("cpu_s"));
    m.gpu += or_zero(c.real("gpu_s"));
    m.peak_rss = std::max(m.peak_rss, or_zero(c.real("peak_rss_mb")));
    if (status == "done" && !std::isnan(c.real(metric))) {
      m.metric_sum += c.real(metric);
      ++m.metric_n;
    }
  }
  TextTable t;
  t.header = {"model", "done", "failed", "wall h", "CPU h", "GPU h", "cells / wall h", "mean " + metric,
              metric + " per device-h", "device", "peak RSS MB"};
  for (const auto& [model, m] : by_model) {
    const std::int64_t ran = m.done + m.failed;
    const bool gpu = m.gpu > 0;
    const double device_h = (gpu ? m.gpu : m.cpu) / 3600.0;
    const double mean = m.metric_n > 0 ? m.metric_sum / static_cast<double>(m.metric_n) : kNaN;
    const double per_cell_h = ran > 0 ? device_h / static_cast<double>(ran) : kNaN;
    const double per_hour = per_cell_h > 0 ? mean / per_cell_h : kNaN;
    t.rows.push_back({model, std::to_string(m.done), std::to_string(m.failed), sig(m.wall / 3600.0), sig(m.cpu / 3600.0),
                      sig(m.gpu / 3600.0), sig(m.wall > 0 ? static_cast<double>(ran) / (m.wall / 3600.0) : kNaN),
                      format_number(mean), sig(per_hour), gpu ? "gpu" : "cpu", sig(m.peak_rss)});
    t.scores.push_back({kNaN, kNaN, kNaN, kNaN, kNaN, kNaN, kNaN, mean, per_hour, kNaN, kNaN});
  }
  return t;
}

SweepSpan sweep_span(const std::vector<CellRecord>& cells) {
  SweepSpan s;
  double first = std::numeric_limits<double>::infinity(), last = -first;
  std::set<std::int64_t> ranks;
  for (const auto& c : cells) {
    const std::string status = c.text("status");
    if (status != "done" && status != "failed") continue;
    const double a = parse_utc(c.text("started_utc")), b = parse_utc(c.text("finished_utc"));
    if (std::isnan(a) || std::isnan(b)) continue;
    first = std::min(first, a);
    last = std::max(last, b);
    ranks.insert(c.integer("rank"));
    s.busy_s += or_zero(c.real("wall_s"));
    ++s.cells;
  }
  if (s.cells == 0) return {kNaN, 0, 0, kNaN, 0};
  s.span_s = last - first;
  s.ranks = static_cast<std::int64_t>(ranks.size());
  s.busy_share = s.span_s > 0 ? s.busy_s / (s.span_s * static_cast<double>(s.ranks)) : kNaN;
  return s;
}

TextTable sweep_span_table(const SweepSpan& s) {
  TextTable t;
  t.header = {"cells", "ranks that ran cells", "span s", "cell wall s (sum)", "busy share", "cells / h"};
  t.rows.push_back({std::to_string(s.cells), std::to_string(s.ranks), sig(s.span_s), sig(s.busy_s), format_number(s.busy_share),
                    sig(s.span_s > 0 ? static_cast<double>(s.cells) / (s.span_s / 3600.0) : kNaN)});
  return t;
}

}  // namespace sdm::orchestrator
