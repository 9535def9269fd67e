// `solar tokenize`: text corpus -> token shards for `solar train` (data/shard.h).
//
// Flag parsing around data::tokenize_corpus (data/corpus.h), which documents
// how the corpus becomes documents, the held-out split and shards.
#include <algorithm>
#include <filesystem>

#include "cli/cli.h"
#include "cli/common.h"
#include "core/error.h"
#include "core/fs.h"
#include "data/corpus.h"
#include "tokenizer/tokenizer.h"

namespace fs = std::filesystem;

namespace {

uint64_t parse_count(const std::string& s, const std::string& flag) {
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(s, &used);
  } catch (...) {
    used = 0;
  }
  std::string suf = s.substr(used);
  double mult = suf.empty() ? 1 : suf == "k" || suf == "K" ? 1e3 : suf == "M" ? 1e6 : suf == "G" || suf == "B" ? 1e9 : 0;
  if (used == 0 || mult == 0 || !(v * mult >= 1))
    solar::fail(flag, "", "expected a positive count like 1000000, 500k, 100M or 1G, got '" + s + "'");
  return uint64_t(v * mult);
}

int run(const std::vector<std::string>& argv) {
  solar::cli::Args a("tokenize",
                     "solar tokenize -m MODEL_OR_TOKENIZER -i FILE|DIR|X.jsonl -o OUTDIR [options]\n"
                     "  writes OUTDIR/train-00000.bin…, OUTDIR/val-00000.bin and OUTDIR/meta.json for `solar train`");
  auto& m = a.str("-m,--model", "PATH", "tokenizer.model / tokenizer.bin / .gguf, or a model (HF folder, .gguf, .bin)");
  auto& in = a.str("-i,--input", "PATH", "text file, folder (recursive) or .jsonl");
  auto& field = a.str("--text-field", "NAME", "JSONL field holding the text", "text");
  auto& out = a.str("-o,--output", "DIR", "output folder");
  auto& frac = a.number("--val-fraction", 0.01, "share of tokens held out for validation (whole documents)");
  auto& val_tokens = a.str("--val-tokens", "N", "hold out the first documents up to N tokens instead");
  auto& shard = a.str("--shard-tokens", "N", "tokens per shard (100M, 500k, …)", "100M");
  auto& seq = a.integer("--seq-len", 0, "check both splits hold at least one sequence of this length", 0, 1 << 24);
  auto& per_file = a.flag("--doc-per-file", "one document per text file (default: split at blank lines)");
  auto& force = a.flag("-f,--force", "replace an existing output folder");
  if (!a.parse(argv)) return a.exit_code();
  if (m.empty()) solar::fail("-m/--model", "", "expected a tokenizer or model path");
  if (in.empty()) solar::fail("-i/--input", "", "expected an input file or folder");
  if (out.empty()) solar::fail("-o/--output", "", "expected an output folder");
  solar::cli::check_range("--val-fraction", frac, 0, 0.5);
  uint64_t val_target = val_tokens.empty() ? 0 : parse_count(val_tokens, "--val-tokens");
  uint64_t shard_tokens = parse_count(shard, "--shard-tokens");
  solar::cli::check_output_apart(out, {m, in});
  if (solar::path_exists(out) && !force) solar::fail(out, "", "already exists (use --force to replace)");

  // -m is a model (HF folder, .gguf, llama2.c checkpoint) or a tokenizer file.
  solar::engine::ModelTokenizer src = solar::cli::open_tokenizer_arg(m);
  solar::data::CorpusOptions opt;
  opt.input = in;
  opt.text_field = field;
  opt.output_dir = out;
  opt.tokenizer_path = src.path;
  opt.val_fraction = frac;
  opt.val_tokens = val_target;
  opt.shard_tokens = shard_tokens;
  opt.seq_len = seq;
  opt.doc_per_file = per_file;
  opt.progress = true;
  solar::data::tokenize_corpus(opt, *src.tokenizer);
  return 0;
}

solar::cli::Register reg("tokenize", "tokenize a text corpus into token shards for `solar train`", run);

}  // namespace
