// solar/testing/tokenizers.h — a tokenizer for tests that need no files.
#pragma once
#include <cstdio>
#include <memory>

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

}  // namespace solar::testing
