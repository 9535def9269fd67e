#include "tokenizer/spm_train.h"

#include <sentencepiece_trainer.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "core/fs.h"

namespace solar::tokenizer {
namespace {

// Files under each input, folders walked recursively in name order; files
// with a NUL byte in their first 4 KiB are binary and skipped.
std::vector<std::string> text_files(const std::vector<std::string>& inputs) {
  namespace fs = std::filesystem;
  std::vector<std::string> files;
  for (const auto& in : inputs) {
    if (!path_exists(in)) fail(in, "", "no such file or folder");
    if (!is_dir(in)) {
      check_input_file(in);  // a FIFO would block the reader, a device never end
      files.push_back(in);
      continue;
    }
    std::vector<std::string> found;
    for (const auto& e : fs::recursive_directory_iterator(in))
      if (e.is_regular_file() && read_file_prefix(e.path().string(), 4096).find('\0') == std::string::npos)
        found.push_back(e.path().string());
    std::sort(found.begin(), found.end());
    files.insert(files.end(), found.begin(), found.end());
  }
  if (files.empty()) fail("--input", "", "expected at least one text file, got none");
  return files;
}

// Streams non-empty lines from the files, one at a time.
class LineIterator : public sentencepiece::SentenceIterator {
 public:
  explicit LineIterator(std::vector<std::string> files) : files_(std::move(files)) { Next(); }
  bool done() const override { return done_; }
  const std::string& value() const override { return line_; }
  sentencepiece::util::Status status() const override { return status_; }
  void Next() override {
    while (true) {
      if (in_.is_open() && std::getline(in_, line_)) {
        if (!line_.empty()) return;
        continue;
      }
      if (in_.is_open()) in_.close();
      if (next_ == files_.size()) {
        done_ = true;
        return;
      }
      in_.open(files_[next_]);
      if (!in_) {
        status_ = sentencepiece::util::Status(sentencepiece::util::StatusCode::kNotFound, files_[next_] + ": cannot read");
        done_ = true;
        return;
      }
      next_++;
    }
  }

 private:
  std::vector<std::string> files_;
  size_t next_ = 0;
  std::ifstream in_;
  std::string line_;
  bool done_ = false;
  sentencepiece::util::Status status_;
};

}  // namespace

void train_tokenizer(const TokenizerTrainOptions& opt) {
  if (opt.output.empty()) fail("-o/--output", "", "required");
  if (opt.vocab_size < 260) fail("--vocab-size", "", "expected >= 260 (256 byte pieces + unk/bos/eos + 1), got " + std::to_string(opt.vocab_size));
  const std::vector<std::string> files = text_files(opt.inputs);
  LineIterator lines(files);
  // SentencePiece would say only "Internal: trainer_interface.cc(428) [!sentences_.empty()]".
  if (lines.done() && lines.status().ok())
    fail(files.size() == 1 ? files[0] : "--input", "", "no text to train on (expected non-empty lines, got " +
                                                           std::string(files.size() == 1 ? "none" : "none in any of " + std::to_string(files.size()) + " files") + ")");
  std::unordered_map<std::string, std::string> args = {
      {"model_type", opt.model_type},
      {"vocab_size", std::to_string(opt.vocab_size)},
      {"character_coverage", std::to_string(opt.character_coverage)},
      {"max_sentence_length", std::to_string(opt.max_sentence_length)},
      {"input_sentence_size", std::to_string(opt.input_sentence_size)},
      {"shuffle_input_sentence", "true"},
      {"num_threads", std::to_string(std::max(1, opt.threads))},
      {"byte_fallback", "true"},
      {"split_digits", "true"},
      {"allow_whitespace_only_pieces", "true"},
      {"unk_id", "0"},
      {"bos_id", "1"},
      {"eos_id", "2"},
      {"pad_id", "-1"},
      {"normalization_rule_name", "identity"},
      {"add_dummy_prefix", "true"},
      {"remove_extra_whitespaces", "false"},
      {"minloglevel", "1"},
  };
  std::string proto;
  auto st = sentencepiece::SentencePieceTrainer::Train(args, &lines, &proto);
  // A vocabulary the text cannot fill (or too small for its characters) is the flag's fault.
  if (!st.ok() && st.ToString().find("Vocabulary size") != std::string::npos)
    fail("--vocab-size", "", "expected a size this text supports: " + st.ToString());
  if (!st.ok()) fail(opt.output, "sentencepiece train", st.ToString());
  write_file_atomic(opt.output, proto);
}

}  // namespace solar::tokenizer
