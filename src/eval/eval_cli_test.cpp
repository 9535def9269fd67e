// Scorer properties (KV reuse changes nothing, truncation is counted) and
// `solar eval` end to end: outputs, resume after an interruption, bad input.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "core/fs.h"
#include "engine/session.h"
#include "eval/scorer.h"
#include "testing/models.h"
#include "testing/testing.h"
#include "testing/tokenizers.h"

namespace solar::eval {
namespace {

const std::string kTok = std::string(SOLAR_SHARED_DATA) + "/models/stories260K/tok512.bin";

std::string tiny_model(const std::string& name) {
  std::string d = testing::temp_dir(name), out;
  EXPECT_EQ(testing::run_solar("init --preset tiny --outtype f32 --tokenizer " + kTok + " --force -o " + d + "/m", &out), 0)
      << out;
  return d;
}

TEST(Scorer, EncodePairMovesTrailingSpaceAndSplitsTheWhole) {
  if (!path_exists(kTok)) GTEST_SKIP() << kTok << " is absent";
  std::string d = tiny_model("eval_scorer_pair");
  auto s = engine::open_session(d + "/m");
  Scorer sc(s);
  std::vector<int> c, k, c2, k2;
  sc.encode_pair("Once upon a time ", "there", &c, &k);
  sc.encode_pair("Once upon a time", " there", &c2, &k2);
  EXPECT_EQ(c, c2);
  EXPECT_EQ(k, k2);
  EXPECT_EQ(c, sc.encode("Once upon a time"));
  std::vector<int> whole = sc.encode("Once upon a time there");
  whole.erase(whole.begin(), whole.begin() + long(c.size()));
  EXPECT_EQ(k, whole);
  sc.encode_pair("", "Hello", &c, &k);  // empty context: scored after EOS
  EXPECT_EQ(c, std::vector<int>{s.tokenizer->eos_id()});
}

TEST(Scorer, ReusingTheCacheChangesNothing) {
  if (!path_exists(kTok)) GTEST_SKIP() << kTok << " is absent";
  std::string d = tiny_model("eval_scorer_reuse");
  auto s = engine::open_session(d + "/m");
  const char* ctxs[] = {"Once upon a time, there was a", "Once upon a time, there was a little", "Tom and Lily", ""};
  const char* conts[] = {" girl.", " dog who liked to play", " went home", "Hello there"};
  Scorer shared(s);
  double worst = 0;
  for (int rep = 0; rep < 2; ++rep)
    for (auto* c : ctxs)
      for (auto* k : conts) {
        LogLikelihood a = shared.loglikelihood(c, k);
        Scorer fresh(s);
        LogLikelihood b = fresh.loglikelihood(c, k);
        worst = std::max(worst, std::abs(a.logprob - b.logprob));
        EXPECT_EQ(a.greedy, b.greedy);
        EXPECT_EQ(a.tokens, b.tokens);
        EXPECT_LT(a.logprob, 0);
      }
  EXPECT_LT(worst, 1e-4);
  EXPECT_GT(shared.tokens_reused(), 0);
  // Truncation: a context longer than max_length keeps its last tokens, counted.
  Scorer small(s, 16);
  std::string longctx;
  for (int i = 0; i < 20; ++i) longctx += " and then the dog ran";
  LogLikelihood t = small.loglikelihood(longctx, " home");
  EXPECT_EQ(small.truncated(), 1);
  EXPECT_LT(t.logprob, 0);
}

// The KV cache grows to the sequences scored, not to max_position_embeddings
// (32k for Mistral: gigabytes of cache no benchmark item needs).
TEST(Scorer, CacheGrowsToTheLongestSequence) {
  std::string d = testing::temp_dir("eval_scorer_cache");
  testing::write_ascii_tokenizer_bin(d + "/tokenizer.bin");
  testing::write_random_model(d + "/m", testing::small_config(32, 64, 131, false, 2, 8192), 3, d + "/tokenizer.bin");
  auto s = engine::open_session(d + "/m");
  Scorer sc(s);
  EXPECT_EQ(sc.max_length(), 8192);
  double a = sc.loglikelihood("Question: why?", " because").logprob;
  EXPECT_EQ(sc.cache_positions(), 1024);
  sc.loglikelihood(std::string(1500, 'x'), " y");
  EXPECT_EQ(sc.cache_positions(), 2048);
  EXPECT_NEAR(sc.loglikelihood("Question: why?", " because").logprob, a, 1e-5);  // after the regrowth
}

// A batch spanning several tree passes (and one request longer than a pass)
// scores each request as a fresh scorer scoring it alone does.
TEST(Scorer, BatchesEqualSingleRequests) {
  if (!path_exists(kTok)) GTEST_SKIP() << kTok << " is absent";
  std::string d = tiny_model("eval_scorer_batch");
  auto s = engine::open_session(d + "/m");
  std::vector<Scorer::Request> batch;
  std::string shots = "Once upon a time, Tom had a red ball. ";
  for (int i = 0; i < 60; ++i) {
    std::string ctx = shots + "Lily saw " + std::to_string(i) + " cats and said";
    for (const char* c : {" hello", " no, thank you", " yes"}) batch.push_back({ctx, c});
  }
  std::string longctx;
  for (int i = 0; i < 150; ++i) longctx += " the dog ran to the park and";
  batch.push_back({longctx, " home"});
  batch.push_back({"", "Hello"});
  Scorer sc(s);
  auto got = sc.loglikelihood(batch);
  ASSERT_EQ(got.size(), batch.size());
  for (size_t i = 0; i < batch.size(); i += 7) {
    Scorer fresh(s);
    auto want = fresh.loglikelihood(batch[i].context, batch[i].continuation);
    EXPECT_NEAR(got[i].logprob, want.logprob, 1e-4) << i;
    EXPECT_EQ(got[i].greedy, want.greedy) << i;
  }
  auto last = Scorer(s).loglikelihood(longctx, " home");
  EXPECT_NEAR(got[180].logprob, last.logprob, 1e-4);
  // The shared start and each item's context ran once, not once per choice.
  EXPECT_GT(sc.tokens_reused(), 2 * sc.tokens_run());
}

static void write(const std::string& p, const std::string& text) { std::ofstream(p) << text; }

static std::string fixtures(const std::string& d) {
  std::string data = d + "/data";
  make_dirs(data + "/mmlu/val");
  make_dirs(data + "/mmlu/dev");
  std::ofstream arc(data + "/arc_easy.jsonl");
  const char* q[] = {"What do cats like?", "Where is the sun?", "Who sleeps a lot?", "What is green?",
                     "What falls in rain?", "Which one flies?", "What can swim?", "Which one is hot?"};
  for (int i = 0; i < 8; ++i)
    arc << nlohmann::json{{"query", std::string("Question: ") + q[i]},
                          {"choices", {"milk and fish", "the sky", "a dog", "grass"}},
                          {"gold", i % 4}}
               .dump()
        << "\n";
  arc.close();
  write(data + "/mmlu/val/anatomy_val.csv", "Which bone is long?,femur,ear,nose,toe,A\nWhat pumps blood?,lung,heart,skin,hair,B\n");
  write(data + "/mmlu/dev/anatomy_dev.csv",
        "What sees?,eye,arm,leg,toe,A\nWhat hears?,eye,ear,leg,toe,B\nWhat walks?,eye,ear,leg,toe,C\n");
  return data;
}

TEST(EvalCli, WritesResultsResumesAndRefusesBadInput) {
  if (!path_exists(kTok)) GTEST_SKIP() << kTok << " is absent";
  std::string d = tiny_model("eval_cli"), out;
  std::string data = fixtures(d);
  std::string base = "eval -m " + d + "/m --data " + data + " --tasks arc_easy,mmlu_anatomy -o " + d + "/out ";
  ASSERT_EQ(testing::run_solar(base + "--num-fewshot 2", &out), 0) << out;
  EXPECT_NE(out.find("| arc_easy | 2 | none | acc |"), std::string::npos) << out;
  auto res = nlohmann::json::parse(read_file(d + "/out/results.json"));
  EXPECT_EQ(res["n-samples"]["arc_easy"]["effective"], 8);
  EXPECT_TRUE(res["results"]["arc_easy"].contains("acc_norm,none"));
  EXPECT_TRUE(res["results"]["mmlu"].contains("acc,none"));
  EXPECT_EQ(res["solar"]["items_scored"], 10);
  EXPECT_TRUE(path_exists(d + "/out/results.html"));
  std::string samples = read_file(d + "/out/samples_arc_easy.jsonl");
  auto first = nlohmann::json::parse(samples.substr(0, samples.find('\n')));
  EXPECT_EQ(first["loglikelihoods"].size(), 4u);
  EXPECT_EQ(first["shots"].size(), 2u);
  EXPECT_NE(first["context"].get<std::string>().find("\nAnswer:"), std::string::npos);

  // Interrupted: the last three records lost, one torn. The rerun scores only those.
  size_t cut = samples.size();
  for (int i = 0; i < 4; ++i) cut = samples.rfind('\n', cut - 1);
  write(d + "/out/samples_arc_easy.jsonl", samples.substr(0, cut + 1) + "{\"doc_id\": 7, \"metr");
  ASSERT_EQ(testing::run_solar(base + "--num-fewshot 2", &out), 0) << out;
  auto res2 = nlohmann::json::parse(read_file(d + "/out/results.json"));
  EXPECT_EQ(res2["solar"]["items_scored"], 3);
  EXPECT_EQ(res2["results"], res["results"]);
  EXPECT_EQ(read_file(d + "/out/samples_arc_easy.jsonl").size(), samples.size());

  // Other settings in the same folder: refused, then --force starts over.
  EXPECT_EQ(testing::run_solar(base + "--num-fewshot 1", &out), 2);
  EXPECT_NE(out.find("other settings"), std::string::npos) << out;
  ASSERT_EQ(testing::run_solar(base + "--num-fewshot 1 --force", &out), 0) << out;

  // A samples file that is not solar's, or a record missing a metric: named, nothing overwritten.
  const std::string sp = d + "/out/samples_arc_easy.jsonl", good = read_file(sp);
  write(sp, "{\"x\": 1}\n");
  EXPECT_EQ(testing::run_solar(base + "--num-fewshot 1", &out), 1);
  EXPECT_NE(out.find("samples_arc_easy.jsonl:1: doc_id/metrics: not a sample record"), std::string::npos) << out;
  write(sp, "{\"doc_id\": 0, \"metrics\": {\"acc,none\": 1}}\n");
  EXPECT_EQ(testing::run_solar(base + "--num-fewshot 1", &out), 1);
  EXPECT_NE(out.find("metrics.acc_norm,none: missing in a resumed record"), std::string::npos) << out;
  write(sp, good);
  // The paper's rows beside the run, on request.
  ASSERT_EQ(testing::run_solar(base + "--num-fewshot 1 --paper-reference", &out), 0) << out;
  EXPECT_NE(read_file(d + "/out/results.md").find("| SOLAR 10.7B-Instruct (paper) | 74.20 |"), std::string::npos);
  EXPECT_NE(read_file(d + "/out/results.html").find("74.20"), std::string::npos);

  // Bad input: each a clear message and a non-zero exit, nothing scored.
  struct Case {
    std::string args, want;
  } cases[] = {
      {"--tasks arc_hard", "unknown task 'arc_hard'; known: arc_easy, arc_challenge"},
      {"--tasks ,,", "--tasks: no task given"},
      {"--tasks arc_easy --limit 0", "--limit: expected a positive number"},
      {"--tasks arc_easy --limit -3", "--limit"},
      {"--tasks mmlu_anatomy --num-fewshot 4", "holds 3"},
      {"--tasks arc_easy --num-fewshot 8", "less the item itself"},
      {"--tasks mmlu_anatomy --num-fewshot 3 --max-length 24", "use --num-fewshot 0"},
      {"--tasks hellaswag", "--task-data hellaswag=FILE"},
      {"--tasks arc_easy --harness 0.3", "--harness: expected b281b09"},
      {"--tasks arc_easy --task-data arc_easy", "expected TASK=FILE"},
      {"--tasks arc_easy --task-data arc_easy=" + d + "/nope.jsonl", "nope.jsonl"},
  };
  for (auto& c : cases) {
    int rc = testing::run_solar("eval -m " + d + "/m --data " + data + " -o " + d + "/bad " + c.args, &out);
    EXPECT_NE(rc, 0) << c.args;
    EXPECT_NE(out.find(c.want), std::string::npos) << c.args << "\n" << out;
    EXPECT_EQ(out.find("terminate"), std::string::npos) << out;
  }
}

}  // namespace
}  // namespace solar::eval
