// data::tokenize_corpus: the corpus -> documents -> held-out split -> shards
// step `solar tokenize` and `solar pipeline` share.
#include "data/corpus.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/fs.h"
#include "testing/testing.h"
#include "tokenizer/tokenizer.h"

namespace fs = std::filesystem;
using namespace solar;

namespace {

const std::string kShakespeare = std::string(SOLAR_SHARED_DATA) + "/corpus/tinyshakespeare.txt";
const std::string kLlamaTok = std::string(SOLAR_SHARED_DATA) + "/tokenizers/llama2.model";

uint64_t fnv1a(const std::string& bytes) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : bytes) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

}  // namespace

// The same shards, byte for byte, as `solar tokenize` wrote before the logic
// moved into data/ (checksums taken from that binary's output).
TEST(Corpus, ShardsAreByteIdenticalToBefore) {
  if (!path_exists(kShakespeare) || !path_exists(kLlamaTok)) GTEST_SKIP() << "shared data not found";
  std::string root = solar::testing::temp_dir("corpus_golden");
  auto tok = tokenizer::load_tokenizer(kLlamaTok);
  data::CorpusOptions o;
  o.input = kShakespeare;
  o.output_dir = root + "/out";
  o.tokenizer_path = kLlamaTok;
  o.shard_tokens = 100000;
  data::CorpusCounts c = data::tokenize_corpus(o, *tok);
  EXPECT_EQ(c.files, 1u);
  EXPECT_EQ(c.train_tokens, 365295u);
  EXPECT_EQ(c.train_docs, 7189u);
  EXPECT_EQ(c.val_tokens, 4150u);
  EXPECT_EQ(c.val_docs, 33u);
  ASSERT_EQ(c.train_shards.size(), 4u);
  ASSERT_EQ(c.val_shards, std::vector<std::string>{"val-00000.bin"});
  const std::pair<const char*, uint64_t> want[] = {{"train-00000.bin", 0xd258e61ac8f173a4ull},
                                                   {"train-00001.bin", 0xf313f78ae59ce4f7ull},
                                                   {"train-00002.bin", 0x17593e4eaca0a923ull},
                                                   {"train-00003.bin", 0xce86f1771c8f4c2full},
                                                   {"val-00000.bin", 0xe18ea3d3440f7460ull}};
  for (auto& [name, h] : want) EXPECT_EQ(fnv1a(read_file(root + "/out/" + name)), h) << name;
  auto meta = nlohmann::json::parse(read_file(root + "/out/meta.json"));
  EXPECT_EQ(meta["train_tokens"], 365295u);
  EXPECT_EQ(meta["tokenizer"], kLlamaTok);
  EXPECT_EQ(meta["dtype"], "u16");
  EXPECT_FALSE(fs::exists(root + "/out.tmp-" + std::to_string(getpid())));
  fs::remove_all(root);
}

TEST(Corpus, DocPerFileValTokensAndErrors) {
  if (!path_exists(kLlamaTok)) GTEST_SKIP() << "shared data not found";
  std::string root = solar::testing::temp_dir("corpus_opts");
  auto tok = tokenizer::load_tokenizer(kLlamaTok);
  std::string para;
  for (int i = 0; i < 50; i++) para += "the quick brown fox " + std::to_string(i) + " jumps over the lazy dog.\n";
  fs::create_directories(root + "/in/sub");
  write_file_atomic(root + "/in/a.txt", para + "\n" + para);
  write_file_atomic(root + "/in/sub/b.txt", para);
  write_file_atomic(root + "/in/.hidden.txt", para);
  EXPECT_EQ(data::corpus_files(root + "/in"),
            (std::vector<std::string>{root + "/in/a.txt", root + "/in/sub/b.txt"}));
  data::CorpusOptions o;
  o.input = root + "/in";
  o.output_dir = root + "/out";
  o.doc_per_file = true;
  o.val_tokens = 1;  // the first document only
  auto c = data::tokenize_corpus(o, *tok);
  EXPECT_EQ(c.files, 2u);
  EXPECT_EQ(c.val_docs, 1u);
  EXPECT_EQ(c.train_docs, 1u);
  EXPECT_GT(c.val_tokens, c.train_tokens);  // a.txt holds twice b.txt's text
  // One paragraph: nothing to hold out; the output is not left behind.
  write_file_atomic(root + "/one.txt", para);
  o.input = root + "/one.txt";
  o.output_dir = root + "/out2";
  o.doc_per_file = false;
  o.val_tokens = 0;
  std::string e = solar::testing::error_of([&] { data::tokenize_corpus(o, *tok); });
  EXPECT_NE(e.find("expected at least 2 documents"), std::string::npos) << e;
  EXPECT_FALSE(fs::exists(root + "/out2"));
  e = solar::testing::error_of([&] { data::corpus_files(root + "/missing"); });
  EXPECT_NE(e.find("no such file or folder"), std::string::npos) << e;
  fs::remove_all(root);
}
