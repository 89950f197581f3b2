#pragma once
// The scDrugMap dataset catalog (jobs/catalog/primary.yaml, external.yaml, or a catalog.yaml written by
// `sdm synth`): each dataset's study metadata, and selectors that resolve subgroups to dataset lists.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace sdm {
class YamlView;
}

namespace sdm::jobs {

struct DatasetEntry {
  std::string id;  ///< P01..P36, E01..E24
  std::string collection;
  std::string name;
  std::string geo;
  std::string tissue;         ///< bone marrow | cell line | PBMC | tumor | organoid
  std::string tissue_detail;
  std::string cancer_level1;
  std::string cancer_level2;
  std::string therapy;        ///< targeted | immunotherapy | chemotherapy
  std::string regimen;
  std::optional<int> samples_resistant;
  std::optional<int> samples_sensitive;
  std::int64_t cells = 0;     ///< the study's cell count
  std::string count_source;   ///< exact | group_total | derived
  std::vector<std::string> count_group;
  std::int64_t group_cells = 0;
  std::string file;           ///< data file relative to the data root (default <id>.h5ad)
};

/// Selector keys: id, collection, tissue, therapy, regimen, cancer (level 1 or 2). Values: one or a list.
using Selector = std::map<std::string, std::vector<std::string>>;

class Catalog {
 public:
  /// Loads one catalog file; unknown keys, missing keys and bad values are ConfigErrors naming the entry.
  static Catalog load(const std::string& path);
  /// primary.yaml + external.yaml from a directory, in that order.
  static Catalog load_dir(const std::string& dir);

  const std::vector<DatasetEntry>& datasets() const { return datasets_; }
  const DatasetEntry& at(const std::string& id) const;
  /// Datasets matching every key of the selector (case-insensitive values). An unknown key or a value that
  /// matches nothing is a ConfigError listing the valid ones.
  std::vector<const DatasetEntry*> select(const Selector& selector) const;
  static const std::vector<std::string>& selector_keys();

  void append(const Catalog& other);

 private:
  std::vector<DatasetEntry> datasets_;
};

/// Parses "tissue=cell line,therapy=targeted" (CLI form) into a selector; repeated keys accumulate.
Selector parse_selector(const std::vector<std::string>& terms);

/// The directory holding the bundled catalogs (jobs/catalog in the source tree; SDM_CATALOG_DIR overrides).
std::string default_catalog_dir();

}  // namespace sdm::jobs
