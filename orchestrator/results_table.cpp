#include "orchestrator/results_table.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <tuple>

#include "common/error.h"
#include "common/hdf5.h"
#include "common/metrics.h"
#include "common/splitmix.h"
#include "common/text.h"
#include "orchestrator/statistics.h"

namespace sdm::orchestrator {

const std::vector<std::string>& export_formats() {
  static const std::vector<std::string> kFormats{"text", "csv", "md", "latex", "json", "html"};
  return kFormats;
}

void check_export_format(const std::string& format) {
  const auto& formats = export_formats();
  if (std::find(formats.begin(), formats.end(), format) == formats.end()) {
    throw ConfigError({"<cli>", "--format", format}, "unknown format; " + suggest(format, formats));
  }
}

std::string format_number(double value) {
  if (std::isnan(value)) return "NaN";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.4f", value);
  return buf;
}

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

namespace {

std::string csv_cell(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

std::string latex_cell(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s.compare(i, 2, "\u00b1") == 0) {  // ± (UTF-8)
      out += "$\\pm$";
      ++i;
      continue;
    }
    if (std::string("&%$#_{}").find(s[i]) != std::string::npos) out += '\\';
    out += s[i];
  }
  return out;
}

/// The best (highest) score of each column, -inf where a column has none.
std::vector<double> best_scores(const TextTable& t) {
  std::vector<double> best(t.header.size(), -std::numeric_limits<double>::infinity());
  for (const auto& row : t.scores) {
    for (std::size_t i = 0; i < row.size() && i < best.size(); ++i) {
      if (!std::isnan(row[i])) best[i] = std::max(best[i], row[i]);
    }
  }
  return best;
}

bool is_best(const TextTable& t, const std::vector<double>& best, std::size_t r, std::size_t i) {
  const double score = r < t.scores.size() && i < t.scores[r].size() ? t.scores[r][i] : std::nan("");
  return !std::isnan(score) && i < best.size() && score == best[i];
}

std::string md_cell(std::string s) {
  std::string out;
  for (char c : s) out += c == '|' ? std::string("\\|") : c == '\n' ? std::string(" ") : std::string(1, c);
  return out;
}

}  // namespace

std::string render(const TextTable& t, const std::string& format) {
  check_export_format(format);
  std::ostringstream out;
  if (format == "csv") {
    for (std::size_t i = 0; i < t.header.size(); ++i) out << (i ? "," : "") << csv_cell(t.header[i]);
    out << "\n";
    for (const auto& row : t.rows) {
      for (std::size_t i = 0; i < row.size(); ++i) out << (i ? "," : "") << csv_cell(row[i]);
      out << "\n";
    }
  } else if (format == "md") {
    out << "|";
    for (const auto& h : t.header) out << " " << md_cell(h) << " |";
    out << "\n|";
    for (std::size_t i = 0; i < t.header.size(); ++i) out << "---|";
    out << "\n";
    for (const auto& row : t.rows) {
      out << "|";
      for (const auto& c : row) out << " " << md_cell(c) << " |";
      out << "\n";
    }
  } else if (format == "latex") {
    // booktabs; score columns right-aligned with the best of each column in bold
    const auto best = best_scores(t);
    std::string align;
    for (std::size_t i = 0; i < t.header.size(); ++i) align += std::isinf(best[i]) ? 'l' : 'r';
    out << "\\begin{tabular}{" << align << "}\n\\toprule\n";
    for (std::size_t i = 0; i < t.header.size(); ++i) out << (i ? " & " : "") << latex_cell(t.header[i]);
    out << " \\\\\n\\midrule\n";
    for (std::size_t r = 0; r < t.rows.size(); ++r) {
      const auto& row = t.rows[r];
      for (std::size_t i = 0; i < row.size(); ++i) {
        const std::string cell = latex_cell(row[i]);
        out << (i ? " & " : "") << (is_best(t, best, r, i) ? "\\textbf{" + cell + "}" : cell);
      }
      out << " \\\\\n";
    }
    out << "\\bottomrule\n\\end{tabular}\n";
  } else if (format == "html") {
    // a bare <table> (a report or page wraps it); each column's best score in <strong>, as LaTeX bolds it
    const auto best = best_scores(t);
    out << "<table class=\"sortable\">\n<thead><tr>";
    for (const auto& h : t.header) out << "<th scope=\"col\">" << html_escape(h) << "</th>";
    out << "</tr></thead>\n<tbody>\n";
    for (std::size_t r = 0; r < t.rows.size(); ++r) {
      out << "<tr>";
      for (std::size_t i = 0; i < t.rows[r].size(); ++i) {
        const std::string cell = html_escape(t.rows[r][i]);
        out << "<td>" << (is_best(t, best, r, i) ? "<strong>" + cell + "</strong>" : cell) << "</td>";
      }
      out << "</tr>\n";
    }
    out << "</tbody>\n</table>\n";
  } else if (format == "json") {
    nlohmann::json rows = nlohmann::json::array();
    for (const auto& row : t.rows) {
      nlohmann::json r = nlohmann::json::object();
      for (std::size_t i = 0; i < row.size() && i < t.header.size(); ++i) r[t.header[i]] = row[i];
      rows.push_back(r);
    }
    out << rows.dump(1) << "\n";
  } else {  // text
    std::vector<std::size_t> width(t.header.size(), 0);
    for (std::size_t i = 0; i < t.header.size(); ++i) width[i] = t.header[i].size();
    for (const auto& row : t.rows) {
      for (std::size_t i = 0; i < row.size() && i < width.size(); ++i) width[i] = std::max(width[i], row[i].size());
    }
    auto line = [&](const std::vector<std::string>& cells) {
      for (std::size_t i = 0; i < cells.size(); ++i) {
        out << cells[i] << (i + 1 < cells.size() ? std::string(width[i] - cells[i].size() + 2, ' ') : "");
      }
      out << "\n";
    };
    line(t.header);
    for (const auto& row : t.rows) line(row);
  }
  return out.str();
}

TextTable read_store_group(const std::string& store, const std::string& group, const std::vector<FieldSpec>& fields) {
  h5::init();
  const h5::File file = h5::File::open(store);
  if (!file.has_attr("sdm_schema_version")) throw IoError({store, "sdm_schema_version", ""}, "not an sdm store");
  const auto version = file.attr_int("sdm_schema_version");
  if (version != kStoreSchemaVersion) {
    throw IoError({store, "sdm_schema_version", std::to_string(version)},
                  "store schema version not supported by this sdm (it reads version " + std::to_string(kStoreSchemaVersion) + ")");
  }
  TextTable t;
  std::vector<std::vector<std::string>> columns;
  for (const auto& f : fields) {
    t.header.push_back(f.name);
    const std::string path = group + "/" + f.name;
    std::vector<std::string> col;
    if (f.kind == FieldKind::kText) {
      col = file.read_strings(path);
    } else if (f.kind == FieldKind::kInt) {
      for (auto v : file.read<std::int64_t>(path)) col.push_back(std::to_string(v));
    } else {
      for (auto v : file.read<double>(path)) col.push_back(format_number(v));
    }
    columns.push_back(std::move(col));
  }
  const std::size_t n = columns.empty() ? 0 : columns.front().size();
  t.rows.assign(n, std::vector<std::string>(fields.size()));
  for (std::size_t c = 0; c < columns.size(); ++c) {
    for (std::size_t r = 0; r < n && r < columns[c].size(); ++r) t.rows[r][c] = std::move(columns[c][r]);
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

/// "mean ± spread" of `v` (spread: the sample sd, or the s.e.m. = sd / sqrt(n)); one value alone: `single`(mean).
std::string mean_spread(const std::vector<double>& v, bool sem, double* mean_out,
                        const std::function<std::string(double)>& single) {
  double mean = 0, sq = 0;
  for (double x : v) mean += x;
  mean /= static_cast<double>(v.size());
  for (double x : v) sq += (x - mean) * (x - mean);
  if (mean_out) *mean_out = mean;
  if (v.size() < 2) return single(mean);
  const double sd = std::sqrt(sq / static_cast<double>(v.size() - 1));
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.3f \u00b1 %.3f", mean, sem ? sd / std::sqrt(static_cast<double>(v.size())) : sd);
  return buf;
}

}  // namespace

TextTable summary_table(const std::vector<CellRecord>& cells) {
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
  TextTable t;
  t.header = {"model", "preset", "strategy", "protocol", "split", "done", "failed"};
  for (const auto& m : shown) t.header.push_back(m);
  for (const auto& [key, a] : groups) {
    std::vector<std::string> row{std::get<0>(key), std::get<1>(key), std::get<2>(key), std::get<3>(key),
                                 std::get<4>(key), std::to_string(a.done), std::to_string(a.failed)};
    for (const auto& m : shown) {
      auto it = a.values.find(m);
      if (it == a.values.end() || it->second.empty()) {
        row.push_back("NaN");
        continue;
      }
      row.push_back(mean_spread(it->second, false, nullptr, format_number));
    }
    t.rows.push_back(std::move(row));
  }
  return t;
}

TextTable leakage_table(const std::vector<CellRecord>& cells) {
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
  auto mean = [](const std::vector<double>& v) {
    if (v.empty()) return std::numeric_limits<double>::quiet_NaN();
    double s = 0;
    for (double x : v) s += x;
    return s / static_cast<double>(v.size());
  };
  TextTable t;
  t.header = {"model", "preset", "strategy", "protocol"};
  for (const auto& m : metrics) {
    for (const char* part : {"_cell", "_sample", "_gap"}) t.header.push_back(m + part);
  }
  for (auto& [key, splits] : groups) {
    if (!splits.count("cell") || !splits.count("sample")) continue;
    std::vector<std::string> row{std::get<0>(key), std::get<1>(key), std::get<2>(key), std::get<3>(key)};
    for (const auto& m : metrics) {
      const double a = mean(splits["cell"][m]), b = mean(splits["sample"][m]);
      for (double v : {a, b, a - b}) row.push_back(format_number(v));
    }
    t.rows.push_back(std::move(row));
  }
  return t;
}

TextTable cost_table(const std::vector<CellRecord>& cells) {
  TextTable t;
  t.header = {"cell_id", "model", "strategy", "protocol", "test_group", "status", "wall_s", "cpu_s", "peak_rss_mb",
              "gpu_s", "device", "rank", "host"};
  for (const auto& c : cells) {
    t.rows.push_back({c.text("cell_id"), c.text("model"), c.text("strategy"), c.text("protocol"), c.text("test_group"),
                      c.text("status"), format_number(c.real("wall_s")), format_number(c.real("cpu_s")),
                      format_number(c.real("peak_rss_mb")), format_number(c.real("gpu_s")), c.text("device"),
                      std::to_string(c.integer("rank")), c.text("host")});
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

std::string interval_text(const std::vector<double>& values, const std::vector<std::pair<std::string, std::string>>& cells,
                          const std::string& metric, const CiOptions& ci) {
  const auto bracket = [](double low, double high) { return "[" + format_number(low) + ", " + format_number(high) + "]"; };
  if (ci.over == "units") {
    std::vector<double> defined;
    for (double v : values) {
      if (!std::isnan(v)) defined.push_back(v);
    }
    if (defined.empty()) return "NaN";
    const Interval i = bootstrap_mean_ci(defined, ci.resamples, 0.95, ci.seed);
    return bracket(i.low, i.high);
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
  if (y.empty()) return "NaN (no predictions)";
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
  if (stats.size() < static_cast<std::size_t>(ci.resamples) / 2) return "NaN (metric undefined on most resamples)";
  std::sort(stats.begin(), stats.end());
  return bracket(percentile_sorted(stats, 0.025), percentile_sorted(stats, 0.975)) + " (" + std::to_string(y.size()) + " cells)";
}

TextTable pivot_table(const std::vector<CellRecord>& cells, const std::vector<std::string>& row_fields,
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
    if (!std::isnan(v)) values.push_back(v);
    ids[key][col].emplace_back(c.text("cell_id"), "");
  }
  TextTable t;
  t.header = row_fields;
  t.header.insert(t.header.end(), columns.begin(), columns.end());
  for (const auto& [key, by_col] : groups) {
    std::vector<std::string> row = key;
    std::vector<double> score(key.size(), std::nan(""));
    for (const auto& col : columns) {
      const auto it = by_col.find(col);
      if (it == by_col.end() || it->second.empty()) {
        row.emplace_back();
        score.push_back(std::nan(""));
        continue;
      }
      double mean = 0;
      row.push_back(mean_spread(it->second, true, &mean, [](double m) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.3f", m);
        return std::string(buf);
      }));
      if (!ci.over.empty()) row.back() += " " + interval_text(it->second, ids.at(key).at(col), metric, ci);
      score.push_back(mean);
    }
    t.rows.push_back(std::move(row));
    t.scores.push_back(std::move(score));
  }
  return t;
}

const std::vector<std::string>& metric_names() {
  static const std::vector<std::string> kNames{"f1",     "auroc",    "auprc",           "precision",
                                               "recall", "accuracy", "balanced_accuracy", "mcc"};
  return kNames;
}

TextTable compare_table(const std::vector<CellRecord>& a, const std::vector<CellRecord>& b, const std::string& metric,
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
  TextTable t;
  t.header = {"model", "preset", "strategy", "protocol", "split", "test_group", "seed", metric + "_a", metric + "_b",
              "delta", "verdict"};
  const auto value = [&](const CellRecord* c) {
    return c && c->text("status") == "done" ? c->real(metric) : std::numeric_limits<double>::quiet_NaN();
  };
  const auto row_of = [&](const Key& k, const CellRecord* x, const CellRecord* y, const std::string& verdict) {
    const double va = value(x), vb = value(y);
    return std::vector<std::string>{std::get<0>(k), std::get<1>(k), std::get<2>(k), std::get<3>(k), std::get<4>(k),
                                    std::get<6>(k), std::to_string(std::get<7>(k)), format_number(va), format_number(vb),
                                    format_number(vb - va), verdict};
  };
  for (const auto& [k, x] : in_a) {
    const auto it = in_b.find(k);
    if (it == in_b.end()) continue;
    const double delta = value(it->second) - value(x);
    // every metric of the store is higher-is-better
    const std::string verdict = std::isnan(delta) ? "n/a" : std::abs(delta) <= tolerance ? "same" : delta > 0 ? "better" : "worse";
    ++n[verdict];
    t.rows.push_back(row_of(k, x, it->second, verdict));
  }
  for (const auto& [k, x] : in_a) {
    if (!in_b.count(k)) {
      ++n["only_a"];
      t.rows.push_back(row_of(k, x, nullptr, "only in A"));
    }
  }
  for (const auto& [k, y] : in_b) {
    if (!in_a.count(k)) {
      ++n["only_b"];
      t.rows.push_back(row_of(k, nullptr, y, "only in B"));
    }
  }
  if (counts) *counts = n;
  return t;
}

}  // namespace sdm::orchestrator
