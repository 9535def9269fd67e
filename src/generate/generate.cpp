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

Generation::Generation(const tokenizer::Tokenizer& tok, const std::vector<int>& prompt, const GenerateOptions& opt)
    : tok_(tok), opt_(opt), sampler_(opt.sampler), history_(prompt), dec_(tok) {
  // Decode in context: a continuation keeps its leading space unless it
  // directly follows BOS (as HF and llama.cpp print it).
  if (!prompt.empty()) dec_.push(prompt.back());
}

int Generation::next(float* logits, int n_vocab, std::string* text) {
  if (ended()) return -1;
  if (opt_.n_predict == 0) {
    stop_reason_ = "length";
    return -1;
  }
  // Only the tokenizer's ids are meaningful; padded model rows are never picked.
  int n_valid = std::min(n_vocab, tok_.vocab_size());
  int next = sampler_.sample(logits, n_valid, history_);
  if (opt_.stop_at_eos && next == tok_.eos_id()) {
    stop_reason_ = "eos";
    return -1;
  }
  tokens_.push_back(next);
  history_.push_back(next);
  pending_ += dec_.push(next);
  size_t cut = std::string::npos;
  for (const auto& st : opt_.stop) {
    size_t p = st.empty() ? std::string::npos : pending_.find(st);
    if (p < cut) cut = p;
  }
  if (cut != std::string::npos) {
    text->append(pending_, 0, cut);
    pending_.clear();
    stop_reason_ = "stop";
    return -1;
  }
  size_t hold = held_suffix(pending_, opt_.stop);
  if (pending_.size() > hold) {
    text->append(pending_, 0, pending_.size() - hold);
    pending_.erase(0, pending_.size() - hold);
  }
  if (opt_.n_predict >= 0 && int(tokens_.size()) >= opt_.n_predict) {
    stop_reason_ = "length";
    return -1;
  }
  return next;
}

void Generation::finish(const std::string& reason, std::string* text, bool drop_held) {
  if (!ended()) stop_reason_ = reason;
  if (flushed_) return;
  flushed_ = true;
  if (stop_reason_ == "stop" || drop_held) {
    pending_.clear();
    return;
  }
  pending_ += dec_.flush();
  text->append(pending_);
  pending_.clear();
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

  Generation g(tok, prompt, opt);
  auto emit = [&](const std::string& s) -> bool {
    if (s.empty()) return true;
    r.text += s;
    return on_text ? on_text(s) : true;
  };
  std::string piece;
  while (true) {
    piece.clear();
    if (cancelled()) {
      g.finish("cancelled", &piece);
      emit(piece);
      break;
    }
    int next = g.next(logits.data(), cfg.vocab_size, &piece);
    if (!emit(piece)) {
      g.finish("cancelled", &piece, /*drop_held=*/true);
      break;
    }
    if (next < 0) {
      piece.clear();
      g.finish("", &piece);
      emit(piece);
      break;
    }
    if (ctx.n_past() >= ctx.n_ctx()) {
      piece.clear();
      g.finish("context", &piece);
      emit(piece);
      break;
    }
    ctx.eval(&next, 1, logits.data());
  }
  r.tokens = g.tokens();
  r.stop_reason = g.stop_reason();
  r.decode_s = std::chrono::duration<double>(Clock::now() - t1).count();
  return r;
}

}  // namespace solar::generate
