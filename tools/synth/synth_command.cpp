#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <cstdio>

#include "orchestrator/command.h"
#include "tools/synth/synth.h"

namespace sdm::synth {
namespace {

class SynthCommand final : public orchestrator::Command {
 public:
  const char* name() const override { return "synth"; }
  const char* summary() const override {
    return "Write a synthetic scDrugMap-like collection: one .h5ad per catalog dataset plus catalog.yaml";
  }
  void configure(CLI::App& app) override {
    app.add_option("--out", o_.out, "Output directory")->required();
    app.add_option("--collection", o_.collection, "primary (P01-P36), external (E01-E24) or all (both, one catalog: for primary-to-external)")->capture_default_str();
    app.add_option("--scale", o_.scale, "Cells per dataset = study cells x scale (min 10 per sample)")->capture_default_str();
    app.add_option("--genes", o_.genes, "Genes per cell")->capture_default_str();
    app.add_option("--signal", o_.signal, "Strength of the resistance gene program (0 = no signal)")->capture_default_str();
    app.add_option("--seed", o_.seed, "Random seed (same seed, same bytes)")->capture_default_str();
    app.add_option("--catalog-dir", o_.catalog_dir, "Catalog directory (default: the bundled jobs/catalog)");
    app.add_option("--only", o_.only, "Only these dataset ids");
  }
  int run(const orchestrator::RunContext&) override {
    const auto written = synthesize(o_);
    std::int64_t cells = 0;
    for (const auto& w : written) cells += w.cells;
    std::printf("wrote %zu datasets, %lld cells x %d genes, to %s (catalog: %s/catalog.yaml)\n", written.size(),
                static_cast<long long>(cells), o_.genes, o_.out.c_str(), o_.out.c_str());
    return 0;
  }

 private:
  SynthOptions o_;
};

}  // namespace

std::unique_ptr<orchestrator::Command> make_synth_command() { return std::make_unique<SynthCommand>(); }

}  // namespace sdm::synth
