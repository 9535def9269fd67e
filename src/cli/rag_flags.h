// solar/cli/rag_flags.h — the retrieval flags `rag query`, `rag ask` and
// `serve --rag` share: how many hits, which list, the fusion, the exact scan,
// and how many candidates the LLM reranks. One declaration, so the three
// commands spell, bound and check them alike.
#pragma once
#include <cstdint>
#include <string>

#include "cli/cli.h"
#include "rag/rag.h"

namespace solar::cli {

struct RetrievalFlags {
  std::string prefix;  // "" (rag) or "rag-" (serve): --mode or --rag-mode
  int64_t *k, *rerank;
  std::string *mode, *fusion;
  double* alpha;
  bool* exact;
};
// Declares k_names (bounded [1, k_max], default k_def, help k_help), and
// --{prefix}mode, --{prefix}fusion, --{prefix}alpha, --{prefix}exact,
// --{prefix}rerank N (0: off; what reranks is the caller's to say in rerank_help).
RetrievalFlags add_retrieval_flags(Args& a, const std::string& prefix, const std::string& k_names, int64_t k_def, int64_t k_max,
                                   const std::string& k_help, const std::string& rerank_help);
// The parsed values, checked: a bad mode, fusion or alpha is a usage error naming its flag.
rag::SearchOptions search_options(const RetrievalFlags& f);

}  // namespace solar::cli
