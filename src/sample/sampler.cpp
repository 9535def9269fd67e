#include "sample/sampler.h"

#include "core/rng.h"
#include "kernels/ops.h"

#include <algorithm>
#include <cmath>
#include <unordered_set>

namespace solar::sample {

int argmax(const float* x, int n) { return int(kernels::argmax(x, n)); }

Sampler::Sampler(SamplerConfig cfg) : cfg_(cfg) {}

int Sampler::sample(float* logits, int n_vocab, const std::vector<int>& history) {
  if (cfg_.repeat_penalty != 1.0f && cfg_.repeat_last_n != 0) {
    size_t n = cfg_.repeat_last_n < 0 ? history.size() : std::min(history.size(), size_t(cfg_.repeat_last_n));
    std::unordered_set<int> seen(history.end() - long(n), history.end());
    for (int t : seen) {
      if (t < 0 || t >= n_vocab) continue;
      // CTRL-style: shrink positive logits, push negative ones further down.
      logits[t] = logits[t] > 0 ? logits[t] / cfg_.repeat_penalty : logits[t] * cfg_.repeat_penalty;
    }
  }
  if (cfg_.temp <= 0) return argmax(logits, n_vocab);

  std::vector<std::pair<float, int>> c(static_cast<size_t>(n_vocab));
  for (int i = 0; i < n_vocab; ++i) c[size_t(i)] = {logits[i], i};
  auto by_logit = [](const auto& a, const auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); };
  size_t keep = c.size();
  if (cfg_.top_k > 0 && size_t(cfg_.top_k) < keep) {
    keep = size_t(cfg_.top_k);
    std::partial_sort(c.begin(), c.begin() + long(keep), c.end(), by_logit);
  } else {
    std::sort(c.begin(), c.end(), by_logit);
  }
  c.resize(keep);
  // Probabilities at temperature 1 for the top-p / min-p cuts, as llama.cpp.
  std::vector<double> p(keep);
  double mx = c[0].first, sum = 0;
  for (size_t i = 0; i < keep; ++i) sum += (p[i] = std::exp(double(c[i].first) - mx));
  for (auto& v : p) v /= sum;
  if (cfg_.top_p < 1.0f) {
    double cum = 0;
    size_t k = 0;
    while (k < keep) {
      cum += p[k++];
      if (cum >= cfg_.top_p) break;
    }
    keep = std::max<size_t>(k, 1);
  }
  if (cfg_.min_p > 0) {
    size_t k = 1;
    while (k < keep && p[k] >= cfg_.min_p * p[0]) ++k;
    keep = k;
  }
  std::vector<double> w(keep);
  double total = 0;
  for (size_t i = 0; i < keep; ++i) total += (w[i] = std::exp((double(c[i].first) - mx) / cfg_.temp));
  double r = total * rng_uniform64(splitmix64(cfg_.seed), draws_++);
  for (size_t i = 0; i < keep; ++i) {
    r -= w[i];
    if (r <= 0) return c[i].second;
  }
  return c[keep - 1].second;
}

}  // namespace solar::sample
