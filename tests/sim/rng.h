// Rng: the single source of randomness of one simulation run. Everything the simulator
// decides (delays, drops, crashes, client actions, the nodes' election seeds) is drawn
// from it in a fixed order, so a seed replays a run step for step.
//
// Thread-safety: none (the simulator runs in one thread).
#pragma once

#include <cstdint>
#include <random>

namespace keel::sim {

class Rng {
 public:
  explicit Rng(uint64_t seed) : gen_(seed) {}

  uint64_t Next() { return gen_(); }
  // Uniform in [0, n); n must be > 0. The modulo bias is irrelevant for a simulator.
  uint64_t Uniform(uint64_t n) { return gen_() % n; }
  // Uniform in [lo, hi].
  uint64_t Range(uint64_t lo, uint64_t hi) { return lo + Uniform(hi - lo + 1); }
  // True with probability p.
  bool Chance(double p) {
    if (p <= 0) return false;
    return static_cast<double>(gen_() >> 11) * 0x1.0p-53 < p;
  }
  // One element of a non-empty container, by index.
  template <typename C>
  const typename C::value_type& Pick(const C& c) {
    auto it = c.begin();
    std::advance(it, Uniform(c.size()));
    return *it;
  }

 private:
  std::mt19937_64 gen_;
};

}  // namespace keel::sim
