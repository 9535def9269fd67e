#include "eval/pyrandom.h"

#include <cmath>
#include <unordered_set>

#include "core/error.h"

namespace solar::eval {

namespace {
constexpr int N = 624, M = 397;
}

PyRandom::PyRandom(uint64_t seed) {
  // CPython: init_genrand(19650218), then init_by_array over abs(seed) split
  // into little-endian 32-bit words (at least one word: seed 0 is [0]).
  std::vector<uint32_t> key;
  for (uint64_t s = seed; s; s >>= 32) key.push_back(uint32_t(s));
  if (key.empty()) key.push_back(0);
  mt_[0] = 19650218u;
  for (int i = 1; i < N; ++i) mt_[i] = 1812433253u * (mt_[i - 1] ^ (mt_[i - 1] >> 30)) + uint32_t(i);
  int i = 1;
  size_t j = 0;
  for (size_t k = std::max<size_t>(N, key.size()); k; --k) {
    mt_[i] = (mt_[i] ^ ((mt_[i - 1] ^ (mt_[i - 1] >> 30)) * 1664525u)) + key[j] + uint32_t(j);
    ++i, ++j;
    if (i >= N) mt_[0] = mt_[N - 1], i = 1;
    if (j >= key.size()) j = 0;
  }
  for (int k = N - 1; k; --k) {
    mt_[i] = (mt_[i] ^ ((mt_[i - 1] ^ (mt_[i - 1] >> 30)) * 1566083941u)) - uint32_t(i);
    if (++i >= N) mt_[0] = mt_[N - 1], i = 1;
  }
  mt_[0] = 0x80000000u;
  mti_ = N;
}

void PyRandom::twist() {
  for (int k = 0; k < N; ++k) {
    uint32_t y = (mt_[k] & 0x80000000u) | (mt_[(k + 1) % N] & 0x7fffffffu);
    mt_[k] = mt_[(k + M) % N] ^ (y >> 1) ^ ((y & 1u) ? 0x9908b0dfu : 0u);
  }
  mti_ = 0;
}

uint32_t PyRandom::getrandbits32() {
  if (mti_ >= N) twist();
  uint32_t y = mt_[mti_++];
  y ^= y >> 11;
  y ^= (y << 7) & 0x9d2c5680u;
  y ^= (y << 15) & 0xefc60000u;
  y ^= y >> 18;
  return y;
}

uint32_t PyRandom::getrandbits(int k) {
  if (k < 1 || k > 32) throw Error("getrandbits: k must be in [1, 32]");
  return getrandbits32() >> (32 - k);
}

uint64_t PyRandom::randbelow(uint64_t n) {
  if (n < 1 || n >= (uint64_t(1) << 32)) throw Error("randbelow: n out of range");
  int k = 0;
  while ((n >> k) != 0) ++k;  // n.bit_length()
  uint64_t r = getrandbits(k);
  while (r >= n) r = getrandbits(k);
  return r;
}

void PyRandom::shuffle(std::vector<int64_t>& x) {
  for (size_t i = x.size(); i-- > 1;) std::swap(x[i], x[randbelow(i + 1)]);
}

std::vector<int64_t> PyRandom::sample(int64_t n, int64_t k) {
  if (k < 0 || k > n) throw Error("sample larger than population or is negative");
  std::vector<int64_t> out(static_cast<size_t>(k));
  // CPython picks the algorithm by size: a pool when the population is small
  // next to k, else rejection against the set of indices already taken.
  int64_t setsize = 21;
  if (k > 5) setsize += int64_t(std::pow(4.0, std::ceil(std::log(double(k) * 3) / std::log(4.0))));
  if (n <= setsize) {
    std::vector<int64_t> pool(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) pool[i] = i;
    for (int64_t i = 0; i < k; ++i) {
      int64_t j = int64_t(randbelow(uint64_t(n - i)));
      out[i] = pool[j];
      pool[j] = pool[n - i - 1];
    }
  } else {
    std::unordered_set<int64_t> taken;
    for (int64_t i = 0; i < k; ++i) {
      int64_t j = int64_t(randbelow(uint64_t(n)));
      while (taken.count(j)) j = int64_t(randbelow(uint64_t(n)));
      taken.insert(j);
      out[i] = j;
    }
  }
  return out;
}

}  // namespace solar::eval
