// solar/serve/server.h — `solar serve`: an OpenAI-compatible HTTP server.
//
// Endpoints: POST /v1/chat/completions, POST /v1/completions (OpenAI's
// semantics: max_tokens, temperature, top_p, seed, stop, stream as SSE
// "data: {chunk}" lines ending "data: [DONE]", usage, finish_reason stop or
// length, errors as {"error": {message, type, param, code}}), GET /v1/models;
// as llama.cpp's server: GET /health (503 while the model loads), GET
// /metrics (Prometheus), POST /tokenize, POST /detokenize; GET / a chat page.
// Generation runs on a Scheduler (continuous batching over -np slots).
//
// With a RAG store (ServerOptions::rag_store): POST /v1/rag/query answers as
// `solar rag query --json`; chat completions are grounded as `solar rag ask`
// grounds them (rag/rag.h: the last user message retrieves, the sources go
// numbered into the prompt) and carry a "sources" list (in the last streamed
// chunk when streaming); with no relevant source the answer is the "I don't
// know" line, without calling the model. Reranking (rag/rerank.h) runs on the
// served model with its own KV cache, under the store's lock.
//
// Clients that go away: a stream is cancelled at its next write, a
// non-streaming request when polling its socket finds it closed; either way
// the slot is freed at the scheduler's next step.
//
// Safe by default: binds 127.0.0.1; with an api key every endpoint but
// /health and the page needs "Authorization: Bearer KEY" (else 401); bodies
// and max_tokens are bounded; a prompt that does not fit the context is a 400
// naming both sizes. Requests after shutdown() began get 503.
// Threads: HTTP requests run on the server's own pool; start(), load(),
// shutdown() from one controlling thread.
#pragma once
#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "rag/rag.h"
#include "sample/sampler.h"
#include "serve/request.h"

namespace httplib {
class Server;
}

namespace solar::serve {

struct ServerOptions {
  std::string model, tokenizer;
  std::string host = "127.0.0.1";
  int port = 8080;             // 0: any free port (start() returns it)
  int n_slots = 1, n_ctx = 0, threads = 0, chunk = 256;
  std::string api_key;         // empty: no authentication
  std::string chat_template;   // empty: detected from the model, else solar
  std::string alias;           // the model id clients see (default: the model's file or folder name)
  sample::SamplerConfig sampler;  // defaults for fields a request leaves out
  bool ignore_eos = false;        // generate past EOS (as llama.cpp's --ignore-eos)
  bool fixed_seed = false;        // false: a request without a seed draws a random one
  int default_max_tokens = -1;    // a request without max_tokens: -1 = limits.max_tokens
  RequestLimits limits;
  // RAG: the store (empty: none), the embedding model (empty: found as for
  // `solar rag`), and how chat answers are grounded: sources per answer, the
  // cosine a source needs, the search (mode, fusion, exact) and how many
  // candidates the served model reranks (0: none). /v1/rag/query takes the
  // search and rerank as defaults for the fields a request leaves out.
  std::string rag_store, embed_model;
  rag::GroundingOptions rag;
};

class Scheduler;
struct Metrics;

class Server {
 public:
  explicit Server(ServerOptions opt);
  ~Server();  // shutdown()
  // Binds and starts answering (/health is 503 until load() returns); returns
  // the port. Throws solar::Error when the address cannot be bound.
  int start();
  // Opens the model and starts the scheduler. Throws solar::Error.
  void load();
  // Stops taking requests, cancels running ones (they end with what they
  // have, finish_reason "cancelled"), waits for the HTTP threads. Idempotent.
  void shutdown();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The chat page served at "/" (webui.cpp).
extern const char* const kChatPage;

}  // namespace solar::serve
