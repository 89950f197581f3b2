#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "jobs/catalog.h"
#include "orchestrator/command.h"

namespace sdm::orchestrator {
namespace {

class DatasetsCommand final : public Command {
 public:
  const char* name() const override { return "datasets"; }
  const char* summary() const override {
    return "List the catalog's datasets (36 primary + 24 external), filtered by selectors, with file presence";
  }
  void configure(CLI::App& app) override {
    app.add_option("--catalog", catalog_,
                   "A catalog file (e.g. a synthetic collection's catalog.yaml); default: the bundled primary + external");
    app.add_option("--root", root_, "Data root: mark which dataset files are present there");
    app.add_option("--select", select_, "Selectors key=value[,key=value] (keys: id collection tissue therapy regimen cancer)");
    app.add_flag("--json", json_, "Print JSON");
  }
  int run(const RunContext&) override {
    const auto catalog = catalog_.empty() ? jobs::Catalog::load_dir(jobs::default_catalog_dir()) : jobs::Catalog::load(catalog_);
    const auto chosen = catalog.select(jobs::parse_selector(select_));
    auto present = [&](const jobs::DatasetEntry& d) {
      return !root_.empty() && std::filesystem::exists(std::filesystem::path(root_) / d.file);
    };
    if (json_) {
      nlohmann::json out = nlohmann::json::array();
      for (const auto* d : chosen) {
        nlohmann::json j = {{"id", d->id},         {"collection", d->collection}, {"name", d->name},
                            {"geo", d->geo},       {"tissue", d->tissue},         {"cancer_level1", d->cancer_level1},
                            {"cancer_level2", d->cancer_level2}, {"therapy", d->therapy}, {"regimen", d->regimen},
                            {"cells", d->cells},   {"count_source", d->count_source}, {"file", d->file}};
        j["samples"] = {{"resistant", d->samples_resistant ? nlohmann::json(*d->samples_resistant) : nlohmann::json(nullptr)},
                        {"sensitive", d->samples_sensitive ? nlohmann::json(*d->samples_sensitive) : nlohmann::json(nullptr)}};
        j["present"] = root_.empty() ? nlohmann::json(nullptr) : nlohmann::json(present(*d));
        out.push_back(j);
      }
      std::cout << out.dump(2) << std::endl;
      return 0;
    }
    std::printf("%-4s %-28s %-11s %-14s %-13s %-26s %8s %s\n", "id", "name", "tissue", "cancer", "therapy", "regimen",
                "cells", root_.empty() ? "" : "file");
    std::int64_t total = 0;
    for (const auto* d : chosen) {
      std::printf("%-4s %-28.28s %-11s %-14.14s %-13s %-26.26s %8lld %s\n", d->id.c_str(), d->name.c_str(),
                  d->tissue.c_str(), d->cancer_level1.c_str(), d->therapy.c_str(), d->regimen.c_str(),
                  static_cast<long long>(d->cells), root_.empty() ? "" : (present(*d) ? "present" : "missing"));
      total += d->cells;
    }
    std::printf("%zu datasets, %lld cells\n", chosen.size(), static_cast<long long>(total));
    return 0;
  }

 private:
  std::string catalog_, root_;
  std::vector<std::string> select_;
  bool json_ = false;
};

}  // namespace

std::unique_ptr<Command> make_datasets_command() { return std::make_unique<DatasetsCommand>(); }

}  // namespace sdm::orchestrator
