#pragma once
// splitmix64: a tiny seeded generator for splits and bootstraps, so results depend only on the seed, not on the
// standard library's distributions (which differ between implementations).
#include <cstdint>
#include <utility>
#include <vector>

namespace sdm {

struct SplitMix {
  std::uint64_t state;
  std::uint64_t next() {
    std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  /// Fisher-Yates with next() % i (the modulo bias is irrelevant at these sizes and keeps old splits stable).
  template <class T>
  void shuffle(std::vector<T>& v) {
    for (std::size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[next() % i]);
  }
};

}  // namespace sdm
