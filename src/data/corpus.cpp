// solar/data/corpus.cpp — see corpus.h.
#include "data/corpus.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/fs.h"
#include "core/json.h"
#include "core/log.h"
#include "core/progress.h"
#include "data/shard.h"
#include "tokenizer/tokenizer.h"

namespace solar::data {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::vector<std::string> corpus_files(const std::string& in) {
  if (!path_exists(in)) fail(in, "", "no such file or folder");
  if (!is_dir(in)) {
    check_input_file(in);  // a FIFO or device named directly; a folder's walk keeps regular files only
    return {in};
  }
  std::vector<std::string> files;
  for (auto& e : fs::recursive_directory_iterator(in, fs::directory_options::follow_directory_symlink))
    if (e.is_regular_file() && e.path().filename().string()[0] != '.') files.push_back(e.path().string());
  std::sort(files.begin(), files.end());
  return files;
}

namespace {

class SplitWriter {
 public:
  SplitWriter(std::string dir, std::string prefix, ShardInfo info, uint64_t shard_tokens)
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
    write_shard(join_path(dir_, name), info_, buf_);
    shards_.push_back(name);
    buf_.clear();
  }
  std::string dir_, prefix_;
  ShardInfo info_;
  uint64_t cap_, total_ = 0, docs_ = 0;
  std::vector<uint32_t> buf_;
  std::vector<std::string> shards_;
};

}  // namespace

CorpusCounts tokenize_corpus(const CorpusOptions& opt, const tokenizer::Tokenizer& tok) {
  const std::string& in = opt.input;
  const std::string& out = opt.output_dir;
  const std::string& field = opt.text_field;
  const uint64_t val_target = opt.val_tokens, shard_tokens = opt.shard_tokens;
  const double frac = opt.val_fraction;
  if (shard_tokens == 0) fail("tokenize", "shard_tokens", "expected a positive count");
  // Shards wrap every document as BOS … EOS: a tokenizer without them cannot make one.
  for (auto [name, id] : {std::pair{"bos", tok.bos_id()}, {"eos", tok.eos_id()}})
    if (id < 0 || id >= tok.vocab_size())
      fail(opt.tokenizer_path, std::string(name) + "_id",
           "expected a token id in [0, " + std::to_string(tok.vocab_size()) + ") (shards wrap documents as BOS … EOS), got " +
               std::to_string(id));
  ShardInfo info{uint32_t(tok.vocab_size()), uint32_t(tok.bos_id()), uint32_t(tok.eos_id())};
  auto files = corpus_files(in);
  uint64_t total_bytes = 0;
  for (auto& f : files) total_bytes += fs::file_size(f);

  std::string tmp = temp_path_for(out);
  remove_all(tmp);
  make_dirs(tmp);
  SplitWriter train(tmp, "train", info, shard_tokens), val(tmp, "val", info, shard_tokens);
  auto add_doc = [&](std::string_view text) {
    if (text.find_first_not_of(" \t\r\n") == std::string_view::npos) return;
    std::vector<int> ids = tok.encode(text, true, true);
    uint64_t seen = train.tokens() + val.tokens() + ids.size();
    bool to_val = val_target ? val.tokens() < val_target : double(val.tokens()) < frac * double(seen);
    (to_val ? val : train).add(ids);
  };
  std::unique_ptr<Progress> bar;
  if (opt.progress) bar = std::make_unique<Progress>("tokenize", int64_t(std::max<uint64_t>(total_bytes, 1)), "B");
  uint64_t bytes_done = 0;
  try {
    for (auto& f : files) {
      std::string text = read_file(f, UINT64_MAX);  // a corpus file may be large; it is a regular file
      if (f.ends_with(".jsonl")) {
        size_t line_no = 0, at = 0;
        while (at < text.size()) {
          size_t nl = text.find('\n', at);
          std::string_view line(text.data() + at, (nl == std::string::npos ? text.size() : nl) - at);
          at = nl == std::string::npos ? text.size() : nl + 1;
          line_no++;
          if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
          std::string where = f + ":" + std::to_string(line_no);
          auto j = parse_json(line, where);
          if (!j.is_object()) fail(where, "", "expected one JSON object per line, got " + json_brief(j));
          if (!j.contains(field) || !j[field].is_string())
            fail(where, field, "expected a string field (set --text-field)");
          add_doc(j[field].get<std::string>());
        }
      } else if (opt.doc_per_file) {
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
      if (bar) bar->update(int64_t(bytes_done), double(bytes_done));
    }
    if (train.docs() + val.docs() == 0) fail(in, "", "empty corpus: no non-blank documents");
    if (train.docs() == 0 || val.docs() == 0)
      fail(in, "", "expected at least 2 documents to hold out validation, got " +
                         std::to_string(train.docs() + val.docs()) +
                         (opt.doc_per_file ? "" : " (the text has no blank lines to split at)"));
    uint64_t need = uint64_t(std::max<int64_t>(opt.seq_len, 1)) + 1;
    for (auto* w : {&train, &val})
      if (w->tokens() < need)
        fail(in, w == &train ? "train" : "val",
             "too few tokens for one sequence: expected >= " + std::to_string(need) + ", got " +
                 std::to_string(w->tokens()) + (w == &val ? " (raise --val-fraction)" : ""));
    train.finish();
    val.finish();
    if (bar) bar->finish(double(bytes_done));
    json meta = {{"format", "SOLTOK01"},
                 {"tokenizer", opt.tokenizer_path},
                 {"vocab_size", info.vocab_size},
                 {"bos", info.bos},
                 {"eos", info.eos},
                 {"dtype", shard_dtype_for(info.vocab_size) == 2 ? "u16" : "u32"},
                 {"input", in},
                 {"files", files.size()},
                 {"text_field", field},
                 {"train_tokens", train.tokens()},
                 {"train_docs", train.docs()},
                 {"train_shards", train.shards()},
                 {"val_tokens", val.tokens()},
                 {"val_docs", val.docs()},
                 {"val_shards", val.shards()}};
    write_file_atomic(join_path(tmp, "meta.json"), meta.dump(2) + "\n");
    commit_dir(tmp, out, true);
    CorpusCounts r{files.size(), train.tokens(), train.docs(), val.tokens(), val.docs(), train.shards(), val.shards()};
    char msg[512];
    std::snprintf(msg, sizeof msg, "%s: %llu train tokens (%llu docs, %zu shards), %llu val tokens (%llu docs)",
                  out.c_str(), (unsigned long long)r.train_tokens, (unsigned long long)r.train_docs,
                  r.train_shards.size(), (unsigned long long)r.val_tokens, (unsigned long long)r.val_docs);
    log_info("tokenize", msg, {{"output", out}, {"train_tokens", r.train_tokens}, {"val_tokens", r.val_tokens}});
    return r;
  } catch (...) {
    remove_all(tmp);
    throw;
  }
}

}  // namespace solar::data
