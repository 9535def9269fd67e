#include "eval/scorer.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <map>

#include "core/error.h"

namespace solar::eval {

static bool py_space(unsigned char c) { return c == ' ' || (c >= 9 && c <= 13) || (c >= 0x1c && c <= 0x1f); }

Scorer::Scorer(const engine::Session& s, int max_length, bool add_bos)
    : s_(s), max_length_(s.context_size(max_length, "--max-length")), add_bos_(add_bos) {
  if (max_length_ == 0) max_length_ = s.config().max_position_embeddings;
  if (!s_.tokenizer) throw Error("eval: the model has no tokenizer");
}

void Scorer::reserve(size_t n) {
  if (ctx_ && size_t(ctx_->n_ctx()) >= n) return;
  const int64_t want = std::min<int64_t>(max_length_, (int64_t(n) + 1023) / 1024 * 1024);
  ctx_.reset();  // the old cache goes before the new one is allocated
  ctx_.emplace(s_.model, int(want), kTreeTokens);
  cached_.clear();
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
  reserve(seq.size());  // first: a new cache holds nothing to reuse
  // Reuse the cached prefix, but re-run from `first` at least: only the
  // positions run now give logits.
  int p = 0;
  while (p < int(cached_.size()) && p < first && cached_[size_t(p)] == seq[size_t(p)]) ++p;
  ctx_->truncate(p);
  cached_.resize(size_t(p));
  tokens_reused_ += p;
  tokens_run_ += n - p;
  if (first > p) ctx_->eval(seq.data() + p, first - p, nullptr);
  logits->resize(size_t(rows) * size_t(V));
  if (rows > 0) ctx_->eval(seq.data() + first, rows, nullptr, logits->data());
  cached_ = seq;
}

LogLikelihood Scorer::loglikelihood(const std::string& context, const std::string& continuation) {
  return loglikelihood(std::vector<Request>{{context, continuation}})[0];
}

// log_softmax(row)[tok] in double, and whether tok is the first maximum.
static double logprob(const float* row, int V, int tok, bool* greedy) {
  int arg = 0;
  float mx = row[0];
  for (int v = 1; v < V; ++v)
    if (row[v] > mx) mx = row[v], arg = v;  // first maximum, as torch.argmax
  double sum = 0;
  for (int v = 0; v < V; ++v) sum += std::exp(double(row[v]) - mx);
  if (arg != tok) *greedy = false;
  return double(row[tok]) - mx - std::log(sum);
}

// A continuation's log-likelihood from the logits rows that predict its tokens.
static LogLikelihood score(const std::vector<int>& cont, int V, const std::function<const float*(size_t)>& row) {
  LogLikelihood r;
  r.greedy = true;
  r.tokens = int(cont.size());
  for (size_t i = 0; i < cont.size(); ++i) r.logprob += logprob(row(i), V, cont[i], &r.greedy);
  return r;
}

std::vector<LogLikelihood> Scorer::loglikelihood(const std::vector<Request>& batch) {
  std::vector<Seq> seqs;
  for (auto& r : batch) {
    Seq q;
    std::vector<int> ctx;
    encode_pair(r.context, r.continuation, &ctx, &q.cont);
    if (q.cont.empty()) throw Error("eval: the continuation '" + r.continuation.substr(0, 40) + "' encodes to no tokens");
    if (int(q.cont.size()) > max_length_)
      throw Error("eval: a continuation of " + std::to_string(q.cont.size()) + " tokens exceeds the model's context of " +
                  std::to_string(max_length_));
    q.tokens = std::move(ctx);
    q.tokens.insert(q.tokens.end(), q.cont.begin(), q.cont.end());
    if (int(q.tokens.size()) > max_length_ + 1) {
      q.tokens.erase(q.tokens.begin(), q.tokens.end() - (max_length_ + 1));
      q.truncated = true;
      ++truncated_;
    }
    q.tokens.pop_back();
    q.first = q.tokens.size() - q.cont.size();
    seqs.push_back(std::move(q));
  }
  std::vector<LogLikelihood> out(seqs.size());
  if (seqs.empty()) return out;
  // The common prefix runs once; it ends before the first position whose
  // logits are needed.
  size_t p = SIZE_MAX;
  for (auto& q : seqs) p = std::min(p, q.first);
  for (auto& q : seqs) {
    size_t m = 0;
    while (m < p && q.tokens[m] == seqs[0].tokens[m]) ++m;
    p = m;
  }
  std::vector<int> prefix(seqs[0].tokens.begin(), seqs[0].tokens.begin() + long(p));
  std::vector<float> none;
  size_t longest = 0;
  for (auto& q : seqs) longest = std::max(longest, q.tokens.size());
  reserve(longest);  // the tree's positions reach the longest sequence
  run(prefix, 0, &none);
  // Passes of at most kTreeTokens tokens and kTreeRows logits rows.
  size_t lo = 0;
  while (lo < seqs.size()) {
    size_t hi = lo, tokens = 0, rows = 0;
    while (hi < seqs.size()) {
      size_t t = seqs[hi].tokens.size() - p, r = seqs[hi].cont.size();
      if (hi > lo && (tokens + t > size_t(kTreeTokens) || rows + r > size_t(kTreeRows))) break;
      tokens += t, rows += r, ++hi;
    }
    if (tokens > size_t(kTreeTokens)) {  // one request longer than a pass: a plain run
      std::vector<float> logits;
      const Seq& q = seqs[lo];
      const int V = s_.config().vocab_size;
      run(q.tokens, int(q.cont.size()), &logits);
      out[lo] = score(q.cont, V, [&](size_t i) { return logits.data() + i * size_t(V); });
      run(prefix, 0, &none);
      ++lo;
      continue;
    }
    run_tree(seqs, lo, hi, p, &out);
    lo = hi;
  }
  for (size_t i = 0; i < seqs.size(); ++i) out[i].truncated = seqs[i].truncated;
  return out;
}

void Scorer::run_tree(const std::vector<Seq>& seqs, size_t lo, size_t hi, size_t p, std::vector<LogLikelihood>* out) {
  // A trie of the sequences past the prefix: shared contexts (and shared
  // starts of choices) become one node each.
  std::vector<int> tok, parent, rows;
  std::map<std::pair<int, int>, int> child;  // (parent, token) → node
  std::map<int, int> row_of;                 // node → logits row
  std::vector<std::vector<int>> nodes_of(hi - lo);
  for (size_t s = lo; s < hi; ++s) {
    int at = -1;
    for (size_t i = p; i < seqs[s].tokens.size(); ++i) {
      auto key = std::make_pair(at, seqs[s].tokens[i]);
      auto it = child.find(key);
      if (it == child.end()) {
        it = child.emplace(key, int(tok.size())).first;
        tok.push_back(key.second);
        parent.push_back(at);
      }
      at = it->second;
      nodes_of[s - lo].push_back(at);
      if (i >= seqs[s].first && !row_of.count(at)) {
        row_of[at] = int(rows.size());
        rows.push_back(at);
      }
    }
  }
  const int V = s_.config().vocab_size;
  std::vector<float> logits(rows.size() * size_t(V));
  ctx_->eval_tree(tok.data(), parent.data(), int(tok.size()), rows.data(), int(rows.size()), logits.data());
  size_t asked = 0;
  for (size_t q = lo; q < hi; ++q) asked += seqs[q].tokens.size();
  tokens_run_ += int64_t(tok.size());
  tokens_reused_ += int64_t(asked - tok.size());  // the cached prefix and the trie's shared nodes
  for (size_t s = lo; s < hi; ++s) {
    const Seq& q = seqs[s];
    (*out)[s] = score(q.cont, V, [&](size_t i) {
      return logits.data() + size_t(row_of[nodes_of[s - lo][q.first - p + i]]) * size_t(V);
    });
  }
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
  reserve(ids.size() + size_t(max_gen));
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
    ctx_->eval(&arg, 1, logits.data());
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
