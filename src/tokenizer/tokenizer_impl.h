// solar/tokenizer/tokenizer_impl.h — the loaders load_tokenizer() chooses
// between, shared by the tokenizer's .cpp files only.
#pragma once
#include <memory>
#include <string>
#include <string_view>

#include "tokenizer/tokenizer.h"

namespace solar::tokenizer {

// A tokenizer over a serialized SentencePiece ModelProto, or nullptr when
// `bytes` is not one.
std::unique_ptr<Tokenizer> spm_from_proto(std::string_view bytes);

// llama2.c tokenizer.bin: int32 max_token_length, then per token float32
// score, int32 length, bytes. vocab_size 0 reads to the end of the file.
// Pieces come back in SentencePiece spelling (' ' -> "▁").
Vocab read_llama2c_vocab(const std::string& path, std::string_view bytes, int vocab_size);

// "<0xE2>" -> 0xE2; anything else -> -1.
int parse_byte_piece(std::string_view piece);

}  // namespace solar::tokenizer
