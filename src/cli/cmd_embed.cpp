// solar embed — sentence embeddings of texts (all-MiniLM-L6-v2), one JSON
// line per text: the token ids and the unit-length vector. The conformance
// test compares both with sentence-transformers; `solar rag` uses the same
// Embedder.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/cli.h"
#include "cli/common.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/json.h"
#include "embed/embed.h"
#include "kernels/kernels.h"

namespace solar::cli {

static int run_embed(const std::vector<std::string>& argv) {
  Args a("embed", "solar embed [--embed-model DIR] (--jsonl FILE | TEXT...) [options]");
  auto& model = a.str("--embed-model", "DIR", "sentence-transformers folder (default: $SOLAR_EMBED_MODEL, then the install locations)");
  auto& jsonl = a.str("--jsonl", "FILE", "texts to embed, one JSON string per line");
  auto& no_vec = a.flag("--ids-only", "print the token ids only");
  auto& threads = a.threads();
  auto& texts = a.positional("TEXT", "texts to embed");
  if (!a.parse(argv)) return a.exit_code();
  kernels::set_num_threads(int(threads));
  std::vector<std::string> in = texts;
  if (!jsonl.empty())
    for (std::string& t : read_jsonl_strings(jsonl)) in.push_back(std::move(t));
  if (in.empty()) usage_error("nothing to embed: give TEXT arguments or --jsonl FILE");
  auto e = embed::Embedder::open(embed::find_model(model));
  std::vector<float> vecs;
  if (!no_vec) vecs = e->encode(in);
  for (size_t i = 0; i < in.size(); i++) {
    bool cut = false;
    nlohmann::json o;
    o["ids"] = e->tokenize(in[i], &cut);
    o["truncated"] = cut;
    if (!no_vec)
      o["embedding"] = std::vector<float>(vecs.begin() + ptrdiff_t(i * size_t(e->dim())),
                                          vecs.begin() + ptrdiff_t((i + 1) * size_t(e->dim())));
    printf("%s\n", o.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  }
  return 0;
}

static Register reg("embed", "sentence embeddings of texts (BERT, all-MiniLM-L6-v2)", run_embed);

}  // namespace solar::cli
