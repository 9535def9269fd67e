// LLM reranking: the reordering with an injected scorer (order, ties, bounds,
// bad scorers), search() with a reranker, and LlmReranker's Yes/No score
// against the same log-probabilities computed token by token with eval().
#include <gtest/gtest.h>

#include <cmath>

#include "core/error.h"
#include "core/fs.h"
#include "engine/session.h"
#include "rag/rag.h"
#include "rag/rerank.h"
#include "testing/testing.h"

using namespace solar;
using namespace solar::rag;

namespace {

std::vector<Hit> hits_of(const std::vector<std::string>& texts) {
  std::vector<Hit> hs;
  for (size_t i = 0; i < texts.size(); ++i) {
    Hit h;
    h.id = int64_t(i + 1);
    h.score = 1.0 - 0.1 * double(i);
    h.text = texts[i];
    hs.push_back(h);
  }
  return hs;
}
std::vector<int64_t> ids(const std::vector<Hit>& hs) {
  std::vector<int64_t> v;
  for (const Hit& h : hs) v.push_back(h.id);
  return v;
}
// Scores each passage by the number its text names ("p3" scores 3); counts calls.
struct ByName {
  int calls = 0;
  size_t last_n = 0;
  RelevanceFn fn() {
    return [this](const std::string&, const std::vector<std::string>& ps) {
      ++calls;
      last_n = ps.size();
      std::vector<double> s;
      for (const std::string& p : ps) s.push_back(std::stod(p.substr(p.rfind('p') + 1)));
      return s;
    };
  }
};

const std::string kStories = std::string(SOLAR_SHARED_DATA) + "/models/stories260K";

}  // namespace

TEST(RagRerank, OrdersByScoreKeepsTiesAndTheRest) {
  ByName by;
  auto hs = hits_of({"p1", "p5", "p2", "p5", "p9"});
  rerank(hs, "q", 4, by.fn());
  EXPECT_EQ(by.last_n, 4u);
  // 5 and 5 tie: ids 2 then 4, as retrieved; id 5 (p9) was past the top 4 and stays last.
  EXPECT_EQ(ids(hs), (std::vector<int64_t>{2, 4, 3, 1, 5}));
  EXPECT_DOUBLE_EQ(*hs[0].rerank, 5);
  EXPECT_DOUBLE_EQ(*hs[3].rerank, 1);
  EXPECT_FALSE(hs[4].rerank.has_value());
  EXPECT_DOUBLE_EQ(hs[0].score, 0.9);  // the retrieval score stays
  EXPECT_DOUBLE_EQ(hs[1].score, 0.7);

  auto all = hits_of({"p3", "p1", "p2"});
  rerank(all, "q", 50, by.fn());  // more asked than there are
  EXPECT_EQ(by.last_n, 3u);
  EXPECT_EQ(ids(all), (std::vector<int64_t>{1, 3, 2}));

  std::vector<Hit> none;
  const int before = by.calls;
  rerank(none, "q", 10, by.fn());
  auto untouched = hits_of({"p1", "p2"});
  rerank(untouched, "q", 0, by.fn());
  EXPECT_EQ(by.calls, before) << "no candidates or top 0: the scorer is not called";
  EXPECT_EQ(ids(untouched), (std::vector<int64_t>{1, 2}));
  EXPECT_FALSE(untouched[0].rerank.has_value());

  auto same = hits_of({"a", "b", "c"});
  rerank(same, "q", 3, [](const std::string&, const std::vector<std::string>& p) { return std::vector<double>(p.size(), -0.5); });
  EXPECT_EQ(ids(same), (std::vector<int64_t>{1, 2, 3})) << "a scorer that cannot tell them apart changes nothing";
}

TEST(RagRerank, RefusesAScorerThatMiscounts) {
  auto hs = hits_of({"a", "b"});
  EXPECT_THROW(rerank(hs, "q", 2, [](const std::string&, const std::vector<std::string>&) { return std::vector<double>{1}; }), Error);
  EXPECT_THROW(rerank(hs, "q", 2, [](const std::string&, const std::vector<std::string>&) { return std::vector<double>{1, std::nan("")}; }),
               Error);
  Hit h;
  h.text = "body";
  EXPECT_EQ(passage_text(h), "body");
  h.heading = "A > B";
  EXPECT_EQ(passage_text(h), "A > B\nbody");
}

// search(): max(k, top) candidates retrieved, the first `top` reranked, the best k kept.
TEST(RagRerank, SearchRerankThenCut) {
  std::string d = solar::testing::temp_dir("rag_rerank"), db = join_path(d, "s.db");
  {
    auto s = Store::open(db, true, "toy", 2);
    s->put_file("/a", "h", 1,
                {Chunk{"pears p1", "", 0, 0, 8}, Chunk{"pears pears p2", "", 0, 9, 20}, Chunk{"pears pears pears p3", "", 0, 21, 40}},
                {1, 0, 1, 0, 1, 0});
  }
  Retriever r(db, "", false);
  SearchOptions o;
  o.mode = "bm25";
  const std::vector<Hit> plain = r.search("pears", 3, o);
  ASSERT_EQ(plain.size(), 3u);
  ByName by;
  o.rerank_top = 3;
  const std::vector<Hit> one = r.search("pears", 1, o, nullptr, by.fn());
  EXPECT_EQ(by.last_n, 3u) << "three candidates for one hit";
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0].text, "pears pears pears p3");
  EXPECT_DOUBLE_EQ(*one[0].rerank, 3);
  EXPECT_EQ(r.search("pears", 3, o).size(), 3u) << "without a scorer, rerank_top changes nothing";
  EXPECT_FALSE(r.search("pears", 3, o)[0].rerank.has_value());
}

// The score is log P(" Yes") - log P(" No") after the prompt: recomputed here
// with plain eval() over each whole sequence, one at a time; batching (shared
// prefix, token tree) must not change it beyond rounding. Long passages are cut.
TEST(RagRerank, LlmScoreIsYesMinusNoLogProb) {
  if (!path_exists(kStories + "/tok512.bin")) GTEST_SKIP() << "shared data missing: " << kStories;
  engine::SessionOptions so;
  so.tokenizer = kStories + "/tok512.bin";
  engine::Session lm = engine::open_session(kStories + "/stories260K.bin", so);
  LlmReranker rr(lm, 64);
  const std::string q = "Where did the cat sleep?";
  const std::vector<std::string> ps = {"The cat slept on the warm mat by the door.", "Tom ate an apple.", "Lily had a red ball."};
  const std::vector<double> s = rr(q, ps);
  ASSERT_EQ(s.size(), 3u);
  const auto& tok = *lm.tokenizer;
  const int V = lm.config().vocab_size;
  auto logprob = [&](const std::string& ctx, const std::string& cont) {
    std::vector<int> c = tok.encode(ctx, true), whole = tok.encode(ctx + cont, true);
    engine::Context cx = lm.new_context(0);
    std::vector<float> logits(whole.size() * size_t(V));
    cx.eval(whole.data(), int(whole.size()) - 1, nullptr, logits.data());
    double lp = 0;
    for (size_t i = c.size(); i < whole.size(); ++i) {
      const float* row = logits.data() + (i - 1) * size_t(V);
      double mx = row[0], z = 0;
      for (int v = 1; v < V; ++v) mx = std::max(mx, double(row[v]));
      for (int v = 0; v < V; ++v) z += std::exp(double(row[v]) - mx);
      lp += double(row[whole[i]]) - mx - std::log(z);
    }
    return lp;
  };
  for (size_t i = 0; i < ps.size(); ++i) {
    const std::string p = rr.prompt(q, ps[i]);
    EXPECT_EQ(p, "Passage: " + ps[i] + "\nQuestion: " + q + "\nIs the passage relevant to the question? Answer:");
    EXPECT_NEAR(s[i], logprob(p, " Yes") - logprob(p, " No"), 1e-3) << i;
  }
  EXPECT_NE(s[0], s[1]);
  EXPECT_EQ(rr(q, ps), s) << "deterministic";
  EXPECT_NEAR(rr(q, {ps[1]})[0], s[1], 1e-4) << "one at a time as in a batch";
  EXPECT_EQ(rr.passages_cut(), 0);

  std::string longp;
  for (int i = 0; i < 60; ++i) longp += "The dog ran to the park. ";
  bool cut = false;
  const std::string lp = rr.prompt(q, longp, &cut);
  EXPECT_TRUE(cut);
  EXPECT_LT(lp.size(), longp.size());
  EXPECT_EQ(lp.rfind("Passage: The dog ran", 0), 0u) << lp;
  rr(q, {longp});
  EXPECT_EQ(rr.passages_cut(), 1);
}
