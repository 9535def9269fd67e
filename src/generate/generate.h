// solar/generate/generate.h — the token loop shared by generate, chat and serve.
//
// Feeds the prompt as one batched prefill, then samples token by token,
// streaming text through a callback as soon as it is final: held back while
// it could still be the start of a stop string, cut at the stop string.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "model/model.h"
#include "sample/sampler.h"
#include "tokenizer/tokenizer.h"

namespace solar {

struct GenerateOptions {
  int n_predict = 128;                   // < 0: until EOS or context end
  std::vector<std::string> stop;         // stop strings (not printed)
  bool stop_at_eos = true;
  SamplerConfig sampler;
};

struct GenerateResult {
  std::vector<int> tokens;  // generated ids (excluding prompt)
  std::string text;
  std::string stop_reason;  // "eos", "stop", "length", "context"
  int n_prompt = 0;
  double prefill_s = 0, decode_s = 0;
};

// Appends `prompt` (token ids) to ctx and generates. on_text receives text
// pieces; returning false stops generation.
GenerateResult generate(Context& ctx, const Tokenizer& tok, const std::vector<int>& prompt,
                        const GenerateOptions& opt, const std::function<bool(const std::string&)>& on_text = {});

}  // namespace solar
