// solar/sample/sampler.h — picking the next token from logits.
//
// Order as llama.cpp applies it: repetition penalty over the last
// repeat_last_n tokens → top-k → top-p → min-p → temperature → draw.
// temp <= 0 is greedy (argmax after the penalty). Same seed, same logits →
// same token.
// Threads: a Sampler (its RNG and history) is per sequence and belongs to
// one thread at a time; argmax() and SamplerConfig are plain values.
#pragma once
#include <cstdint>
#include <utility>
#include <vector>

namespace solar::sample {

struct SamplerConfig {
  float temp = 0.8f;
  int top_k = 40;          // <= 0: off
  float top_p = 0.95f;     // >= 1: off
  float min_p = 0.05f;     // <= 0: off
  float repeat_penalty = 1.0f;  // 1: off
  int repeat_last_n = 64;
  uint64_t seed = 0xdecafbad;
};

class Sampler {
 public:
  explicit Sampler(SamplerConfig cfg);
  // logits is modified (penalties applied). history: tokens so far.
  int sample(float* logits, int n_vocab, const std::vector<int>& history);
  const SamplerConfig& config() const { return cfg_; }

 private:
  SamplerConfig cfg_;
  uint64_t draws_ = 0;  // draw i uses core/rng.h at (seed, i): the same on every platform
};

int argmax(const float* x, int n);
// The k largest logits as (logit, id), largest first, ties by the smaller id
// (a strict order, so the set and its order are unique). One pass against
// the current k-th best: a value that does not beat it costs one compare.
std::vector<std::pair<float, int>> top_k(const float* logits, int n, int k);

}  // namespace solar::sample
