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

/// A real shown with significant digits: hours of a small sweep are tiny, those of a large one are not.
TableColumn hours_column(const std::string& name) {
  TableColumn c{name, ColumnKind::kReal};
  c.significant = true;
  return c;
}

TableColumn scored(TableColumn c) {
  c.best_in_bold = true;
  return c;
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

Table cost_summary_table(const std::vector<CellRecord>& cells, const std::string& metric) {
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
  Table t({TableColumn{"model", ColumnKind::kText}, TableColumn{"done", ColumnKind::kInt}, TableColumn{"failed", ColumnKind::kInt},
           hours_column("wall h"), hours_column("CPU h"), hours_column("GPU h"), hours_column("cells / wall h"),
           scored(TableColumn{"mean " + metric, ColumnKind::kReal}), scored(hours_column(metric + " per device-h")),
           TableColumn{"device", ColumnKind::kText}, hours_column("peak RSS MB")});
  for (const auto& [model, m] : by_model) {
    const std::int64_t ran = m.done + m.failed;
    const bool gpu = m.gpu > 0;
    const double device_h = (gpu ? m.gpu : m.cpu) / 3600.0;
    const double mean = m.metric_n > 0 ? m.metric_sum / static_cast<double>(m.metric_n) : kNaN;
    const double per_cell_h = ran > 0 ? device_h / static_cast<double>(ran) : kNaN;
    const double per_hour = per_cell_h > 0 ? mean / per_cell_h : kNaN;
    t.add_row({model, m.done, m.failed, m.wall / 3600.0, m.cpu / 3600.0, m.gpu / 3600.0,
               m.wall > 0 ? static_cast<double>(ran) / (m.wall / 3600.0) : kNaN, mean, per_hour,
               std::string(gpu ? "gpu" : "cpu"), m.peak_rss});
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

Table sweep_span_table(const SweepSpan& s) {
  Table t({TableColumn{"cells", ColumnKind::kInt}, TableColumn{"ranks that ran cells", ColumnKind::kInt}, hours_column("span s"),
           hours_column("cell wall s (sum)"), TableColumn{"busy share", ColumnKind::kReal}, hours_column("cells / h")});
  t.add_row({s.cells, s.ranks, s.span_s, s.busy_s, s.busy_share,
             s.span_s > 0 ? static_cast<double>(s.cells) / (s.span_s / 3600.0) : kNaN});
  return t;
}

}  // namespace sdm::orchestrator
