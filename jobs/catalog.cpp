#include "jobs/catalog.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <set>

#include "common/error.h"
#include "common/text.h"
#include "common/yaml.h"

namespace sdm::jobs {
namespace {

const std::vector<std::string> kTopKeys{"collection", "total_cells", "datasets", "synthetic"};
const std::vector<std::string> kEntryKeys{"id",          "name",          "geo",           "tissue",
                                          "tissue_detail", "cancer_level1", "cancer_level2", "therapy",
                                          "regimen",     "samples",       "cells",         "count_source",
                                          "count_group", "group_cells",   "file",          "synth_cells",
                                          "collection"};
const std::vector<std::string> kTissues{"bone marrow", "cell line", "PBMC", "tumor", "organoid"};
const std::vector<std::string> kTherapies{"targeted", "immunotherapy", "chemotherapy"};
const std::vector<std::string> kCountSources{"exact", "group_total", "derived"};

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::string text_or_empty(const YamlView& v) { return v.defined() ? v.as<std::string>() : ""; }

std::optional<int> optional_int(const YamlView& v) {
  if (!v.defined()) return std::nullopt;
  return v.as<int>();
}

std::vector<std::string> values_for(const DatasetEntry& d, const std::string& key) {
  if (key == "id") return {d.id};
  if (key == "collection") return {d.collection};
  if (key == "tissue") return {d.tissue};
  if (key == "therapy") return {d.therapy};
  if (key == "regimen") return {d.regimen};
  if (key == "cancer") return {d.cancer_level1, d.cancer_level2};
  return {};
}

}  // namespace

Catalog Catalog::load(const std::string& path) {
  const auto doc = YamlView::load_file(path, "catalog");
  doc.expect_keys(kTopKeys);
  Catalog cat;
  const std::string collection = doc.require("collection").as<std::string>();
  std::set<std::string> ids;
  for (const auto& e : doc.require("datasets").items()) {
    e.expect_keys(kEntryKeys);
    DatasetEntry d;
    // A mixed catalog (`sdm synth --collection all`) says per dataset which collection it belongs to.
    d.collection = e.get<std::string>("collection", collection);
    e["collection"].expect_one_of(d.collection, {"primary", "external"});
    d.id = e.require("id").as<std::string>();
    if (!ids.insert(d.id).second) e["id"].fail("duplicate dataset id");
    d.name = e.require("name").as<std::string>();
    d.geo = text_or_empty(e["geo"]);
    d.tissue = e.require("tissue").as<std::string>();
    e["tissue"].expect_one_of(d.tissue, kTissues);
    d.tissue_detail = text_or_empty(e["tissue_detail"]);
    d.cancer_level1 = e.require("cancer_level1").as<std::string>();
    d.cancer_level2 = text_or_empty(e["cancer_level2"]);
    d.therapy = e.require("therapy").as<std::string>();
    e["therapy"].expect_one_of(d.therapy, kTherapies);
    d.regimen = text_or_empty(e["regimen"]);
    if (auto s = e["samples"]; s.defined()) {
      s.expect_keys({"resistant", "sensitive"});
      d.samples_resistant = optional_int(s["resistant"]);
      d.samples_sensitive = optional_int(s["sensitive"]);
    }
    d.cells = e.require("cells").as<std::int64_t>();
    if (d.cells < 0) e["cells"].fail("must be >= 0");
    d.count_source = e.require("count_source").as<std::string>();
    e["count_source"].expect_one_of(d.count_source, kCountSources);
    d.count_group = e["count_group"].defined() ? e["count_group"].as<std::vector<std::string>>() : std::vector<std::string>{d.id};
    d.group_cells = e.get<std::int64_t>("group_cells", d.cells);
    d.file = e.get<std::string>("file", d.id + ".h5ad");
    // a catalog may come from someone else: its files stay inside the data root
    const auto normal = std::filesystem::path(d.file).lexically_normal();
    if (normal.is_absolute() || normal.empty() || *normal.begin() == "..") {
      e["file"].fail("must be a path inside the data root (relative, no leading ..)");
    }
    cat.datasets_.push_back(std::move(d));
  }
  return cat;
}

Catalog Catalog::load_dir(const std::string& dir) {
  Catalog cat = load((std::filesystem::path(dir) / "primary.yaml").string());
  const auto external = std::filesystem::path(dir) / "external.yaml";
  if (std::filesystem::exists(external)) cat.append(load(external.string()));
  return cat;
}

void Catalog::append(const Catalog& other) {
  for (const auto& d : other.datasets_) {
    for (const auto& mine : datasets_)
      if (mine.id == d.id) throw ConfigError({"", "catalog", d.id}, "dataset id appears in two catalogs");
    datasets_.push_back(d);
  }
}

const DatasetEntry& Catalog::at(const std::string& id) const {
  for (const auto& d : datasets_)
    if (d.id == id) return d;
  std::vector<std::string> ids;
  for (const auto& d : datasets_) ids.push_back(d.id);
  throw ConfigError({"", "dataset", id}, "not in the catalog; " + suggest(id, ids));
}

const std::vector<std::string>& Catalog::selector_keys() {
  static const std::vector<std::string> keys{"id", "collection", "tissue", "therapy", "regimen", "cancer"};
  return keys;
}

std::vector<const DatasetEntry*> Catalog::select(const Selector& selector) const {
  for (const auto& [key, values] : selector) {
    if (std::find(selector_keys().begin(), selector_keys().end(), key) == selector_keys().end())
      throw ConfigError({"", "selector", key}, "unknown selector key; " + suggest(key, selector_keys()));
    std::set<std::string> known;
    for (const auto& d : datasets_)
      for (const auto& v : values_for(d, key))
        if (!v.empty()) known.insert(v);
    for (const auto& want : values) {
      const bool exists = std::any_of(known.begin(), known.end(), [&](const std::string& k) { return lower(k) == lower(want); });
      if (!exists) {
        const std::vector<std::string> options(known.begin(), known.end());
        throw ConfigError({"", "selector." + key, want}, "matches no dataset; " + suggest(want, options));
      }
    }
  }
  std::vector<const DatasetEntry*> out;
  for (const auto& d : datasets_) {
    bool match = true;
    for (const auto& [key, values] : selector) {
      const auto have = values_for(d, key);
      match = match && std::any_of(values.begin(), values.end(), [&](const std::string& want) {
                return std::any_of(have.begin(), have.end(), [&](const std::string& h) { return lower(h) == lower(want); });
              });
    }
    if (match) out.push_back(&d);
  }
  return out;
}

Selector parse_selector(const std::vector<std::string>& terms) {
  Selector s;
  for (const auto& term : terms) {
    std::size_t start = 0;
    while (start <= term.size()) {
      const std::size_t comma = term.find(',', start);
      const std::string part = term.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      const std::size_t eq = part.find('=');
      if (eq == std::string::npos || eq == 0 || eq + 1 == part.size())
        throw ConfigError({"<cli>", "--select", part}, "expected key=value, e.g. tissue=cell line");
      s[part.substr(0, eq)].push_back(part.substr(eq + 1));
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  }
  return s;
}

std::string default_catalog_dir() {
  if (const char* env = std::getenv("SDM_CATALOG_DIR"); env && *env) return env;
  return SDM_BUNDLED_CATALOG_DIR;
}

}  // namespace sdm::jobs
