// solar/rag/rerank.h — reranking retrieved chunks by a language model.
//
// What: rag::rerank() (rag.h) reorders the best hits of a retrieval by a
// RelevanceFn; LlmReranker is that function computed by a causal LM. Its
// score is pointwise, as HELM scores MS MARCO with a causal LM:
//   log P(" Yes") - log P(" No")  after the prompt
//   "Passage: {passage}\nQuestion: {question}\nIs the passage relevant to the question? Answer:"
// (the question after the passage, next to the answer it asks for);
// the log-probabilities of the whole continuations (eval::Scorer, so a " Yes"
// of several tokens is scored in full), computed in one batch: the shared
// prompt prefix once, each passage's prompt once for both answers, many
// passages side by side in one token tree (engine::Context::eval_tree).
// Deterministic: no sampling; the same model, question and passages give the
// same scores (on one build and thread count).
// A passage longer than max_passage_tokens (of the model's tokenizer), or than
// leaves the prompt room in the model's context, is cut at a token boundary.
// Threads: an LlmReranker holds a KV cache: one thread at a time. The model
// (engine::Session) may be shared with other contexts meanwhile.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "engine/session.h"
#include "rag/rag.h"

namespace solar::eval {
class Scorer;
}

namespace solar::rag {

class LlmReranker {
 public:
  // The model that scores (its tokenizer cuts passages). The prompt starts
  // with BOS as the model's tokenizer expects it for generation.
  explicit LlmReranker(const engine::Session& lm, int max_passage_tokens = 384);
  ~LlmReranker();
  LlmReranker(const LlmReranker&) = delete;
  LlmReranker& operator=(const LlmReranker&) = delete;
  // The scores of the passages (a RelevanceFn).
  std::vector<double> operator()(const std::string& question, const std::vector<std::string>& passages);
  // This reranker as a RelevanceFn (it must outlive the function).
  RelevanceFn fn() {
    return [this](const std::string& q, const std::vector<std::string>& p) { return (*this)(q, p); };
  }
  // The prompt of one passage, cut as described above (*cut: whether it was).
  std::string prompt(const std::string& question, const std::string& passage, bool* cut = nullptr) const;
  int64_t passages_cut() const { return cut_; }  // passages shortened so far

 private:
  engine::Session lm_;
  std::unique_ptr<eval::Scorer> scorer_;
  int max_passage_tokens_;
  int64_t cut_ = 0;
};

}  // namespace solar::rag
