#pragma once
// A small, portable random source for synthetic data: xoshiro256** seeded through splitmix64, with our own
// normal, gamma and Poisson samplers. std::*_distribution differ between standard libraries, and a
// synthetic collection must be identical for a seed everywhere.
#include <cmath>
#include <cstdint>
#include <string_view>

namespace sdm::synth {

class Random {
 public:
  explicit Random(std::uint64_t seed);
  /// A stream derived from a seed and a label ("P01", "genes"), independent of any other label's stream.
  static Random derive(std::uint64_t seed, std::string_view label);

  std::uint64_t next();
  double uniform();  ///< [0, 1)
  double normal();   ///< N(0, 1)
  double gamma(double shape);  ///< Gamma(shape, 1)
  std::int64_t poisson(double mean);
  /// Negative binomial as a gamma-Poisson mixture with mean `mean` and size (inverse dispersion) `size`.
  std::int64_t negative_binomial(double mean, double size) { return poisson(gamma(size) * mean / size); }

 private:
  std::uint64_t s_[4];
  bool has_spare_ = false;
  double spare_ = 0;
};

}  // namespace sdm::synth
