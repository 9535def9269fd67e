// solar/eval/perplexity.h — perplexity of a text, as llama.cpp's
// llama-perplexity computes it (tools/perplexity, its default mode), so the
// figures compare with the ones published for llama.cpp models.
//
// The method:
//   - the whole text is tokenized once, with BOS first when the model's
//     tokenizer adds one (add_bos), and cut into n_chunk = tokens / n_ctx
//     whole chunks of n_ctx tokens (the tail is dropped; max_chunks limits);
//     at least 2·n_ctx tokens are required;
//   - each chunk runs on an empty KV cache, its first token replaced by BOS
//     when add_bos, in forward passes of at most n_batch tokens;
//   - only the second half is scored, so every prediction has at least
//     n_ctx/2 tokens of context: for first = n_ctx/2, the logits of positions
//     first … n_ctx-2 predict tokens first+1 … n_ctx-1 (n_ctx-1-first tokens
//     per chunk), nll = −log_softmax(logits)[token], the sum taken in double;
//   - after each chunk the running estimate is exp(Σnll / count) (llama.cpp's
//     "[1]12.3456,[2]…"); the final estimate is exp(mean nll) ± ppl · σ, with
//     σ = sqrt((mean(nll²) − mean(nll)²) / (count − 1)) the standard error of
//     the mean nll.
// Nothing is printed: the caller sees each chunk through on_chunk.
// Threads: one call runs on the calling thread (the kernels use their own
// pool); the Session may be shared.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/session.h"

namespace solar::eval {

struct PerplexityOptions {
  int n_ctx = 512;          // tokens per chunk; 0: the model's max_position_embeddings
  int n_batch = 2048;       // tokens per forward pass (at most n_ctx are used)
  int64_t max_chunks = -1;  // < 0: every whole chunk of the text
  bool add_bos = true;      // see adds_bos()
  std::string source = "the text";  // names the text in errors (a file path)
};

// The sums over one chunk's scored tokens.
struct ChunkScore {
  double nll = 0;   // Σ −log p(token)
  double nll2 = 0;  // Σ (−log p(token))²
  int tokens = 0;   // tokens scored
};

struct PerplexityResult {
  int n_ctx = 0, n_batch = 0;
  int64_t text_tokens = 0;    // the whole text's tokens (BOS included)
  int64_t n_chunks = 0;       // chunks to score (whole ones, at most max_chunks)
  std::vector<ChunkScore> chunks;
  std::vector<double> running;  // exp(Σnll / Σtokens) after each chunk
  int64_t scored = 0;         // tokens scored in all
  double nll_mean = 0;        // mean −log p
  double ppl = 0;             // exp(nll_mean)
  double ppl_err = 0;         // its uncertainty (ppl · standard error of nll_mean); 0 if undefined
  double seconds = 0;         // model time (forward passes and scoring)
  int64_t positions_run = 0;  // tokens run through the model
};

// Whether the model's tokenizer puts BOS first: tokenizer_config.json's (or
// the GGUF's tokenizer.ggml.) add_bos_token; Llama's tokenizers do by default.
bool adds_bos(const model::Checkpoint& ck);

// One chunk's share of the estimate: `tokens` is the chunk (n tokens) and
// `logits` the rows [vocab] of its positions first … n-1, first = n / 2;
// row r predicts tokens[first + r + 1] (the last row predicts nothing).
// Computed as llama.cpp does: float logits shifted by their maximum, exp in
// float, the sum and log in double.
ChunkScore score_rows(const float* logits, int vocab, const int* tokens, int n);

// Perplexity of `tokens` (the whole text, tokenized with BOS per add_bos).
// on_progress(done, r) once the checks pass (done 0) and after each chunk
// (done = chunks finished, r.chunks and r.running hold them). Throws solar::Error when the text is shorter than 2·n_ctx
// tokens (naming o.source and both counts), and a UsageError (naming
// -c/--ctx-size) when n_ctx is below 3 or above the model's positions.
PerplexityResult perplexity(const engine::Session& s, const std::vector<int>& tokens, const PerplexityOptions& o,
                            const std::function<void(int, const PerplexityResult&)>& on_progress = {});

// llama.cpp's final estimate from the sums over every chunk: fills nll_mean,
// ppl and ppl_err of r from r.chunks.
void finish_estimate(PerplexityResult* r);

}  // namespace solar::eval
