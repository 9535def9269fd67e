// Pointwise LLM reranking (rerank.h): the reordering, and the Yes/No scorer.
#include "rag/rerank.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "eval/scorer.h"

namespace solar::rag {

std::string passage_text(const Hit& h) { return h.heading.empty() ? h.text : h.heading + "\n" + h.text; }

void rerank(std::vector<Hit>& hits, const std::string& question, int64_t top, const RelevanceFn& score) {
  const size_t n = size_t(std::clamp<int64_t>(top, 0, int64_t(hits.size())));
  if (n == 0) return;
  std::vector<std::string> passages;
  for (size_t i = 0; i < n; ++i) passages.push_back(passage_text(hits[i]));
  const std::vector<double> s = score(question, passages);
  if (s.size() != n)
    fail("rerank: the scorer gave " + std::to_string(s.size()) + " scores for " + std::to_string(n) + " passages");
  for (size_t i = 0; i < n; ++i) {
    if (std::isnan(s[i])) fail("rerank: the score of passage " + std::to_string(i + 1) + " is NaN");
    hits[i].rerank = s[i];
  }
  std::stable_sort(hits.begin(), hits.begin() + long(n), [](const Hit& a, const Hit& b) { return *a.rerank > *b.rerank; });
}

static std::string frame(const std::string& question, const std::string& passage) {
  return "Passage: " + passage + "\nQuestion: " + question + "\nIs the passage relevant to the question? Answer:";
}

LlmReranker::LlmReranker(const engine::Session& lm, int max_passage_tokens)
    : lm_(lm), scorer_(std::make_unique<eval::Scorer>(lm, 0, true)), max_passage_tokens_(max_passage_tokens) {}

LlmReranker::~LlmReranker() = default;

std::string LlmReranker::prompt(const std::string& question, const std::string& passage, bool* cut) const {
  const tokenizer::Tokenizer& tok = *lm_.tokenizer;
  // Room for the frame, the question and the longer answer, with a margin
  // for the tokens that merge across the passage's edges.
  const int64_t rest = int64_t(tok.encode(frame(question, ""), true).size()) + int64_t(tok.encode(" Yes", false).size()) + 8;
  const int64_t budget = std::max<int64_t>(16, std::min<int64_t>(max_passage_tokens_, scorer_->max_length() - rest));
  std::vector<int> ids = tok.encode(passage, false);
  if (cut) *cut = int64_t(ids.size()) > budget;
  if (int64_t(ids.size()) <= budget) return frame(question, passage);
  ids.resize(size_t(budget));
  return frame(question, tok.decode(ids));
}

std::vector<double> LlmReranker::operator()(const std::string& question, const std::vector<std::string>& passages) {
  std::vector<eval::Scorer::Request> reqs;
  for (const std::string& p : passages) {
    bool cut = false;
    std::string ctx = prompt(question, p, &cut);
    cut_ += cut;
    reqs.push_back({ctx, " Yes"});
    reqs.push_back({std::move(ctx), " No"});
  }
  const std::vector<eval::LogLikelihood> ll = scorer_->loglikelihood(reqs);
  std::vector<double> s(passages.size());
  for (size_t i = 0; i < s.size(); ++i) s[i] = ll[2 * i].logprob - ll[2 * i + 1].logprob;
  return s;
}

}  // namespace solar::rag
