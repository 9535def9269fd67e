// `solar rag` end to end: index a folder, query it, ask a (tiny) model, and the errors.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>

#include "core/error.h"
#include "core/fs.h"
#include "engine/session.h"
#include "rag/rerank.h"
#include "testing/models.h"
#include "testing/rag.h"
#include "testing/testing.h"

namespace solar::rag {
namespace {

const std::string kStories = std::string(SOLAR_SHARED_DATA) + "/models/stories260K";

using testing::have_embedder;

TEST(RagCli, IndexQueryAskAndErrors) {
  if (!have_embedder()) GTEST_SKIP() << "all-MiniLM-L6-v2 not installed (bash scripts/embed-model.sh)";
  std::string docs, out;
  const std::string db = testing::rag_store("rag_cli",
                                       {{"paris.md", "# Paris\n\nThe Eiffel Tower in Paris is 330 metres tall.\n"},
                                        {"cats.txt", "Cats sleep for most of the day.\n"},
                                        {"empty.txt", ""}},
                                       &docs, &out);
  EXPECT_NE(out.find("3 files: 2 indexed (2 chunks), 0 unchanged, 0 removed, 1 skipped"), std::string::npos) << out;
  EXPECT_NE(out.find("empty.txt: content: empty file"), std::string::npos) << out;
  ASSERT_EQ(testing::run_solar("rag query " + db + " \"how tall is the eiffel tower\" -k 1 -t 1", &out), 0) << out;
  EXPECT_NE(out.find("[1] "), std::string::npos);
  EXPECT_NE(out.find("paris.md § Paris"), std::string::npos) << out;
  ASSERT_EQ(testing::run_solar("rag query " + db + " eiffel --mode bm25 --json", &out), 0) << out;
  EXPECT_NE(out.find("\"heading\":\"Paris\""), std::string::npos) << out;

  EXPECT_EQ(testing::run_solar("rag query " + db + " x --mode fuzzy", &out), 2) << out;
  EXPECT_EQ(testing::run_solar("rag frobnicate", &out), 2) << out;
  EXPECT_EQ(testing::run_solar("rag query " + join_path(parent_dir(db), "none.db") + " x", &out), 1) << out;
  EXPECT_NE(out.find("not found"), std::string::npos) << out;

  if (!path_exists(kStories + "/tok512.bin")) GTEST_SKIP() << "shared data missing: " << kStories;
  std::string m = "-m " + kStories + "/stories260K.bin --tokenizer " + kStories + "/tok512.bin -n 8 -t 1 ";
  ASSERT_EQ(testing::run_solar("rag ask " + m + db + " \"What is the GDP of Mongolia in 1750?\"", &out), 0) << out;
  EXPECT_NE(out.find("I don't know"), std::string::npos) << out;
  ASSERT_EQ(testing::run_solar("rag ask " + m + db + " \"How tall is the Eiffel Tower?\"", &out), 0) << out;
  EXPECT_NE(out.find("Sources:\n[1] " + join_path(docs, "paris.md") + " § Paris"), std::string::npos) << out;
}

// Before: when every input was skipped (unsupported, empty) index exited 0
// and left an empty store behind.
TEST(RagCli, NothingIndexedIsAnErrorAndLeavesNoStore) {
  if (!have_embedder()) GTEST_SKIP() << "all-MiniLM-L6-v2 not installed (bash scripts/embed-model.sh)";
  const std::string d = testing::temp_dir("rag_cli_none"), docs = join_path(d, "docs"), db = join_path(d, "s.db");
  make_dirs(docs);
  write_file_atomic(join_path(docs, "empty.txt"), "");
  write_file_atomic(join_path(docs, "blank.md"), "");
  write_file_atomic(join_path(docs, "image.png"), std::string("\x89PNG\r\n\x1a\n\xff\xfe", 10));
  std::string out;
  EXPECT_EQ(testing::run_solar("rag index -q -t 1 -o " + db + " " + docs, &out), 1) << out;
  EXPECT_NE(out.find(db + ": no document could be indexed: all 3 files were skipped (first: " + join_path(docs, "blank.md") +
                     ": content: empty file); no store written"),
            std::string::npos)
      << out;
  EXPECT_FALSE(path_exists(db));
  EXPECT_FALSE(path_exists(db + "-wal"));
  const std::string empty_dir = join_path(d, "none");
  make_dirs(empty_dir);
  EXPECT_EQ(testing::run_solar("rag index -q -t 1 -o " + db + " " + empty_dir, &out), 1) << out;
  EXPECT_NE(out.find("no document could be indexed: found no file in 1 input path(s)"), std::string::npos) << out;
  EXPECT_FALSE(path_exists(db));

  // An existing store is kept as it is; unchanged files are no failure.
  write_file_atomic(join_path(docs, "cats.txt"), "Cats sleep for most of the day.\n");
  ASSERT_EQ(testing::run_solar("rag index -q -t 1 -o " + db + " " + join_path(docs, "cats.txt"), &out), 0) << out;
  EXPECT_EQ(testing::run_solar("rag index -q -t 1 -o " + db + " " + join_path(docs, "empty.txt"), &out), 1) << out;
  EXPECT_NE(out.find("the store is kept"), std::string::npos) << out;
  ASSERT_EQ(testing::run_solar("rag index -q -t 1 -o " + db + " " + join_path(docs, "cats.txt"), &out), 0) << out;
  EXPECT_NE(out.find("1 unchanged"), std::string::npos) << out;
  ASSERT_EQ(testing::run_solar("rag query " + db + " cats --mode bm25", &out), 0) << out;
  EXPECT_NE(out.find("Cats sleep"), std::string::npos) << out;
}

// --rerank-model on query, --rerank on ask, and the retrieval flags both
// share: the fused top N rescored by the LLM (the scores LlmReranker gives
// in-process), listed by them, the rest after in fused order.
TEST(RagCli, RerankAndRetrievalFlags) {
  if (!have_embedder()) GTEST_SKIP() << "all-MiniLM-L6-v2 not installed (bash scripts/embed-model.sh)";
  if (!path_exists(kStories + "/tok512.bin")) GTEST_SKIP() << "shared data missing: " << kStories;
  std::string docs, out;
  const std::string db = testing::rag_store("rag_cli_rerank",
                                       {{"paris.md", "# Paris\n\nThe Eiffel Tower in Paris is 330 metres tall.\n"},
                                        {"cats.txt", "Cats sleep for most of the day.\n"},
                                        {"story.txt", "The cat slept on the warm mat by the door.\n\nTom ate an apple in the park.\n"}},
                                       &docs, &out);
  const std::string q = "\"Where did the cat sleep?\" ", lm = kStories + "/stories260K.bin", tok = kStories + "/tok512.bin";
  const std::string rr = "--rerank-model " + lm + " --rerank-tokenizer " + tok + " ";

  ASSERT_EQ(testing::run_solar("rag query " + db + " " + q + "-k 3 --json -t 1 --log-level error", &out), 0) << out;
  const nlohmann::json fused = nlohmann::json::parse(out)["hits"];
  ASSERT_EQ(testing::run_solar("rag query " + db + " " + q + rr + "--rerank 2 -k 3 --json -t 1 --log-level error", &out), 0) << out;
  const nlohmann::json j = nlohmann::json::parse(out);
  EXPECT_EQ(j["rerank"]["top"], 2);
  const nlohmann::json& h = j["hits"];
  ASSERT_EQ(h.size(), 3u) << out;
  ASSERT_TRUE(h[0].contains("rerank") && h[1].contains("rerank")) << out;
  EXPECT_FALSE(h[2].contains("rerank")) << "past --rerank: not rescored";
  EXPECT_GE(h[0]["rerank"].get<double>(), h[1]["rerank"].get<double>());
  EXPECT_EQ(h[2]["id"], fused[2]["id"]);
  EXPECT_EQ(std::set<int64_t>({h[0]["id"].get<int64_t>(), h[1]["id"].get<int64_t>()}),
            std::set<int64_t>({fused[0]["id"].get<int64_t>(), fused[1]["id"].get<int64_t>()}));
  EXPECT_EQ(h[0]["score"], fused[h[0]["id"] == fused[0]["id"] ? 0 : 1]["score"]) << "the fused score is kept";
  engine::SessionOptions so;
  so.tokenizer = tok;
  LlmReranker reranker(engine::open_session(lm, so));
  std::vector<std::string> passages;
  for (int i = 0; i < 2; ++i) {
    Hit hit;
    hit.heading = h[i]["heading"];
    hit.text = h[i]["text"];
    passages.push_back(passage_text(hit));
  }
  const std::vector<double> want = reranker("Where did the cat sleep?", passages);
  EXPECT_NEAR(h[0]["rerank"].get<double>(), want[0], 1e-6);
  EXPECT_NEAR(h[1]["rerank"].get<double>(), want[1], 1e-6);

  ASSERT_EQ(testing::run_solar("rag query " + db + " " + q + rr + "-k 1 -t 1 --mode bm25 --log-level error", &out), 0) << out;
  EXPECT_NE(out.find("[1] "), std::string::npos) << out;
  EXPECT_NE(out.find(" (rerank "), std::string::npos) << out;
  EXPECT_EQ(testing::run_solar("rag query " + db + " x --rerank 3", &out), 2) << out;
  EXPECT_NE(out.find("--rerank-model"), std::string::npos) << out;
  EXPECT_EQ(testing::run_solar("rag query " + db + " x --alpha 2", &out), 2) << out;

  const std::string m = "-m " + lm + " --tokenizer " + tok + " -n 4 -t 1 --log-level error ";
  ASSERT_EQ(testing::run_solar("rag ask " + m + db + " " + q + "--rerank 3 -k 2 --fusion rrf --alpha 0.6", &out), 0) << out;
  size_t src = out.find("\n\nSources:\n[1] ");
  ASSERT_NE(src, std::string::npos) << out;
  EXPECT_NE(out.find(" (rerank ", src), std::string::npos) << out;
  EXPECT_EQ(out.find("[3] ", src), std::string::npos) << "-k 2 after reranking 3: " << out;
  EXPECT_EQ(testing::run_solar("rag ask " + m + db + " " + q + "--fusion max", &out), 2) << out;
  EXPECT_NE(out.find("--fusion"), std::string::npos) << out;
  EXPECT_EQ(testing::run_solar("rag ask " + m + db + " " + q + "--rag-mode bm25", &out), 2) << "serve's spelling: " << out;
}

}  // namespace
}  // namespace solar::rag
