#include "sample/sampler.h"

#include "core/rng.h"
#include "kernels/ops.h"

#include <algorithm>
#include <cmath>
#include <unordered_set>

namespace solar::sample {

int argmax(const float* x, int n) { return int(kernels::argmax(x, n)); }

namespace {
bool by_logit(const std::pair<float, int>& a, const std::pair<float, int>& b) {
  return a.first > b.first || (a.first == b.first && a.second < b.second);
}
}  // namespace

std::vector<std::pair<float, int>> top_k(const float* logits, int n, int k) {
  k = std::max(0, std::min(k, n));
  std::vector<std::pair<float, int>> c;
  c.reserve(size_t(k));
  for (int i = 0; i < k; ++i) c.emplace_back(logits[i], i);
  if (k == 0) return c;
  // A heap whose front is the worst of the k kept so far; a later id loses
  // a tie, so only a strictly larger logit gets in.
  std::make_heap(c.begin(), c.end(), by_logit);
  for (int i = k; i < n; ++i) {
    if (!(logits[i] > c.front().first)) continue;
    std::pop_heap(c.begin(), c.end(), by_logit);
    c.back() = {logits[i], i};
    std::push_heap(c.begin(), c.end(), by_logit);
  }
  std::sort(c.begin(), c.end(), by_logit);
  return c;
}

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

  std::vector<std::pair<float, int>> c = top_k(logits, n_vocab, cfg_.top_k > 0 ? cfg_.top_k : n_vocab);
  size_t keep = c.size();
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
