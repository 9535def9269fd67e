// solar serve: request parsing (every bad body a 400 naming the field), the
// HTTP endpoints of an in-process server on an ephemeral port, continuous
// batching against generate() run alone, and the CLI's SIGTERM exit.
#include "serve/server.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <future>
#include <nlohmann/json.hpp>
#include <thread>

#include "engine/session.h"
#include "generate/generate.h"
#include "serve/request.h"
#include "serve/scheduler.h"
#include "testing/models.h"
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

// A tiny random F32 model (2 layers) with the ASCII tokenizer (131 ids),
// written once. F32: BF16 weights would round a batch's activations to BF16
// in oneDNN's GEMM on CPUs with AVX512-BF16, far from the GEMV's f32 sums.
const std::string& tiny_model() {
  static std::string dir = [] {
    std::string d = testing::temp_dir("serve_model");
    testing::write_ascii_tokenizer_bin(d + "/tokenizer.bin");
    std::string log;
    if (testing::run_solar("init --preset tiny --layers 2 --outtype f32 --tokenizer " + d + "/tokenizer.bin -o " + d + "/m", &log) != 0)
      ADD_FAILURE() << log;
    return d + "/m";
  }();
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
TEST(ServeBatch, SixteenAtOnceEqualEachAlone) {
  auto lm = engine::open_session(tiny_model());
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

// A conversation's next turn reuses its cached prefix; a cancelled job frees its slot.
TEST(ServeBatch, PrefixReuseAndCancel) {
  auto lm = engine::open_session(tiny_model());
  Scheduler sched(lm, 1, 128, 8, 1);
  auto run = [&](const std::string& p, int n, bool cancel = false) {
    auto j = std::make_shared<Job>();
    j->prompt = lm.tokenizer->encode(p, true);
    j->opt.n_predict = n;
    j->opt.sampler.temp = 0;
    sched.submit(j);
    std::string text, piece;
    if (cancel) j->cancel = true;
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

// The CLI: prints its URL, answers, and exits 0 on SIGTERM mid-stream.
TEST(ServeCli, SigtermEndsCleanly) {
  int out[2];
  ASSERT_EQ(pipe(out), 0);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(out[1], 1);
    close(out[0]);
    execl(SOLAR_BIN, SOLAR_BIN, "serve", "-m", tiny_model().c_str(), "--port", "0", "-c", "128", "-t", "1",
          "--log-level", "warn", (char*)nullptr);
    _exit(127);
  }
  close(out[1]);
  std::string url;
  char ch;
  while (read(out[0], &ch, 1) == 1 && ch != '\n') url += ch;
  close(out[0]);
  ASSERT_EQ(url.rfind("http://127.0.0.1:", 0), 0u) << url;
  httplib::Client c(url);
  for (int i = 0; i < 100 && !(c.Get("/health") && c.Get("/health")->status == 200); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  auto streaming = std::async(std::launch::async, [&] {
    httplib::Client c2(url);
    return c2.Post("/v1/completions", R"({"prompt":"x","max_tokens":64,"stream":true,"temperature":0})", "application/json");
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  kill(pid, SIGTERM);
  int st = 0;
  waitpid(pid, &st, 0);
  EXPECT_TRUE(WIFEXITED(st)) << st;
  EXPECT_EQ(WEXITSTATUS(st), 0);
  auto r = streaming.get();
  if (r) EXPECT_NE(r->body.find("[DONE]"), std::string::npos) << r->body;
}

}  // namespace
}  // namespace solar::serve
