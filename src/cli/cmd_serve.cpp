// solar serve — an OpenAI-compatible HTTP server with continuous batching
// (src/serve/server.h). SIGTERM or SIGINT: running requests end with what
// they have, the server exits 0.
#include <signal.h>

#include <cstdio>

#include "chat/chat.h"
#include "cli/common.h"
#include "cli/rag_flags.h"
#include "core/error.h"
#include "core/log.h"
#include "serve/server.h"

namespace solar::cli {

static int run_serve(const std::vector<std::string>& argv) {
  Args a("serve", "solar serve -m MODEL [--host 127.0.0.1] [--port 8080] [-np N] [-c CTX] [--api-key KEY] [options]");
  auto& model = a.str("-m,--model", "PATH", "HF folder, .gguf file or llama2.c .bin");
  auto& tokenizer = a.str("--tokenizer", "PATH", "tokenizer.model / tokenizer.bin (default: beside the model)");
  auto& host = a.str("--host", "ADDR", "address to listen on", "127.0.0.1");
  auto& port = a.integer("--port", 8080, "port; 0 = any free one (printed)", 0, 65535);
  auto& n_slots = a.integer("-np,--parallel", 1, "slots: sequences decoded together in one batch", 1, 256);
  auto& n_ctx = a.integer("-c,--ctx-size", 0, "context length of each slot; 0 = the model's max_position_embeddings");
  auto& chunk = a.integer("-b,--batch-size", 256, "prompt tokens evaluated per step at most (long prompts go in chunks)", 1, 1 << 20);
  auto& threads = a.threads();
  auto& api_key = a.str("--api-key", "KEY", "require \"Authorization: Bearer KEY\" (default: no key)");
  auto& tmpl = a.str("--chat-template", "NAME",
                     "solar, llama2, mistral or chatml (default: detected from tokenizer_config.json, else solar)");
  auto& alias = a.str("-a,--alias", "NAME", "the model id clients see (default: the model's file or folder name)");
  auto& n_predict = a.integer("-n,--n-predict", -1, "max_tokens of a request that gives none; -1 = --max-tokens", -1, 1 << 30);
  auto& max_tokens = a.integer("--max-tokens", 4096, "the largest max_tokens a request may ask for", 1, 1 << 30);
  auto& max_body = a.integer("--max-body", 1 << 20, "largest request body in bytes", 1024, int64_t(1) << 30);
  auto& ignore_eos = a.flag("--ignore-eos", "keep generating past the end-of-sequence token");
  auto& rag_store = a.str("--rag", "STORE", "a `solar rag index` store: POST /v1/rag/query, and chat answers grounded in it with their sources");
  auto& embed_model = a.str("--embed-model", "DIR", "with --rag: the embedding model folder (default: found as for solar rag)");
  RetrievalFlags rf = add_retrieval_flags(a, "rag-", "--rag-top-k", 4, 50, "with --rag: sources given to the model at most",
                                          "with --rag: rerank the N best relevant candidates by the served model (0: off; "
                                          "/v1/rag/query's \"rerank\" overrides)");
  auto& rag_min = a.number("--rag-min-score", 0.3, "with --rag: a source's cosine to the question at least (below: not relevant)");
  SamplingFlags sf = add_sampling_flags(a);
  if (!a.parse(argv)) return a.exit_code();
  if (model.empty()) usage_error("-m/--model is required");
  check_range("--rag-min-score", rag_min, -1, 1);  // a cosine; NaN would make every source irrelevant
  if (!tmpl.empty()) chat::parse_chat_template(tmpl);  // a bad name is a usage error, before loading anything

  serve::ServerOptions o;
  o.model = model;
  o.tokenizer = tokenizer;
  o.host = host;
  o.port = int(port);
  o.n_slots = int(n_slots);
  o.n_ctx = int(n_ctx);
  o.chunk = int(chunk);
  o.threads = int(threads);
  o.api_key = api_key;
  o.chat_template = tmpl;
  o.alias = alias;
  o.sampler = sampler_config(sf);
  o.fixed_seed = *sf.seed >= 0;
  o.ignore_eos = ignore_eos;
  o.default_max_tokens = int(n_predict);
  o.limits.max_tokens = int(max_tokens);
  o.limits.max_body = size_t(max_body);
  o.rag_store = rag_store;
  o.embed_model = embed_model;
  o.rag.search = search_options(rf);
  o.rag.k = *rf.k;
  o.rag.min_score = rag_min;
  if (o.default_max_tokens > o.limits.max_tokens) usage_error("-n/--n-predict: more than --max-tokens");

  // Every thread started from here on inherits the mask: the signals wait for sigwait below.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  // A client that disconnects mid-stream must fail a write, not end the process.
  signal(SIGPIPE, SIG_IGN);

  serve::Server server(o);
  const int bound = server.start();
  log_info("serve", "listening on http://" + host + ":" + std::to_string(bound) + (api_key.empty() ? "" : " (API key required)"),
           {{"host", host}, {"port", bound}});
  // The port first, on stdout, for scripts that asked for any free one.
  std::printf("http://%s:%d\n", host.c_str(), bound);
  std::fflush(stdout);
  try {
    server.load();
  } catch (...) {
    server.shutdown();
    throw;
  }
  log_info("serve", "ready");
  int sig = 0;
  sigwait(&sigs, &sig);
  log_info("serve", std::string("shutting down (") + (sig == SIGTERM ? "SIGTERM" : "SIGINT") + ")");
  server.shutdown();
  return 0;
}

static Register reg("serve", "OpenAI-compatible HTTP server with continuous batching and a web chat", run_serve);

}  // namespace solar::cli
