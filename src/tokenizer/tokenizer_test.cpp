#include "tokenizer/tokenizer.h"

#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <sstream>

#include "core/error.h"
#include "core/fs.h"
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

// llama.cpp's test-tokenizer-0 convention: the .inp file is the cases, each
// followed by "\n__ggml_vocab_test__\n"; the .out file has one line of
// space-separated ids per case.
std::vector<std::pair<std::string, std::vector<int>>> spm_cases() {
  std::string inp = read_file(kData + "/tokenizers/llama-spm-cases.inp");
  std::string out = read_file(kData + "/tokenizers/llama-spm-cases.out");
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<std::pair<std::string, std::vector<int>>> cases;
  std::istringstream lines(out);
  for (size_t at = 0; at < inp.size();) {
    size_t end = inp.find(sep, at);
    if (end == std::string::npos) break;
    std::string line;
    std::getline(lines, line);
    std::vector<int> ids;
    std::istringstream ls(line);
    for (int id; ls >> id;) ids.push_back(id);
    cases.emplace_back(inp.substr(at, end - at), ids);
    at = end + sep.size();
  }
  return cases;
}

// Random valid UTF-8 from ranges that stress the tokenizers: ASCII,
// whitespace runs, Latin-1, Cyrillic, Korean, CJK, emoji, any other scalar.
// U+2581 is left out: SentencePiece reads it as a space by design.
std::string random_utf8(std::mt19937& rng, int max_chars) {
  static const std::pair<uint32_t, uint32_t> ranges[] = {
      {0x20, 0x7E}, {0x20, 0x20}, {0x09, 0x0A}, {0xA0, 0xFF}, {0x400, 0x4FF}, {0xAC00, 0xD7A3},
      {0x4E00, 0x9FFF}, {0x1F300, 0x1F64F}, {0x80, 0xD7FF}, {0xE000, 0x10FFFF}};
  std::string s;
  int n = std::uniform_int_distribution<int>(0, max_chars)(rng);
  for (int i = 0; i < n; i++) {
    auto [lo, hi] = ranges[std::uniform_int_distribution<int>(0, std::size(ranges) - 1)(rng)];
    uint32_t c = std::uniform_int_distribution<uint32_t>(lo, hi)(rng);
    if (c == 0x2581 || (c >= 0xFDD0 && c <= 0xFDEF) || (c & 0xFFFE) == 0xFFFE) c = 'x';
    if (c < 0x80) {
      s += char(c);
    } else if (c < 0x800) {
      s += char(0xC0 | c >> 6), s += char(0x80 | (c & 0x3F));
    } else if (c < 0x10000) {
      s += char(0xE0 | c >> 12), s += char(0x80 | (c >> 6 & 0x3F)), s += char(0x80 | (c & 0x3F));
    } else {
      s += char(0xF0 | c >> 18), s += char(0x80 | (c >> 12 & 0x3F)), s += char(0x80 | (c >> 6 & 0x3F)),
          s += char(0x80 | (c & 0x3F));
    }
  }
  return s;
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
  auto cases = spm_cases();
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
  for (auto& [text, ids] : spm_cases()) {
    EXPECT_EQ(bpe->encode(text, false), ids) << "'" << text << "'";
    EXPECT_EQ(bpe->decode(ids), spm->decode(ids)) << "'" << text << "'";
  }
  std::mt19937 rng(7);
  for (int i = 0; i < 200; i++) {
    std::string s = random_utf8(rng, 40);
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
      std::string s = random_utf8(rng, 30);
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
      std::string s = random_utf8(rng, 80);  // long enough to restart the window
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
    if (i % 3 == 0) s += random_utf8(rng, 5);
    EXPECT_EQ(tok->encode(s, false), runc_encode(v, *tok, s)) << "'" << s << "'";
  }
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
