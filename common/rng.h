// Deterministic randomness: a standard engine (std::mt19937_64, whose output
// sequence the C++ standard fixes) with sampling functions of our own, because
// std::*_distribution and absl::BitGen differ across library builds. Anything
// whose output must be byte-identical for the same seed uses only this.
#pragma once

#include <cstdint>
#include <random>
#include <utility>

namespace fraglab {

class Rng {
 public:
  explicit Rng(uint64_t seed) : engine_(seed) {}

  uint64_t Next() { return engine_(); }

  // Uniform integer in [0, bound); bound > 0. Rejection sampling (no modulo bias).
  uint64_t Uniform(uint64_t bound) {
    // Values below 2^64 mod bound would make low residues more likely.
    const uint64_t threshold = (0 - bound) % bound;
    for (;;) {
      uint64_t x = engine_();
      if (x >= threshold) return x % bound;
    }
  }

  // Uniform integer in [lo, hi] (inclusive); lo <= hi.
  uint64_t UniformRange(uint64_t lo, uint64_t hi) {
    if (hi - lo == UINT64_MAX) return engine_();
    return lo + Uniform(hi - lo + 1);
  }

  // Uniform double in [0, 1) with 53 random bits.
  double UniformDouble() { return static_cast<double>(engine_() >> 11) * 0x1.0p-53; }

  // True with probability p (p <= 0: never, p >= 1: always).
  bool Bernoulli(double p) {
    if (p <= 0) return false;
    if (p >= 1) return true;
    return UniformDouble() < p;
  }

  // Fisher-Yates shuffle of [first, last) for random-access iterators.
  template <typename It>
  void Shuffle(It first, It last) {
    auto n = last - first;
    for (decltype(n) i = n - 1; i > 0; --i) {
      auto j = static_cast<decltype(n)>(Uniform(static_cast<uint64_t>(i) + 1));
      using std::swap;
      swap(first[i], first[j]);
    }
  }

  std::mt19937_64& engine() { return engine_; }

 private:
  std::mt19937_64 engine_;
};

}  // namespace fraglab
