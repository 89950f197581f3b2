#include "orchestrator/results_table.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <set>
#include <tuple>

#include "common/error.h"
#include "common/hdf5.h"
#include "common/metrics.h"
#include "common/splitmix.h"
#include "orchestrator/curves.h"
#include "orchestrator/statistics.h"

namespace sdm::orchestrator {

Table read_store_group(const std::string& store, const std::string& group, const std::vector<FieldSpec>& fields) {
  h5::init();
  const h5::File file = h5::File::open(store);
  if (!file.has_attr("sdm_schema_version")) throw IoError({store, "sdm_schema_version", ""}, "not an sdm store");
  const auto version = file.attr_int("sdm_schema_version");
  if (version != kStoreSchemaVersion) {
    throw IoError({store, "sdm_schema_version", std::to_string(version)},
                  "store schema version not supported by this sdm (it reads version " + std::to_string(kStoreSchemaVersion) + ")");
  }
  std::vector<TableColumn> columns;
  std::vector<std::vector<Value>> values;
  for (const auto& f : fields) {
    const std::string path = group + "/" + f.name;
    std::vector<Value> col;
    if (f.kind == FieldKind::kText) {
      columns.push_back({f.name, ColumnKind::kText});
      for (auto& v : file.read_strings(path)) col.emplace_back(std::move(v));
    } else if (f.kind == FieldKind::kInt) {
      columns.push_back({f.name, ColumnKind::kInt});
      for (auto v : file.read<std::int64_t>(path)) col.emplace_back(v);
    } else {
      columns.push_back({f.name, ColumnKind::kReal});
      for (auto v : file.read<double>(path)) col.emplace_back(v);
    }
    values.push_back(std::move(col));
  }
  const std::size_t n = values.empty() ? 0 : values.front().size();
  for (std::size_t c = 0; c < values.size(); ++c) {
    if (values[c].size() != n) {
      throw DataError({store, group + "/" + fields[c].name, std::to_string(values[c].size())},
                      "column length differs from " + fields.front().name + "'s " + std::to_string(n) + " (run `sdm verify`)");
    }
  }
  Table t(std::move(columns));
  for (std::size_t r = 0; r < n; ++r) {
    std::vector<Value> row;
    row.reserve(values.size());
    for (auto& col : values) row.push_back(std::move(col[r]));
    t.add_row(std::move(row));
  }
  return t;
}

std::vector<CellRecord> read_store_cells(const std::string& store) {
  h5::init();
  const h5::File file = h5::File::open(store);
  std::vector<CellRecord> cells;
  for (const auto& f : cell_fields()) {
    const std::string path = "cells/" + f.name;
    if (f.kind == FieldKind::kText) {
      const auto v = file.read_strings(path);
      cells.resize(std::max(cells.size(), v.size()));
      for (std::size_t i = 0; i < v.size(); ++i) cells[i].set(f.name, v[i]);
    } else if (f.kind == FieldKind::kInt) {
      const auto v = file.read<std::int64_t>(path);
      cells.resize(std::max(cells.size(), v.size()));
      for (std::size_t i = 0; i < v.size(); ++i) cells[i].set(f.name, v[i]);
    } else {
      const auto v = file.read<double>(path);
      cells.resize(std::max(cells.size(), v.size()));
      for (std::size_t i = 0; i < v.size(); ++i) cells[i].set(f.name, v[i]);
    }
  }
  return cells;
}

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

/// Mean and sample sd (or s.e.m. = sd / sqrt(n)) of the values, with their count.
Estimate estimate(const std::vector<double>& v, bool sem) {
  Estimate e{kNaN, kNaN, static_cast<std::int64_t>(v.size()), static_cast<std::int64_t>(v.size())};
  if (v.empty()) return e;
  double mean = 0, sq = 0;
  for (double x : v) mean += x;
  mean /= static_cast<double>(v.size());
  for (double x : v) sq += (x - mean) * (x - mean);
  e.mean = mean;
  if (v.size() > 1) {
    const double sd = std::sqrt(sq / static_cast<double>(v.size() - 1));
    e.spread = sem ? sd / std::sqrt(static_cast<double>(v.size())) : sd;
  }
  return e;
}

TableColumn text_column(const std::string& name) { return {name, ColumnKind::kText}; }
TableColumn int_column(const std::string& name) { return {name, ColumnKind::kInt}; }
TableColumn real_column(const std::string& name) { return {name, ColumnKind::kReal}; }

}  // namespace

Table summary_table(const std::vector<CellRecord>& cells) {
  using Key = std::tuple<std::string, std::string, std::string, std::string, std::string>;
  struct Acc {
    int done = 0, failed = 0, other = 0;
    std::map<std::string, std::vector<double>> values;
  };
  std::map<Key, Acc> groups;
  const std::vector<std::string> shown{"f1", "auroc", "auprc", "balanced_accuracy", "mcc"};
  for (const auto& c : cells) {
    const std::string status = c.text("status");
    if (c.text("model").empty()) continue;  // interrupted rows carry no configuration
    Acc& a = groups[{c.text("model"), c.text("preset"), c.text("strategy"), c.text("protocol"), c.text("split")}];
    if (status == "done") {
      ++a.done;
      for (const auto& m : shown) {
        const double v = c.real(m);
        if (!std::isnan(v)) a.values[m].push_back(v);
      }
    } else if (status == "failed") {
      ++a.failed;
    } else {
      ++a.other;
    }
  }
  Table t({text_column("model"), text_column("preset"), text_column("strategy"), text_column("protocol"),
           text_column("split"), int_column("done"), int_column("failed")});
  for (const auto& m : shown) add_metric_column(t, m, "sd");
  for (const auto& [key, a] : groups) {
    std::vector<Value> row{std::get<0>(key), std::get<1>(key), std::get<2>(key), std::get<3>(key), std::get<4>(key),
                           std::int64_t{a.done}, std::int64_t{a.failed}};
    for (const auto& m : shown) {
      const auto it = a.values.find(m);
      Estimate e = estimate(it == a.values.end() ? std::vector<double>{} : it->second, false);
      e.of = a.done;  // the done cells whose metric was NaN are not in the mean
      row.emplace_back(e);
    }
    t.add_row(std::move(row));
  }
  return t;
}

Table leakage_table(const std::vector<CellRecord>& cells) {
  using Key = std::tuple<std::string, std::string, std::string, std::string>;
  const std::vector<std::string> metrics{"f1", "auroc"};
  // key -> split -> metric -> values
  std::map<Key, std::map<std::string, std::map<std::string, std::vector<double>>>> groups;
  for (const auto& c : cells) {
    const std::string split = c.text("split");
    if (c.text("status") != "done" || (split != "cell" && split != "sample")) continue;
    auto& by_metric = groups[{c.text("model"), c.text("preset"), c.text("strategy"), c.text("protocol")}][split];
    for (const auto& m : metrics) {
      const double v = c.real(m);
      if (!std::isnan(v)) by_metric[m].push_back(v);
    }
  }
  auto mean = [](const std::vector<double>& v) { return v.empty() ? kNaN : estimate(v, false).mean; };
  Table t({text_column("model"), text_column("preset"), text_column("strategy"), text_column("protocol")});
  for (const auto& m : metrics) {
    for (const char* part : {"_cell", "_sample", "_gap"}) t.add_column(real_column(m + part));
  }
  for (auto& [key, splits] : groups) {
    if (!splits.count("cell") || !splits.count("sample")) continue;
    std::vector<Value> row{std::get<0>(key), std::get<1>(key), std::get<2>(key), std::get<3>(key)};
    for (const auto& m : metrics) {
      const double a = mean(splits["cell"][m]), b = mean(splits["sample"][m]);
      for (double v : {a, b, a - b}) row.emplace_back(v);
    }
    t.add_row(std::move(row));
  }
  return t;
}

Table cost_table(const std::vector<CellRecord>& cells) {
  Table t({text_column("cell_id"), text_column("model"), text_column("strategy"), text_column("protocol"),
           text_column("test_group"), text_column("status"), real_column("wall_s"), real_column("cpu_s"),
           real_column("peak_rss_mb"), real_column("gpu_s"), text_column("device"), int_column("rank"),
           text_column("host")});
  for (const auto& c : cells) {
    t.add_row({c.text("cell_id"), c.text("model"), c.text("strategy"), c.text("protocol"), c.text("test_group"),
               c.text("status"), c.real("wall_s"), c.real("cpu_s"), c.real("peak_rss_mb"), c.real("gpu_s"),
               c.text("device"), c.integer("rank"), c.text("host")});
  }
  return t;
}

Table curves_table(const std::vector<CellRecord>& cells, const std::map<std::string, CellPredictions>& predictions) {
  Table t({text_column("cell_id"), text_column("model"), text_column("preset"), text_column("strategy"),
           text_column("protocol"), text_column("split"), int_column("fold"), text_column("test_group"),
           int_column("seed"), text_column("curve"), int_column("point"), real_column("x"), real_column("y"),
           real_column("threshold")});
  for (const auto& c : cells) {
    if (c.text("status") != "done") continue;
    const auto it = predictions.find(c.text("cell_id"));
    if (it == predictions.end()) continue;
    const auto& p = it->second;
    for (const char* curve : {"roc", "pr"}) {
      const auto points = std::string(curve) == "roc" ? roc_curve(p.y_true, p.y_score) : pr_curve(p.y_true, p.y_score);
      for (std::size_t i = 0; i < points.size(); ++i) {
        t.add_row({c.text("cell_id"), c.text("model"), c.text("preset"), c.text("strategy"), c.text("protocol"),
                   c.text("split"), c.integer("fold"), c.text("test_group"), c.integer("seed"), std::string(curve),
                   static_cast<std::int64_t>(i), points[i].x, points[i].y, points[i].threshold});
      }
    }
  }
  return t;
}

void check_ci(const CiOptions& ci) {
  if (!ci.over.empty() && ci.over != "units" && ci.over != "cells") {
    throw ConfigError({"<cli>", "--ci", ci.over}, "expected units or cells");
  }
  if (ci.over == "cells" && !ci.predictions) throw ConfigError({"<cli>", "--ci", ci.over}, "needs the store's predictions");
  if (!ci.over.empty() && ci.resamples < 10) {
    throw ConfigError({"<cli>", "--resamples", std::to_string(ci.resamples)}, "use at least 10");
  }
}

TableColumn ci_column(const std::string& name, const CiOptions& ci) {
  TableColumn c{name + "_ci", ColumnKind::kBounds};
  c.label = name + " 95% CI (" + ci.over + ")";
  c.counts_cells = ci.over == "cells";
  return c;
}

void add_metric_column(Table& table, const std::string& name, const std::string& spread, const CiOptions& ci) {
  TableColumn c{name, ColumnKind::kEstimate};
  c.spread = spread;
  c.best_in_bold = true;
  table.add_column(c);
  if (!ci.over.empty()) table.add_column(ci_column(name, ci));
}

Bounds interval_bounds(const std::vector<double>& values, const std::vector<std::pair<std::string, std::string>>& cells,
                       const std::string& metric, const CiOptions& ci) {
  if (ci.over == "units") {
    std::vector<double> defined;
    for (double v : values) {
      if (!std::isnan(v)) defined.push_back(v);
    }
    if (defined.empty()) return {kNaN, kNaN, -1, ""};
    const Interval i = bootstrap_mean_ci(defined, ci.resamples, 0.95, ci.seed);
    return {i.low, i.high, -1, ""};
  }
  // cells: the group's test cells, resampled with replacement; the metric on each resample
  std::vector<std::int8_t> y;
  std::vector<double> score;
  for (const auto& [id, dataset] : cells) {
    const auto it = ci.predictions->find(id);
    if (it == ci.predictions->end()) continue;
    for (std::size_t i = 0; i < it->second.y_true.size(); ++i) {
      if (!dataset.empty() && it->second.dataset[i] != dataset) continue;
      y.push_back(it->second.y_true[i]);
      score.push_back(it->second.y_score[i]);
    }
  }
  if (y.empty()) return {kNaN, kNaN, 0, "no predictions"};
  SplitMix rng{ci.seed};
  std::vector<double> stats;
  std::vector<std::int8_t> ry(y.size());
  std::vector<double> rs(y.size());
  for (int b = 0; b < ci.resamples; ++b) {
    for (std::size_t i = 0; i < y.size(); ++i) {
      const auto k = rng.next() % y.size();
      ry[i] = y[k];
      rs[i] = score[k];
    }
    const double v = binary_metrics(ry, rs).value(metric);
    if (!std::isnan(v)) stats.push_back(v);
  }
  const auto n = static_cast<std::int64_t>(y.size());
  if (stats.size() < static_cast<std::size_t>(ci.resamples) / 2) {
    return {kNaN, kNaN, n, "metric undefined on most resamples"};
  }
  std::sort(stats.begin(), stats.end());
  return {percentile_sorted(stats, 0.025), percentile_sorted(stats, 0.975), n, ""};
}

Table pivot_table(const std::vector<CellRecord>& cells, const std::vector<std::string>& row_fields,
                  const std::string& col_field, const std::string& metric, const CiOptions& ci) {
  check_ci(ci);
  std::map<std::vector<std::string>, std::map<std::string, std::vector<std::pair<std::string, std::string>>>> ids;
  std::map<std::vector<std::string>, std::map<std::string, std::vector<double>>> groups;
  std::set<std::string> columns;
  for (const auto& c : cells) {
    if (c.text("status") != "done") continue;
    std::vector<std::string> key;
    for (const auto& f : row_fields) key.push_back(c.text(f));
    const std::string col = c.text(col_field);
    columns.insert(col);
    const double v = c.real(metric);
    auto& values = groups[key][col];
    values.push_back(v);
    ids[key][col].emplace_back(c.text("cell_id"), "");
  }
  Table t;
  for (const auto& f : row_fields) t.add_column(text_column(f));
  for (const auto& col : columns) add_metric_column(t, col, "sem", ci);
  for (const auto& [key, by_col] : groups) {
    std::vector<Value> row(key.begin(), key.end());
    for (const auto& col : columns) {
      const auto it = by_col.find(col);
      if (it == by_col.end()) {
        row.emplace_back();
        if (!ci.over.empty()) row.emplace_back();
        continue;
      }
      std::vector<double> defined;
      for (double v : it->second) {
        if (!std::isnan(v)) defined.push_back(v);
      }
      Estimate e = estimate(defined, true);
      e.of = static_cast<std::int64_t>(it->second.size());
      row.emplace_back(e);
      if (!ci.over.empty()) row.emplace_back(interval_bounds(it->second, ids.at(key).at(col), metric, ci));
    }
    t.add_row(std::move(row));
  }
  return t;
}

const std::vector<std::string>& metric_names() {
  static const std::vector<std::string> kNames{"f1",     "auroc",    "auprc",           "precision",
                                               "recall", "accuracy", "balanced_accuracy", "mcc"};
  return kNames;
}

Table compare_table(const std::vector<CellRecord>& a, const std::vector<CellRecord>& b, const std::string& metric,
                    double tolerance, std::map<std::string, int>* counts) {
  using Key = std::tuple<std::string, std::string, std::string, std::string, std::string, std::int64_t, std::string,
                         std::int64_t>;
  const auto key_of = [](const CellRecord& c) {
    return Key{c.text("model"), c.text("preset"),     c.text("strategy"), c.text("protocol"),
               c.text("split"), c.integer("fold"), c.text("test_group"), c.integer("seed")};
  };
  std::map<Key, const CellRecord*> in_a, in_b;
  for (const auto& c : a) {
    if (!c.text("model").empty()) in_a[key_of(c)] = &c;  // interrupted rows carry no configuration
  }
  for (const auto& c : b) {
    if (!c.text("model").empty()) in_b[key_of(c)] = &c;
  }
  std::map<std::string, int> n;
  Table t({text_column("model"), text_column("preset"), text_column("strategy"), text_column("protocol"),
           text_column("split"), int_column("fold"), text_column("test_group"), int_column("seed"),
           real_column(metric + "_a"), real_column(metric + "_b"), real_column("delta"), text_column("verdict")});
  const auto value = [&](const CellRecord* c) { return c && c->text("status") == "done" ? c->real(metric) : kNaN; };
  const auto add = [&](const Key& k, const CellRecord* x, const CellRecord* y, const std::string& verdict) {
    const double va = value(x), vb = value(y);
    t.add_row({std::get<0>(k), std::get<1>(k), std::get<2>(k), std::get<3>(k), std::get<4>(k), std::get<5>(k),
               std::get<6>(k), std::get<7>(k), va, vb, vb - va, verdict});
  };
  for (const auto& [k, x] : in_a) {
    const auto it = in_b.find(k);
    if (it == in_b.end()) continue;
    const double delta = value(it->second) - value(x);
    // every metric of the store is higher-is-better
    const std::string verdict = std::isnan(delta) ? "n/a" : std::abs(delta) <= tolerance ? "same" : delta > 0 ? "better" : "worse";
    ++n[verdict];
    add(k, x, it->second, verdict);
  }
  for (const auto& [k, x] : in_a) {
    if (!in_b.count(k)) {
      ++n["only_a"];
      add(k, x, nullptr, "only in A");
    }
  }
  for (const auto& [k, y] : in_b) {
    if (!in_a.count(k)) {
      ++n["only_b"];
      add(k, nullptr, y, "only in B");
    }
  }
  if (counts) *counts = n;
  return t;
}

}  // namespace sdm::orchestrator
