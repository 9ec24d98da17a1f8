// A small deterministic random generator (splitmix64 seeding + xoshiro256**), with our own
// distributions so results are identical on every standard library: std::uniform_*_distribution
// is implementation-defined, and "same seed, same bytes" is a promise of synth and the loader.
#pragma once

#include <cmath>
#include <cstdint>

namespace yq {

inline uint64_t splitmix64(uint64_t& x) {
  uint64_t z = (x += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Mixes several integers into one seed (seed, epoch, index -> a per-sample stream).
inline uint64_t mix_seed(uint64_t a, uint64_t b = 0, uint64_t c = 0) {
  uint64_t x = a;
  uint64_t h = splitmix64(x);
  x ^= b * 0xD6E8FEB86659FD93ull;
  h ^= splitmix64(x);
  x ^= c * 0xA0761D6478BD642Full;
  h ^= splitmix64(x);
  return h;
}

class Rng {
 public:
  explicit Rng(uint64_t seed = 0) {
    uint64_t x = seed;
    for (auto& w : s_) w = splitmix64(x);
  }
  uint64_t next() {
    uint64_t r = rotl(s_[1] * 5, 7) * 9, t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return r;
  }
  // Uniform in [0, 1).
  double uniform() { return double(next() >> 11) * (1.0 / 9007199254740992.0); }
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  // Uniform integer in [0, n).
  int64_t randint(int64_t n) { return n <= 0 ? 0 : int64_t(next() % uint64_t(n)); }
  // Uniform integer in [lo, hi].
  int64_t randint(int64_t lo, int64_t hi) { return lo + randint(hi - lo + 1); }
  bool chance(double p) { return uniform() < p; }
  double normal() {  // Box-Muller
    double u1 = uniform(), u2 = uniform();
    if (u1 < 1e-300) u1 = 1e-300;
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }

 private:
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

}  // namespace yq
