#include "tokenizer/tokenizer.h"

#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <sstream>

#include "core/error.h"
#include "core/fs.h"
#include "testing/tokenizers.h"
#include "tokenizer/tokenizer_impl.h"

namespace solar::tokenizer {
namespace {

const std::string kData = SOLAR_SHARED_DATA;
const std::string kLlama = kData + "/tokenizers/llama2.model";
const std::string kMistral = kData + "/tokenizers/mistral-v1.model";
const std::string kTok512 = kData + "/models/stories260K/tok512.bin";

#define NEED(path) \
  if (!path_exists(path)) GTEST_SKIP() << "shared data missing: " << path

std::string tmp_path(const std::string& name) {
  std::string dir = ::testing::TempDir() + "solar_tok_" + std::to_string(getpid());
  make_dirs(dir);
  return join_path(dir, name);
}

std::string stream_decode(const Tokenizer& tok, const std::vector<int>& ids, std::vector<std::string>* chunks = nullptr) {
  StreamDecoder sd(tok);
  std::string all;
  for (int id : ids) {
    std::string c = sd.push(id);
    if (chunks) chunks->push_back(c);
    all += c;
  }
  return all + sd.flush();
}

bool valid_utf8(const std::string& s) {
  for (size_t i = 0; i < s.size();) {
    unsigned char c = s[i];
    int n = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (int k = 1; k < n; k++)
      if ((s[i + k] & 0xC0) != 0x80) return false;
    i += n;
  }
  return true;
}

TEST(TokenizerSpm, LlamaCasesMatchLlamaCpp) {
  NEED(kLlama);
  auto tok = load_tokenizer(kLlama);
  auto cases = testing::llama_spm_cases(kData);
  ASSERT_EQ(cases.size(), 46u);  // 46 separators; the .out file has 46 lines
  EXPECT_EQ(cases[0].first, "ied 4 \xC2\xBD months");
  EXPECT_EQ(cases[2].first, "");
  EXPECT_EQ(cases[6].first, "\t");
  EXPECT_EQ(cases[7].first, "\n");
  for (size_t i = 0; i < cases.size(); i++) {
    EXPECT_EQ(tok->encode(cases[i].first, false), cases[i].second) << "case " << i << ": '" << cases[i].first << "'";
    EXPECT_EQ(tok->decode(tok->encode(cases[i].first, true)), cases[i].first) << "case " << i;
  }
}

// The score-based BPE (GGUF's path) over Llama 2's own vocab must agree with
// SentencePiece on the same cases.
TEST(TokenizerBpe, LlamaVocabMatchesSentencePiece) {
  NEED(kLlama);
  auto spm = load_tokenizer(kLlama);
  auto bpe = tokenizer_from_vocab(spm->vocab());
  for (auto& [text, ids] : testing::llama_spm_cases(kData)) {
    EXPECT_EQ(bpe->encode(text, false), ids) << "'" << text << "'";
    EXPECT_EQ(bpe->decode(ids), spm->decode(ids)) << "'" << text << "'";
  }
  std::mt19937 rng(7);
  for (int i = 0; i < 200; i++) {
    std::string s = testing::random_utf8(rng, 40);
    EXPECT_EQ(bpe->encode(s, true), spm->encode(s, true)) << "'" << s << "'";
  }
}

TEST(TokenizerSpm, VocabTypesAndSpecials) {
  NEED(kLlama);
  auto tok = load_tokenizer(kLlama);
  Vocab v = tok->vocab();
  ASSERT_EQ(v.pieces.size(), 32000u);
  EXPECT_EQ(v.pieces[0], "<unk>");
  EXPECT_EQ(v.types[0], 2);
  EXPECT_EQ(v.types[1], 3);
  EXPECT_EQ(v.types[2], 3);
  EXPECT_EQ(v.pieces[13], "<0x0A>");
  EXPECT_EQ(v.types[13], 6);
  EXPECT_EQ(tok->byte_value(13), 0x0A);
  EXPECT_EQ(tok->byte_value(15043), -1);
  EXPECT_EQ(v.pieces[15043], "\xE2\x96\x81Hello");
  EXPECT_EQ(v.types[15043], 1);
  EXPECT_EQ(tok->piece_to_id("\xE2\x96\x81Hello"), 15043);
  EXPECT_EQ(tok->piece_to_id("<unk>"), 0);
  EXPECT_EQ(tok->piece_to_id("no such piece"), -1);
  EXPECT_EQ(tok->bos_id(), 1);
  EXPECT_EQ(tok->eos_id(), 2);
  EXPECT_EQ(tok->encode("Hello", true, true), (std::vector<int>{1, 15043, 2}));
  EXPECT_EQ(tok->decode({1, 15043, 2, 0}), "Hello");  // specials skipped
  EXPECT_THROW(tok->decode({32000}), Error);
}

TEST(TokenizerSpm, MistralKnownIds) {
  NEED(kMistral);
  auto tok = load_tokenizer(kMistral);
  EXPECT_EQ(tok->vocab_size(), 32000);
  EXPECT_EQ(tok->encode("Hello", true), (std::vector<int>{1, 22557}));
  EXPECT_EQ(tok->id_to_piece(22557), "\xE2\x96\x81Hello");
  // "[INST]" as the Mistral instruct template spells it, with BOS.
  EXPECT_EQ(tok->encode("[INST]", true), (std::vector<int>{1, 733, 16289, 28793}));
  EXPECT_EQ(tok->decode({1, 22557, 2}), "Hello");
}

TEST(TokenizerSpm, Utf8RoundTripBothModels) {
  for (const auto& path : {kLlama, kMistral}) {
    NEED(path);
    auto tok = load_tokenizer(path);
    for (std::string s : {"안녕하세요, 세계!", "emoji 🙂🚀 ok", " \t\n  mixed \r\n\twhitespace  ", "Äpfel über Straße",
                          "   leading", "trailing   ", "\n"}) {
      auto ids = tok->encode(s, true);
      EXPECT_EQ(tok->decode(ids), s) << path;
      EXPECT_EQ(stream_decode(*tok, ids), s) << path;
    }
    std::mt19937 rng(42);
    for (int i = 0; i < 300; i++) {
      std::string s = testing::random_utf8(rng, 30);
      auto ids = tok->encode(s, i % 2 == 0);
      ASSERT_EQ(tok->decode(ids), s) << path << " case " << i;
    }
  }
}

TEST(TokenizerStream, EqualsDecodeAndNeverSplitsCharacters) {
  for (const auto& path : {kLlama, kMistral, kTok512}) {
    NEED(path);
    auto tok = load_tokenizer(path);
    std::mt19937 rng(3);
    for (int i = 0; i < 100; i++) {
      std::string s = testing::random_utf8(rng, 80);  // long enough to restart the window
      auto ids = tok->encode(s, true);
      std::vector<std::string> chunks;
      EXPECT_EQ(stream_decode(*tok, ids, &chunks), tok->decode(ids)) << path << " case " << i;
      for (auto& c : chunks) EXPECT_TRUE(valid_utf8(c)) << path << " case " << i;
    }
  }
}

TEST(TokenizerLlama2c, Tok512KnownIdsAndRoundTrip) {
  NEED(kTok512);
  auto tok = load_tokenizer(kTok512, 512);
  ASSERT_EQ(tok->vocab_size(), 512);
  Vocab v = tok->vocab();
  EXPECT_EQ(v.pieces[3], "<0x00>");
  EXPECT_EQ(v.types[3], 6);
  EXPECT_EQ(v.pieces[265], "\xE2\x96\x81the");  // stored as " the"
  // "the": dummy prefix " " (410) + t h e; best pair " t" (259, score 0),
  // then "he" (260, -1), then " t"+"he" = " the" (265, -6).
  EXPECT_EQ(tok->encode("the", false), (std::vector<int>{265}));
  EXPECT_EQ(tok->encode("the", true), (std::vector<int>{1, 265}));
  // Each word is a single piece: " Once" 403, " upon" 407, " a" 261,
  // " time" 378, "." 426.
  EXPECT_EQ(tok->encode("Once upon a time.", false), (std::vector<int>{403, 407, 261, 378, 426}));
  EXPECT_EQ(tok->encode("", true), (std::vector<int>{1}));
  // Not in the 512 vocab: "한" (ED 95 9C) falls back to bytes, ids byte+3.
  auto e = tok->encode("\xED\x95\x9C", false);
  EXPECT_EQ(e, (std::vector<int>{410, 0xED + 3, 0x95 + 3, 0x9C + 3}));  // 410 = " ", the dummy prefix
  EXPECT_EQ(tok->decode(e), "\xED\x95\x9C");
  std::string text = "Once upon a time, there was a little girl named Lily.\nShe liked to play outside! 123";
  EXPECT_EQ(tok->decode(tok->encode(text, true)), text);
  // Same vocab read to EOF without the size hint.
  EXPECT_EQ(load_tokenizer(kTok512)->vocab_size(), 512);
}

// run.c's encode, as written there (rescan per merge), to check the heap
// version makes the same choices.
std::vector<int> runc_encode(const Vocab& v, const Tokenizer& tok, const std::string& text) {
  std::vector<int> t;
  if (text.empty()) return t;
  t.push_back(tok.piece_to_id("\xE2\x96\x81"));
  for (size_t i = 0; i < text.size();) {
    size_t j = i + 1;
    while (j < text.size() && (text[j] & 0xC0) == 0x80 && j - i < 4) j++;
    std::string ch = text.substr(i, j - i);
    int id = tok.piece_to_id(ch == " " ? "\xE2\x96\x81" : ch);
    if (id >= 0) t.push_back(id);
    else for (unsigned char c : ch) t.push_back(c + 3);
    i = j;
  }
  while (true) {
    float best = -1e10f;
    int best_id = -1, best_i = -1;
    for (size_t i = 0; i + 1 < t.size(); i++) {
      int id = tok.piece_to_id(v.pieces[t[i]] + v.pieces[t[i + 1]]);
      if (id != -1 && v.scores[id] > best) best = v.scores[id], best_id = id, best_i = (int)i;
    }
    if (best_i == -1) break;
    t[best_i] = best_id;
    t.erase(t.begin() + best_i + 1);
  }
  return t;
}

TEST(TokenizerLlama2c, HeapMergeEqualsRunC) {
  NEED(kTok512);
  auto tok = load_tokenizer(kTok512, 512);
  Vocab v = tok->vocab();
  std::mt19937 rng(11);
  std::string letters = "aeiou thsnrl.,!\n";
  for (int i = 0; i < 300; i++) {
    std::string s;
    int n = std::uniform_int_distribution<int>(1, 60)(rng);
    for (int k = 0; k < n; k++) s += letters[std::uniform_int_distribution<int>(0, letters.size() - 1)(rng)];
    if (i % 3 == 0) s += testing::random_utf8(rng, 5);
    EXPECT_EQ(tok->encode(s, false), runc_encode(v, *tok, s)) << "'" << s << "'";
  }
}

// A vocabulary written back as a tokenizer.model (what a GGUF's becomes) is
// the original model piece for piece and encodes every case as it does.
TEST(TokenizerSpmProto, RebuiltModelsEncodeAsTheOriginals) {
  NEED(kLlama);
  NEED(kMistral);
  for (const std::string& path : {kLlama, kMistral}) {
    auto orig = load_tokenizer(path);
    auto back = spm_from_proto(spm_model_proto(orig->vocab()));
    ASSERT_NE(back, nullptr) << path;
    testing::expect_same_tokenizer(*orig, *back, path, kData, path == kLlama);
  }
}

TEST(TokenizerSpmProto, BadVocabulariesAreRefusedWithTheReason) {
  auto error = [](const Vocab& bad) {
    try {
      spm_model_proto(bad);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  // SentencePiece's byte fallback needs all 256 byte pieces: this one has 128.
  EXPECT_EQ(error(testing::byte_vocab(128)), "SentencePiece refuses it as a tokenizer.model: Internal: there are not 256 byte pieces although `byte_fallback` is true.");
  Vocab v = testing::byte_vocab(256);  // and "▁", "a"
  v.pieces.insert(v.pieces.end(), {"\xE2\x96\x81", "a"});
  v.types.insert(v.types.end(), {1, 1});
  v.scores.insert(v.scores.end(), {0.f, 0.f});
  auto back = spm_from_proto(spm_model_proto(v));
  ASSERT_NE(back, nullptr);
  EXPECT_EQ(back->encode("a\xC3\xA9", false), (std::vector<int>{259, 260, 3 + 0xC3, 3 + 0xA9}));
  Vocab no_unk = v;
  no_unk.types[0] = 1;  // the unk id's piece is typed UNKNOWN, as SentencePiece needs one
  EXPECT_EQ(spm_from_proto(spm_model_proto(no_unk))->vocab().types[0], 2);
  Vocab dup = v;
  dup.pieces[5] = dup.pieces[4];
  EXPECT_NE(error(dup).find("SentencePiece refuses it as a tokenizer.model: Internal: <0x01> is already defined"),
            std::string::npos) << error(dup);
  Vocab type = v;
  type.types[7] = 9;
  EXPECT_EQ(error(type), "token[7].type: expected 1..6 (normal, unknown, control, user-defined, unused, byte), got 9");
  Vocab nul = v;
  nul.pieces.back() = std::string("a\0b", 3);
  EXPECT_NE(error(nul).find("NUL"), std::string::npos) << error(nul);
  Vocab empty = v;
  empty.pieces.back() = "";
  EXPECT_NE(error(empty).find("SentencePiece refuses it"), std::string::npos) << error(empty);
  Vocab short_scores = v;
  short_scores.scores.pop_back();
  EXPECT_EQ(error(short_scores), "vocab: expected 261 scores and types, got 260 and 261");
}

TEST(TokenizerErrors, BadFilesNameTheFile) {
  auto expect_error = [](const std::string& path, int hint, const std::string& needle, const std::string& absent = "") {
    try {
      load_tokenizer(path, hint);
      ADD_FAILURE() << "no error for " << path;
    } catch (const Error& e) {
      std::string msg = e.what();
      EXPECT_NE(msg.find(path), std::string::npos) << msg;
      EXPECT_NE(msg.find(needle), std::string::npos) << msg;
      if (!absent.empty()) {
        EXPECT_EQ(msg.find(absent), std::string::npos) << msg;
      }
    }
  };
  // A .model is judged as SentencePiece only: no tokenizer.bin field names.
  const std::string spm = "not a SentencePiece model: expected a tokenizer.model protobuf";
  expect_error(tmp_path("missing.model"), 0, "missing.model");
  std::string empty = tmp_path("empty.model");
  write_file_atomic(empty, "");
  expect_error(empty, 0, spm + ", and the file is empty");
  std::string text = tmp_path("text.model");
  write_file_atomic(text, "hello world, this is not a tokenizer\n");
  expect_error(text, 0, spm, "max_token_length");
  std::string text_bin = tmp_path("text.bin");
  write_file_atomic(text_bin, "hello world, this is not a tokenizer\n");
  expect_error(text_bin, 0, "not a SentencePiece model or llama2.c tokenizer.bin");
  if (path_exists(kTok512)) {
    std::string bin = read_file(kTok512);
    std::string cut = tmp_path("cut.bin");
    write_file_atomic(cut, bin.substr(0, bin.size() - 3));
    expect_error(cut, 0, "truncated");
    expect_error(cut, 512, "truncated");
    expect_error(kTok512, 600, "truncated");
  }
  if (path_exists(kLlama)) {
    std::string model = read_file(kLlama);
    std::string cut = tmp_path("cut.model");
    write_file_atomic(cut, model.substr(0, model.size() / 2));
    expect_error(cut, 0, spm + ", and it does not parse", "tokenizer.bin");
    // By content too: a cut SentencePiece model under another name.
    std::string cut_bin = tmp_path("cut_spm.bin");
    write_file_atomic(cut_bin, model.substr(0, model.size() / 2));
    expect_error(cut_bin, 0, spm, "max_token_length");
    // Damage to the first field (here its tag: trainer_spec instead of
    // pieces) is still a SentencePiece model that does not parse.
    model[0] = 0x12;
    write_file_atomic(cut_bin, model);
    expect_error(cut_bin, 0, spm, "max_token_length");
  }
}

}  // namespace
}  // namespace solar::tokenizer

// Found by fuzz_tokenizer (fuzz/regressions/tokenizer): a piece "\0.s>" made
// libsentencepiece's trie builder throw through a frame that cannot unwind
// (std::terminate, SIGABRT) instead of failing the load.
TEST(TokenizerSpm, PieceWithNulIsRefusedNotAborted) {
  const std::string proto(
      "\x0a\x0e\x0a\x05\x3c\x75\x6e\x6b\x3e\x15\x00\x00\x00\x00\x18\x02\x0a\x0c\x0a\x03\x3c\x73\x3e\x15\x00\x00\x00\x00"
      "\x18\x03\x0a\x0d\x0a\x04\x00\x2e\x73\x3e\x15\x00\x00\x00\x79\x12\x00",
      45);
  EXPECT_EQ(solar::tokenizer::spm_from_proto(proto), nullptr);
  std::string ok = proto;
  ok[34] = 'x';  // the same model with "x.s>": loads
  EXPECT_NE(solar::tokenizer::spm_from_proto(ok), nullptr);
}
