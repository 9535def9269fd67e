// Retrieval for a question and the grounded prompt built from it: the one
// code path of `solar rag query/ask` and `solar serve --rag`.
#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "rag/rag.h"

namespace solar::rag {

bool valid_mode(const std::string& mode) { return mode == "bm25" || mode == "dense" || mode == "hybrid"; }

Retriever::Retriever(const std::string& store_path, const std::string& embed_model, bool with_embedder) {
  store_ = Store::open(store_path, false);
  if (!with_embedder) return;
  emb_ = embed::Embedder::open(embed::find_model(embed_model));
  if (emb_->dim() != store_->dim())
    fail(store_path, "meta.dim",
         "store of " + std::to_string(store_->dim()) + "-dim vectors, model of " + std::to_string(emb_->dim()));
}

std::vector<float> Retriever::embed(const std::string& question) const {
  if (!emb_) fail("--mode", "", "the question's similarity needs the embedding model");
  return emb_->encode({question});
}

std::vector<Hit> Retriever::search(const std::string& question, int64_t k, const SearchOptions& o, std::vector<float>* qv,
                                   const RelevanceFn& rerank) const {
  const std::string& mode = o.mode;
  if (!valid_mode(mode)) fail("--mode", "", "expected bm25, dense or hybrid, got " + mode);
  if (mode != "bm25" && !emb_) fail("--mode", "", mode + " search needs the embedding model");
  std::vector<float> v;
  if (mode != "bm25") v = emb_->encode({question});
  const int64_t n = rerank ? std::max(k, o.rerank_top) : k;
  std::vector<Hit> hits = mode == "bm25"    ? store_->bm25(question, n)
                          : mode == "dense" ? store_->dense(v, n, o.exact)
                                            : store_->hybrid(question, v, n, o.exact, o.fusion);
  for (Hit& h : hits) store_->fill(h);
  if (rerank) rag::rerank(hits, question, o.rerank_top, rerank);
  if (int64_t(hits.size()) > k) hits.resize(size_t(k));
  if (qv) *qv = std::move(v);
  return hits;
}

nlohmann::json hits_json(const std::vector<Hit>& hits, bool with_text) {
  nlohmann::json a = nlohmann::json::array();
  for (const Hit& h : hits) {
    nlohmann::json o = {{"id", h.id}, {"score", h.score}, {"file", h.file}, {"page", h.page}, {"heading", h.heading},
                        {"start", h.start}, {"end", h.end}};
    if (h.rerank) o["rerank"] = *h.rerank;
    if (with_text) o["text"] = h.text;
    a.push_back(std::move(o));
  }
  return a;
}

std::string hit_location(const Hit& h) {
  std::string s = h.file;
  if (h.page) s += " p." + std::to_string(h.page);
  if (!h.heading.empty()) s += " § " + h.heading;
  return s + " [" + std::to_string(h.start) + "," + std::to_string(h.end) + ")";
}

Grounding retrieve_sources(const Retriever& r, const std::string& question, const GroundingOptions& o, const RelevanceFn& rerank) {
  Grounding g;
  std::vector<float> qv;
  const int64_t n = rerank ? std::max(o.k, o.search.rerank_top) : o.k;
  std::vector<Hit> hits = r.search(question, n, o.search, &qv);
  if (qv.empty() && !hits.empty()) qv = r.embed(question);  // bm25 found them; the floor is still a cosine
  for (Hit& h : hits) {
    const double c = r.store().similarity(h.id, qv);
    g.best = std::max(g.best, c);
    if (c >= o.min_score) g.sources.push_back(std::move(h));
  }
  if (rerank && !g.sources.empty()) rag::rerank(g.sources, question, o.search.rerank_top, rerank);
  if (int64_t(g.sources.size()) > o.k) g.sources.resize(size_t(o.k));
  return g;
}

std::string dont_know(const std::string& store, const Grounding& g, double min_score) {
  char buf[160];
  snprintf(buf, sizeof buf, " is relevant to the question (best similarity %.2f < --min-score %.2f).", std::max(g.best, 0.0),
           min_score);
  return "I don't know: nothing in " + store + buf;
}

const char* const kGroundedSystem =
    "Answer the question using only the numbered sources. Cite the sources you use as [1], [2]. "
    "If the sources do not contain the answer, say that you do not know.";

std::vector<int> grounded_prompt(const tokenizer::Tokenizer& tok, chat::ChatTemplate t, const std::vector<chat::ChatMessage>& history,
                                 const std::string& question, Grounding& g, int64_t n_ctx, int64_t n_predict) {
  std::string sys = kGroundedSystem;
  std::vector<chat::ChatMessage> turns;
  for (const chat::ChatMessage& m : history) {
    if (m.role == "system")
      sys += "\n\n" + m.content;
    else
      turns.push_back(m);
  }
  std::vector<int> ids;
  while (true) {
    std::string user = "Sources:\n";
    for (size_t i = 0; i < g.sources.size(); i++) user += "[" + std::to_string(i + 1) + "] " + g.sources[i].text + "\n\n";
    user += "Question: " + question;
    std::vector<chat::ChatMessage> msgs{{"system", sys}};
    msgs.insert(msgs.end(), turns.begin(), turns.end());
    msgs.push_back({"user", user});
    ids = chat::encode_chat(tok, t, msgs, true);
    if (int64_t(ids.size()) + std::min(n_predict, n_ctx / 4) < n_ctx || g.sources.size() <= 1) return ids;
    g.sources.pop_back();
  }
}

}  // namespace solar::rag
