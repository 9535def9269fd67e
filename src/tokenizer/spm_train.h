// solar/tokenizer/spm_train.h — train a Llama-style SentencePiece model.
//
// Llama 2's settings: BPE, byte_fallback (every byte is a piece, so nothing
// is ever <unk>), unk/bos/eos = 0/1/2, split_digits, and no normalization
// (identity rule, dummy prefix, whitespace runs kept), so that
// decode(encode(text)) == text.
// Threads: one training at a time per process (SentencePieceTrainer keeps
// process-wide flags and seeds); it starts its own worker threads.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace solar::tokenizer {

struct TokenizerTrainOptions {
  std::vector<std::string> inputs;  // text files, or folders read recursively
  int vocab_size = 32000;
  std::string output;  // tokenizer.model, written atomically
  std::string model_type = "bpe";  // or "unigram"
  double character_coverage = 1.0;
  int max_sentence_length = 4192;   // longer lines are skipped (bytes)
  int64_t input_sentence_size = 0;  // sample this many lines; 0 = all
  int threads = 2;
};

// Throws solar::Error naming the input or output on failure.
void train_tokenizer(const TokenizerTrainOptions& opt);

}  // namespace solar::tokenizer
