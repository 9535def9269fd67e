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

// Appends `prompt` (token ids) to ctx and generates. on_text receives text
// pieces; returning false stops generation ("cancelled") and drops the text
// held back for a possible stop string. A stop by opt.cancel emits that text,
// so the caller can keep the partial reply: text decodes tokens exactly.
GenerateResult generate(engine::Context& ctx, const tokenizer::Tokenizer& tok, const std::vector<int>& prompt,
                        const GenerateOptions& opt, const std::function<bool(const std::string&)>& on_text = {});

}  // namespace solar::generate
