// solar serve: request parsing (every bad body a 400 naming the field), the
// HTTP endpoints of an in-process server on an ephemeral port, continuous
// batching against generate() run alone, RAG (retrieval endpoint, grounded
// answers with sources), clients that go away, and the CLI's SIGTERM exit
// with the running requests "cancelled".
#include "serve/server.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <poll.h>
#include <signal.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <future>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/fs.h"
#include "engine/session.h"
#include "generate/generate.h"
#include "kernels/kernels.h"
#include "rag/rag.h"
#include "serve/connection.h"
#include "serve/request.h"
#include "serve/scheduler.h"
#include "testing/models.h"
#include "testing/rag.h"
#include "testing/tokenizers.h"

namespace solar::serve {
namespace {

using nlohmann::json;

ApiError api_error_of(const std::string& body, bool chat = true, RequestLimits lim = {}) {
  try {
    parse_completion_request(body, chat, lim);
  } catch (const ApiError& e) {
    return e;
  }
  return ApiError(0, "", "", "", "no error");
}

TEST(ServeRequest, ParsesOpenAIFields) {
  CompletionRequest r = parse_completion_request(
      R"({"model":"x","messages":[{"role":"system","content":"be brief"},{"role":"user","content":[{"type":"text","text":"hi"}]}],
          "max_tokens":7,"temperature":0,"top_p":0.5,"seed":42,"stop":["\n"],"stream":true,"stream_options":{"include_usage":true}})",
      true, {});
  ASSERT_EQ(r.messages.size(), 2u);
  EXPECT_EQ(r.messages[1].content, "hi");
  EXPECT_EQ(*r.max_tokens, 7);
  EXPECT_EQ(*r.temperature, 0.f);
  EXPECT_EQ(*r.seed, 42u);
  EXPECT_EQ(r.stop, std::vector<std::string>{"\n"});
  EXPECT_TRUE(r.stream && r.include_usage);
  CompletionRequest c = parse_completion_request(R"({"prompt":["Once"],"stop":"x","max_tokens":null})", false, {});
  EXPECT_EQ(c.prompt, "Once");
  EXPECT_FALSE(c.max_tokens);
  EXPECT_FALSE(c.temperature);
}

TEST(ServeRequest, BadBodiesAre400sNamingTheField) {
  struct Case {
    const char* body;
    const char* param;
  } cases[] = {
      {"{", ""},
      {"[1]", ""},
      {"{}", "messages"},
      {R"({"messages":[]})", "messages"},
      {R"({"messages":"hi"})", "messages"},
      {R"({"messages":[{"content":"x"}]})", "messages[0].role"},
      {R"({"messages":[{"role":"robot","content":"x"}]})", "messages[0].role"},
      {R"({"messages":[{"role":"user","content":3}]})", "messages[0].content"},
      {R"({"messages":[{"role":"user","content":[{"type":"image_url"}]}]})", "messages[0].content[0]"},
      {R"({"messages":[{"role":"user","content":"x"}],"max_tokens":"5"})", "max_tokens"},
      {R"({"messages":[{"role":"user","content":"x"}],"max_tokens":-1})", "max_tokens"},
      {R"({"messages":[{"role":"user","content":"x"}],"max_tokens":1e9})", "max_tokens"},
      {R"({"messages":[{"role":"user","content":"x"}],"temperature":"hot"})", "temperature"},
      {R"({"messages":[{"role":"user","content":"x"}],"temperature":3})", "temperature"},
      {R"({"messages":[{"role":"user","content":"x"}],"stream":1})", "stream"},
      {R"({"messages":[{"role":"user","content":"x"}],"stop":[1]})", "stop[0]"},
      {R"({"messages":[{"role":"user","content":"x"}],"seed":1.5})", "seed"},
      {R"({"messages":[{"role":"user","content":"x"}],"n":2})", "n"},
  };
  for (const auto& c : cases) {
    ApiError e = api_error_of(c.body);
    EXPECT_EQ(e.status, 400) << c.body;
    EXPECT_EQ(e.param, c.param) << c.body << ": " << e.what();
    EXPECT_EQ(e.type, "invalid_request_error");
  }
  EXPECT_EQ(api_error_of(R"({"prompt":{}})", false).param, "prompt");
  RequestLimits small;
  small.max_body = 10;
  EXPECT_EQ(api_error_of(R"({"messages":[{"role":"user","content":"x"}]})", true, small).status, 413);
  json err = json::parse(error_body(api_error_of("{")));
  EXPECT_TRUE(err["error"].contains("message") && err["error"].contains("type") && err["error"].contains("param") &&
              err["error"].contains("code"));
  EXPECT_THROW(parse_detokenize_request(R"({"tokens":[1,-2]})", {}), ApiError);
  EXPECT_THROW(parse_tokenize_request(R"({"content":null})", {}), ApiError);
}

TEST(ServeRequest, RagQuery) {
  RagQueryRequest r = parse_rag_query_request(R"({"query":"where?"})", {});
  EXPECT_EQ(r.query, "where?");
  EXPECT_EQ(r.k, 5);
  EXPECT_FALSE(r.mode || r.fusion || r.alpha || r.exact || r.rerank) << "left out: the server's flags";
  r = parse_rag_query_request(R"({"query":"q","k":3,"mode":"bm25","fusion":"rrf","alpha":0.7,"exact":true,"rerank":10})", {});
  EXPECT_EQ(r.k, 3);
  EXPECT_EQ(r.mode, "bm25");
  EXPECT_EQ(r.fusion, "rrf");
  EXPECT_EQ(r.alpha, 0.7);
  EXPECT_EQ(r.exact, true);
  EXPECT_EQ(r.rerank, 10);
  auto param_of = [](const char* body) {
    try {
      parse_rag_query_request(body, {});
    } catch (const ApiError& e) {
      EXPECT_EQ(e.status, 400) << body;
      return e.param;
    }
    return std::string("no error");
  };
  EXPECT_EQ(param_of("{}"), "query");
  EXPECT_EQ(param_of(R"({"query":3})"), "query");
  EXPECT_EQ(param_of(R"({"query":"q","k":0})"), "k");
  EXPECT_EQ(param_of(R"({"query":"q","k":1001})"), "k");
  EXPECT_EQ(param_of(R"({"query":"q","mode":"fuzzy"})"), "mode");
  EXPECT_EQ(param_of(R"({"query":"q","fusion":"max"})"), "fusion");
  EXPECT_EQ(param_of(R"({"query":"q","alpha":1.5})"), "alpha");
  EXPECT_EQ(param_of(R"({"query":"q","exact":1})"), "exact");
  EXPECT_EQ(param_of(R"({"query":"q","rerank":-1})"), "rerank");
  EXPECT_EQ(param_of(R"({"query":"q","rerank":1001})"), "rerank");
}

// A random model of `shape` (solar init flags) with the ASCII tokenizer (131
// ids) in a temporary folder. F32 by default: the other float types batch
// exactly only where their weights are repacked (kernels::can_pack).
std::string random_model(const std::string& name, const std::string& shape, const std::string& outtype = "f32") {
  std::string d = testing::temp_dir(name);
  testing::write_ascii_tokenizer_bin(d + "/tokenizer.bin");
  std::string log;
  if (testing::run_solar("init " + shape + " --outtype " + outtype + " --tokenizer " + d + "/tokenizer.bin -o " + d + "/m", &log) != 0)
    ADD_FAILURE() << log;
  return d + "/m";
}

// 2 layers of the tiny shape, written once.
const std::string& tiny_model() {
  static const std::string dir = random_model("serve_model", "--preset tiny --layers 2");
  return dir;
}

// Slow enough that a request of 1000 tokens is still running when a test acts
// on it (about a millisecond a token): 4 layers of the 10m shape, 1024 positions.
const std::string& slow_model() {
  static const std::string dir = random_model("serve_slow_model", "--preset 10m --layers 4");
  return dir;
}

struct Running {
  explicit Running(ServerOptions o) : server(o) {
    port = server.start();
    server.load();
  }
  ~Running() { server.shutdown(); }
  httplib::Client client(const std::string& key = "") const {
    httplib::Client c("127.0.0.1", port);
    c.set_read_timeout(30, 0);
    if (!key.empty()) c.set_bearer_token_auth(key.c_str());
    return c;
  }
  Server server;
  int port = 0;
};

ServerOptions tiny_options(int slots = 2) {
  ServerOptions o;
  o.model = tiny_model();
  o.port = 0;
  o.n_slots = slots;
  o.n_ctx = 128;
  o.threads = 1;
  o.fixed_seed = true;
  o.limits.max_tokens = 64;
  return o;
}

TEST(ServeHttp, EndpointsAnswerAsOpenAIAndLlamaCpp) {
  Running s(tiny_options());
  auto c = s.client();
  auto h = c.Get("/health");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 200);
  auto models = json::parse(c.Get("/v1/models")->body);
  EXPECT_EQ(models["data"][0]["id"], "m");

  auto r = c.Post("/v1/chat/completions", R"({"messages":[{"role":"user","content":"Hi"}],"max_tokens":5,"seed":1})",
                  "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  json j = json::parse(r->body);
  EXPECT_EQ(j["object"], "chat.completion");
  EXPECT_EQ(j["choices"][0]["message"]["role"], "assistant");
  EXPECT_EQ(j["usage"]["total_tokens"], j["usage"]["prompt_tokens"].get<int>() + j["usage"]["completion_tokens"].get<int>());
  EXPECT_TRUE(j["choices"][0]["finish_reason"] == "length" || j["choices"][0]["finish_reason"] == "stop");

  // Streaming: the concatenated deltas are the non-streamed text of the same seed.
  auto st = c.Post("/v1/chat/completions", R"({"messages":[{"role":"user","content":"Hi"}],"max_tokens":5,"seed":1,"stream":true})",
                   "application/json");
  ASSERT_TRUE(st);
  EXPECT_EQ(st->get_header_value("Content-Type"), "text/event-stream");
  std::string streamed, last_finish;
  size_t pos = 0;
  int events = 0;
  bool done = false;
  while ((pos = st->body.find("data: ", pos)) != std::string::npos) {
    size_t end = st->body.find("\n\n", pos);
    std::string data = st->body.substr(pos + 6, end - pos - 6);
    pos = end;
    ++events;
    if (data == "[DONE]") {
      done = true;
      break;
    }
    json ch = json::parse(data);
    EXPECT_EQ(ch["object"], "chat.completion.chunk");
    streamed += ch["choices"][0]["delta"].value("content", "");
    if (!ch["choices"][0]["finish_reason"].is_null()) last_finish = ch["choices"][0]["finish_reason"];
  }
  EXPECT_TRUE(done);
  EXPECT_GE(events, 3);
  EXPECT_EQ(streamed, j["choices"][0]["message"]["content"]);
  EXPECT_EQ(last_finish, j["choices"][0]["finish_reason"]);

  auto bad = c.Post("/v1/completions", R"({"prompt":5})", "application/json");
  EXPECT_EQ(bad->status, 400);
  EXPECT_EQ(json::parse(bad->body)["error"]["param"], "prompt");
  auto over = c.Post("/v1/completions", json{{"prompt", std::string(200, 'a')}}.dump(), "application/json");
  EXPECT_EQ(over->status, 400);
  EXPECT_EQ(json::parse(over->body)["error"]["code"], "context_length_exceeded");
  EXPECT_NE(over->body.find("128"), std::string::npos) << over->body;
  EXPECT_EQ(c.Get("/nope")->status, 404);
  auto tk = json::parse(c.Post("/tokenize", R"({"content":"ab"})", "application/json")->body);
  EXPECT_EQ(tk["tokens"].size(), 3u);  // BOS, a, b
  auto dt = json::parse(c.Post("/detokenize", json{{"tokens", tk["tokens"]}}.dump(), "application/json")->body);
  EXPECT_EQ(dt["content"], "ab");
  EXPECT_EQ(c.Post("/detokenize", R"({"tokens":[100000]})", "application/json")->status, 400);
  std::string m = c.Get("/metrics")->body;
  for (const char* name : {"solar_requests_total 4", "solar_time_to_first_token_seconds_bucket", "solar_inter_token_latency_seconds_count",
                           "solar_requests_deferred", "solar_requests_processing"})
    EXPECT_NE(m.find(name), std::string::npos) << name << "\n" << m;
  EXPECT_NE(c.Get("/")->body.find("<html"), std::string::npos);
}

TEST(ServeHttp, ApiKeyAndLimits) {
  ServerOptions o = tiny_options(1);
  o.api_key = "sekret";
  o.limits.max_body = 2048;
  Running s(o);
  auto anon = s.client();
  EXPECT_EQ(anon.Get("/health")->status, 200);
  auto r = anon.Get("/v1/models");
  EXPECT_EQ(r->status, 401);
  EXPECT_EQ(json::parse(r->body)["error"]["code"], "invalid_api_key");
  EXPECT_EQ(s.client("wrong").Get("/v1/models")->status, 401);
  auto k = s.client("sekret");
  EXPECT_EQ(k.Get("/v1/models")->status, 200);
  EXPECT_EQ(k.Post("/v1/completions", json{{"prompt", std::string(4000, 'a')}}.dump(), "application/json")->status, 413);
  EXPECT_EQ(k.Post("/v1/completions", R"({"prompt":"a","max_tokens":65})", "application/json")->status, 400);
}

// A streaming client that goes away is cancelled and its slot freed.
TEST(ServeHttp, DisconnectCancels) {
  ServerOptions o = tiny_options(1);
  o.n_ctx = 512;
  o.limits.max_tokens = 500;
  o.ignore_eos = true;
  Running s(o);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(uint16_t(s.port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  const std::string body = R"({"prompt":"x","max_tokens":500,"stream":true,"temperature":0})";
  const std::string req = "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " +
                          std::to_string(body.size()) + "\r\n\r\n" + body;
  ASSERT_EQ(write(fd, req.data(), req.size()), ssize_t(req.size()));
  char buf[256];
  ASSERT_GT(read(fd, buf, sizeof buf), 0);  // the stream has begun
  close(fd);
  auto c = s.client();
  std::string m;
  for (int i = 0; i < 200; ++i) {
    m = c.Get("/metrics")->body;
    if (m.find("solar_requests_processing 0") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_NE(m.find("solar_requests_processing 0"), std::string::npos) << m;
  size_t p = m.find("\nsolar_tokens_predicted_total ");
  ASSERT_NE(p, std::string::npos);
  EXPECT_LT(std::stod(m.substr(p + 30)), 500) << "the generation ran to its end";
  // The slot serves the next request.
  auto r = c.Post("/v1/completions", R"({"prompt":"y","max_tokens":3})", "application/json");
  EXPECT_EQ(r->status, 200);
}

int connect_local(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(uint16_t(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  return fd;
}

std::string metric(httplib::Client& c, const std::string& name) {
  auto r = c.Get("/metrics");
  if (!r) return "";
  size_t p = r->body.find("\n" + name + " ");
  return p == std::string::npos ? "" : r->body.substr(p + name.size() + 2, r->body.find('\n', p + 1) - p - name.size() - 2);
}

// Polls until the metric reads `want` (5 s at most).
bool wait_metric(httplib::Client& c, const std::string& name, const std::string& want) {
  for (int i = 0; i < 500; ++i) {
    if (metric(c, name) == want) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

// A non-streaming client that goes away is noticed (its socket polled) and
// its request cancelled; the slot serves the next one.
TEST(ServeHttp, NonStreamingDisconnectCancels) {
  ServerOptions o = tiny_options(1);
  o.model = slow_model();
  o.n_ctx = 1024;
  o.limits.max_tokens = 1000;
  o.ignore_eos = true;
  Running s(o);
  auto c = s.client();
  int fd = connect_local(s.port);
  const std::string body = R"({"prompt":"x","max_tokens":1000,"temperature":0})";
  const std::string req = "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " +
                          std::to_string(body.size()) + "\r\n\r\n" + body;
  ASSERT_EQ(write(fd, req.data(), req.size()), ssize_t(req.size()));
  ASSERT_TRUE(wait_metric(c, "solar_requests_processing", "1"));
  close(fd);
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_TRUE(wait_metric(c, "solar_requests_processing", "0"));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2));
  EXPECT_LT(std::stod(metric(c, "solar_tokens_predicted_total")), 1000) << "the generation ran to its end";
  auto r = c.Post("/v1/completions", R"({"prompt":"y","max_tokens":3})", "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

// A socket listening on a free loopback port with a backlog of 1; *a its address.
int listen_local(sockaddr_in* a) {
  int srv = socket(AF_INET, SOCK_STREAM, 0);
  *a = sockaddr_in{};
  a->sin_family = AF_INET;
  a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(bind(srv, reinterpret_cast<sockaddr*>(a), sizeof *a), 0);
  EXPECT_EQ(listen(srv, 1), 0);
  socklen_t n = sizeof *a;
  getsockname(srv, reinterpret_cast<sockaddr*>(a), &n);
  return srv;
}

// find_socket() finds a connection by its addresses; peer_closed() tells an
// idle live peer, one with unread data and one that closed apart.
TEST(ServeConnection, FindsTheSocketAndSeesTheClose) {
  sockaddr_in a;
  const int srv = listen_local(&a);
  const int port = ntohs(a.sin_port);
  socklen_t n;
  int cli = connect_local(port);
  int acc = accept(srv, nullptr, nullptr);
  sockaddr_in me{};
  n = sizeof me;
  getsockname(cli, reinterpret_cast<sockaddr*>(&me), &n);
  // The accepted socket's peer is the client's address; the client's own socket has the server as its peer.
  EXPECT_EQ(find_socket("127.0.0.1", ntohs(me.sin_port), port), acc);
  EXPECT_EQ(find_socket("127.0.0.1", port, ntohs(me.sin_port)), cli);
  EXPECT_EQ(find_socket("127.0.0.2", ntohs(me.sin_port), port), -1);
  EXPECT_FALSE(peer_closed(acc));
  ASSERT_EQ(write(cli, "GET", 3), 3);  // a pipelined request: alive
  EXPECT_FALSE(peer_closed(acc));
  close(cli);
  EXPECT_TRUE(peer_closed(acc));
  close(acc);
  close(srv);
}

// A streamed token is a small write: the server's end of a connection has
// Nagle's algorithm off, or each token after the first on a kept-alive
// connection waits for the client's delayed ACK (40 ms on Linux; one client
// measured 2,060 tok/s with it on, 6,550 with it off).
TEST(ServeHttp, ConnectionsSendWithoutNagle) {
  ServerOptions o = tiny_options(1);
  o.ignore_eos = true;
  Running s(o);
  const int fd = connect_local(s.port);
  const std::string body = R"({"prompt":"x","max_tokens":60,"stream":true,"temperature":0})";
  const std::string req = "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " +
                          std::to_string(body.size()) + "\r\n\r\n" + body;
  ASSERT_EQ(write(fd, req.data(), req.size()), ssize_t(req.size()));
  char buf[256];
  ASSERT_GT(read(fd, buf, sizeof buf), 0);  // accepted and streaming
  sockaddr_in me{};
  socklen_t n = sizeof me;
  getsockname(fd, reinterpret_cast<sockaddr*>(&me), &n);
  const int acc = find_socket("127.0.0.1", ntohs(me.sin_port), s.port);
  ASSERT_GE(acc, 0) << "the server's end of the connection";
  int nodelay = 0;
  n = sizeof nodelay;
  ASSERT_EQ(getsockopt(acc, IPPROTO_TCP, TCP_NODELAY, &nodelay, &n), 0);
  EXPECT_NE(nodelay, 0);
  close(fd);
}

// A listening socket made with a backlog of 1 takes a burst of 24
// connections once widened (none accepted meanwhile: all wait in the queue).
TEST(ServeConnection, WidenedBacklogQueuesABurst) {
  sockaddr_in a;
  const int srv = listen_local(&a);
  const int port = ntohs(a.sin_port);
  EXPECT_FALSE(widen_backlog(port == 65535 ? 1 : port + 1, 64));  // no listener there
  ASSERT_TRUE(widen_backlog(port, 64));
  std::vector<int> clients;
  int connected = 0;
  for (int i = 0; i < 24; ++i) {
    int c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (connect(c, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) ++connected;
    else if (errno == EINPROGRESS) {
      pollfd p{c, POLLOUT, 0};
      int err = 0;
      socklen_t l = sizeof err;
      if (poll(&p, 1, 500) == 1 && getsockopt(c, SOL_SOCKET, SO_ERROR, &err, &l) == 0 && err == 0) ++connected;
    }
    clients.push_back(c);
  }
  EXPECT_EQ(connected, 24);
  for (int c : clients) close(c);
  close(srv);
}

TEST(ServeHttp, HealthIs503UntilLoaded) {
  Server server(tiny_options(1));
  int port = server.start();
  httplib::Client c("127.0.0.1", port);
  EXPECT_EQ(c.Get("/health")->status, 503);
  EXPECT_EQ(c.Post("/v1/completions", R"({"prompt":"a"})", "application/json")->status, 503);
  server.load();
  EXPECT_EQ(c.Get("/health")->status, 200);
  server.shutdown();
}

// Continuous batching: 16 requests at once over 16 slots (and over 4 slots,
// so some wait and join between steps) give each the text generate() gives
// it alone: same seed, same sampling.
void sixteen_at_once_equal_each_alone(const std::string& model) {
  auto lm = engine::open_session(model);
  auto options = [](int i) {
    generate::GenerateOptions g;
    g.n_predict = 12 + i % 5;
    g.sampler.seed = uint64_t(100 + i);
    g.sampler.temp = i % 3 == 0 ? 0.f : 0.9f;
    if (i == 5) g.stop = {"e"};
    return g;
  };
  auto prompt_of = [](int i) { return std::string("Request ") + std::string(size_t(i * 3), char('a' + i % 26)); };
  std::vector<std::string> alone;
  for (int i = 0; i < 16; ++i) {
    engine::Context ctx = lm.new_context(128);
    alone.push_back(generate::generate(ctx, *lm.tokenizer, lm.tokenizer->encode(prompt_of(i), true), options(i)).text);
  }
  for (int slots : {16, 4, 1}) {
    Scheduler sched(lm, slots, 128, /*chunk=*/16, 1);
    std::vector<std::shared_ptr<Job>> jobs;
    for (int i = 0; i < 16; ++i) {
      auto j = std::make_shared<Job>();
      j->prompt = lm.tokenizer->encode(prompt_of(i), true);
      j->opt = options(i);
      sched.submit(j);
      jobs.push_back(j);
    }
    for (int i = 0; i < 16; ++i) {
      std::string text, piece;
      while (jobs[size_t(i)]->wait_output(&piece, std::chrono::milliseconds(1000))) text += piece;
      EXPECT_EQ(text, alone[size_t(i)]) << "request " << i << " beside others, " << slots << " slots";
    }
  }
}

TEST(ServeBatch, SixteenAtOnceEqualEachAlone) { sixteen_at_once_equal_each_alone(tiny_model()); }

// BF16 and F16 weights on panels: every row is summed the same way in any
// batch, so the texts match on these types too (not only F32's near-ties).
TEST(ServeBatch, SixteenAtOnceEqualEachAloneOnPanels) {
  for (const char* t : {"bf16", "f16"}) {
    if (!kernels::can_pack(t[0] == 'b' ? DType::BF16 : DType::F16)) {
      std::printf("skipping %s: its weights are not repacked on this CPU\n", t);
      continue;
    }
    SCOPED_TRACE(t);
    sixteen_at_once_equal_each_alone(random_model(std::string("serve_model_") + t, "--preset tiny --layers 2", t));
  }
}

// Block-quantized weights on panels (decode reads them too): the texts
// match for the GGUFs people run, Q4_K_M's Q6_K tensors included.
TEST(ServeBatch, SixteenAtOnceEqualEachAloneQuantized) {
  if (!kernels::can_pack(DType::Q8_0)) {
    std::printf("skipping: block-quantized weights are not repacked on this CPU (neither AVX512-VNNI nor AVX2)\n");
    return;
  }
  // Rows of whole 256-blocks, so that Q4_K_M keeps its K-quants.
  const std::string dir = testing::temp_dir("serve_model_quant");
  write_file_atomic(dir + "/config.json",
                    R"({"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 256,
                        "intermediate_size": 512, "num_hidden_layers": 2, "num_attention_heads": 4,
                        "num_key_value_heads": 2, "vocab_size": 131, "max_position_embeddings": 512,
                        "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": false})");
  const std::string hf = random_model("serve_model_quant_f32", "--config " + dir + "/config.json");
  for (const char* type : {"q8_0", "q4_0", "q4_k_m"}) {
    SCOPED_TRACE(type);
    const std::string gguf = dir + "/model-" + type + ".gguf";
    std::string log;
    ASSERT_EQ(testing::run_solar("quantize -m " + hf + " -o " + gguf + " --type " + type + " -q --force", &log), 0) << log;
    sixteen_at_once_equal_each_alone(gguf);
  }
}

// A conversation's next turn reuses its cached prefix; a cancelled job frees its slot.
TEST(ServeBatch, PrefixReuseAndCancel) {
  auto lm = engine::open_session(tiny_model());
  Scheduler sched(lm, 1, 128, 8, 1);
  auto run = [&](const std::string& p, int n, bool cancel = false) {
    auto j = std::make_shared<Job>();
    j->prompt = lm.tokenizer->encode(p, true);
    j->opt.n_predict = n;
    j->opt.sampler.temp = 0;
    // Cancelled before it is queued: set after submit() it raced a scheduler that can finish 60
    // tokens of this model first on a busy machine (cancelling a running job: the Disconnect tests).
    j->cancel = cancel;
    sched.submit(j);
    std::string text, piece;
    while (j->wait_output(&piece, std::chrono::milliseconds(1000))) text += piece;
    return j;
  };
  auto a = run("The same long prefix, then one", 4);
  EXPECT_EQ(a->n_cached, 0);
  auto b = run("The same long prefix, then two", 4);
  EXPECT_EQ(b->n_cached, int(std::string("The same long prefix, then ").size()) + 1);  // BOS + ASCII bytes
  auto c = run("Cancelled", 60, true);
  EXPECT_EQ(c->finish_reason, "cancelled");
  EXPECT_LT(c->n_generated, 60);
  EXPECT_EQ(run("after", 2)->finish_reason, "length");  // the slot is free again
}

// `solar serve ARGS --port 0` in a child process: its pid and the URL it
// printed, once /health answers 200 (url empty when it printed none).
std::pair<pid_t, std::string> spawn_serve(std::vector<std::string> args) {
  int out[2];
  if (pipe(out) != 0) return {-1, ""};
  args.insert(args.begin(), {SOLAR_BIN, "serve", "--port", "0", "--log-level", "warn"});
  pid_t pid = fork();
  if (pid == 0) {
    dup2(out[1], 1);
    close(out[0]);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(SOLAR_BIN, argv.data());
    _exit(127);
  }
  close(out[1]);
  std::string url;
  char ch;
  while (read(out[0], &ch, 1) == 1 && ch != '\n') url += ch;
  close(out[0]);
  if (url.rfind("http://127.0.0.1:", 0) != 0) return {pid, ""};
  httplib::Client c(url);
  for (int i = 0; i < 200 && !(c.Get("/health") && c.Get("/health")->status == 200); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  return {pid, url};
}

void sigterm_exits_0(pid_t pid) {
  kill(pid, SIGTERM);
  int st = 0;
  waitpid(pid, &st, 0);
  EXPECT_TRUE(WIFEXITED(st)) << st;
  EXPECT_EQ(WEXITSTATUS(st), 0);
}

// The CLI: prints its URL, answers, and exits 0 on SIGTERM mid-stream.
TEST(ServeCli, SigtermEndsCleanly) {
  const auto child = spawn_serve({"-m", tiny_model(), "-c", "128", "-t", "1"});
  const pid_t pid = child.first;
  const std::string url = child.second;
  ASSERT_FALSE(url.empty());
  auto streaming = std::async(std::launch::async, [&] {
    httplib::Client c2(url);
    return c2.Post("/v1/completions", R"({"prompt":"x","max_tokens":64,"stream":true,"temperature":0})", "application/json");
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  sigterm_exits_0(pid);
  auto r = streaming.get();
  ASSERT_TRUE(r) << "the stream broke off instead of ending";
  EXPECT_NE(r->body.find("[DONE]"), std::string::npos) << r->body;
}

// SIGTERM while two requests run (one streaming, one not): both end with what
// they have, finish_reason "cancelled", and the process exits 0.
TEST(ServeCli, SigtermCancelsRunningRequests) {
  const auto child = spawn_serve({"-m", slow_model(), "-c", "1024", "-np", "2", "-t", "1", "--ignore-eos"});
  const pid_t pid = child.first;
  const std::string url = child.second;
  ASSERT_FALSE(url.empty());
  httplib::Client c(url);
  auto post = [&](bool stream) {
    return std::async(std::launch::async, [url, stream] {
      httplib::Client c2(url);
      c2.set_read_timeout(60, 0);
      return c2.Post("/v1/completions",
                     json{{"prompt", "x"}, {"max_tokens", 1000}, {"temperature", 0}, {"stream", stream}}.dump(), "application/json");
    });
  };
  auto streaming = post(true), plain = post(false);
  ASSERT_TRUE(wait_metric(c, "solar_requests_processing", "2"));
  sigterm_exits_0(pid);
  auto p = plain.get();
  ASSERT_TRUE(p);
  ASSERT_EQ(p->status, 200) << p->body;
  json j = json::parse(p->body);
  EXPECT_EQ(j["choices"][0]["finish_reason"], "cancelled");
  EXPECT_LT(j["usage"]["completion_tokens"].get<int>(), 1000);
  EXPECT_EQ(j["choices"][0]["text"].get<std::string>().size(), size_t(j["usage"]["completion_tokens"].get<int>()))
      << "the text generated until then (one ASCII byte a token)";
  auto r = streaming.get();
  ASSERT_TRUE(r);
  EXPECT_NE(r->body.find(R"("finish_reason":"cancelled")"), std::string::npos) << r->body;
  EXPECT_NE(r->body.find("data: [DONE]"), std::string::npos);
}

// --rag: /v1/rag/query answers as `solar rag query --json`; a chat answer is
// grounded exactly as `solar rag ask` grounds it (same prompt, same text for
// the same seed) and lists its sources; nothing relevant: "I don't know"
// without the model.
TEST(ServeRag, RetrievalAndGroundedAnswers) {
  if (!testing::have_embedder()) GTEST_SKIP() << "all-MiniLM-L6-v2 not installed (bash scripts/embed-model.sh)";
  std::string docs, out;
  const std::string db = testing::rag_store("serve_rag",
                                            {{"paris.md", "# Paris\n\nThe Eiffel Tower in Paris is 330 metres tall.\n"},
                                             {"cats.txt", "Cats sleep for most of the day.\n"}},
                                            &docs, &out);
  ASSERT_FALSE(db.empty());

  ServerOptions o = tiny_options(2);
  o.n_ctx = 512;
  o.rag_store = db;
  Running s(o);
  auto c = s.client();
  const std::string q = "How tall is the Eiffel Tower?";
  auto rq = c.Post("/v1/rag/query", json{{"query", q}, {"k", 2}}.dump(), "application/json");
  ASSERT_TRUE(rq);
  ASSERT_EQ(rq->status, 200) << rq->body;
  ASSERT_EQ(testing::run_solar("rag query " + db + " \"" + q + "\" -k 2 --json -t 1 --log-level error", &out), 0) << out;
  EXPECT_EQ(json::parse(rq->body)["hits"], json::parse(out)["hits"]);
  EXPECT_EQ(c.Post("/v1/rag/query", R"({"query":"x","mode":"fuzzy"})", "application/json")->status, 400);

  auto r = c.Post("/v1/chat/completions", json{{"messages", {{{"role", "user"}, {"content", q}}}}, {"max_tokens", 16}, {"temperature", 0.9}, {"seed", 3}}.dump(),
                  "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  json j = json::parse(r->body);
  ASSERT_TRUE(j["sources"].is_array() && !j["sources"].empty()) << r->body;
  EXPECT_EQ(j["sources"][0]["file"], join_path(docs, "paris.md"));
  EXPECT_NE(j["sources"][0]["text"].get<std::string>().find("330 metres"), std::string::npos);
  // The same prompt as rag ask's: rebuilt here from its parts.
  auto lm = engine::open_session(tiny_model());
  rag::Grounding g;
  for (const auto& h : j["sources"]) {
    rag::Hit hit;
    hit.text = h["text"];
    g.sources.push_back(hit);
  }
  EXPECT_EQ(j["usage"]["prompt_tokens"].get<int64_t>(),
            int64_t(rag::grounded_prompt(*lm.tokenizer, chat::ChatTemplate::Solar, {}, q, g, 512, 16).size()));
  ASSERT_EQ(testing::run_solar("rag ask -m " + tiny_model() + " " + db + " \"" + q + "\" -n 16 --temp 0.9 -s 3 -c 512 -t 1 --log-level error", &out), 0)
      << out;
  EXPECT_EQ(out.substr(0, out.find("\n\nSources:\n")), j["choices"][0]["message"]["content"].get<std::string>());

  auto st = c.Post("/v1/chat/completions",
                   json{{"messages", {{{"role", "user"}, {"content", q}}}}, {"max_tokens", 16}, {"temperature", 0.9}, {"seed", 3}, {"stream", true}}.dump(),
                   "application/json");
  ASSERT_TRUE(st);
  size_t fin = st->body.find(R"("finish_reason":")");
  ASSERT_NE(fin, std::string::npos) << st->body;
  size_t line = st->body.rfind("data: ", fin);
  json last = json::parse(st->body.substr(line + 6, st->body.find("\n\n", fin) - line - 6));
  EXPECT_EQ(last["sources"], j["sources"]);
  EXPECT_EQ(st->body.find(R"("sources")"), line + st->body.substr(line).find(R"("sources")")) << "sources in the final chunk only";

  auto none = c.Post("/v1/chat/completions",
                     json{{"messages", {{{"role", "user"}, {"content", "What was the GDP of Mongolia in 1750?"}}}}, {"max_tokens", 8}}.dump(),
                     "application/json");
  ASSERT_TRUE(none);
  json nj = json::parse(none->body);
  EXPECT_EQ(nj["choices"][0]["message"]["content"].get<std::string>().rfind("I don't know: nothing in " + db, 0), 0u) << none->body;
  EXPECT_EQ(nj["sources"], json::array());
  EXPECT_EQ(nj["usage"]["completion_tokens"], 0);
  auto bad = c.Post("/v1/chat/completions",
                    json{{"messages", {{{"role", "user"}, {"content", q}}, {{"role", "assistant"}, {"content", "It"}}}}}.dump(), "application/json");
  EXPECT_EQ(bad->status, 400);
  EXPECT_EQ(json::parse(bad->body)["error"]["param"], "messages");
}

// Reranking by the served model: /v1/rag/query's "rerank" field (else the
// server's --rag-rerank) gives `solar rag query --rerank-model`'s scores and
// order; chat answers rerank their sources by --rag-rerank. The retrieval
// flags are checked as rag's are.
TEST(ServeRag, RerankByTheServedModel) {
  if (!testing::have_embedder()) GTEST_SKIP() << "all-MiniLM-L6-v2 not installed (bash scripts/embed-model.sh)";
  std::string docs, out;
  const std::string db = testing::rag_store("serve_rerank",
                                            {{"paris.md", "# Paris\n\nThe Eiffel Tower in Paris is 330 metres tall.\n"},
                                             {"tower.txt", "A tower is a tall building. The tower of the castle was old.\n"},
                                             {"cats.txt", "Cats sleep for most of the day.\n"}},
                                            &docs, &out);
  ASSERT_FALSE(db.empty());

  ServerOptions o = tiny_options(1);
  o.n_ctx = 512;
  o.rag_store = db;
  o.rag.search.rerank_top = 3;
  o.rag.min_score = 0;
  Running s(o);
  auto c = s.client();
  const std::string q = "How tall is the Eiffel Tower?";
  ASSERT_EQ(testing::run_solar("rag query " + db + " \"" + q + "\" -k 2 --rerank 3 --rerank-model " + tiny_model() +
                                   " --json -t 1 --log-level error",
                               &out),
            0)
      << out;
  const json want = json::parse(out)["hits"];
  ASSERT_EQ(want.size(), 2u);
  for (const json& body : {json{{"query", q}, {"k", 2}, {"rerank", 3}}, json{{"query", q}, {"k", 2}}}) {
    auto r = c.Post("/v1/rag/query", body.dump(), "application/json");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    const json got = json::parse(r->body);
    EXPECT_EQ(got["rerank"]["top"], 3) << body;
    ASSERT_EQ(got["hits"].size(), 2u);
    for (size_t i = 0; i < 2; ++i) {
      EXPECT_EQ(got["hits"][i]["id"], want[i]["id"]) << i;
      EXPECT_NEAR(got["hits"][i]["rerank"].get<double>(), want[i]["rerank"].get<double>(), 1e-6) << i;
    }
  }
  auto plain = c.Post("/v1/rag/query", json{{"query", q}, {"k", 2}, {"rerank", 0}, {"fusion", "rrf"}, {"alpha", 0.5}}.dump(), "application/json");
  ASSERT_TRUE(plain);
  ASSERT_EQ(plain->status, 200) << plain->body;
  EXPECT_FALSE(json::parse(plain->body)["hits"][0].contains("rerank"));
  ASSERT_EQ(testing::run_solar("rag query " + db + " \"" + q + "\" -k 2 --fusion rrf --alpha 0.5 --json -t 1 --log-level error", &out), 0) << out;
  EXPECT_EQ(json::parse(plain->body)["hits"], json::parse(out)["hits"]);

  auto r = c.Post("/v1/chat/completions", json{{"messages", {{{"role", "user"}, {"content", q}}}}, {"max_tokens", 4}}.dump(), "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const json src = json::parse(r->body)["sources"];
  ASSERT_EQ(src.size(), 3u) << r->body;
  for (size_t i = 0; i < src.size(); ++i) ASSERT_TRUE(src[i].contains("rerank")) << r->body;
  EXPECT_GE(src[0]["rerank"].get<double>(), src[1]["rerank"].get<double>());
  EXPECT_GE(src[1]["rerank"].get<double>(), src[2]["rerank"].get<double>());

  EXPECT_EQ(testing::run_solar("serve -m " + tiny_model() + " --rag " + db + " --rag-alpha 3", &out), 2) << out;
  EXPECT_NE(out.find("--rag-alpha"), std::string::npos) << out;
  EXPECT_EQ(testing::run_solar("serve -m " + tiny_model() + " --rag " + db + " --rag-mode fuzzy", &out), 2) << out;
}

TEST(ServeRag, QueryWithoutAStoreIs404) {
  Running s(tiny_options(1));
  auto r = s.client().Post("/v1/rag/query", R"({"query":"x"})", "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
  EXPECT_NE(json::parse(r->body)["error"]["message"].get<std::string>().find("--rag"), std::string::npos);
}

}  // namespace
}  // namespace solar::serve
