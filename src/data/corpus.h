// solar/data/corpus.h — text corpus -> token shards for training (data/shard.h).
//
// Documents: each line of a .jsonl file (text_field), or each text file —
// split at blank lines unless doc_per_file, so a single book or play still
// yields many documents. Each is encoded as BOS … EOS. Validation takes whole
// documents, spread evenly through the corpus: a document goes to val
// whenever val holds less than val_fraction of the tokens seen so far (the
// first document always does), or, with val_tokens N, the first documents
// until N tokens. Folders are walked recursively in sorted order, so the same
// input gives the same shards byte for byte. The output folder
// (train-00000.bin…, val-00000.bin, meta.json) is written atomically.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace solar::data {

struct CorpusOptions {
  std::string input;           // a text file, a .jsonl file, or a folder (recursive)
  std::string text_field = "text";  // JSONL field holding the text
  std::string output_dir;      // replaced if it exists
  std::string tokenizer_path;  // recorded in meta.json for training
  double val_fraction = 0.01;  // share of tokens held out (whole documents)
  uint64_t val_tokens = 0;     // instead: the first documents up to this many tokens
  uint64_t shard_tokens = 100'000'000;
  int64_t seq_len = 0;         // check both splits hold one sequence of this length
  bool doc_per_file = false;   // one document per text file
  bool progress = false;       // draw a progress bar on stderr
};

struct CorpusCounts {
  uint64_t files = 0;
  uint64_t train_tokens = 0, train_docs = 0, val_tokens = 0, val_docs = 0;
  std::vector<std::string> train_shards, val_shards;
};

// The files `input` names: itself, or a folder's non-hidden regular files,
// recursively, sorted. Throws naming `input` when it does not exist.
std::vector<std::string> corpus_files(const std::string& input);

// Tokenizes the corpus into shards; throws solar::Error naming the input on
// bad or too-small input (nothing is left behind then).
CorpusCounts tokenize_corpus(const CorpusOptions& opt, const tokenizer::Tokenizer& tok);

}  // namespace solar::data
