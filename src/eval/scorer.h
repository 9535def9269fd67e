// solar/eval/scorer.h — the harness's two model calls on solar's engine.
//
// loglikelihood(context, continuation) and greedy_until(context, until) with
// lm-evaluation-harness's exact token handling (its BaseLM/HFLM):
//   - _encode_pair: trailing whitespace of the context moves to the front of
//     the continuation; context+continuation is tokenized whole and split at
//     the length of the context's own tokens. No BOS (the harness's default for
//     causal models) unless add_bos. An empty context scores after EOS.
//   - the model sees (ctx + cont)[-(max_length+1):][:-1]: left truncation when
//     too long (counted in truncated()).
//   - log-probability = Σ log_softmax(logits)[cont token]; is_greedy when
//     every continuation token is its position's argmax.
// Work the harness repeats is shared. A batch of requests runs as: their
// common token prefix once (kept in the KV cache, so the next batch with the
// same few-shot prefix — MMLU's five dev questions — starts past it), then
// everything else as one token tree per pass (engine::Context::eval_tree):
// an item's context once, each choice a branch off it, many items side by
// side in the same GEMMs.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/session.h"

namespace solar::eval {

struct LogLikelihood {
  double logprob = 0;
  bool greedy = false;
  int tokens = 0;  // continuation tokens scored
  bool truncated = false;  // the context lost its left part to max_length
};

class Scorer {
 public:
  // max_length <= 0: the model's max_position_embeddings.
  Scorer(const engine::Session& s, int max_length = 0, bool add_bos = false);
  int max_length() const { return max_length_; }
  std::vector<int> encode(const std::string& text) const;
  // The harness's _encode_pair (see above).
  void encode_pair(const std::string& context, const std::string& continuation, std::vector<int>* ctx,
                   std::vector<int>* cont) const;
  struct Request {
    std::string context, continuation;
  };
  std::vector<LogLikelihood> loglikelihood(const std::vector<Request>& batch);
  LogLikelihood loglikelihood(const std::string& context, const std::string& continuation);
  // Greedy decoding until one of `until` appears in the text, EOS, or
  // max_gen tokens; the text is then cut at each stop string in turn. The
  // context is left-truncated to max_length - max_gen tokens.
  std::string greedy_until(const std::string& context, const std::vector<std::string>& until, int max_gen = 256);
  int64_t truncated() const { return truncated_; }
  int64_t tokens_run() const { return tokens_run_; }  // positions run through the model
  int cache_positions() const { return ctx_ ? ctx_->n_ctx() : 0; }  // the KV cache's length now
  int64_t tokens_reused() const { return tokens_reused_; }  // positions sharing saved (cache, trie)

 private:
  // Runs seq[0..n) (reusing the cached prefix); row i of *logits gets the
  // logits at position first + i for first = n - rows.
  void run(const std::vector<int>& seq, int rows, std::vector<float>* logits);
  struct Seq {
    std::vector<int> tokens;  // the model's input: (ctx + cont)[-(L+1):][:-1]
    std::vector<int> cont;    // the tokens scored
    size_t first;             // logits of positions first.. score cont
    bool truncated = false;
  };
  // Scores seqs[lo..hi) as one tree hanging off the cached prefix of length p.
  void run_tree(const std::vector<Seq>& seqs, size_t lo, size_t hi, size_t p, std::vector<LogLikelihood>* out);
  // A KV cache for sequences of n tokens: the harness's max_length is the
  // model's max_position_embeddings (32k for Mistral), but a cache that
  // long would take gigabytes the items never use; it grows in steps of
  // 1024 to the longest sequence seen (dropping what it held).
  void reserve(size_t n);
  engine::Session s_;
  std::optional<engine::Context> ctx_;
  std::vector<int> cached_;  // tokens whose K/V are in ctx_
  int max_length_;
  bool add_bos_;
  int64_t truncated_ = 0, tokens_run_ = 0, tokens_reused_ = 0;
  static constexpr int kTreeTokens = 1024, kTreeRows = 512;  // per pass
};

}  // namespace solar::eval
