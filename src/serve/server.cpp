#include "serve/server.h"

#include <httplib.h>

#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <random>
#include <nlohmann/json.hpp>

#include "chat/chat.h"
#include "core/log.h"
#include "engine/session.h"
#include "kernels/kernels.h"
#include "rag/rag.h"
#include "rag/rerank.h"
#include "serve/connection.h"
#include "serve/metrics.h"
#include "serve/scheduler.h"

namespace solar::serve {

using nlohmann::json;

static std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

struct Server::Impl {
  ServerOptions opt;
  httplib::Server http;
  std::thread listener;
  std::atomic<bool> ready{false}, stopping{false}, listen_ended{false};
  bool started = false, stopped = false;
  engine::Session lm;
  chat::ChatTemplate tmpl = chat::ChatTemplate::Solar;
  std::string model_id;
  int64_t created = 0;
  std::atomic<uint64_t> next_id{0};
  Metrics metrics;
  std::unique_ptr<Scheduler> sched;
  // Completions not yet answered in full: shutdown() waits for them, because
  // httplib's stop() ends a chunked response mid-stream (no final chunk, no
  // [DONE]) and the client sees a broken connection instead of "cancelled".
  int in_flight = 0;
  std::mutex flight_mu;
  std::condition_variable flight_cv;
  std::shared_ptr<void> flight() {
    std::lock_guard lk(flight_mu);
    ++in_flight;
    return std::shared_ptr<void>(nullptr, [this](void*) {
      std::lock_guard l(flight_mu);
      --in_flight;
      flight_cv.notify_all();
    });
  }
  std::unique_ptr<rag::Retriever> rag;  // with --rag; used under rag_mu (a Store is single-threaded)
  std::unique_ptr<rag::LlmReranker> reranker;  // with --rag, over lm; under rag_mu too (it holds a KV cache)
  std::mutex rag_mu;
  // f(*rag) under the lock, the question embedded on -t threads (OpenMP's count is per calling thread).
  template <class F>
  auto with_rag(F&& f) {
    std::lock_guard lk(rag_mu);
    kernels::set_num_threads(opt.threads);
    return f(*rag);
  }

  void routes();
  void completion(const httplib::Request& req, httplib::Response& res, bool chat);
};

Server::Server(ServerOptions opt) : impl_(std::make_unique<Impl>()) {
  impl_->opt = std::move(opt);
  impl_->created = int64_t(std::time(nullptr));
  std::string id = impl_->opt.alias;
  if (id.empty()) id = std::filesystem::path(impl_->opt.model).lexically_normal().filename().string();
  if (id.empty()) id = std::filesystem::path(impl_->opt.model).lexically_normal().parent_path().filename().string();
  impl_->model_id = id;
}

Server::~Server() { shutdown(); }

// Compares in time that depends on the lengths only, not on where a guess first differs.
static bool same_secret(const std::string& a, const std::string& b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size(); ++i) diff |= uint8_t(a[i] ^ (i < b.size() ? b[i] : 0));
  return diff == 0;
}

static void send_error(httplib::Response& res, const ApiError& e) {
  res.status = e.status;
  res.set_content(error_body(e), "application/json");
}

int Server::start() {
  Impl& s = *impl_;
  s.routes();
  const int pool = std::max(16, 4 * s.opt.n_slots);
  s.http.new_task_queue = [pool] { return new httplib::ThreadPool(size_t(pool)); };
  s.http.set_payload_max_length(s.opt.limits.max_body);
  s.http.set_keep_alive_timeout(2);
  // A streamed token is a small write: with Nagle's algorithm on, each one
  // after the first waits for the client's (delayed, up to 40 ms) ACK of the
  // one before on a kept-alive connection.
  s.http.set_tcp_nodelay(true);
  int port = s.opt.port;
  if (port == 0) {
    port = s.http.bind_to_any_port(s.opt.host);
    if (port < 0) fail("--host", "", "cannot bind " + s.opt.host + " to any port");
  } else if (!s.http.bind_to_port(s.opt.host, port)) {
    fail("--port", "", "cannot bind " + s.opt.host + ":" + std::to_string(port) + " (in use, or not an address here)");
  }
  if (!widen_backlog(port, 1024)) log_warn("serve", "could not raise the listen backlog of port " + std::to_string(port));
  s.listener = std::thread([&s] {
    s.http.listen_after_bind();
    s.listen_ended = true;
  });
  s.started = true;
  // Server::stop() does nothing before the accept loop runs: a shutdown()
  // right after start() (the model failed to load) would leave it running.
  while (!s.http.is_running() && !s.listen_ended) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return port;
}

void Server::load() {
  Impl& s = *impl_;
  if (!s.opt.rag_store.empty()) s.rag = std::make_unique<rag::Retriever>(s.opt.rag_store, s.opt.embed_model);
  engine::SessionOptions so;
  so.tokenizer = s.opt.tokenizer;
  s.lm = engine::open_session(s.opt.model, so);
  s.tmpl = !s.opt.chat_template.empty() ? chat::parse_chat_template(s.opt.chat_template)
                                        : chat::detect_chat_template(s.lm.checkpoint->tokenizer_config);
  if (s.tmpl == chat::ChatTemplate::None) s.tmpl = chat::ChatTemplate::Solar;
  if (s.rag) s.reranker = std::make_unique<rag::LlmReranker>(s.lm);
  SchedulerHooks hooks;
  Metrics* m = &s.metrics;
  hooks.on_first_token = [m](double t) { m->ttft.observe(t); };
  hooks.on_token = [m](double t) { m->inter_token.observe(t); };
  hooks.on_job_done = [m](int np, int ng) {
    m->prompt_tokens += uint64_t(np);
    m->generated_tokens += uint64_t(ng);
  };
  s.sched = std::make_unique<Scheduler>(s.lm, s.opt.n_slots, s.opt.n_ctx, s.opt.chunk, s.opt.threads, hooks);
  s.ready = true;
  log_info("serve", s.opt.model + ": " + std::to_string(s.opt.n_slots) + " slot(s) of " + std::to_string(s.sched->n_ctx()) +
                        " tokens, chat template " + chat::chat_template_name(s.tmpl) +
                        (s.rag ? ", RAG over " + s.opt.rag_store : ""));
}

void Server::shutdown() {
  Impl& s = *impl_;
  if (s.stopped) return;
  s.stopped = true;
  s.stopping = true;
  if (s.sched) s.sched->cancel_all();
  {
    // The cancelled jobs end at the scheduler's next step; their responses then complete.
    std::unique_lock lk(s.flight_mu);
    if (!s.flight_cv.wait_for(lk, std::chrono::seconds(10), [&] { return s.in_flight == 0; }))
      log_warn("serve", std::to_string(s.in_flight) + " response(s) still being written at shutdown");
  }
  if (s.started) {
    s.http.stop();
    s.listener.join();
  }
  s.sched.reset();
}

void Server::Impl::routes() {
  http.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    using R = httplib::Server::HandlerResponse;
    if (req.path == "/" || req.path == "/health" || req.path == "/favicon.ico") return R::Unhandled;
    if (!opt.api_key.empty() && !same_secret(req.get_header_value("Authorization"), "Bearer " + opt.api_key)) {
      send_error(res, ApiError(401, "invalid_request_error", "", "invalid_api_key",
                               "missing or wrong API key: send the header \"Authorization: Bearer KEY\""));
      return R::Handled;
    }
    if (stopping || !ready) {
      send_error(res, ApiError(503, "unavailable_error", "", "", stopping ? "the server is shutting down" : "Loading model"));
      return R::Handled;
    }
    return R::Unhandled;
  });
  http.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    if (res.status == 404)
      send_error(res, ApiError(404, "invalid_request_error", "", "not_found", "no endpoint " + req.method + " " + req.path));
    else if (res.status == 413)
      send_error(res, ApiError(413, "invalid_request_error", "", "request_too_large", "the request body is too large"));
    else
      send_error(res, ApiError(res.status, "invalid_request_error", "", "", "HTTP " + std::to_string(res.status)));
  });
  http.set_exception_handler([this](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    ++metrics.requests_failed;
    try {
      std::rethrow_exception(ep);
    } catch (const ApiError& e) {
      send_error(res, e);
    } catch (const std::exception& e) {
      send_error(res, ApiError(500, "server_error", "", "", e.what()));
    }
  });
  http.Get("/", [](const httplib::Request&, httplib::Response& res) { res.set_content(kChatPage, "text/html; charset=utf-8"); });
  // Browsers ask for it; a 204 keeps their consoles free of 404s.
  http.Get("/favicon.ico", [](const httplib::Request&, httplib::Response& res) { res.status = 204; });
  http.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    if (stopping || !ready) {
      send_error(res, ApiError(503, "unavailable_error", "", "", stopping ? "the server is shutting down" : "Loading model"));
      return;
    }
    res.set_content(R"({"status":"ok"})", "application/json");
  });
  http.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    auto st = sched->stats();
    res.set_content(metrics.text(st.queued, st.busy, sched->n_slots()), "text/plain; version=0.0.4");
  });
  http.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
    const auto& c = lm.config();
    json m = {{"id", model_id}, {"object", "model"}, {"created", created}, {"owned_by", "solar"},
              {"meta", {{"n_ctx", sched->n_ctx()}, {"n_vocab", c.vocab_size}, {"n_layer", c.num_hidden_layers},
                        {"n_embd", c.hidden_size}, {"chat_template", chat::chat_template_name(tmpl)}}}};
    res.set_content(dump({{"object", "list"}, {"data", json::array({m})}}), "application/json");
  });
  http.Post("/tokenize", [this](const httplib::Request& req, httplib::Response& res) {
    TokenizeRequest t = parse_tokenize_request(req.body, opt.limits);
    res.set_content(dump({{"tokens", lm.tokenizer->encode(t.content, t.add_special)}}), "application/json");
  });
  http.Post("/detokenize", [this](const httplib::Request& req, httplib::Response& res) {
    std::vector<int> ids = parse_detokenize_request(req.body, opt.limits);
    for (size_t i = 0; i < ids.size(); ++i)
      if (ids[i] >= lm.tokenizer->vocab_size())
        bad_request("tokens[" + std::to_string(i) + "]", "token id " + std::to_string(ids[i]) + " is not below the vocabulary size " +
                                                             std::to_string(lm.tokenizer->vocab_size()));
    res.set_content(dump({{"content", lm.tokenizer->decode(ids)}}), "application/json");
  });
  http.Post("/v1/rag/query", [this](const httplib::Request& req, httplib::Response& res) {
    if (!rag) throw ApiError(404, "invalid_request_error", "", "not_found", "no RAG store: start the server with --rag STORE");
    RagQueryRequest q = parse_rag_query_request(req.body, opt.limits);
    rag::SearchOptions so = opt.rag.search;
    if (q.mode) so.mode = *q.mode;
    if (q.fusion) so.fusion.method = *q.fusion;
    if (q.alpha) so.fusion.alpha = *q.alpha;
    if (q.exact) so.exact = *q.exact;
    if (q.rerank) so.rerank_top = *q.rerank;
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<rag::Hit> hits = with_rag([&](const rag::Retriever& r) {
      return r.search(q.query, q.k, so, nullptr, so.rerank_top > 0 ? reranker->fn() : nullptr);
    });
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    json out = {{"query", q.query}, {"mode", so.mode}, {"ms", ms}, {"hits", rag::hits_json(hits, true)}};
    if (so.rerank_top > 0) out["rerank"] = {{"model", model_id}, {"top", so.rerank_top}};
    res.set_content(dump(out), "application/json");
  });
  http.Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) { completion(req, res, true); });
  http.Post("/v1/completions", [this](const httplib::Request& req, httplib::Response& res) { completion(req, res, false); });
}

// The stream's state between calls of httplib's content provider.
struct StreamState {
  std::shared_ptr<Job> job;
  std::shared_ptr<void> flight;  // released with the response, after its last chunk
  bool sent_role = false, finished = false;
};

void Server::Impl::completion(const httplib::Request& req, httplib::Response& res, bool is_chat) {
  ++metrics.requests;
  auto flying = flight();
  CompletionRequest r = parse_completion_request(req.body, is_chat, opt.limits);
  auto job = std::make_shared<Job>();
  generate::GenerateOptions& g = job->opt;
  g.n_predict = r.max_tokens ? *r.max_tokens : opt.default_max_tokens >= 0 ? opt.default_max_tokens : opt.limits.max_tokens;
  const int n_ctx = sched->n_ctx();
  json sources;  // with --rag: the sources of the answer, as /v1/rag/query lists hits
  bool answered = false;  // nothing relevant in the store: the answer is known without the model
  if (is_chat) {
    rag::Grounding gr;
    if (rag) {
      if (r.messages.back().role != "user")
        bad_request("messages", "with --rag the last message must be the user's question (it retrieves the sources), got role \"" +
                                    r.messages.back().role + "\"");
      gr = with_rag([&](const rag::Retriever& rr) {
        return rag::retrieve_sources(rr, r.messages.back().content, opt.rag, opt.rag.search.rerank_top > 0 ? reranker->fn() : nullptr);
      });
      if (gr.sources.empty()) {
        job->text = rag::dont_know(opt.rag_store, gr, opt.rag.min_score);
        job->finish_reason = "stop";
        job->done = answered = true;
      }
    }
    try {
      if (rag && !answered) {
        const std::vector<chat::ChatMessage> history(r.messages.begin(), r.messages.end() - 1);
        job->prompt = rag::grounded_prompt(*lm.tokenizer, tmpl, history, r.messages.back().content, gr, n_ctx, g.n_predict);
      } else if (!rag) {
        job->prompt = chat::encode_chat(*lm.tokenizer, tmpl, r.messages, true);
      }
    } catch (const Error& e) {
      bad_request("messages", e.what());
    }
    if (rag) sources = rag::hits_json(gr.sources, true);
    g.stop = chat::stop_strings(tmpl);
  } else {
    job->prompt = lm.tokenizer->encode(r.prompt, true);
  }
  g.stop.insert(g.stop.end(), r.stop.begin(), r.stop.end());
  if (!answered && int(job->prompt.size()) >= n_ctx)
    bad_request(is_chat ? "messages" : "prompt",
                "the prompt is " + std::to_string(job->prompt.size()) + " tokens, but the context (-c) holds " +
                    std::to_string(n_ctx) + ", with room for at least one generated token: shorten the prompt",
                "context_length_exceeded");
  g.sampler = opt.sampler;
  g.stop_at_eos = !opt.ignore_eos;
  if (r.temperature) g.sampler.temp = *r.temperature;
  if (r.top_p) g.sampler.top_p = *r.top_p;
  if (r.top_k) g.sampler.top_k = *r.top_k;
  if (r.min_p) g.sampler.min_p = *r.min_p;
  if (r.repeat_penalty) g.sampler.repeat_penalty = *r.repeat_penalty;
  if (r.seed)
    g.sampler.seed = *r.seed;
  else if (!opt.fixed_seed)
    g.sampler.seed = (uint64_t(std::random_device{}()) << 32) | std::random_device{}();
  if (!answered) sched->submit(job);

  const std::string id = (is_chat ? "chatcmpl-" : "cmpl-") + std::to_string(++next_id);
  const char* object = is_chat ? "chat.completion" : "text_completion";
  auto usage = [job] {
    return json{{"prompt_tokens", job->n_prompt},
                {"completion_tokens", job->n_generated},
                {"total_tokens", job->n_prompt + job->n_generated},
                {"prompt_tokens_details", {{"cached_tokens", job->n_cached}}}};
  };
  const int64_t created = int64_t(std::time(nullptr));  // one time for the whole response, as OpenAI's chunks have
  auto base = [this, id, object, is_chat, created](bool chunk) {
    return json{{"id", id}, {"object", std::string(object) + (chunk && is_chat ? ".chunk" : "")}, {"created", created},
                {"model", model_id}};
  };

  if (!r.stream) {
    std::string text, piece;
    const int fd = find_socket(req.remote_addr, req.remote_port, req.local_port);
    while (job->wait_output(&piece, std::chrono::milliseconds(200))) {
      text += piece;
      if (fd >= 0 && !job->cancel && peer_closed(fd)) job->cancel = true;  // nobody waits for the answer: free the slot
    }
    if (!job->error.empty()) throw ApiError(500, "server_error", "", "", job->error);
    metrics.cached_tokens += uint64_t(job->n_cached);
    json choice = {{"index", 0}, {"finish_reason", job->finish_reason}, {"logprobs", nullptr}};
    if (is_chat)
      choice["message"] = {{"role", "assistant"}, {"content", text}};
    else
      choice["text"] = text;
    json out = base(false);
    out["choices"] = json::array({choice});
    out["usage"] = usage();
    if (!sources.is_null()) out["sources"] = sources;
    res.set_content(dump(out), "application/json");
    return;
  }
  auto st = std::make_shared<StreamState>();
  st->job = job;
  st->flight = std::move(flying);
  auto event = [base, is_chat](const std::string& text, const json& finish, bool role, const json& sources = nullptr) {
    json choice = {{"index", 0}, {"finish_reason", finish}, {"logprobs", nullptr}};
    if (is_chat) {
      choice["delta"] = json::object();
      if (role) choice["delta"]["role"] = "assistant";
      if (!text.empty() || role) choice["delta"]["content"] = text;
    } else {
      choice["text"] = text;
    }
    json out = base(true);
    out["choices"] = json::array({choice});
    if (!sources.is_null()) out["sources"] = sources;
    return "data: " + dump(out) + "\n\n";
  };
  // A token's event, the one sent most, is this frame around the text as a
  // JSON string: the bytes event() writes (built once: at 16 streams of a
  // small model, a JSON tree per token was a third of the HTTP threads' time).
  const std::string marker = "\x01solar-text\x01";
  const std::string frame = event(marker, nullptr, false), quoted = dump(json(marker));
  const size_t at = frame.find(quoted);
  auto chunk = [event, frame, at, n = quoted.size()](const std::string& text, const json& finish, bool role,
                                                      const json& sources = nullptr) {
    if (text.empty() || !finish.is_null() || role || !sources.is_null() || at == std::string::npos)
      return event(text, finish, role, sources);
    return frame.substr(0, at) + dump(json(text)) + frame.substr(at + n);
  };
  const bool include_usage = r.include_usage;
  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider(
      "text/event-stream",
      [this, st, chunk, base, usage, include_usage, is_chat, sources](size_t, httplib::DataSink& sink) {
        Job& j = *st->job;
        std::string out, piece;
        if (is_chat && !st->sent_role) {
          out += chunk("", nullptr, true);
          st->sent_role = true;
        }
        const bool more = j.wait_output(&piece, std::chrono::milliseconds(100));
        if (!piece.empty()) out += chunk(piece, nullptr, false);
        if (!more) {
          if (!j.error.empty()) {
            out += "data: " + error_body(ApiError(500, "server_error", "", "", j.error)) + "\n\n";
          } else {
            out += chunk("", j.finish_reason, false, sources);
            if (include_usage) {
              json u = base(true);
              u["choices"] = json::array();
              u["usage"] = usage();
              out += "data: " + dump(u) + "\n\n";
            }
          }
          out += "data: [DONE]\n\n";
          metrics.cached_tokens += uint64_t(j.n_cached);
        }
        if (!out.empty() && !sink.write(out.data(), out.size())) return false;  // the client went away
        if (!more) {
          st->finished = true;
          sink.done();
        }
        return true;
      },
      [st](bool) {
        // Whatever the reason the stream ended before the job (a client that
        // disconnected, shutdown), its slot is freed at the next step.
        if (!st->finished) st->job->cancel = true;
      });
}

}  // namespace solar::serve
