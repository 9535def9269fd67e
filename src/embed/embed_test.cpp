#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>

#include "core/error.h"
#include "embed/embed.h"

using namespace solar::embed;

namespace {
WordPiece tiny() {
  return WordPiece({"[PAD]", "[UNK]", "[CLS]", "[SEP]", "un", "##aff", "##able", "hello", ",", "!", "cafe", "東", "京",
                    "ᄋ", "##ᅡ", "##ᆫ"},
                   true);
}
}  // namespace

TEST(EmbedWordPiece, BasicTokensLowerStripSplit) {
  auto w = tiny();
  EXPECT_EQ(w.basic_tokens("Hello,  CAFÉ!"), (std::vector<std::string>{"hello", ",", "cafe", "!"}));
  EXPECT_EQ(w.basic_tokens("東京x"), (std::vector<std::string>{"東", "京", "x"}));
  // Control and zero-width format characters vanish; every White_Space splits.
  EXPECT_EQ(w.basic_tokens("a\u200bb\u00a0c\td"), (std::vector<std::string>{"ab", "c", "d"}));
  // Invalid UTF-8 reads as U+FFFD, which cleaning drops.
  EXPECT_EQ(w.basic_tokens("a\xff" "b"), (std::vector<std::string>{"ab"}));
}

TEST(EmbedWordPiece, GreedyLongestMatchAndUnknown) {
  auto w = tiny();
  EXPECT_EQ(w.pieces("unaffable hello"), (std::vector<int32_t>{4, 5, 6, 7}));
  EXPECT_EQ(w.pieces("unknownword"), (std::vector<int32_t>{1}));
  // Hangul syllables decompose (NFD) into jamo, matched as pieces.
  EXPECT_EQ(w.pieces("안"), (std::vector<int32_t>{13, 14, 15}));
  EXPECT_EQ(w.pieces(std::string(101, 'x')), (std::vector<int32_t>{1}));
}

TEST(EmbedWordPiece, EncodeAddsSpecialsAndTruncates) {
  auto w = tiny();
  bool cut = true;
  EXPECT_EQ(w.encode("hello!", 8, &cut), (std::vector<int32_t>{2, 7, 9, 3}));
  EXPECT_FALSE(cut);
  EXPECT_EQ(w.encode("hello hello hello", 4, &cut), (std::vector<int32_t>{2, 7, 7, 3}));
  EXPECT_TRUE(cut);
  EXPECT_THROW(w.encode("x", 1), solar::Error);
  EXPECT_THROW(WordPiece({"[CLS]", "[SEP]"}, true), solar::Error);  // no [UNK]
}

TEST(EmbedModel, MissingFolderIsNamed) {
  try {
    find_model("/nonexistent/model");
    FAIL();
  } catch (const solar::Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/model"), std::string::npos);
  }
}

// The real model where setup installed it (scripts/embed-model.sh); the
// conformance test compares it with sentence-transformers.
TEST(EmbedModel, MiniLMUnitVectorsAndSimilarity) {
  std::string dir;
  try {
    dir = find_model();
  } catch (const solar::Error& e) {
    GTEST_SKIP() << "all-MiniLM-L6-v2 not installed (bash scripts/embed-model.sh): " << e.what();
  }
  auto e = Embedder::open(dir);
  EXPECT_EQ(e->dim(), 384);
  auto v = e->encode({"A man is eating food.", "A man is eating a piece of bread.", "The stock market fell today."});
  auto dot = [&](int a, int b) {
    double s = 0;
    for (int i = 0; i < 384; i++) s += double(v[a * 384 + i]) * v[b * 384 + i];
    return s;
  };
  EXPECT_NEAR(dot(0, 0), 1.0, 1e-5);
  EXPECT_GT(dot(0, 1), dot(0, 2) + 0.3);
  // Batching packs texts together: the same text alone gives the same vector.
  auto one = e->encode({"The stock market fell today."});
  for (int i = 0; i < 384; i++) EXPECT_NEAR(one[i], v[2 * 384 + i], 1e-5);
}
