// solar/core/rng.h — the one source of randomness the library uses.
//
// Counter-based: a value is a pure function of (key, index), never of what
// was drawn before, so results do not depend on thread count or call order
// and a resumed job draws what the uninterrupted one would have. Data
// loading, weight initialisation and sampling seeds all go through here.
#pragma once
#include <cmath>
#include <cstdint>
#include <string_view>

namespace solar {

// splitmix64's finaliser: a bijective 64-bit mix (Steele, Lea, Flood 2014).
inline uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// A key for a named stream (a tensor name, a split) under a seed.
inline uint64_t rng_key(uint64_t seed, std::string_view name) {
  uint64_t h = seed;
  for (char ch : name) h = splitmix64(h ^ uint8_t(ch));
  return h;
}

// Uniform in [0, 1) with 24 random bits (exact in float).
inline float rng_uniform(uint64_t key, uint64_t i) { return float(splitmix64(key + i) >> 40) * (1.0f / 16777216.0f); }

// Uniform in [0, 1) with 53 random bits, for draws that need a double.
inline double rng_uniform64(uint64_t key, uint64_t i) { return double(splitmix64(key + i) >> 11) * 0x1p-53; }

// Standard normal, Box–Muller over two uniforms of the stream (computed in
// double, so every compiler and CPU gives the same bits).
inline float rng_normal(uint64_t key, uint64_t i) {
  double u1 = (double(splitmix64(splitmix64(key) ^ (2 * i)) >> 11) + 1.0) * 0x1p-53;  // (0, 1]
  double u2 = double(splitmix64(splitmix64(key) ^ (2 * i + 1)) >> 11) * 0x1p-53;
  return float(std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
}

}  // namespace solar
