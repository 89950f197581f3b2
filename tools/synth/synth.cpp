#include "tools/synth/synth.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "common/anndata_writer.h"
#include "common/error.h"
#include "jobs/catalog.h"
#include "tools/synth/random.h"

namespace sdm::synth {
namespace {

constexpr double kLogMeanExpression = -1.2;  // mean ~0.9 counts per gene: ~1,800 per cell over 2,000 genes
constexpr double kLogSdExpression = 1.5;
constexpr double kNbSize = 2.0;              // overdispersion of UMI counts
constexpr double kDatasetBatchSd = 0.30;     // per dataset and gene, log scale
constexpr double kSampleBatchSd = 0.35;      // per sample and gene: what makes cell-split scores leak
constexpr double kCellSizeSd = 0.35;
constexpr int kMinCellsPerSample = 10;

/// Collection-wide gene parameters: same genes, base expression and resistance program in every dataset.
struct GeneModel {
  std::vector<double> log_mean;
  std::vector<double> program;  ///< log-fold change in resistant cells at signal 1 (0 off the program)
};

GeneModel make_genes(int genes, std::uint64_t seed) {
  Random rng = Random::derive(seed, "genes");
  GeneModel m;
  for (int g = 0; g < genes; ++g) m.log_mean.push_back(kLogMeanExpression + kLogSdExpression * rng.normal());
  m.program.assign(static_cast<std::size_t>(genes), 0.0);
  const int n_program = std::max(10, genes / 10);
  std::vector<int> order(static_cast<std::size_t>(genes));
  for (int g = 0; g < genes; ++g) order[static_cast<std::size_t>(g)] = g;
  for (int i = genes - 1; i > 0; --i) std::swap(order[static_cast<std::size_t>(i)], order[rng.next() % static_cast<std::uint64_t>(i + 1)]);
  for (int i = 0; i < n_program && i < genes; ++i) {
    const double magnitude = 0.8 + 0.7 * rng.uniform();
    m.program[static_cast<std::size_t>(order[static_cast<std::size_t>(i)])] = rng.uniform() < 0.5 ? magnitude : -magnitude;
  }
  return m;
}

std::string gene_symbol(int g) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "GENE%05d", g + 1);
  return buf;
}
std::string gene_id(int g) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "ENSG9%010d", g + 1);  // Ensembl-shaped, outside the real id range
  return buf;
}

Column categorical(const std::string& name, std::vector<std::string> categories, std::vector<std::int64_t> codes) {
  Column c;
  c.name = name;
  c.type = ColumnType::kCategorical;
  c.categories = std::move(categories);
  c.ints = std::move(codes);
  return c;
}

CellMatrix make_dataset(const jobs::DatasetEntry& d, const GeneModel& genes, const SynthOptions& o, SynthDataset& report) {
  Random rng = Random::derive(o.seed, d.id);
  const int n_res = std::max(2, d.samples_resistant.value_or(2));
  const int n_sen = std::max(2, d.samples_sensitive.value_or(2));
  const int n_samples = n_res + n_sen;
  const auto target = std::max<std::int64_t>(std::llround(static_cast<double>(d.cells) * o.scale), kMinCellsPerSample * n_samples);

  // Samples differ in size (gamma weights), like real patients and replicates do.
  std::vector<double> weight(static_cast<std::size_t>(n_samples));
  double total = 0;
  for (auto& w : weight) total += (w = rng.gamma(4.0));
  std::vector<std::int64_t> per_sample(static_cast<std::size_t>(n_samples));
  std::int64_t assigned = 0;
  for (int s = 0; s < n_samples; ++s) {
    const auto left = target - assigned - static_cast<std::int64_t>(n_samples - s - 1) * kMinCellsPerSample;
    const auto share = s + 1 == n_samples ? left : std::llround(static_cast<double>(target - kMinCellsPerSample * n_samples) * weight[static_cast<std::size_t>(s)] / total) + kMinCellsPerSample;
    per_sample[static_cast<std::size_t>(s)] = std::clamp<std::int64_t>(share, kMinCellsPerSample, std::max<std::int64_t>(left, kMinCellsPerSample));
    assigned += per_sample[static_cast<std::size_t>(s)];
  }

  const auto G = static_cast<std::size_t>(o.genes);
  std::vector<double> dataset_shift(G);
  for (auto& v : dataset_shift) v = kDatasetBatchSd * rng.normal();
  const double program_strength = o.signal * (0.7 + 0.6 * rng.uniform());  // datasets differ in effect size

  CellMatrix m;
  m.source = d.id;
  m.X.cols = static_cast<std::int64_t>(G);
  std::vector<std::string> sample_names;
  std::vector<std::int64_t> condition, sample;
  std::vector<double> n_counts;
  std::vector<double> rate(G);
  for (int s = 0; s < n_samples; ++s) {
    const bool resistant = s < n_res;
    const int within = resistant ? s + 1 : s - n_res + 1;
    sample_names.push_back(d.id + (resistant ? "_R" : "_S") + std::to_string(within));
    for (std::size_t g = 0; g < G; ++g)
      rate[g] = genes.log_mean[g] + dataset_shift[g] + kSampleBatchSd * rng.normal() +
                (resistant ? program_strength * genes.program[g] : 0.0);
    for (std::int64_t c = 0; c < per_sample[static_cast<std::size_t>(s)]; ++c) {
      const double size_factor = kCellSizeSd * rng.normal();
      double total_counts = 0;
      for (std::size_t g = 0; g < G; ++g) {
        const std::int64_t k = rng.negative_binomial(std::exp(rate[g] + size_factor), kNbSize);
        if (k == 0) continue;
        m.X.indices.push_back(static_cast<std::int32_t>(g));
        m.X.data.push_back(static_cast<float>(k));
        total_counts += static_cast<double>(k);
      }
      m.X.indptr.push_back(static_cast<std::int64_t>(m.X.data.size()));
      char barcode[48];
      std::snprintf(barcode, sizeof barcode, "%s-%06lld", sample_names.back().c_str(), static_cast<long long>(c + 1));
      m.obs.index.emplace_back(barcode);
      condition.push_back(resistant ? 0 : 1);  // categories sorted: resistant, sensitive
      sample.push_back(s);
      n_counts.push_back(total_counts);
    }
  }
  m.X.rows = static_cast<std::int64_t>(m.obs.index.size());
  m.obs.columns.push_back(categorical("condition", {"resistant", "sensitive"}, std::move(condition)));
  m.obs.columns.push_back(categorical("sample", sample_names, std::move(sample)));
  m.obs.columns.push_back(categorical("dataset", {d.id}, std::vector<std::int64_t>(static_cast<std::size_t>(m.X.rows), 0)));
  Column counts;
  counts.name = "n_counts";
  counts.type = ColumnType::kFloat;
  counts.floats = std::move(n_counts);
  m.obs.columns.push_back(std::move(counts));
  Column ids;
  ids.name = "gene_ids";
  ids.type = ColumnType::kString;
  for (int g = 0; g < o.genes; ++g) {
    m.var.index.push_back(gene_symbol(g));
    ids.strings.push_back(gene_id(g));
  }
  m.var.columns.push_back(std::move(ids));

  report = {d.id, d.file, m.X.rows, n_res, n_sen};
  return m;
}

void write_catalog(const std::string& path, const SynthOptions& o, const std::vector<const jobs::DatasetEntry*>& entries,
                   const std::vector<SynthDataset>& written) {
  YAML::Emitter out;
  out << YAML::Comment("Synthetic scDrugMap collection written by `sdm synth`; metadata from the bundled catalog.");
  out << YAML::BeginMap;
  out << YAML::Key << "collection" << YAML::Value << o.collection;
  std::int64_t total = 0;
  for (const auto& w : written) total += w.cells;
  out << YAML::Key << "total_cells" << YAML::Value << total;
  out << YAML::Key << "synthetic" << YAML::Value << YAML::Flow << YAML::BeginMap << YAML::Key << "scale" << YAML::Value
      << o.scale << YAML::Key << "genes" << YAML::Value << o.genes << YAML::Key << "signal" << YAML::Value << o.signal
      << YAML::Key << "seed" << YAML::Value << o.seed << YAML::EndMap;
  out << YAML::Key << "datasets" << YAML::Value << YAML::BeginSeq;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const auto& d = *entries[i];
    const auto& w = written[i];
    auto text = [&](const std::string& s) { return s.empty() ? YAML::Node(YAML::NodeType::Null) : YAML::Node(s); };
    out << YAML::BeginMap;
    out << YAML::Key << "id" << YAML::Value << d.id << YAML::Key << "name" << YAML::Value << d.name;
    if (o.collection == "all") out << YAML::Key << "collection" << YAML::Value << d.collection;
    out << YAML::Key << "geo" << YAML::Value << text(d.geo) << YAML::Key << "tissue" << YAML::Value << d.tissue;
    out << YAML::Key << "tissue_detail" << YAML::Value << text(d.tissue_detail);
    out << YAML::Key << "cancer_level1" << YAML::Value << d.cancer_level1 << YAML::Key << "cancer_level2" << YAML::Value
        << text(d.cancer_level2);
    out << YAML::Key << "therapy" << YAML::Value << d.therapy << YAML::Key << "regimen" << YAML::Value << text(d.regimen);
    out << YAML::Key << "samples" << YAML::Value << YAML::Flow << YAML::BeginMap << YAML::Key << "resistant" << YAML::Value
        << w.samples_resistant << YAML::Key << "sensitive" << YAML::Value << w.samples_sensitive << YAML::EndMap;
    out << YAML::Key << "cells" << YAML::Value << d.cells << YAML::Key << "count_source" << YAML::Value << d.count_source;
    out << YAML::Key << "count_group" << YAML::Value << YAML::Flow << d.count_group;
    out << YAML::Key << "group_cells" << YAML::Value << d.group_cells;
    out << YAML::Key << "file" << YAML::Value << w.file << YAML::Key << "synth_cells" << YAML::Value << w.cells;
    out << YAML::EndMap;
  }
  out << YAML::EndSeq << YAML::EndMap;
  std::ofstream(path) << out.c_str() << "\n";
}

}  // namespace

void SynthOptions::validate() const {
  if (out.empty()) throw ConfigError({"<cli>", "--out", ""}, "an output directory is required");
  if (collection != "primary" && collection != "external" && collection != "all")
    throw ConfigError({"<cli>", "--collection", collection}, "expected primary, external or all");
  if (!(scale > 0 && scale <= 1)) throw ConfigError({"<cli>", "--scale", std::to_string(scale)}, "must be in (0, 1]");
  if (genes < 50 || genes > 100000) throw ConfigError({"<cli>", "--genes", std::to_string(genes)}, "must be in 50..100000");
  if (!(signal >= 0 && signal <= 10)) throw ConfigError({"<cli>", "--signal", std::to_string(signal)}, "must be in 0..10");
}

std::vector<SynthDataset> synthesize(const SynthOptions& o) {
  o.validate();
  const std::string dir = o.catalog_dir.empty() ? jobs::default_catalog_dir() : o.catalog_dir;
  const auto catalog = o.collection == "all" ? jobs::Catalog::load_dir(dir)
                                             : jobs::Catalog::load((std::filesystem::path(dir) / (o.collection + ".yaml")).string());
  jobs::Selector selector;
  if (!o.only.empty()) selector["id"] = o.only;
  const auto entries = catalog.select(selector);
  std::error_code ec;
  std::filesystem::create_directories(o.out, ec);
  if (ec) throw IoError({o.out, "--out", ""}, "cannot create directory: " + ec.message());

  const GeneModel genes = make_genes(o.genes, o.seed);
  std::vector<SynthDataset> written(entries.size());
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const auto& d = *entries[i];
    const CellMatrix m = make_dataset(d, genes, o, written[i]);
    std::map<std::string, UnsScalar> uns{
        {"dataset_id", d.id},         {"name", d.name},
        {"geo", d.geo},               {"tissue", d.tissue},
        {"cancer_level1", d.cancer_level1}, {"cancer_level2", d.cancer_level2},
        {"therapy", d.therapy},       {"regimen", d.regimen},
        {"count_source", d.count_source},   {"study_cells", d.cells},
        {"synthetic", std::string("sdm synth")}, {"synth_scale", o.scale},
        {"synth_signal", o.signal},   {"synth_seed", static_cast<std::int64_t>(o.seed)},
        {"synth_genes", static_cast<std::int64_t>(o.genes)}};
    write_h5ad((std::filesystem::path(o.out) / d.file).string(), m, uns);
  }
  write_catalog((std::filesystem::path(o.out) / "catalog.yaml").string(), o, entries, written);
  return written;
}

}  // namespace sdm::synth
