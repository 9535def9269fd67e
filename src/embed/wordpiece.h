// solar/embed/wordpiece.h — BERT's tokenizer: basic tokenization, then WordPiece.
//
// Matches Hugging Face's BertTokenizerFast (what sentence-transformers runs)
// token for token: the text is cleaned (NUL, U+FFFD and control/format/
// unassigned characters dropped, every White_Space character made a space),
// CJK ideographs get spaces around them, accents are stripped (NFD, then
// nonspacing marks dropped) and the text lower-cased (full Unicode mapping,
// ICU), then split on whitespace and around every punctuation character
// (ASCII punctuation and Unicode P*). Each word is matched greedily, longest
// prefix first, against vocab.txt ("##" marks a continuation); a word longer
// than 100 characters or with an unmatched rest becomes [UNK].
// Invalid UTF-8 bytes read as U+FFFD, hence dropped like Python's decoding
// with errors="replace" would before the cleaning step.
// Threads: encode() is const and safe to call concurrently.
#pragma once
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace solar::embed {

class WordPiece {
 public:
  // vocab.txt: one token per line, the line number is the id. `lower`:
  // the model is uncased (tokenizer_config.json's do_lower_case).
  static WordPiece load(const std::string& vocab_path, bool lower = true);
  WordPiece(std::vector<std::string> vocab, bool lower);

  // The words of basic tokenization (cleaned, lower-cased, split), for tests.
  std::vector<std::string> basic_tokens(const std::string& text) const;
  // [CLS] pieces… [SEP], at most max_len ids (pieces past max_len − 2 are
  // cut, as HF truncation does); *truncated says whether that happened.
  std::vector<int32_t> encode(const std::string& text, size_t max_len, bool* truncated = nullptr) const;
  // The pieces of one text without specials or truncation.
  std::vector<int32_t> pieces(const std::string& text) const;

  const std::string& piece(int32_t id) const { return vocab_.at(size_t(id)); }
  size_t size() const { return vocab_.size(); }
  int32_t cls() const { return cls_; }
  int32_t sep() const { return sep_; }

 private:
  std::vector<std::string> vocab_;
  std::unordered_map<std::string, int32_t> ids_;
  bool lower_;
  int32_t cls_ = -1, sep_ = -1, unk_ = -1;
  int32_t id_of(const std::string& token, const char* what) const;
};

}  // namespace solar::embed
