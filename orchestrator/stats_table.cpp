#include "orchestrator/stats_table.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "common/error.h"

namespace sdm::orchestrator {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::string join(const std::vector<std::string>& parts, const std::string& sep) {
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : sep) + p;
  return out;
}

bool is_text_field(const std::string& name) {
  for (const auto& f : cell_fields()) {
    if (f.name == name) return f.kind == FieldKind::kText;
  }
  return false;
}

/// value per unit per `by` value, within one group
struct GroupData {
  std::map<std::string, std::map<std::string, std::vector<double>>> values;  // by -> unit -> values
  std::set<std::string> units;
};

}  // namespace

namespace {

void check_metric_name(const std::string& metric) {
  const auto& metrics = metric_names();
  if (std::find(metrics.begin(), metrics.end(), metric) == metrics.end()) {
    throw ConfigError({"", "--metric", metric}, "not a metric; one of " + join(metrics, ", "));
  }
}

}  // namespace

std::vector<StatsGroup> compute_stats(const std::vector<CellRecord>& cells, const std::vector<BreakdownEntry>& breakdown,
                                      const StatsOptions& options) {
  check_metric_name(options.metric);
  for (const auto& f : options.within) {
    if (!is_text_field(f)) throw ConfigError({"", "--within", f}, "not a text field of /cells (e.g. strategy, protocol, split, preset)");
  }
  if (!is_text_field(options.by)) throw ConfigError({"", "--by", options.by}, "not a text field of /cells (e.g. model)");
  if (!(options.alpha > 0 && options.alpha < 1)) throw ConfigError({"", "--alpha", std::to_string(options.alpha)}, "must lie in (0, 1)");

  std::map<std::string, std::vector<const BreakdownEntry*>> by_cell;
  for (const auto& b : breakdown) by_cell[b.cell_id].push_back(&b);
  std::map<std::string, GroupData> groups;
  for (const auto& c : cells) {
    if (c.text("status") != "done") continue;
    std::vector<std::string> key;
    for (const auto& f : options.within) key.push_back(c.text(f));
    GroupData& g = groups[join(key, " / ")];
    const std::string unit_tail = "|" + c.text("split") + "|fold " + std::to_string(c.integer("fold")) + "|seed " +
                                  std::to_string(c.integer("seed"));
    auto& per_unit = g.values[c.text(options.by)];
    const auto parts = by_cell.find(c.text("cell_id"));
    if (parts != by_cell.end() && !parts->second.empty()) {
      for (const auto* b : parts->second) {
        const auto m = b->metrics.find(options.metric);
        if (m == b->metrics.end() || std::isnan(m->second)) continue;
        per_unit[b->dataset + unit_tail].push_back(m->second);
        g.units.insert(b->dataset + unit_tail);
      }
    } else if (!std::isnan(c.real(options.metric))) {
      per_unit[c.text("test_group") + unit_tail].push_back(c.real(options.metric));
      g.units.insert(c.text("test_group") + unit_tail);
    }
  }

  std::vector<StatsGroup> out;
  for (auto& [within, data] : groups) {
    StatsGroup g;
    g.within = within;
    g.units = static_cast<std::int64_t>(data.units.size());
    std::map<std::string, std::map<std::string, double>> value;  // by -> unit -> mean of its values
    for (auto& [name, units] : data.values) {
      if (units.empty()) continue;
      g.names.push_back(name);
      for (auto& [unit, vs] : units) {
        if (vs.size() > 1) g.duplicates += static_cast<std::int64_t>(vs.size() - 1);
        double sum = 0;
        for (double v : vs) sum += v;
        value[name][unit] = sum / static_cast<double>(vs.size());
      }
    }
    std::vector<std::vector<double>> complete;
    for (const auto& unit : data.units) {
      std::vector<double> row;
      for (const auto& name : g.names) {
        const auto it = value[name].find(unit);
        if (it == value[name].end()) break;
        row.push_back(it->second);
      }
      if (row.size() == g.names.size()) complete.push_back(row);
    }
    g.friedman = complete.empty() ? FriedmanResult{kNaN, kNaN, {}, 0} : friedman(complete);
    g.critical_difference = critical_difference(static_cast<int>(g.names.size()), g.friedman.blocks, options.alpha);
    std::vector<double> p;
    for (std::size_t i = 0; i < g.names.size(); ++i) {
      for (std::size_t j = i + 1; j < g.names.size(); ++j) {
        PairResult pr;
        pr.a = g.names[i];
        pr.b = g.names[j];
        std::vector<double> x, y, diff;
        for (const auto& unit : data.units) {
          const auto a = value[pr.a].find(unit), b = value[pr.b].find(unit);
          const bool has_a = a != value[pr.a].end(), has_b = b != value[pr.b].end();
          if (has_a && has_b) {
            x.push_back(a->second);
            y.push_back(b->second);
            diff.push_back(a->second - b->second);
          } else if (has_a || has_b) {
            ++pr.dropped;
          }
        }
        pr.n = static_cast<std::int64_t>(x.size());
        pr.test = x.empty() ? WilcoxonResult{kNaN, kNaN, 0, false} : wilcoxon_signed_rank(x, y);
        pr.median_diff = median(diff);
        pr.ci = bootstrap_median_ci(diff, options.resamples, 0.95, options.seed + g.pairs.size());
        p.push_back(pr.test.p);
        g.pairs.push_back(pr);
      }
    }
    const auto adjusted = holm_adjust(p);
    for (std::size_t i = 0; i < g.pairs.size(); ++i) {
      auto& pr = g.pairs[i];
      pr.p_holm = adjusted[i];
      if (std::isnan(pr.p_holm)) {
        pr.verdict = "n/a";
      } else if (pr.p_holm < options.alpha && pr.median_diff != 0) {
        pr.verdict = (pr.median_diff > 0 ? pr.a : pr.b) + " better";
      } else {
        pr.verdict = "no difference";
      }
    }
    out.push_back(std::move(g));
  }
  return out;
}

namespace {

TableColumn labelled(const std::string& name, ColumnKind kind, const std::string& label) {
  TableColumn c{name, kind};
  c.label = label;
  return c;
}

}  // namespace

Table stats_pairs_table(const std::vector<StatsGroup>& groups, const StatsOptions& options) {
  Table t({labelled("within", ColumnKind::kText, join(options.within, " / ")), TableColumn{"a", ColumnKind::kText},
           TableColumn{"b", ColumnKind::kText}, TableColumn{"n", ColumnKind::kInt}, TableColumn{"dropped", ColumnKind::kInt},
           labelled("median_diff", ColumnKind::kReal, "median " + options.metric + " (a - b)"),
           labelled("ci", ColumnKind::kBounds, "95% CI"), labelled("statistic", ColumnKind::kReal, "W"),
           TableColumn{"p", ColumnKind::kReal}, labelled("exact", ColumnKind::kInt, "exact p"),
           labelled("p_holm", ColumnKind::kReal, "p (Holm)"), TableColumn{"verdict", ColumnKind::kText}});
  for (const auto& g : groups) {
    for (const auto& p : g.pairs) {
      t.add_row({g.within, p.a, p.b, p.n, p.dropped, p.median_diff, Bounds{p.ci.low, p.ci.high, -1, ""}, p.test.statistic,
                 p.test.p, std::int64_t{p.test.exact ? 1 : 0}, p.p_holm, p.verdict});
    }
  }
  return t;
}

Table stats_groups_table(const std::vector<StatsGroup>& groups, const StatsOptions& options) {
  TableColumn ranks = labelled("mean_ranks", ColumnKind::kText, "mean rank (1 = best " + options.metric + ")");
  ranks.display_only = true;  // the numbers are the ranks table's (`sdm stats --what ranks`)
  Table t({labelled("within", ColumnKind::kText, join(options.within, " / ")),
           labelled("compared", ColumnKind::kInt, options.by + "s"), TableColumn{"units", ColumnKind::kInt},
           labelled("complete_units", ColumnKind::kInt, "complete units"),
           labelled("friedman_statistic", ColumnKind::kReal, "Friedman chi2"), labelled("friedman_p", ColumnKind::kReal, "p"),
           labelled("critical_difference", ColumnKind::kReal, "critical difference"),
           labelled("duplicates", ColumnKind::kInt, "averaged duplicates"), ranks});
  for (const auto& g : groups) {
    std::vector<std::pair<double, std::string>> ranked;
    for (std::size_t i = 0; i < g.friedman.mean_ranks.size(); ++i) ranked.emplace_back(g.friedman.mean_ranks[i], g.names[i]);
    std::sort(ranked.begin(), ranked.end());
    std::string text;
    for (const auto& [r, name] : ranked) text += (text.empty() ? "" : ", ") + name + " " + rounded_text(r, 2);
    t.add_row({g.within, static_cast<std::int64_t>(g.names.size()), g.units, g.friedman.blocks, g.friedman.statistic,
               g.friedman.p, g.critical_difference, g.duplicates, text});
  }
  return t;
}

Table stats_ranks_table(const std::vector<StatsGroup>& groups, const StatsOptions& options) {
  Table t({labelled("within", ColumnKind::kText, join(options.within, " / ")), labelled("name", ColumnKind::kText, options.by),
           labelled("mean_rank", ColumnKind::kReal, "mean rank (1 = best " + options.metric + ")"),
           labelled("complete_units", ColumnKind::kInt, "complete units")});
  for (const auto& g : groups) {
    for (std::size_t i = 0; i < g.friedman.mean_ranks.size(); ++i) {
      t.add_row({g.within, g.names[i], g.friedman.mean_ranks[i], g.friedman.blocks});
    }
  }
  return t;
}

nlohmann::json stats_json(const std::vector<StatsGroup>& groups, const StatsOptions& options) {
  const auto num = [](double v) { return std::isnan(v) ? nlohmann::json(nullptr) : nlohmann::json(v); };
  nlohmann::json out{{"metric", options.metric}, {"by", options.by}, {"within", options.within}, {"alpha", options.alpha},
                     {"groups", nlohmann::json::array()}};
  for (const auto& g : groups) {
    nlohmann::json pairs = nlohmann::json::array();
    for (const auto& p : g.pairs) {
      pairs.push_back({{"a", p.a}, {"b", p.b}, {"n", p.n}, {"dropped", p.dropped}, {"median_diff", num(p.median_diff)},
                       {"ci_low", num(p.ci.low)}, {"ci_high", num(p.ci.high)}, {"statistic", num(p.test.statistic)},
                       {"p", num(p.test.p)}, {"exact", p.test.exact}, {"p_holm", num(p.p_holm)}, {"verdict", p.verdict}});
    }
    nlohmann::json ranks = nlohmann::json::object();
    for (std::size_t i = 0; i < g.friedman.mean_ranks.size(); ++i) ranks[g.names[i]] = g.friedman.mean_ranks[i];
    out["groups"].push_back({{"within", g.within}, {"names", g.names}, {"units", g.units},
                             {"complete_units", g.friedman.blocks}, {"friedman_statistic", num(g.friedman.statistic)},
                             {"friedman_p", num(g.friedman.p)}, {"critical_difference", num(g.critical_difference)},
                             {"mean_ranks", ranks}, {"duplicates", g.duplicates}, {"pairs", pairs}});
  }
  return out;
}

}  // namespace sdm::orchestrator
