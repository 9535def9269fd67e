// engine/session.h: a model opened with its tokenizer and the checks, shared
// by threads; the tokenizer a model path implies.
#include "engine/session.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <thread>

#include "core/error.h"
#include "core/fs.h"
#include "core/log.h"
#include "testing/testing.h"

namespace solar::engine {
namespace {

const std::string kStories = std::string(SOLAR_SHARED_DATA) + "/models/stories260K";
const std::string kModel = kStories + "/stories260K.bin", kTok = kStories + "/tok512.bin";
const std::string kLlamaTok = std::string(SOLAR_SHARED_DATA) + "/tokenizers/llama2.model";

using testing::error_of;

#define NEED_SHARED_DATA() \
  if (!path_exists(kModel) || !path_exists(kLlamaTok)) GTEST_SKIP() << "shared data absent: " << SOLAR_SHARED_DATA

TEST(Session, OpensModelAndTokenizerWithTheChecks) {
  NEED_SHARED_DATA();
  SessionOptions o;
  o.tokenizer = kTok;
  Session s = open_session(kModel, o);
  ASSERT_TRUE(s.checkpoint && s.tokenizer && s.model);
  EXPECT_EQ(s.tokenizer->vocab_size(), s.config().vocab_size);
  EXPECT_EQ(s.tokenizer_path, kTok);
  EXPECT_EQ(&s.model->checkpoint(), s.checkpoint.get());
  EXPECT_EQ(s.context_size(0), 0);
  EXPECT_EQ(s.new_context(16).n_ctx(), 16);
  EXPECT_EQ(s.new_context(0).n_ctx(), s.config().max_position_embeddings);

  // Out-of-range context sizes name the caller's flag and the model.
  std::string e = error_of([&] { s.context_size(100000, "-c/--ctx-size"); });
  EXPECT_NE(e.find("-c/--ctx-size: expected 0 (the model's full context) to 512"), std::string::npos) << e;
  EXPECT_NE(e.find(kModel), std::string::npos) << e;
  EXPECT_THROW(s.context_size(-1), Error);

  // No tokenizer beside the model (stories260K.bin's folder has tok512.bin,
  // not tokenizer.bin): the model and the field are named.
  e = error_of([&] { open_session(kModel); });
  EXPECT_NE(e.find(kModel + ": tokenizer: no tokenizer"), std::string::npos) << e;
  // ...unless no tokenizer is wanted.
  SessionOptions ids_only;
  ids_only.with_tokenizer = false;
  Session s2 = open_session(kModel, ids_only);
  EXPECT_FALSE(s2.tokenizer);
  EXPECT_TRUE(s2.model);

  // A tokenizer of another vocabulary: the tokenizer file and vocab_size.
  o.tokenizer = kLlamaTok;
  e = error_of([&] { open_session(kModel, o); });
  EXPECT_NE(e.find(kLlamaTok + ": vocab_size: tokenizer has 32000 tokens but the model's vocab_size is 512"),
            std::string::npos)
      << e;
  o.tokenizer = kStories + "/absent.model";
  e = error_of([&] { open_session(kModel, o); });
  EXPECT_NE(e.find("absent.model: tokenizer not found"), std::string::npos) << e;
  EXPECT_THROW(open_session(""), UsageError);
}

TEST(Session, ModelTokenizerHasTheSameChecks) {
  NEED_SHARED_DATA();
  ModelTokenizer t = open_model_tokenizer(kModel, kTok);
  ASSERT_TRUE(t.tokenizer);
  EXPECT_EQ(t.path, kTok);
  EXPECT_EQ(t.vocab_size, 512);
  EXPECT_EQ(t.tokenizer->vocab_size(), 512);
  EXPECT_NE(error_of([&] { open_model_tokenizer(kModel); }).find(": tokenizer: "), std::string::npos);
  EXPECT_NE(error_of([&] { open_model_tokenizer(kModel, kLlamaTok); }).find(kLlamaTok + ": vocab_size: "),
            std::string::npos);
}

// Opening a model speaks through the log sink, never to stderr directly.
TEST(Session, MessagesGoToTheLogSink) {
  NEED_SHARED_DATA();
  testing::SinkGuard g;
  std::vector<nlohmann::json> got;
  set_log_sink([&](const LogRecord& r) {
    nlohmann::json j = r.fields;
    j["source"] = r.source;
    j["message"] = r.message;
    got.push_back(j);
  });
  set_log_level(LogLevel::Debug);
  SessionOptions o;
  o.tokenizer = kTok;
  open_session(kModel, o);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0]["source"], "session");
  EXPECT_EQ(got[0]["model"], kModel);
  EXPECT_EQ(got[0]["tokenizer"], kTok);
  EXPECT_EQ(got[0]["vocab_size"], 512);
  set_log_level(LogLevel::Info);
  open_session(kModel, o);
  EXPECT_EQ(got.size(), 1u);
}

// One Session shared by threads: each thread tokenizes and runs its own
// Context; the results equal a sequential run's. The SentencePiece tokenizer
// is shared the same way.
TEST(Session, SharedByThreads) {
  NEED_SHARED_DATA();
  SessionOptions o;
  o.tokenizer = kTok;
  Session s = open_session(kModel, o);
  const std::vector<std::string> prompts{"Once upon a time", "The cat sat", "Lily and Tom went to", "A big dog"};
  const int V = s.config().vocab_size;
  auto run = [&](const std::string& p) {
    Context ctx = s.new_context(64);
    std::vector<int> ids = s.tokenizer->encode(p, true);
    std::vector<float> l(static_cast<size_t>(V));
    ctx.eval(ids.data(), int(ids.size()), l.data());
    for (int i = 0; i < 8; ++i) {
      int next = int(std::max_element(l.begin(), l.end()) - l.begin());
      ids.push_back(next);
      ctx.eval(&next, 1, l.data());
    }
    return s.tokenizer->decode(ids);
  };
  std::vector<std::string> seq, par(prompts.size());
  for (auto& p : prompts) seq.push_back(run(p));
  std::vector<std::thread> th;
  for (size_t i = 0; i < prompts.size(); ++i) th.emplace_back([&, i] { par[i] = run(prompts[i]); });
  for (auto& t : th) t.join();
  EXPECT_EQ(par, seq);

  // The SentencePiece tokenizer's const methods from several threads at once.
  std::shared_ptr<const tokenizer::Tokenizer> llama = tokenizer::load_tokenizer(kLlamaTok);
  const std::string text = "Hello, world! Ünïcödé text with numbers 12345 and\nnew lines.";
  const std::vector<int> want = llama->encode(text, true);
  const std::string back = llama->decode(want);
  std::vector<int> ok(4, 0);
  th.clear();
  for (int t = 0; t < 4; ++t)
    th.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i)
        if (llama->encode(text, true) == want && llama->decode(want) == back) ++ok[size_t(t)];
    });
  for (auto& t : th) t.join();
  EXPECT_EQ(ok, std::vector<int>(4, 200));
}

}  // namespace
}  // namespace solar::engine
