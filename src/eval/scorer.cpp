#include "eval/scorer.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace solar::eval {

static bool py_space(unsigned char c) { return c == ' ' || (c >= 9 && c <= 13) || (c >= 0x1c && c <= 0x1f); }

Scorer::Scorer(const engine::Session& s, int max_length, bool add_bos)
    : s_(s), ctx_(s.new_context(max_length, "--max-length")), max_length_(ctx_.n_ctx()), add_bos_(add_bos) {
  if (!s_.tokenizer) throw Error("eval: the model has no tokenizer");
}

std::vector<int> Scorer::encode(const std::string& text) const { return s_.tokenizer->encode(text, add_bos_); }

void Scorer::encode_pair(const std::string& context, const std::string& continuation, std::vector<int>* ctx,
                         std::vector<int>* cont) const {
  if (context.empty()) {
    *ctx = {s_.tokenizer->eos_id()};
    *cont = encode(continuation);
    return;
  }
  size_t keep = context.size();
  while (keep > 0 && py_space(context[keep - 1])) --keep;
  std::string c = context.substr(0, keep), k = context.substr(keep) + continuation;
  std::vector<int> whole = encode(c + k);
  *ctx = encode(c);
  cont->assign(whole.begin() + std::min(ctx->size(), whole.size()), whole.end());
}

void Scorer::run(const std::vector<int>& seq, int rows, std::vector<float>* logits) {
  const int n = int(seq.size()), V = s_.config().vocab_size, first = n - rows;
  // Reuse the cached prefix, but re-run from `first` at least: only the
  // positions run now give logits.
  int p = 0;
  while (p < int(cached_.size()) && p < first && cached_[size_t(p)] == seq[size_t(p)]) ++p;
  ctx_.truncate(p);
  cached_.resize(size_t(p));
  tokens_reused_ += p;
  tokens_run_ += n - p;
  if (first > p) ctx_.eval(seq.data() + p, first - p, nullptr);
  logits->resize(size_t(rows) * size_t(V));
  if (rows > 0) ctx_.eval(seq.data() + first, rows, nullptr, logits->data());
  cached_ = seq;
}

LogLikelihood Scorer::loglikelihood(const std::string& context, const std::string& continuation) {
  std::vector<int> c, k;
  encode_pair(context, continuation, &c, &k);
  return loglikelihood_tokens(c, k);
}

LogLikelihood Scorer::loglikelihood_tokens(const std::vector<int>& ctx, const std::vector<int>& cont) {
  if (cont.empty()) throw Error("eval: a continuation encodes to no tokens");
  if (int(cont.size()) > max_length_)
    throw Error("eval: a continuation of " + std::to_string(cont.size()) + " tokens exceeds the model's context of " +
                std::to_string(max_length_));
  std::vector<int> all(ctx);
  all.insert(all.end(), cont.begin(), cont.end());
  if (int(all.size()) > max_length_ + 1) {
    all.erase(all.begin(), all.end() - (max_length_ + 1));
    ++truncated_;
  }
  all.pop_back();
  const int rows = int(cont.size()), V = s_.config().vocab_size;
  std::vector<float> logits;
  run(all, rows, &logits);
  LogLikelihood r;
  r.greedy = true;
  r.tokens = rows;
  for (int i = 0; i < rows; ++i) {
    const float* row = logits.data() + size_t(i) * size_t(V);
    int arg = 0;
    float mx = row[0];
    for (int v = 1; v < V; ++v)
      if (row[v] > mx) mx = row[v], arg = v;  // first maximum, as torch.argmax
    double sum = 0;
    for (int v = 0; v < V; ++v) sum += std::exp(double(row[v]) - mx);
    int tok = cont[size_t(i)];
    r.logprob += double(row[tok]) - mx - std::log(sum);
    if (arg != tok) r.greedy = false;
  }
  return r;
}

std::string Scorer::greedy_until(const std::string& context, const std::vector<std::string>& until, int max_gen) {
  std::vector<int> ids = encode(context);
  int keep = std::max(1, max_length_ - max_gen);
  if (int(ids.size()) > keep) {
    ids.erase(ids.begin(), ids.end() - keep);
    ++truncated_;
  }
  const int V = s_.config().vocab_size, eos = s_.tokenizer->eos_id();
  std::vector<float> logits;
  run(ids, 1, &logits);
  std::vector<int> gen;
  std::string text;
  for (int step = 0; step < max_gen && int(ids.size()) < max_length_; ++step) {
    int arg = int(std::max_element(logits.begin(), logits.begin() + V) - logits.begin());
    if (arg == eos) break;
    gen.push_back(arg);
    text = s_.tokenizer->decode(gen);
    bool stop = false;
    for (auto& u : until)
      if (!u.empty() && text.find(u) != std::string::npos) stop = true;
    if (stop) break;
    ids.push_back(arg);
    ctx_.eval(&arg, 1, logits.data());
    cached_.push_back(arg);
    ++tokens_run_;
  }
  for (auto& u : until) {
    if (u.empty()) continue;
    size_t f = text.find(u);
    if (f != std::string::npos) text = text.substr(0, f);
  }
  return text;
}

}  // namespace solar::eval
