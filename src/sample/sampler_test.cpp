#include "sample/sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
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

// top_k() against a full sort by (logit desc, id asc), with ties and every k.
TEST(Sampler, TopKIsTheHeadOfTheSortedLogits) {
  uint64_t s = 7;
  auto rnd = [&] { return (s = s * 6364136223846793005ULL + 1442695040888963407ULL) >> 33; };
  for (int n : {1, 2, 5, 40, 41, 1000, 32000}) {
    for (int trial = 0; trial < 6; ++trial) {
      std::vector<float> x(static_cast<size_t>(n));
      for (auto& v : x) v = trial % 2 ? float(rnd() % 7) : float(int64_t(rnd() % 2000001) - 1000000) * 1e-2f;
      std::vector<std::pair<float, int>> all;
      for (int i = 0; i < n; ++i) all.emplace_back(x[size_t(i)], i);
      std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) {
        return a.first > b.first || (a.first == b.first && a.second < b.second);
      });
      for (int k : {0, 1, 2, 40, n - 1, n, n + 5}) {
        if (k < 0) continue;
        auto got = top_k(x.data(), n, k);
        std::vector<std::pair<float, int>> want(all.begin(), all.begin() + std::min(std::max(k, 0), n));
        ASSERT_EQ(got, want) << "n=" << n << " k=" << k << " trial=" << trial;
      }
    }
  }
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
