// solar/testing/tokenizers.h — a tokenizer for tests that need no files.
#pragma once
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

#include "core/fs.h"

#include "tokenizer/tokenizer.h"

namespace solar::testing {

// Specials <unk> <s> </s>, then one byte piece per ASCII character: any ASCII
// text encodes one token a byte, and every token decodes to at most one character.
inline std::unique_ptr<tokenizer::Tokenizer> ascii_tokenizer() {
  tokenizer::Vocab v;
  v.pieces = {"<unk>", "<s>", "</s>"};
  v.types = {2, 3, 3};
  for (int b = 0; b < 128; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    v.pieces.push_back(name);
    v.types.push_back(6);
  }
  v.scores.assign(v.pieces.size(), 0.f);
  return tokenizer::tokenizer_from_vocab(v);
}

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

}  // namespace solar::testing
