// solar/generate/generate.h — the token loop shared by `solar generate` and `solar chat`.
//
// Feeds the prompt as one batched prefill, then samples token by token,
// streaming text through a callback as soon as it is final: held back while
// it could still be the start of a stop string, cut at the stop string.
// Threads: generate() uses only its arguments; calls on different Contexts
// may run at once (over one shared Model and Tokenizer), one call per Context.
#pragma once
#include <atomic>
#include <functional>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "sample/sampler.h"
#include "tokenizer/tokenizer.h"

namespace solar::generate {

struct GenerateOptions {
  int n_predict = 128;                   // < 0: until EOS or context end
  std::vector<std::string> stop;         // stop strings (not printed)
  bool stop_at_eos = true;
  sample::SamplerConfig sampler;
  // Read before the prefill and before each token; whoever owns it (a signal
  // handler, another thread whose caller went away) sets it to stop with
  // stop_reason "cancelled". Every token returned is then in the context.
  const std::atomic<bool>* cancel = nullptr;
};

struct GenerateResult {
  std::vector<int> tokens;  // generated ids (excluding prompt)
  std::string text;
  std::string stop_reason;  // "eos", "stop", "length", "context", "cancelled"
  int n_prompt = 0;
  double prefill_s = 0, decode_s = 0;
};

// One sequence's sampling and text, token by token: the state generate()
// runs, exposed so a server can advance many sequences with one batched
// forward per step. Feed the logits after the last token to next(); it
// samples, updates the text held back for stop strings, and says which token
// to run next, or -1 when the generation has ended (EOS, stop string,
// n_predict). Then, or to end it early, call finish().
class Generation {
 public:
  // tok must outlive the Generation; prompt: the ids already in the context
  // (only its last token and the history for penalties are used).
  Generation(const tokenizer::Tokenizer& tok, const std::vector<int>& prompt, const GenerateOptions& opt);
  // logits [n_vocab] (modified by penalties); appends the text now final to *text.
  int next(float* logits, int n_vocab, std::string* text);
  // Ends the generation with `reason` unless next() ended it already, and
  // appends the text held back (none after a stop string, or with drop_held).
  void finish(const std::string& reason, std::string* text, bool drop_held = false);
  bool ended() const { return !stop_reason_.empty(); }
  const std::string& stop_reason() const { return stop_reason_; }
  const std::vector<int>& tokens() const { return tokens_; }  // generated ids

 private:
  const tokenizer::Tokenizer& tok_;
  GenerateOptions opt_;
  sample::Sampler sampler_;
  std::vector<int> history_, tokens_;
  tokenizer::StreamDecoder dec_;
  std::string pending_, stop_reason_;
  bool flushed_ = false;
};

// Appends `prompt` (token ids) to ctx and generates. on_text receives text
// pieces; returning false stops generation ("cancelled") and drops the text
// held back for a possible stop string. A stop by opt.cancel emits that text,
// so the caller can keep the partial reply: text decodes tokens exactly.
GenerateResult generate(engine::Context& ctx, const tokenizer::Tokenizer& tok, const std::vector<int>& prompt,
                        const GenerateOptions& opt, const std::function<bool(const std::string&)>& on_text = {});

}  // namespace solar::generate
