// solar/testing/tokenizers.h — a tokenizer for tests that need no files;
// the shared Llama 2 encoding cases and random UTF-8 to check tokenizers with.
#pragma once
#include <cstdio>
#include <cstring>
#include <gtest/gtest.h>

#include <iterator>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "core/fs.h"

#include "tokenizer/tokenizer.h"

namespace solar::testing {

// Specials <unk> <s> </s>, then the byte pieces <0x00> .. of the first
// `n_bytes` byte values, every score 0.
inline tokenizer::Vocab byte_vocab(int n_bytes) {
  tokenizer::Vocab v;
  v.pieces = {"<unk>", "<s>", "</s>"};
  v.types = {2, 3, 3};
  for (int b = 0; b < n_bytes; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    v.pieces.push_back(name);
    v.types.push_back(6);
  }
  v.scores.assign(v.pieces.size(), 0.f);
  return v;
}

// byte_vocab(128): any ASCII text encodes one token a byte, and every token
// decodes to at most one character.
inline std::unique_ptr<tokenizer::Tokenizer> ascii_tokenizer() { return tokenizer::tokenizer_from_vocab(byte_vocab(128)); }

// The same vocabulary as a llama2.c tokenizer.bin (131 tokens; open it with
// vocab_size 131), for tests that run the CLI on a model folder.
inline void write_ascii_tokenizer_bin(const std::string& path) {
  std::string out(4, '\0');
  const int32_t max_len = 6;
  std::memcpy(out.data(), &max_len, 4);
  for (const std::string& piece : ascii_tokenizer()->vocab().pieces) {
    const float score = 0;
    const int32_t len = int32_t(piece.size());
    out.append(reinterpret_cast<const char*>(&score), 4).append(reinterpret_cast<const char*>(&len), 4).append(piece);
  }
  write_file_atomic(path, out);
}

// The shared data's Llama 2 encoding cases (`data` is ../shared/data), in
// llama.cpp's test-tokenizer-0 convention: the .inp file is the cases, each
// followed by "\n__ggml_vocab_test__\n"; the .out file has one line of
// space-separated ids per case.
inline std::vector<std::pair<std::string, std::vector<int>>> llama_spm_cases(const std::string& data) {
  std::string inp = read_file(data + "/tokenizers/llama-spm-cases.inp");
  std::string out = read_file(data + "/tokenizers/llama-spm-cases.out");
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
inline std::string random_utf8(std::mt19937& rng, int max_chars) {
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

// `got` (e.g. a tokenizer.model rebuilt from a GGUF) is `want`: the same
// pieces, scores, types and special ids, and the same ids for the Llama 2
// cases and random UTF-8 (`data` is ../shared/data); with `llama_ids`, also
// the ids the cases file lists.
inline void expect_same_tokenizer(const tokenizer::Tokenizer& want, const tokenizer::Tokenizer& got,
                                  const std::string& label, const std::string& data, bool llama_ids) {
  tokenizer::Vocab a = want.vocab(), b = got.vocab();
  EXPECT_EQ(b.pieces, a.pieces) << label;
  EXPECT_EQ(b.scores, a.scores) << label;
  EXPECT_EQ(b.types, a.types) << label;
  EXPECT_EQ(std::tie(b.bos, b.eos, b.unk, b.pad), std::tie(a.bos, a.eos, a.unk, a.pad)) << label;
  for (auto& [text, ids] : llama_spm_cases(data)) {
    EXPECT_EQ(got.encode(text, true), want.encode(text, true)) << label << ": '" << text << "'";
    if (llama_ids) EXPECT_EQ(got.encode(text, false), ids) << label << ": '" << text << "'";
  }
  std::mt19937 rng(11);
  for (int i = 0; i < 300; i++) {
    std::string s = random_utf8(rng, 40);
    EXPECT_EQ(got.encode(s, true), want.encode(s, true)) << label << ": '" << s << "'";
  }
}

}  // namespace solar::testing
