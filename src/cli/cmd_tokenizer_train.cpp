// solar tokenizer train — a Llama-style SentencePiece BPE model from text.
#include <algorithm>
#include <cstdio>
#include <thread>

#include "cli/common.h"
#include "core/fs.h"
#include "core/error.h"
#include "formats/load.h"
#include "tokenizer/spm_train.h"
#include "tokenizer/tokenizer.h"

namespace solar::cli {

static int run_tokenizer_train(const std::vector<std::string>& argv) {
  Args a("tokenizer train", "solar tokenizer train --input FILE_OR_DIR... --vocab-size N -o OUT.model [options]");
  auto& inputs = a.list("--input", "PATH", "text file or folder (read recursively); repeatable");
  auto& vocab = a.integer("--vocab-size", 32000, "pieces in the model, including 256 byte pieces and unk/bos/eos", 260, 1 << 20);
  auto& out = a.str("-o,--output", "FILE", "output tokenizer.model");
  auto& type = a.str("--model-type", "TYPE", "bpe or unigram", "bpe");
  auto& coverage = a.number("--character-coverage", 1.0, "share of characters covered by pieces; the rest are bytes");
  auto& max_len = a.integer("--max-sentence-length", 4192, "skip lines longer than this many bytes", 1, 1 << 30);
  auto& sample = a.integer("--input-sentence-size", 0, "train on a random sample of this many lines (0 = all)", 0, 1'000'000'000'000);
  auto& threads = a.threads(2);
  auto& force = a.flag("--force", "replace OUT if it exists");
  auto& more = a.positional("FILE_OR_DIR...", "more inputs, as after --input");
  if (!a.parse(argv)) return a.exit_code();
  if (type != "bpe" && type != "unigram") fail("--model-type", "", "expected bpe or unigram, got " + type);
  check_range("--character-coverage", coverage, 0.5, 1.0);
  tokenizer::TokenizerTrainOptions opt;
  opt.inputs = inputs;
  opt.inputs.insert(opt.inputs.end(), more.begin(), more.end());
  if (out.empty()) fail("-o/--output", "", "required");
  check_output_apart(out, opt.inputs);
  if (path_exists(out) && !force) fail(out, "", "already exists (use --force to replace)");
  opt.vocab_size = int(vocab);
  opt.output = out;
  opt.model_type = type;
  opt.character_coverage = coverage;
  opt.max_sentence_length = int(max_len);
  opt.input_sentence_size = sample;
  opt.threads = threads ? int(threads) : int(std::max(1u, std::thread::hardware_concurrency()));
  tokenizer::train_tokenizer(opt);
  auto tok = formats::open_tokenizer(out);
  printf("wrote %s: %d pieces\n", out.c_str(), tok->vocab_size());
  return 0;
}

static Register reg("tokenizer-train", "train a Llama-style SentencePiece BPE tokenizer.model", run_tokenizer_train);

}  // namespace solar::cli
