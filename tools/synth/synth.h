#pragma once
// `sdm synth`: a synthetic stand-in for the scDrugMap collection (the real 36 + 24 datasets cannot be
// downloaded here). One .h5ad per catalog dataset, cells scaled from the study's counts, several samples per
// dataset with sample-level labels (like the real data), negative-binomial counts with per-dataset and
// per-sample batch effects, and a resistance gene program of strength `signal` (0 = a null collection).
#include <cstdint>
#include <string>
#include <vector>

namespace sdm::synth {

struct SynthOptions {
  std::string out;
  std::string collection = "primary";  ///< primary | external | all (one mixed catalog)
  double scale = 0.02;
  int genes = 2000;
  double signal = 1.0;
  std::uint64_t seed = 0;
  std::string catalog_dir;  ///< default: the bundled jobs/catalog
  std::vector<std::string> only;  ///< dataset ids to write (default: all of the collection)

  /// Throws ConfigError naming the option for out-of-range values.
  void validate() const;
};

struct SynthDataset {
  std::string id;
  std::string file;
  std::int64_t cells = 0;
  int samples_resistant = 0;
  int samples_sensitive = 0;
};

/// Writes the files and <out>/catalog.yaml; returns what it wrote.
std::vector<SynthDataset> synthesize(const SynthOptions& options);

}  // namespace sdm::synth
