// `solar tokenize`: text corpus -> token shards for `solar train` (data/shard.h).
//
// Documents: each line of a .jsonl file (--text-field), or each text file —
// split at blank lines unless --doc-per-file, so a single book or play still
// yields many documents. Each is encoded as BOS … EOS. Validation takes whole
// documents, spread evenly through the corpus: a document goes to val
// whenever val holds less than --val-fraction of the tokens seen so far (the
// first document always does), or, with --val-tokens N, the first documents
// until N tokens. Folders are walked recursively in sorted order, so the same
// input gives the same shards byte for byte.
#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/common.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/progress.h"
#include "data/shard.h"
#include "tokenizer/tokenizer.h"

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

struct Source {
  std::shared_ptr<const solar::Tokenizer> tok;
  std::string path;  // the tokenizer file, recorded in meta.json for `solar train`
};

// -m is a model (HF folder, .gguf, llama2.c checkpoint) or a tokenizer file.
Source open_source(const std::string& m) {
  solar::ModelTokenizer t = solar::cli::open_tokenizer_arg(m);
  return {t.tokenizer, t.path};
}

std::vector<std::string> input_files(const std::string& in) {
  if (!solar::path_exists(in)) solar::fail(in, "", "no such file or folder");
  if (!solar::is_dir(in)) return {in};
  std::vector<std::string> files;
  for (auto& e : fs::recursive_directory_iterator(in, fs::directory_options::follow_directory_symlink))
    if (e.is_regular_file() && e.path().filename().string()[0] != '.') files.push_back(e.path().string());
  std::sort(files.begin(), files.end());
  return files;
}

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

class SplitWriter {
 public:
  SplitWriter(std::string dir, std::string prefix, solar::data::ShardInfo info, uint64_t shard_tokens)
      : dir_(std::move(dir)), prefix_(std::move(prefix)), info_(info), cap_(shard_tokens) {}
  void add(const std::vector<int>& ids) {
    buf_.insert(buf_.end(), ids.begin(), ids.end());
    total_ += ids.size(), docs_++;
    while (buf_.size() >= cap_) {
      std::vector<uint32_t> rest(buf_.begin() + cap_, buf_.end());
      buf_.resize(cap_);
      flush();
      buf_ = std::move(rest);
    }
  }
  void finish() {
    if (!buf_.empty() || shards_.empty()) flush();
  }
  uint64_t tokens() const { return total_; }
  uint64_t docs() const { return docs_; }
  const std::vector<std::string>& shards() const { return shards_; }

 private:
  void flush() {
    char name[64];
    std::snprintf(name, sizeof name, "%s-%05zu.bin", prefix_.c_str(), shards_.size());
    solar::data::write_shard(solar::join_path(dir_, name), info_, buf_);
    shards_.push_back(name);
    buf_.clear();
  }
  std::string dir_, prefix_;
  solar::data::ShardInfo info_;
  uint64_t cap_, total_ = 0, docs_ = 0;
  std::vector<uint32_t> buf_;
  std::vector<std::string> shards_;
};

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
  auto& seq = a.integer("--seq-len", 0, "check both splits hold at least one sequence of this length");
  auto& per_file = a.flag("--doc-per-file", "one document per text file (default: split at blank lines)");
  auto& force = a.flag("-f,--force", "replace an existing output folder");
  if (!a.parse(argv)) return a.exit_code();
  if (m.empty()) solar::fail("-m/--model", "", "expected a tokenizer or model path");
  if (in.empty()) solar::fail("-i/--input", "", "expected an input file or folder");
  if (out.empty()) solar::fail("-o/--output", "", "expected an output folder");
  solar::cli::check_range("--val-fraction", frac, 0, 0.5);
  uint64_t val_target = val_tokens.empty() ? 0 : parse_count(val_tokens, "--val-tokens");
  uint64_t shard_tokens = parse_count(shard, "--shard-tokens");
  if (solar::path_exists(out) && !force) solar::fail(out, "", "already exists (use --force to replace)");

  Source src = open_source(m);
  solar::data::ShardInfo info{uint32_t(src.tok->vocab_size()), uint32_t(src.tok->bos_id()),
                              uint32_t(src.tok->eos_id())};
  auto files = input_files(in);
  uint64_t total_bytes = 0;
  for (auto& f : files) total_bytes += fs::file_size(f);

  std::string tmp = out + ".tmp-" + std::to_string(getpid());
  solar::remove_all(tmp);
  solar::make_dirs(tmp);
  SplitWriter train(tmp, "train", info, shard_tokens), val(tmp, "val", info, shard_tokens);
  auto add_doc = [&](std::string_view text) {
    if (text.find_first_not_of(" \t\r\n") == std::string_view::npos) return;
    std::vector<int> ids = src.tok->encode(text, true, true);
    uint64_t seen = train.tokens() + val.tokens() + ids.size();
    bool to_val = val_target ? val.tokens() < val_target : double(val.tokens()) < frac * double(seen);
    (to_val ? val : train).add(ids);
  };
  solar::Progress bar("tokenize", int64_t(std::max<uint64_t>(total_bytes, 1)), "B");
  uint64_t bytes_done = 0;
  try {
    for (auto& f : files) {
      std::string text = solar::read_file(f);
      if (f.ends_with(".jsonl")) {
        size_t line_no = 0, at = 0;
        while (at < text.size()) {
          size_t nl = text.find('\n', at);
          std::string_view line(text.data() + at, (nl == std::string::npos ? text.size() : nl) - at);
          at = nl == std::string::npos ? text.size() : nl + 1;
          line_no++;
          if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
          auto j = json::parse(line, nullptr, false);
          std::string where = f + ":" + std::to_string(line_no);
          if (j.is_discarded() || !j.is_object()) solar::fail(where, "", "expected one JSON object per line");
          if (!j.contains(field) || !j[field].is_string())
            solar::fail(where, field, "expected a string field (set --text-field)");
          add_doc(j[field].get<std::string>());
        }
      } else if (per_file) {
        add_doc(text);
      } else {
        size_t at = 0;
        while (at < text.size()) {
          size_t end = text.find("\n\n", at);
          if (end == std::string::npos) end = text.size();
          add_doc(std::string_view(text).substr(at, end - at));
          at = end + 2;
        }
      }
      bytes_done += text.size();
      bar.update(int64_t(bytes_done), double(bytes_done));
    }
    if (train.docs() + val.docs() == 0) solar::fail(in, "", "empty corpus: no non-blank documents");
    if (train.docs() == 0 || val.docs() == 0)
      solar::fail(in, "", "expected at least 2 documents to hold out validation, got " +
                              std::to_string(train.docs() + val.docs()) +
                              (per_file ? "" : " (the text has no blank lines to split at)"));
    uint64_t need = uint64_t(std::max<int64_t>(seq, 1)) + 1;
    for (auto* w : {&train, &val})
      if (w->tokens() < need)
        solar::fail(in, w == &train ? "train" : "val",
                    "too few tokens for one sequence: expected >= " + std::to_string(need) + ", got " +
                        std::to_string(w->tokens()) + (w == &val ? " (raise --val-fraction)" : ""));
    train.finish();
    val.finish();
    bar.finish(double(bytes_done));
    json meta = {{"format", "SOLTOK01"},
                 {"tokenizer", src.path},
                 {"vocab_size", info.vocab_size},
                 {"bos", info.bos},
                 {"eos", info.eos},
                 {"dtype", solar::data::shard_dtype_for(info.vocab_size) == 2 ? "u16" : "u32"},
                 {"input", in},
                 {"files", files.size()},
                 {"text_field", field},
                 {"train_tokens", train.tokens()},
                 {"train_docs", train.docs()},
                 {"train_shards", train.shards()},
                 {"val_tokens", val.tokens()},
                 {"val_docs", val.docs()},
                 {"val_shards", val.shards()}};
    solar::write_file_atomic(solar::join_path(tmp, "meta.json"), meta.dump(2) + "\n");
    solar::commit_dir(tmp, out, true);
    std::fprintf(stderr, "solar tokenize: %s: %llu train tokens (%llu docs, %zu shards), %llu val tokens (%llu docs)\n",
                 out.c_str(), (unsigned long long)train.tokens(), (unsigned long long)train.docs(),
                 train.shards().size(), (unsigned long long)val.tokens(), (unsigned long long)val.docs());
  } catch (...) {
    solar::remove_all(tmp);
    throw;
  }
  return 0;
}

solar::cli::Register reg("tokenize", "tokenize a text corpus into token shards for `solar train`", run);

}  // namespace
