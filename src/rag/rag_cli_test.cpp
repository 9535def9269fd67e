// `solar rag` end to end: index a folder, query it, ask a (tiny) model, and the errors.
#include <gtest/gtest.h>

#include "core/error.h"
#include "core/fs.h"
#include "embed/embed.h"
#include "testing/models.h"
#include "testing/testing.h"

namespace solar::rag {
namespace {

const std::string kStories = std::string(SOLAR_SHARED_DATA) + "/models/stories260K";

TEST(RagCli, IndexQueryAskAndErrors) {
  try {
    embed::find_model();
  } catch (const Error& e) {
    GTEST_SKIP() << "all-MiniLM-L6-v2 not installed (bash scripts/embed-model.sh)";
  }
  std::string d = testing::temp_dir("rag_cli"), docs = join_path(d, "docs"), db = join_path(d, "s.db"), out;
  make_dirs(docs);
  write_file_atomic(join_path(docs, "paris.md"), "# Paris\n\nThe Eiffel Tower in Paris is 330 metres tall.\n");
  write_file_atomic(join_path(docs, "cats.txt"), "Cats sleep for most of the day.\n");
  write_file_atomic(join_path(docs, "empty.txt"), "");
  ASSERT_EQ(testing::run_solar("rag index -q -t 1 -o " + db + " " + docs, &out), 0) << out;
  EXPECT_NE(out.find("3 files: 2 indexed (2 chunks), 0 unchanged, 0 removed, 1 skipped"), std::string::npos) << out;
  EXPECT_NE(out.find("empty.txt: content: empty file"), std::string::npos) << out;
  ASSERT_EQ(testing::run_solar("rag query " + db + " \"how tall is the eiffel tower\" -k 1 -t 1", &out), 0) << out;
  EXPECT_NE(out.find("[1] "), std::string::npos);
  EXPECT_NE(out.find("paris.md § Paris"), std::string::npos) << out;
  ASSERT_EQ(testing::run_solar("rag query " + db + " eiffel --mode bm25 --json", &out), 0) << out;
  EXPECT_NE(out.find("\"heading\":\"Paris\""), std::string::npos) << out;

  EXPECT_EQ(testing::run_solar("rag query " + db + " x --mode fuzzy", &out), 2) << out;
  EXPECT_EQ(testing::run_solar("rag frobnicate", &out), 2) << out;
  EXPECT_EQ(testing::run_solar("rag query " + join_path(d, "none.db") + " x", &out), 1) << out;
  EXPECT_NE(out.find("not found"), std::string::npos) << out;

  if (!path_exists(kStories + "/tok512.bin")) GTEST_SKIP() << "shared data missing: " << kStories;
  std::string m = "-m " + kStories + "/stories260K.bin --tokenizer " + kStories + "/tok512.bin -n 8 -t 1 ";
  ASSERT_EQ(testing::run_solar("rag ask " + m + db + " \"What is the GDP of Mongolia in 1750?\"", &out), 0) << out;
  EXPECT_NE(out.find("I don't know"), std::string::npos) << out;
  ASSERT_EQ(testing::run_solar("rag ask " + m + db + " \"How tall is the Eiffel Tower?\"", &out), 0) << out;
  EXPECT_NE(out.find("Sources:\n[1] " + join_path(docs, "paris.md") + " § Paris"), std::string::npos) << out;
}

}  // namespace
}  // namespace solar::rag
