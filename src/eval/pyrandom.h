// solar/eval/pyrandom.h — Python's random.Random, bit for bit.
//
// lm-evaluation-harness picks which documents --limit keeps (the pinned
// leaderboard version shuffles them with Random(42)) and which few-shot
// examples each item gets (Random.sample) with Python's generator. To give the
// same items and the same prompts, solar draws from the same stream: MT19937
// seeded as CPython seeds it (init_by_array over the integer's 32-bit words),
// getrandbits, and shuffle/sample as CPython 3.x writes them.
#pragma once
#include <array>
#include <cstdint>
#include <vector>

namespace solar::eval {

class PyRandom {
 public:
  explicit PyRandom(uint64_t seed);  // random.Random(seed), seed >= 0
  uint32_t getrandbits32();          // random.getrandbits(32)
  uint32_t getrandbits(int k);       // 1 <= k <= 32
  uint64_t randbelow(uint64_t n);    // Random._randbelow(n), 1 <= n < 2^32
  // random.shuffle(x) on indices: permutes `x` in place.
  void shuffle(std::vector<int64_t>& x);
  // random.sample(range(n), k): k distinct indices in [0, n), in the order
  // Python returns them. Throws solar::Error when k > n.
  std::vector<int64_t> sample(int64_t n, int64_t k);

 private:
  void twist();
  std::array<uint32_t, 624> mt_{};
  int mti_ = 624;
};

}  // namespace solar::eval
