#include "tokenizer/spm_train.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>

#include "core/error.h"
#include "core/fs.h"
#include "testing/testing.h"
#include "tokenizer/tokenizer.h"

namespace solar::tokenizer {
namespace {

TEST(TokenizerTrain, ShakespeareBpe512RoundTrips) {
  std::string corpus = std::string(SOLAR_SHARED_DATA) + "/corpus/tinyshakespeare.txt";
  if (!path_exists(corpus)) GTEST_SKIP() << "shared data missing: " << corpus;
  std::string dir = ::testing::TempDir() + "solar_train_" + std::to_string(getpid());
  make_dirs(join_path(dir, "in/sub"));
  std::string text = read_file(corpus);
  // ~200 KB split over a nested folder, plus a binary file that must be skipped.
  write_file_atomic(join_path(dir, "in/a.txt"), text.substr(0, 100000));
  write_file_atomic(join_path(dir, "in/sub/b.txt"), text.substr(100000, 100000));
  write_file_atomic(join_path(dir, "in/sub/blob.bin"), std::string("\x01\x00\x02\xff", 4));

  TokenizerTrainOptions opt;
  opt.inputs = {join_path(dir, "in")};
  opt.vocab_size = 512;
  opt.output = join_path(dir, "tok.model");
  auto t0 = std::chrono::steady_clock::now();
  train_tokenizer(opt);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_LT(secs, 30.0);

  auto tok = load_tokenizer(opt.output);
  ASSERT_EQ(tok->vocab_size(), 512);
  EXPECT_EQ(tok->bos_id(), 1);
  EXPECT_EQ(tok->eos_id(), 2);
  Vocab v = tok->vocab();
  EXPECT_EQ(v.types[0], 2);
  int bytes = 0;
  for (int i = 0; i < 512; i++) bytes += v.types[i] == 6;
  EXPECT_EQ(bytes, 256);
  EXPECT_EQ(tok->piece_to_id("<0x0A>"), 13);  // bytes follow unk/bos/eos, as in Llama 2
  // Merges were learned: common words are single pieces.
  EXPECT_GE(tok->piece_to_id("\xE2\x96\x81the"), 0);
  // Identity normalization: text (also unseen, non-ASCII) comes back exactly,
  // whitespace runs included; digits are split one per piece.
  for (std::string s : {text.substr(300000, 3000), std::string("  two  spaces\tand tab\n"), std::string("Ünïcode 한국어 🙂"),
                        std::string("year 1623")}) {
    auto ids = tok->encode(s, true);
    EXPECT_EQ(tok->decode(ids), s);
  }
  auto digits = tok->encode("1623", false);
  EXPECT_GE(digits.size(), 4u);
  EXPECT_FALSE(path_exists(opt.output + ".tmp-" + std::to_string(getpid())));
  remove_all(dir);
}

TEST(TokenizerTrain, BadInputsAreErrors) {
  TokenizerTrainOptions opt;
  opt.inputs = {"/nonexistent/corpus.txt"};
  opt.output = ::testing::TempDir() + "never.model";
  opt.vocab_size = 512;
  try {
    train_tokenizer(opt);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/corpus.txt"), std::string::npos) << e.what();
  }
  opt.vocab_size = 100;
  EXPECT_THROW(train_tokenizer(opt), Error);
  EXPECT_FALSE(path_exists(opt.output));
}

// Before: an empty corpus failed as "<output>: sentencepiece train: Internal:
// …trainer_interface.cc(428) [!sentences_.empty()]", and a vocabulary the text
// cannot fill blamed the output file, not --vocab-size.
TEST(TokenizerTrain, EmptyCorpusAndUnfillableVocabNameTheirCause) {
  const std::string dir = ::testing::TempDir() + "solar_train_empty_" + std::to_string(getpid());
  make_dirs(dir);
  TokenizerTrainOptions opt;
  opt.output = join_path(dir, "t.model");
  opt.vocab_size = 300;
  opt.inputs = {join_path(dir, "empty.txt")};
  write_file_atomic(opt.inputs[0], "\n\n");
  EXPECT_EQ(solar::testing::error_of([&] { train_tokenizer(opt); }),
            opt.inputs[0] + ": no text to train on (expected non-empty lines, got none)");
  write_file_atomic(opt.inputs[0], "ab ab ab\n");
  opt.vocab_size = 100000;
  const std::string e = solar::testing::error_of([&] { train_tokenizer(opt); });
  EXPECT_EQ(e.rfind("--vocab-size: expected a size this text supports: ", 0), 0u) << e;
  EXPECT_NE(e.find("Vocabulary size too high (100000)"), std::string::npos) << e;
  EXPECT_FALSE(path_exists(opt.output));
  remove_all(dir);
}

// The CLI end to end: flags, several inputs after one --input.
TEST(TokenizerTrain, Cli) {
  std::string corpus = std::string(SOLAR_SHARED_DATA) + "/corpus/tinyshakespeare.txt";
  if (!path_exists(corpus)) GTEST_SKIP() << "shared data missing: " << corpus;
  std::string dir = ::testing::TempDir() + "solar_train_cli_" + std::to_string(getpid());
  make_dirs(dir);
  std::string text = read_file(corpus);
  write_file_atomic(join_path(dir, "a.txt"), text.substr(0, 60000));
  write_file_atomic(join_path(dir, "b.txt"), text.substr(60000, 60000));
  std::string out = join_path(dir, "out.model");
  std::string cmd = std::string(SOLAR_BIN) + " tokenizer-train --input " + join_path(dir, "a.txt") + " " +
                    join_path(dir, "b.txt") + " --vocab-size 400 --character-coverage 1.0 -o " + out + " > " +
                    join_path(dir, "log") + " 2>&1";
  ASSERT_EQ(system(cmd.c_str()), 0) << read_file(join_path(dir, "log"));
  EXPECT_EQ(load_tokenizer(out)->vocab_size(), 400);
  std::string ids_cmd = std::string(SOLAR_BIN) + " tokenize-text -m " + out + " -p 'Hello' > " + join_path(dir, "ids");
  ASSERT_EQ(system(ids_cmd.c_str()), 0);
  EXPECT_EQ(read_file(join_path(dir, "ids")).substr(0, 2), "1 ");
  remove_all(dir);
}

}  // namespace
}  // namespace solar::tokenizer
