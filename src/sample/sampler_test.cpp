#include "sample/sampler.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>

namespace solar::sample {
namespace {

TEST(Sampler, GreedyIsArgmaxAndTopK1IsArgmax) {
  std::vector<float> l{0.1f, 2.0f, -1.0f, 1.9f};
  SamplerConfig c;
  c.temp = 0;
  EXPECT_EQ(Sampler(c).sample(l.data(), 4, {}), 1);
  c.temp = 1.5f;
  c.top_k = 1;
  for (int i = 0; i < 20; ++i) {
    auto l2 = l;
    EXPECT_EQ(Sampler(c).sample(l2.data(), 4, {}), 1);
  }
}

// argmax() against the plain scan it replaces: ties (first wins), ±0, ±inf,
// NaNs anywhere (never win, except at index 0), every length around the
// 16-lane blocks.
TEST(Sampler, ArgmaxIsTheFirstMaximumOfAScan) {
  auto scan = [](const std::vector<float>& x) {
    int best = 0;
    for (int i = 1; i < int(x.size()); ++i)
      if (x[size_t(i)] > x[size_t(best)]) best = i;
    return best;
  };
  const float specials[] = {0.f, -0.f, INFINITY, -INFINITY, NAN, 1.f, -1.f, 3.f};
  uint64_t s = 12345;
  auto rnd = [&] { return (s = s * 6364136223846793005ULL + 1442695040888963407ULL) >> 33; };
  for (int n : {1, 2, 15, 16, 17, 31, 32, 33, 100, 32000}) {
    for (int trial = 0; trial < 200; ++trial) {
      std::vector<float> x(static_cast<size_t>(n));
      const int mode = trial % 4;  // 0: distinct, 1: few values (ties), 2: specials sprinkled, 3: all specials
      for (auto& v : x) {
        const uint64_t r = rnd();
        v = mode == 0 ? float(int64_t(r % 2000001) - 1000000) * 1e-3f
            : mode == 1 ? float(r % 3)
            : mode == 2 ? (r % 8 == 0 ? specials[(r >> 3) % 8] : float(int64_t(r % 200) - 100))
                        : specials[r % 8];
      }
      ASSERT_EQ(argmax(x.data(), n), scan(x)) << "n=" << n << " mode=" << mode << " trial=" << trial;
    }
  }
  std::vector<float> nan_first{NAN, 5.f, 7.f};
  EXPECT_EQ(argmax(nan_first.data(), 3), 0);
  std::vector<float> zeros{-0.f, 0.f, -0.f};
  EXPECT_EQ(argmax(zeros.data(), 3), 0);
}

TEST(Sampler, SameSeedSameTokens) {
  SamplerConfig c;
  c.temp = 1.0f;
  c.top_k = 0;
  c.top_p = 1;
  c.min_p = 0;
  c.seed = 42;
  Sampler a(c), b(c);
  for (int i = 0; i < 100; ++i) {
    std::vector<float> l{0.f, 0.5f, 1.f, 1.5f, 0.2f}, l2 = l;
    EXPECT_EQ(a.sample(l.data(), 5, {}), b.sample(l2.data(), 5, {}));
  }
}

TEST(Sampler, FrequenciesFollowSoftmaxAtTemperature) {
  SamplerConfig c;
  c.temp = 0.7f;
  c.top_k = 0;
  c.top_p = 1;
  c.min_p = 0;
  c.seed = 5;
  Sampler s(c);
  std::vector<float> base{1.0f, 0.0f, -0.5f, 0.7f};
  std::vector<double> p(4);
  double z = 0;
  for (int i = 0; i < 4; ++i) z += (p[i] = std::exp(base[i] / 0.7));
  std::vector<int> count(4);
  const int N = 40000;
  for (int i = 0; i < N; ++i) {
    auto l = base;
    count[s.sample(l.data(), 4, {})]++;
  }
  for (int i = 0; i < 4; ++i) {
    double expect = p[i] / z, sd = std::sqrt(expect * (1 - expect) / N);
    EXPECT_NEAR(count[i] / double(N), expect, 5 * sd) << i;
  }
}

TEST(Sampler, TopPAndMinPCutTheTail) {
  // Probabilities ~ 0.5, 0.3, 0.15, 0.05: top-p 0.7 keeps the first two.
  std::vector<float> base{std::log(0.5f), std::log(0.3f), std::log(0.15f), std::log(0.05f)};
  SamplerConfig c;
  c.temp = 1;
  c.top_k = 0;
  c.top_p = 0.7f;
  c.min_p = 0;
  Sampler s(c);
  for (int i = 0; i < 2000; ++i) {
    auto l = base;
    EXPECT_LT(s.sample(l.data(), 4, {}), 2);
  }
  c.top_p = 1;
  c.min_p = 0.25f;  // keeps p >= 0.125: the first three
  Sampler s2(c);
  for (int i = 0; i < 2000; ++i) {
    auto l = base;
    EXPECT_LT(s2.sample(l.data(), 4, {}), 3);
  }
}

TEST(Sampler, RepeatPenaltyDemotesRecentTokens) {
  SamplerConfig c;
  c.temp = 0;
  c.repeat_penalty = 2.0f;
  std::vector<float> l{1.0f, 1.5f, -1.0f};
  EXPECT_EQ(Sampler(c).sample(l.data(), 3, {1}), 0);  // 1.5/2 = 0.75 < 1.0
  EXPECT_FLOAT_EQ(l[1], 0.75f);
}

}  // namespace
}  // namespace solar::sample
