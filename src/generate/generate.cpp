#include "generate/generate.h"

#include <chrono>

#include "core/error.h"

namespace solar::generate {

using Clock = std::chrono::steady_clock;

// Length of the longest suffix of s that is a proper prefix of a stop string:
// that much text must wait until the next token decides.
static size_t held_suffix(const std::string& s, const std::vector<std::string>& stops) {
  size_t best = 0;
  for (const auto& st : stops) {
    if (st.empty()) continue;
    for (size_t k = std::min(st.size() - 1, s.size()); k > best; --k)
      if (s.compare(s.size() - k, k, st, 0, k) == 0) {
        best = k;
        break;
      }
  }
  return best;
}

GenerateResult generate(engine::Context& ctx, const tokenizer::Tokenizer& tok, const std::vector<int>& prompt,
                        const GenerateOptions& opt, const std::function<bool(const std::string&)>& on_text) {
  GenerateResult r;
  r.n_prompt = int(prompt.size());
  if (prompt.empty()) fail("prompt", "", "expected at least one token (BOS)");
  const model::ModelConfig& cfg = ctx.model().config();
  const int left = ctx.n_ctx() - ctx.n_past();
  if (int(prompt.size()) >= left)
    fail("prompt", "", "prompt is " + std::to_string(prompt.size()) + " tokens, but only " + std::to_string(left) +
                           " positions are left in the context (-c " + std::to_string(ctx.n_ctx()) + ")");
  auto cancelled = [&] { return opt.cancel && opt.cancel->load(std::memory_order_relaxed); };
  if (cancelled()) {
    r.stop_reason = "cancelled";
    return r;
  }
  std::vector<float> logits(size_t(cfg.vocab_size));
  auto t0 = Clock::now();
  ctx.eval(prompt.data(), int(prompt.size()), logits.data());
  auto t1 = Clock::now();
  r.prefill_s = std::chrono::duration<double>(t1 - t0).count();

  sample::Sampler sampler(opt.sampler);
  std::vector<int> history = prompt;
  tokenizer::StreamDecoder dec(tok);
  // Decode in context: a continuation keeps its leading space unless it
  // directly follows BOS (as HF and llama.cpp print it).
  dec.push(prompt.back());
  std::string pending;  // decoded text not yet emitted
  auto emit = [&](const std::string& s) -> bool {
    r.text += s;
    return on_text ? on_text(s) : true;
  };
  bool stopped = false, refused = false;
  for (int i = 0; opt.n_predict < 0 || i < opt.n_predict; ++i) {
    if (cancelled()) {
      r.stop_reason = "cancelled";
      stopped = true;
      break;
    }
    // Only the tokenizer's ids are meaningful; padded model rows are never picked.
    int n_valid = std::min(cfg.vocab_size, tok.vocab_size());
    int next = sampler.sample(logits.data(), n_valid, history);
    if (opt.stop_at_eos && next == tok.eos_id()) {
      r.stop_reason = "eos";
      stopped = true;
      break;
    }
    r.tokens.push_back(next);
    history.push_back(next);
    pending += dec.push(next);
    size_t cut = std::string::npos;
    for (const auto& st : opt.stop) {
      size_t p = st.empty() ? std::string::npos : pending.find(st);
      if (p < cut) cut = p;
    }
    if (cut != std::string::npos) {
      emit(pending.substr(0, cut));
      pending.clear();
      r.stop_reason = "stop";
      stopped = true;
      break;
    }
    size_t hold = held_suffix(pending, opt.stop);
    if (pending.size() > hold) {
      if (!emit(pending.substr(0, pending.size() - hold))) {
        r.stop_reason = "cancelled";
        pending.clear();
        stopped = refused = true;
        break;
      }
      pending.erase(0, pending.size() - hold);
    }
    if (opt.n_predict >= 0 && i + 1 == opt.n_predict) break;
    if (ctx.n_past() >= ctx.n_ctx()) {
      r.stop_reason = "context";
      stopped = true;
      break;
    }
    ctx.eval(&next, 1, logits.data());
  }
  if (!stopped) r.stop_reason = "length";
  if (r.stop_reason != "stop" && !refused) {
    pending += dec.flush();
    if (!pending.empty()) emit(pending);
  }
  r.decode_s = std::chrono::duration<double>(Clock::now() - t1).count();
  return r;
}

}  // namespace solar::generate
