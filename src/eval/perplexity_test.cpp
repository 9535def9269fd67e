// Perplexity (eval/perplexity.h) against a direct computation from the
// engine's logits, and `solar perplexity` end to end: outputs, bad input.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/fs.h"
#include "engine/session.h"
#include "eval/perplexity.h"
#include "testing/models.h"
#include "testing/testing.h"
#include "testing/tokenizers.h"

namespace solar::eval {
namespace {

// A random 2-layer model over the ASCII tokenizer (one token a character),
// trained for 256 positions.
std::string tiny_model(const std::string& name) {
  std::string d = testing::temp_dir(name);
  testing::write_ascii_tokenizer_bin(d + "/tokenizer.bin");
  testing::write_random_model(d + "/m", testing::small_config(32, 64, 131, false, 2, 256), 7, d + "/tokenizer.bin");
  return d;
}

std::string some_text(size_t n) {
  const std::string words = "the cat sat on a mat and then it ran to see a dog. ";
  std::string t;
  for (size_t i = 0; t.size() < n; ++i) t += words.substr(i % 7, 20 + i % 11);
  return t.substr(0, n);
}

// −log p of chunk[j+1] for j = n/2 … n-2, from one forward pass over the
// chunk with every position's logits, in double throughout.
std::vector<double> direct_nlls(const engine::Session& s, const std::vector<int>& chunk) {
  const int n = int(chunk.size()), V = s.config().vocab_size;
  engine::Context ctx(s.model, n);
  std::vector<float> logits(size_t(n) * size_t(V));
  ctx.eval(chunk.data(), n, nullptr, logits.data());
  std::vector<double> out;
  for (int j = n / 2; j + 1 < n; ++j) {
    const float* row = logits.data() + size_t(j) * size_t(V);
    double mx = row[0], sum = 0;
    for (int v = 1; v < V; ++v) mx = std::max(mx, double(row[v]));
    for (int v = 0; v < V; ++v) sum += std::exp(double(row[v]) - mx);
    out.push_back(-(double(row[chunk[size_t(j) + 1]]) - mx - std::log(sum)));
  }
  return out;
}

TEST(Perplexity, ChunksMatchADirectComputation) {
  auto s = engine::open_session(tiny_model("ppl_direct") + "/m");
  std::vector<int> tokens = s.tokenizer->encode(some_text(150), true);
  ASSERT_EQ(tokens.size(), 151u);
  PerplexityOptions o;
  o.n_ctx = 32;
  std::vector<int> seen;
  PerplexityResult r = perplexity(s, tokens, o, [&](int done, const PerplexityResult& so_far) {
    seen.push_back(done);
    EXPECT_EQ(so_far.chunks.size(), size_t(done));
  });
  EXPECT_EQ(seen, (std::vector<int>{0, 1, 2, 3, 4}));  // 151 / 32 = 4 whole chunks
  ASSERT_EQ(r.chunks.size(), 4u);
  EXPECT_EQ(r.n_chunks, 4);
  EXPECT_EQ(r.text_tokens, 151);
  std::vector<double> all;
  double sum = 0;
  for (int i = 0; i < 4; ++i) {
    std::vector<int> chunk(tokens.begin() + i * 32, tokens.begin() + (i + 1) * 32);
    chunk[0] = s.tokenizer->bos_id();  // every chunk starts with BOS
    std::vector<double> want = direct_nlls(s, chunk);
    double w = 0;
    for (double x : want) w += x, all.push_back(x);
    EXPECT_EQ(r.chunks[size_t(i)].tokens, 15);  // 32 − 1 − 16
    EXPECT_NEAR(r.chunks[size_t(i)].nll, w, 1e-5 * w) << "chunk " << i;
    sum += w;
    EXPECT_NEAR(r.running[size_t(i)], std::exp(sum / double(all.size())), 1e-5 * r.running[size_t(i)]);
  }
  // The final estimate: exp(mean) ± exp(mean) · standard error of the mean.
  double mean = sum / double(all.size()), var = 0;
  for (double x : all) var += (x - mean) * (x - mean);
  var /= double(all.size());
  EXPECT_EQ(r.scored, 60);
  EXPECT_NEAR(r.ppl, std::exp(mean), 1e-5 * r.ppl);
  EXPECT_NEAR(r.ppl_err, std::exp(mean) * std::sqrt(var / double(all.size() - 1)), 1e-3 * r.ppl_err);
  EXPECT_GT(r.ppl_err, 0);
  EXPECT_EQ(r.positions_run, 4 * 32);

  // Without BOS the chunks run as they are in the text.
  o.add_bos = false;
  o.max_chunks = 2;
  std::vector<int> plain = s.tokenizer->encode(some_text(150), false);
  PerplexityResult nb = perplexity(s, plain, o);
  ASSERT_EQ(nb.chunks.size(), 2u);
  std::vector<double> want = direct_nlls(s, std::vector<int>(plain.begin() + 32, plain.begin() + 64));
  double w = 0;
  for (double x : want) w += x;
  EXPECT_NEAR(nb.chunks[1].nll, w, 1e-5 * w);
}

TEST(Perplexity, BatchSizeChangesNothing) {
  auto s = engine::open_session(tiny_model("ppl_batch") + "/m");
  std::vector<int> tokens = s.tokenizer->encode(some_text(200), true);
  PerplexityOptions o;
  o.n_ctx = 48;
  PerplexityResult whole = perplexity(s, tokens, o);
  for (int b : {1, 5, 24, 25, 47}) {
    o.n_batch = b;
    PerplexityResult r = perplexity(s, tokens, o);
    EXPECT_EQ(r.n_batch, b);
    ASSERT_EQ(r.chunks.size(), whole.chunks.size());
    for (size_t i = 0; i < r.chunks.size(); ++i)
      EXPECT_NEAR(r.chunks[i].nll, whole.chunks[i].nll, 1e-5 * whole.chunks[i].nll) << "batch " << b << " chunk " << i;
  }
}

TEST(Perplexity, RefusesShortTextsAndBadContexts) {
  auto s = engine::open_session(tiny_model("ppl_bad") + "/m");
  std::vector<int> tokens = s.tokenizer->encode(some_text(100), true);  // 101 tokens
  PerplexityOptions o;
  o.n_ctx = 64;
  o.source = "short.txt";
  std::string e = testing::error_of([&] { perplexity(s, tokens, o); });
  EXPECT_NE(e.find("short.txt"), std::string::npos) << e;
  EXPECT_NE(e.find("only 101 tokens"), std::string::npos) << e;
  EXPECT_NE(e.find("at least 128"), std::string::npos) << e;
  o.n_ctx = 300;  // the model has 256 positions
  e = testing::error_of([&] { perplexity(s, tokens, o); });
  EXPECT_NE(e.find("-c/--ctx-size"), std::string::npos) << e;
  EXPECT_NE(e.find("256"), std::string::npos) << e;
  o.n_ctx = 2;
  e = testing::error_of([&] { perplexity(s, tokens, o); });
  EXPECT_NE(e.find("at least 3"), std::string::npos) << e;
  o.n_ctx = 0;  // the model's 256 positions: 512 tokens needed
  e = testing::error_of([&] { perplexity(s, tokens, o); });
  EXPECT_NE(e.find("at least 512"), std::string::npos) << e;
}

TEST(Perplexity, AddsBosAsTheTokenizerConfigSays) {
  model::Checkpoint ck;
  EXPECT_TRUE(adds_bos(ck));  // Llama's default
  ck.tokenizer_config["add_bos_token"] = false;
  EXPECT_FALSE(adds_bos(ck));
  ck.tokenizer_config["add_bos_token"] = true;
  EXPECT_TRUE(adds_bos(ck));
}

TEST(PerplexityCli, PrintsLlamaCppsLinesAndWritesJson) {
  std::string d = tiny_model("ppl_cli"), out;
  std::ofstream(d + "/text.txt") << some_text(300);
  ASSERT_EQ(testing::run_solar("perplexity -m " + d + "/m -f " + d + "/text.txt -c 64 -b 16 -t 1 -q --json " + d +
                                   "/ppl.json",
                               &out),
            0)
      << out;
  EXPECT_NE(out.find("[1]"), std::string::npos) << out;
  EXPECT_NE(out.find(",[4]"), std::string::npos) << out;
  EXPECT_NE(out.find("Final estimate: PPL = "), std::string::npos) << out;
  EXPECT_NE(out.find("tok/s"), std::string::npos) << out;
  auto j = nlohmann::json::parse(read_file(d + "/ppl.json"));
  EXPECT_EQ(j["n_ctx"], 64);
  EXPECT_EQ(j["text_tokens"], 301);
  ASSERT_EQ(j["chunks"].size(), 4u);
  EXPECT_EQ(j["chunks"][0]["tokens"], 31);
  EXPECT_EQ(j["tokens_scored"], 124);
  const double ppl = j["final"]["ppl"];
  char want[64];
  std::snprintf(want, sizeof want, "PPL = %.4f", ppl);
  EXPECT_NE(out.find(want), std::string::npos) << out;

  // The same model as a GGUF (its add_bos_token read back) scores the same.
  ASSERT_EQ(testing::run_solar("convert -m " + d + "/m -o " + d + "/m.gguf --outtype f32", &out), 0) << out;
  ASSERT_EQ(testing::run_solar("perplexity -m " + d + "/m.gguf -f " + d + "/text.txt -c 64 --chunks 2 -q -o " + d +
                                   "/g.json",
                               &out),
            0)
      << out;
  auto g = nlohmann::json::parse(read_file(d + "/g.json"));
  ASSERT_EQ(g["chunks"].size(), 2u);
  EXPECT_EQ(g["add_bos"], true);
  EXPECT_NEAR(double(g["chunks"][1]["nll"]), double(j["chunks"][1]["nll"]), 1e-3);

  // A JSON log line carries the result.
  ASSERT_EQ(testing::run_solar("perplexity -m " + d + "/m -f " + d + "/text.txt -c 64 --chunks 1 --log-format json", &out),
            0)
      << out;
  EXPECT_NE(out.find("\"tokens_per_second\""), std::string::npos) << out;
  EXPECT_NE(out.find("\"ppl\""), std::string::npos) << out;
}

TEST(PerplexityCli, BadInputFailsClearly) {
  std::string d = tiny_model("ppl_cli_bad"), out;
  std::string m = " -m " + d + "/m";
  EXPECT_EQ(testing::run_solar("perplexity" + m + " -f " + d + "/nope.txt", &out), 1) << out;
  EXPECT_NE(out.find("nope.txt"), std::string::npos) << out;
  std::ofstream(d + "/empty.txt").close();
  EXPECT_EQ(testing::run_solar("perplexity" + m + " -f " + d + "/empty.txt", &out), 1) << out;
  EXPECT_NE(out.find("empty"), std::string::npos) << out;
  std::ofstream(d + "/short.txt") << some_text(100);
  EXPECT_EQ(testing::run_solar("perplexity" + m + " -f " + d + "/short.txt -c 64", &out), 1) << out;
  EXPECT_NE(out.find("needs at least 128"), std::string::npos) << out;
  EXPECT_EQ(testing::run_solar("perplexity" + m + " -f " + d + "/short.txt -c 4096", &out), 2) << out;
  EXPECT_NE(out.find("-c/--ctx-size"), std::string::npos) << out;
  EXPECT_EQ(testing::run_solar("perplexity" + m, &out), 2) << out;
  EXPECT_NE(out.find("-f/--file"), std::string::npos) << out;
  EXPECT_EQ(testing::run_solar("perplexity" + m + " -f " + d + "/short.txt -b 0", &out), 2) << out;
  EXPECT_EQ(testing::run_solar("perplexity" + m + " -f " + d + "/short.txt --chunks 0", &out), 2) << out;
}

}  // namespace
}  // namespace solar::eval
