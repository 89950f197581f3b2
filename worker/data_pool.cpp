#include "worker/data_pool.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <iterator>
#include <map>
#include <numeric>
#include <tuple>
#include <set>
#include <unordered_map>

#include "common/dataset_io.h"
#include "common/error.h"
#include "common/splitmix.h"

namespace sdm::worker {

DataOptions DataOptions::from_config(const nlohmann::json& data) {
  DataOptions o;
  const auto& label = data.at("label");
  o.label.column = label.at("column").get<std::string>();
  o.label.sensitive = label.at("sensitive").get<std::vector<std::string>>();
  o.label.resistant = label.at("resistant").get<std::vector<std::string>>();
  o.group_column = data.at("group_column").get<std::string>();
  o.matrix = data.at("matrix").get<std::string>();
  o.values = parse_value_kind(data.at("values").get<std::string>(), "data.values");
  return o;
}

namespace {

std::shared_ptr<LoadedDataset> load(const std::string& id, const std::string& path, const DataOptions& options) {
  ReadOptions read;
  read.matrix = options.matrix;
  CellMatrix cells = read_cells(path, read);
  check_values(cells.X, options.values, path, options.matrix);
  const LabeledCells labels = map_labels(cells.obs, options.label, path);
  auto d = std::make_shared<LoadedDataset>();
  d->id = id;
  d->path = path;
  d->label_summary = labels.summary(id);
  if (labels.n_dropped() > 0 || labels.one_class()) spdlog::warn("{}", d->label_summary);
  const Column& groups = cells.obs.at(options.group_column, path, "obs");
  d->X = cells.X.take_rows(labels.rows);
  d->y = labels.y;
  for (std::size_t r : labels.rows) {
    d->obs_names.push_back(cells.obs.index[r]);
    d->groups.push_back(groups.text(r));
  }
  const GeneKeys keys = gene_keys(cells.var);
  d->keys_are_ensembl = keys.symbols.empty();
  d->gene_keys = d->keys_are_ensembl ? keys.ensembl : keys.symbols;
  check_unique_genes(d->gene_keys, path);
  if (labels.rows.empty()) throw DataError({path, "obs", "0"}, "no labelled cells (" + d->label_summary + ")");
  d->genes = keys;
  if (d->gene_keys.empty()) throw DataError({path, "var", ""}, "no gene names found (var index is empty)");
  return d;
}

std::size_t footprint(const LoadedDataset& d) { return d.X.bytes() + d.obs_names.size() * 64 + d.gene_keys.size() * 32; }


}  // namespace

std::shared_ptr<const LoadedDataset> DatasetCache::get(const std::string& id, const std::string& path,
                                                       const DataOptions& options) {
  const std::string key = path + "|" + options.matrix + "|" + options.label.column + "|" + options.group_column;
  for (auto it = entries_.begin(); it != entries_.end(); ++it) {
    if (it->first == key) {
      entries_.splice(entries_.begin(), entries_, it);
      return entries_.front().second;
    }
  }
  std::shared_ptr<const LoadedDataset> d = load(id, path, options);
  used_ += footprint(*d);
  entries_.emplace_front(key, d);
  while (used_ > budget_ && entries_.size() > 1) {
    used_ -= footprint(*entries_.back().second);
    entries_.pop_back();
  }
  return d;
}

Pool make_pool(const std::vector<std::shared_ptr<const LoadedDataset>>& datasets) {
  Pool pool;
  const bool ensembl = std::any_of(datasets.begin(), datasets.end(), [](const auto& d) { return d->keys_are_ensembl; });
  if (ensembl && !std::all_of(datasets.begin(), datasets.end(), [](const auto& d) { return d->keys_are_ensembl; })) {
    spdlog::warn("some datasets name genes only by Ensembl id; pooling matches on the names as given");
  }
  // Common genes, in the first dataset's order.
  std::set<std::string> common(datasets.front()->gene_keys.begin(), datasets.front()->gene_keys.end());
  for (std::size_t i = 1; i < datasets.size(); ++i) {
    std::set<std::string> here(datasets[i]->gene_keys.begin(), datasets[i]->gene_keys.end());
    std::set<std::string> keep;
    std::set_intersection(common.begin(), common.end(), here.begin(), here.end(), std::inserter(keep, keep.begin()));
    common = std::move(keep);
  }
  std::unordered_map<std::string, std::int32_t> column;
  for (const auto& g : datasets.front()->gene_keys) {
    if (common.count(g) && !column.count(g)) {
      column[g] = static_cast<std::int32_t>(pool.genes.size());
      pool.genes.push_back(g);
    }
  }
  if (pool.genes.empty()) {
    throw DataError({datasets.front()->path, "var", ""}, "the datasets share no gene name; cannot pool them");
  }
  std::int64_t rows = 0, nnz = 0;
  for (const auto& d : datasets) {
    rows += d->X.rows;
    nnz += d->X.nnz();
  }
  pool.X.rows = rows;
  pool.X.cols = static_cast<std::int64_t>(pool.genes.size());
  pool.X.indptr.assign(1, 0);
  pool.X.indptr.reserve(static_cast<std::size_t>(rows) + 1);
  pool.X.indices.resize(static_cast<std::size_t>(nnz));
  pool.X.data.resize(static_cast<std::size_t>(nnz));
  std::int64_t at = 0;
  std::vector<std::pair<std::int32_t, float>> row;
  for (std::size_t di = 0; di < datasets.size(); ++di) {
    const auto& d = *datasets[di];
    pool.dataset_ids.push_back(d.id);
    std::vector<std::int32_t> map(d.gene_keys.size(), -1);
    std::set<std::int32_t> taken;  // a duplicated gene name keeps its first column
    for (std::size_t g = 0; g < d.gene_keys.size(); ++g) {
      auto it = column.find(d.gene_keys[g]);
      if (it != column.end() && taken.insert(it->second).second) map[g] = it->second;
    }
    for (std::int64_t r = 0; r < d.X.rows; ++r) {
      row.clear();
      for (std::int64_t k = d.X.indptr[r]; k < d.X.indptr[r + 1]; ++k) {
        const std::int32_t c = map[d.X.indices[k]];
        if (c >= 0) row.emplace_back(c, d.X.data[k]);
      }
      std::sort(row.begin(), row.end());
      for (const auto& [c, v] : row) {
        pool.X.indices[at] = c;
        pool.X.data[at] = v;
        ++at;
      }
      pool.X.indptr.push_back(at);
      pool.y.push_back(d.y[r]);
      pool.dataset.push_back(static_cast<std::int32_t>(di));
      pool.obs_names.push_back(d.obs_names[r]);
      pool.groups.push_back(d.id + "/" + d.groups[r]);
    }
  }
  pool.X.indices.resize(static_cast<std::size_t>(at));
  pool.X.data.resize(static_cast<std::size_t>(at));
  return pool;
}

Split stratified_fold(const std::vector<std::int8_t>& y, int folds, int fold, std::uint64_t seed) {
  Split s;
  SplitMix rng{seed * 0x2545f4914f6cdd1dULL + 17};
  for (int cls = 0; cls < 2; ++cls) {
    std::vector<std::size_t> members;
    for (std::size_t i = 0; i < y.size(); ++i) {
      if (y[i] == cls) members.push_back(i);
    }
    rng.shuffle(members);
    for (std::size_t i = 0; i < members.size(); ++i) {
      (static_cast<int>(i % static_cast<std::size_t>(folds)) == fold ? s.test : s.train).push_back(members[i]);
    }
  }
  std::sort(s.train.begin(), s.train.end());
  std::sort(s.test.begin(), s.test.end());
  return s;
}

Split grouped_fold(const std::vector<std::string>& groups, const std::vector<std::int8_t>& y, int folds, int fold,
                   std::uint64_t seed) {
  std::map<std::string, std::pair<std::size_t, std::size_t>> stats;  // group -> (cells, sensitive cells)
  for (std::size_t i = 0; i < groups.size(); ++i) {
    auto& st = stats[groups[i]];
    ++st.first;
    st.second += y[i] != 0;
  }
  if (stats.size() < static_cast<std::size_t>(folds)) {
    throw DataError({"", "protocol.split", "sample"},
                    "only " + std::to_string(stats.size()) + " samples for " + std::to_string(folds) +
                        " sample-grouped folds; lower `folds` or use split: cell");
  }
  SplitMix rng{seed * 0x9e3779b97f4a7c15ULL + 101};
  std::map<std::string, int> fold_of;
  std::vector<std::size_t> fold_cells(static_cast<std::size_t>(folds), 0);
  for (int cls = 1; cls >= 0; --cls) {
    std::vector<std::string> members;
    for (const auto& [g, st] : stats) {
      if ((2 * st.second >= st.first) == (cls == 1)) members.push_back(g);
    }
    rng.shuffle(members);
    // Largest groups first, each to the fold with the fewest cells so far: balanced folds, every class spread.
    std::stable_sort(members.begin(), members.end(),
                     [&](const std::string& a, const std::string& b) { return stats[a].first > stats[b].first; });
    std::vector<std::size_t> class_cells(static_cast<std::size_t>(folds), 0);
    for (const auto& g : members) {
      std::size_t best = 0;
      for (std::size_t f = 1; f < class_cells.size(); ++f) {
        if (std::tie(class_cells[f], fold_cells[f]) < std::tie(class_cells[best], fold_cells[best])) best = f;
      }
      fold_of[g] = static_cast<int>(best);
      class_cells[best] += stats[g].first;
      fold_cells[best] += stats[g].first;
    }
  }
  Split s;
  for (std::size_t i = 0; i < groups.size(); ++i) (fold_of[groups[i]] == fold ? s.test : s.train).push_back(i);
  return s;
}

Split by_dataset(const Pool& pool, const std::vector<std::string>& test_ids) {
  std::vector<bool> is_test(pool.dataset_ids.size(), false);
  for (std::size_t d = 0; d < pool.dataset_ids.size(); ++d) {
    is_test[d] = std::find(test_ids.begin(), test_ids.end(), pool.dataset_ids[d]) != test_ids.end();
  }
  Split s;
  for (std::size_t i = 0; i < pool.y.size(); ++i) (is_test[pool.dataset[i]] ? s.test : s.train).push_back(i);
  return s;
}

}  // namespace sdm::worker
