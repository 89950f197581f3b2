#include "orchestrator/result_groups.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <set>

#include "common/error.h"
#include "common/hdf5.h"
#include "common/text.h"
#include "jobs/sweep_spec.h"

namespace sdm::orchestrator {
namespace fs = std::filesystem;

std::vector<BreakdownEntry> read_store_breakdown(const std::string& store) {
  h5::init();
  const h5::File file = h5::File::open(store);
  std::vector<BreakdownEntry> rows;
  if (!file.exists("breakdown/cell_id")) return rows;
  const auto ids = file.read_strings("breakdown/cell_id");
  const auto datasets = file.read_strings("breakdown/dataset");
  rows.resize(ids.size());
  for (std::size_t i = 0; i < ids.size(); ++i) {
    rows[i].cell_id = ids[i];
    rows[i].dataset = i < datasets.size() ? datasets[i] : "";
  }
  for (const auto& f : breakdown_fields()) {
    if (f.kind != FieldKind::kReal) continue;
    const auto v = file.read<double>("breakdown/" + f.name);
    for (std::size_t i = 0; i < v.size() && i < rows.size(); ++i) rows[i].metrics[f.name] = v[i];
  }
  return rows;
}

namespace {

const std::vector<std::string> kCellFields{"model", "preset", "strategy", "protocol", "split", "seed", "test_group"};
const std::vector<std::string> kDatasetFields{"dataset",     "tissue",        "therapy",
                                              "cancer_type", "cancer_level2", "regimen"};

std::vector<std::string> split_list(const std::string& list) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= list.size()) {
    const auto comma = std::min(list.find(',', start), list.size());
    std::string item = list.substr(start, comma - start);
    item.erase(0, item.find_first_not_of(' '));
    item.erase(item.find_last_not_of(' ') + 1);
    if (!item.empty()) out.push_back(item);
    start = comma + 1;
  }
  return out;
}

std::string dataset_field(const std::string& field, const std::string& dataset, const jobs::Catalog* catalog,
                          const std::string& cell_id) {
  if (field == "dataset") return dataset;
  if (!catalog) {
    throw ConfigError({"<cli>", "--by", field},
                      "needs the dataset catalog, and this sweep used none (bring-your-own files); pass --catalog");
  }
  const jobs::DatasetEntry* entry = nullptr;
  for (const auto& d : catalog->datasets()) {
    if (d.id == dataset) entry = &d;
  }
  if (!entry) {
    throw DataError({"", "dataset", dataset},
                    "cell " + cell_id.substr(0, 12) +
                        " was tested on a dataset that is not in the dataset catalog (the sweep's, or "
                        "--catalog); pass the catalog the sweep used");
  }
  if (field == "tissue") return entry->tissue;
  if (field == "therapy") return entry->therapy;
  if (field == "cancer_type") return entry->cancer_level1;
  if (field == "cancer_level2") return entry->cancer_level2;
  return entry->regimen;
}

/// A cell's test datasets with the metrics on each: its held-out dataset (cross-data), its /breakdown rows
/// (pooled over several datasets) or its only dataset (a pool of one: the worker writes no breakdown then).
std::vector<std::pair<std::string, std::map<std::string, double>>> test_datasets(
    const CellRecord& c, const std::multimap<std::string, const BreakdownEntry*>& breakdown) {
  std::map<std::string, double> own;
  for (const auto& m : metric_names()) own[m] = c.real(m);
  if (c.text("protocol") == "cross-data") return {{c.text("test_group"), own}};
  std::vector<std::pair<std::string, std::map<std::string, double>>> out;
  const auto [lo, hi] = breakdown.equal_range(c.text("cell_id"));
  for (auto it = lo; it != hi; ++it) out.emplace_back(it->second->dataset, it->second->metrics);
  if (!out.empty()) return out;
  const std::string train = c.text("train_groups");
  if (!train.empty() && train.find(',') == std::string::npos) return {{train, own}};
  spdlog::warn(
      "cell {}: pooled over {} but the store has no per-dataset breakdown for it; left out of the dataset "
      "groups",
      c.text("cell_id").substr(0, 12), train);
  return {};
}

}  // namespace

const std::vector<std::string>& group_fields() {
  static const std::vector<std::string> kAll = [] {
    std::vector<std::string> all = kCellFields;
    all.insert(all.end(), kDatasetFields.begin(), kDatasetFields.end());
    return all;
  }();
  return kAll;
}

bool is_dataset_field(const std::string& field) {
  return std::find(kDatasetFields.begin(), kDatasetFields.end(), field) != kDatasetFields.end();
}

std::vector<std::string> parse_group_fields(const std::string& list, const std::string& option) {
  auto fields = split_list(list);
  for (const auto& f : fields) {
    if (std::find(group_fields().begin(), group_fields().end(), f) == group_fields().end()) {
      throw ConfigError({"<cli>", option, f}, "unknown group field; " + suggest(f, group_fields()));
    }
  }
  if (std::set<std::string>(fields.begin(), fields.end()).size() != fields.size()) {
    throw ConfigError({"<cli>", option, list}, "a field is listed twice");
  }
  return fields;
}

std::vector<std::string> parse_metrics(const std::string& list, const std::string& option) {
  auto metrics = split_list(list);
  if (metrics.empty())
    throw ConfigError({"<cli>", option, list}, "name at least one metric; " + suggest("", metric_names()));
  for (const auto& m : metrics) {
    if (std::find(metric_names().begin(), metric_names().end(), m) == metric_names().end()) {
      throw ConfigError({"<cli>", option, m}, "unknown metric; " + suggest(m, metric_names()));
    }
  }
  return metrics;
}

std::vector<Observation> observations(const std::vector<CellRecord>& cells,
                                      const std::vector<BreakdownEntry>& breakdown, const jobs::Catalog* catalog,
                                      const std::vector<std::string>& by) {
  const bool per_dataset = std::any_of(by.begin(), by.end(), is_dataset_field);
  std::multimap<std::string, const BreakdownEntry*> by_cell;
  for (const auto& b : breakdown) by_cell.emplace(b.cell_id, &b);
  std::vector<Observation> out;
  for (const auto& c : cells) {
    if (c.text("status") != "done") continue;
    Observation base;
    base.cell_id = c.text("cell_id");
    for (const auto& f : kCellFields) base.fields[f] = f == "seed" ? std::to_string(c.integer(f)) : c.text(f);
    if (!per_dataset) {
      for (const auto& m : metric_names()) base.metrics[m] = c.real(m);
      out.push_back(std::move(base));
      continue;
    }
    // group key (the dataset fields' values) -> metric -> the cell's values on the datasets in that group
    std::map<std::vector<std::string>, std::map<std::string, std::vector<double>>> groups;
    for (const auto& [dataset, metrics] : test_datasets(c, by_cell)) {
      std::vector<std::string> key;
      for (const auto& f : by) {
        if (is_dataset_field(f)) key.push_back(dataset_field(f, dataset, catalog, base.cell_id));
      }
      for (const auto& [m, v] : metrics) {
        if (!std::isnan(v))
          groups[key][m].push_back(v);
        else
          groups[key][m];  // keeps the group when a metric is NaN on it
      }
    }
    for (const auto& [key, metrics] : groups) {
      Observation o = base;
      std::size_t k = 0;
      for (const auto& f : by) {
        if (is_dataset_field(f)) o.fields[f] = key[k++];
      }
      for (const auto& [m, values] : metrics) o.metrics[m] = aggregate(values).mean;
      out.push_back(std::move(o));
    }
  }
  return out;
}

Aggregate aggregate(const std::vector<double>& values) {
  Aggregate a;
  double sum = 0;
  for (double v : values) {
    if (std::isnan(v)) continue;
    sum += v;
    ++a.n;
  }
  if (a.n == 0) {
    a.mean = a.sem = std::numeric_limits<double>::quiet_NaN();
    return a;
  }
  a.mean = sum / static_cast<double>(a.n);
  double sq = 0;
  for (double v : values) {
    if (!std::isnan(v)) sq += (v - a.mean) * (v - a.mean);
  }
  const double n = static_cast<double>(a.n);
  a.sem = a.n < 2 ? std::numeric_limits<double>::quiet_NaN() : std::sqrt(sq / (n - 1)) / std::sqrt(n);
  return a;
}

Estimate to_estimate(const Aggregate& a, std::size_t of) {
  return {a.mean, a.sem, static_cast<std::int64_t>(a.n), static_cast<std::int64_t>(of)};
}

std::map<std::string, CellPredictions> read_store_predictions(const std::string& store) {
  // straight from HDF5: the scores at full precision (the text tables round them for display)
  h5::init();
  const h5::File file = h5::File::open(store);
  const auto ids = file.read_strings("predictions/cell_id");
  const auto datasets = file.read_strings("predictions/dataset");
  const auto y = file.read<std::int8_t>("predictions/y_true");
  const auto score = file.read<double>("predictions/y_score");
  if (datasets.size() != ids.size() || y.size() != ids.size() || score.size() != ids.size()) {
    throw DataError({store, "predictions", ""}, "columns differ in length (run `sdm verify`)");
  }
  std::map<std::string, CellPredictions> out;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    auto& p = out[ids[i]];
    p.dataset.push_back(datasets[i]);
    p.y_true.push_back(y[i]);
    p.y_score.push_back(score[i]);
  }
  return out;
}

namespace {

/// (cell id, dataset) of a group's observations, the dataset only where the observation is per dataset.
std::vector<std::pair<std::string, std::string>> cell_refs(const std::vector<const Observation*>& members) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto* o : members) {
    const auto ds = o->fields.find("dataset");
    out.emplace_back(o->cell_id, ds == o->fields.end() ? std::string() : ds->second);
  }
  return out;
}

}  // namespace

Table grouped_table(const std::vector<Observation>& obs, const std::vector<std::string>& by,
                    const std::vector<std::string>& metrics, const CiOptions& ci) {
  check_ci(ci);
  std::map<std::vector<std::string>, std::vector<const Observation*>> groups;
  for (const auto& o : obs) {
    std::vector<std::string> key;
    key.reserve(by.size());
    for (const auto& f : by) key.push_back(o.fields.at(f));
    groups[key].push_back(&o);
  }
  Table t;
  // seed is a number in the store and stays one in machine formats; every other group field is text
  for (const auto& f : by) t.add_column({f, f == "seed" ? ColumnKind::kInt : ColumnKind::kText});
  t.add_column({"n", ColumnKind::kInt});
  for (const auto& m : metrics) add_metric_column(t, m, "sem", ci);
  for (const auto& [key, members] : groups) {
    std::vector<Value> row;
    for (std::size_t i = 0; i < by.size(); ++i) {
      if (by[i] == "seed") row.emplace_back(static_cast<std::int64_t>(std::stoll(key[i])));
      else row.emplace_back(key[i]);
    }
    row.emplace_back(static_cast<std::int64_t>(members.size()));
    for (const auto& m : metrics) {
      std::vector<double> values;
      for (const auto* o : members) values.push_back(o->metrics.count(m) ? o->metrics.at(m) : std::nan(""));
      // n counts the group's observations; a metric undefined on some of them (NaN, e.g. F1 of a fold with one
      // class) is a mean over fewer, and says so
      row.emplace_back(to_estimate(aggregate(values), members.size()));
      if (!ci.over.empty()) row.emplace_back(interval_bounds(values, cell_refs(members), m, ci));
    }
    t.add_row(std::move(row));
  }
  return t;
}

std::string model_label(const std::map<std::string, std::string>& fields) {
  const std::string& preset = fields.at("preset");
  return fields.at("model") + (preset.empty() || preset == "default" ? "" : " (" + preset + ")");
}

std::string setting_label(const std::map<std::string, std::string>& fields) {
  const std::string& protocol = fields.at("protocol");
  return fields.at("strategy") + " \u00b7 " + protocol + (protocol == "pooled" ? "/" + fields.at("split") : "");
}

Table paper_table(const std::vector<Observation>& obs, const std::vector<std::string>& by, const std::string& metric,
                  const CiOptions& ci) {
  // the columns: setting, then the values of the extra `by` fields (cell fields that are part of a row or a
  // setting already are not repeated)
  static const std::set<std::string> kInLabels{"model", "preset", "strategy", "protocol", "split"};
  std::vector<std::string> extra;
  for (const auto& f : by) {
    if (!kInLabels.count(f)) extra.push_back(f);
  }
  check_ci(ci);
  std::map<std::string, std::map<std::string, std::vector<double>>> cells;  // model -> column -> values
  std::map<std::string, std::map<std::string, std::vector<const Observation*>>> members;
  std::set<std::string> columns;
  for (const auto& o : obs) {
    std::string column = setting_label(o.fields);
    for (const auto& f : extra) column += " \u00b7 " + o.fields.at(f);
    columns.insert(column);
    cells[model_label(o.fields)][column].push_back(o.metrics.count(metric) ? o.metrics.at(metric) : std::nan(""));
    members[model_label(o.fields)][column].push_back(&o);
  }
  Table t({TableColumn{"model", ColumnKind::kText}});
  for (const auto& column : columns) add_metric_column(t, column, "sem", ci);
  for (const auto& [model, by_column] : cells) {
    std::vector<Value> row{model};
    for (const auto& column : columns) {
      const auto it = by_column.find(column);
      if (it == by_column.end()) {  // the model did not run in this setting
        row.emplace_back();
        if (!ci.over.empty()) row.emplace_back();
        continue;
      }
      row.emplace_back(to_estimate(aggregate(it->second), it->second.size()));
      if (!ci.over.empty()) row.emplace_back(interval_bounds(it->second, cell_refs(members[model][column]), metric, ci));
    }
    t.add_row(std::move(row));
  }
  return t;
}

std::optional<jobs::Catalog> store_catalog(const std::string& store, const std::string& override_path) {
  if (!override_path.empty()) return jobs::Catalog::load(override_path);
  h5::init();
  const h5::File file = h5::File::open(store);
  const std::string yaml = file.has_attr("sweep_yaml") ? file.attr_string("sweep_yaml") : "";
  if (yaml.empty()) return std::nullopt;
  const auto spec = jobs::SweepSpec::parse(yaml, store + ":sweep_yaml");
  if (spec.data.catalog.empty()) return std::nullopt;
  std::vector<std::string> tried{spec.data.catalog};
  const fs::path written(spec.data.catalog);
  if (written.is_relative()) tried.push_back((fs::path(store).parent_path() / written).string());
  for (const auto& path : tried) {
    std::error_code ec;
    if (fs::is_regular_file(path, ec)) return jobs::Catalog::load(path);
  }
  throw IoError({store, "sweep_yaml: data.catalog", spec.data.catalog},
                "the sweep's catalog is not there (tried " + join(tried, ", ") + "); pass it with --catalog");
}

}  // namespace sdm::orchestrator
