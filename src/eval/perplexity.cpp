#include "eval/perplexity.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "core/error.h"

namespace solar::eval {

bool adds_bos(const model::Checkpoint& ck) {
  const auto& tc = ck.tokenizer_config;
  auto it = tc.find("add_bos_token");
  return it == tc.end() || !it->is_boolean() || it->get<bool>();
}

ChunkScore score_rows(const float* logits, int vocab, const int* tokens, int n) {
  ChunkScore c;
  const int first = n / 2;
  for (int j = first; j + 1 < n; ++j) {
    const float* row = logits + size_t(j - first) * size_t(vocab);
    float mx = row[0];
    for (int v = 1; v < vocab; ++v) mx = std::max(mx, row[v]);
    double sum = 0;
    for (int v = 0; v < vocab; ++v) sum += std::exp(row[v] - mx);  // float exp, as llama.cpp's expf
    const double nll = -(double(row[tokens[j + 1]] - mx) - std::log(sum));
    c.nll += nll;
    c.nll2 += nll * nll;
    ++c.tokens;
  }
  return c;
}

void finish_estimate(PerplexityResult* r) {
  double nll = 0, nll2 = 0;
  int64_t count = 0;
  for (const ChunkScore& c : r->chunks) nll += c.nll, nll2 += c.nll2, count += c.tokens;
  r->scored = count;
  if (count == 0) return;
  r->nll_mean = nll / double(count);
  r->ppl = std::exp(r->nll_mean);
  // The variance of one token's nll over the text, then the standard error of
  // its mean; exp' = exp carries it to the perplexity.
  const double var = nll2 / double(count) - r->nll_mean * r->nll_mean;
  r->ppl_err = var > 0 && count > 1 ? std::sqrt(var / double(count - 1)) * r->ppl : 0;
}

PerplexityResult perplexity(const engine::Session& s, const std::vector<int>& tokens, const PerplexityOptions& o,
                            const std::function<void(int, const PerplexityResult&)>& on_progress) {
  const char* flag = "-c/--ctx-size";
  const int n_ctx = o.n_ctx == 0 ? s.config().max_position_embeddings : s.context_size(o.n_ctx, flag);
  // first = n_ctx/2 must leave a token to predict after it.
  if (n_ctx < 3) fail(flag, "", "expected at least 3 tokens per chunk (half of them scored), got " + std::to_string(n_ctx));
  if (o.n_batch < 1) fail("-b/--batch-size", "", "expected at least 1, got " + std::to_string(o.n_batch));
  const int64_t n = int64_t(tokens.size());
  if (n < 2 * int64_t(n_ctx))
    fail(o.source, "",
         "tokenizes to only " + std::to_string(n) + " tokens; perplexity with a context of " + std::to_string(n_ctx) +
             " needs at least " + std::to_string(2 * int64_t(n_ctx)) + " (2 × -c/--ctx-size): give a longer text or a "
             "smaller -c");
  PerplexityResult r;
  r.n_chunks = n / n_ctx;
  if (o.max_chunks >= 0) r.n_chunks = std::min(r.n_chunks, o.max_chunks);
  r.n_ctx = n_ctx;
  r.n_batch = std::min(o.n_batch, n_ctx);
  r.text_tokens = n;
  const int V = s.config().vocab_size, first = n_ctx / 2;
  const int bos = s.tokenizer ? s.tokenizer->bos_id() : s.config().bos_token_id;
  engine::Context ctx(s.model, n_ctx);
  std::vector<int> chunk(static_cast<size_t>(n_ctx));
  std::vector<float> logits(size_t(n_ctx - first) * size_t(V));
  double nll = 0;
  int64_t count = 0;
  if (on_progress) on_progress(0, r);
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < r.n_chunks; ++i) {
    std::copy_n(tokens.begin() + i * n_ctx, n_ctx, chunk.begin());
    if (o.add_bos) chunk[0] = bos;
    ctx.truncate(0);
    // Passes of n_batch tokens; a pass that straddles `first` is split there,
    // so only the scored half pays for the output layer.
    for (int b = 0; b < n_ctx; b += r.n_batch) {
      const int e = std::min(n_ctx, b + r.n_batch);
      if (b < first) ctx.eval(chunk.data() + b, std::min(e, first) - b, nullptr);
      const int lo = std::max(b, first);
      if (e > lo) ctx.eval(chunk.data() + lo, e - lo, nullptr, logits.data() + size_t(lo - first) * size_t(V));
    }
    r.positions_run += n_ctx;
    ChunkScore c = score_rows(logits.data(), V, chunk.data(), n_ctx);
    nll += c.nll;
    count += c.tokens;
    r.chunks.push_back(c);
    r.running.push_back(std::exp(nll / double(count)));
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (on_progress) on_progress(int(i + 1), r);
  }
  finish_estimate(&r);
  return r;
}

}  // namespace solar::eval
