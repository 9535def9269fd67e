#include "cli/rag_flags.h"

#include "core/error.h"

namespace solar::cli {

RetrievalFlags add_retrieval_flags(Args& a, const std::string& prefix, const std::string& k_names, int64_t k_def, int64_t k_max,
                                   const std::string& k_help, const std::string& rerank_help) {
  const rag::SearchOptions d;
  const std::string p = "--" + prefix;
  RetrievalFlags f;
  f.prefix = prefix;
  f.k = &a.integer(k_names, k_def, k_help, 1, k_max);
  f.mode = &a.str(p + "mode", "MODE", "bm25, dense or hybrid (both lists fused)", d.mode);
  f.fusion = &a.str(p + "fusion", "METHOD", "hybrid: relative (min-max normalised scores, weighted) or rrf (reciprocal rank)",
                    d.fusion.method);
  f.alpha = &a.number(p + "alpha", d.fusion.alpha, "hybrid: the dense list's weight, 1 - alpha the BM25 list's");
  f.exact = &a.flag(p + "exact", "dense and hybrid: every chunk scored, even when the store has an HNSW index");
  f.rerank = &a.integer(p + "rerank", 0, rerank_help, 0, 1000);
  return f;
}

rag::SearchOptions search_options(const RetrievalFlags& f) {
  const std::string p = "--" + f.prefix;
  if (!rag::valid_mode(*f.mode)) fail(p + "mode", "", "expected bm25, dense or hybrid, got " + *f.mode);
  if (!rag::valid_fusion(*f.fusion)) fail(p + "fusion", "", "expected relative or rrf, got " + *f.fusion);
  if (!(*f.alpha >= 0 && *f.alpha <= 1)) fail(p + "alpha", "", "expected a weight in [0, 1], got " + std::to_string(*f.alpha));
  rag::SearchOptions o;
  o.mode = *f.mode;
  o.fusion = {*f.fusion, *f.alpha};
  o.exact = *f.exact;
  o.rerank_top = *f.rerank;
  return o;
}

}  // namespace solar::cli
