// load_tokenizer(): SentencePiece or llama2.c by content; tokenizer.bin
// parsing; StreamDecoder.
#include "tokenizer/tokenizer.h"

#include <cmath>
#include <cstring>

#include "core/error.h"
#include "core/fs.h"
#include "tokenizer/tokenizer_impl.h"

namespace solar::tokenizer {

int parse_byte_piece(std::string_view p) {
  auto hex = [](char c) { return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1; };
  if (p.size() != 6 || !p.starts_with("<0x") || p[5] != '>' || hex(p[3]) < 0 || hex(p[4]) < 0) return -1;
  return hex(p[3]) * 16 + hex(p[4]);
}

Vocab read_llama2c_vocab(const std::string& path, std::string_view bytes, int vocab_size) {
  const std::string what = "not a SentencePiece model or llama2.c tokenizer.bin";
  auto i32 = [&](size_t at) {
    int32_t v;
    memcpy(&v, bytes.data() + at, 4);
    return v;
  };
  if (bytes.size() < 4) fail(path, "", what + " (" + std::to_string(bytes.size()) + " bytes)");
  // Real files have max_token_length well under 100; a larger value means
  // this is some other file, not a tokenizer.bin.
  int32_t max_len = i32(0);
  if (max_len <= 0 || max_len > 65536)
    fail(path, "max_token_length", what + ": expected 1..65536, got " + std::to_string(max_len));
  Vocab v;
  size_t at = 4;
  while (vocab_size > 0 ? (int)v.pieces.size() < vocab_size : at < bytes.size()) {
    std::string field = "token[" + std::to_string(v.pieces.size()) + "]";
    if (bytes.size() - at < 8)
      fail(path, field, "truncated: expected score and length (8 bytes), got " + std::to_string(bytes.size() - at) +
                            (vocab_size > 0 ? " (vocab_size " + std::to_string(vocab_size) + ")" : ""));
    float score;
    memcpy(&score, bytes.data() + at, 4);
    int32_t len = i32(at + 4);
    at += 8;
    if (!std::isfinite(score)) fail(path, field + ".score", "expected a finite float, got " + std::to_string(score));
    if (len < 0 || len > 65536) fail(path, field + ".length", what + ": expected 0..65536, got " + std::to_string(len));
    if (bytes.size() - at < (size_t)len)
      fail(path, field, "truncated: expected " + std::to_string(len) + " bytes, got " + std::to_string(bytes.size() - at));
    std::string piece;
    for (char c : bytes.substr(at, len)) piece += c == ' ' ? std::string("\xE2\x96\x81") : std::string(1, c);
    at += len;
    int id = (int)v.pieces.size();
    v.types.push_back(id == 0 ? 2 : id <= 2 ? 3 : parse_byte_piece(piece) >= 0 ? 6 : 1);
    v.pieces.push_back(std::move(piece));
    v.scores.push_back(score);
  }
  if (v.pieces.size() < 3) fail(path, "", what + ": expected at least 3 tokens (unk, bos, eos), got " + std::to_string(v.pieces.size()));
  return v;
}

std::unique_ptr<Tokenizer> load_tokenizer(const std::string& path, int vocab_size_hint) {
  if (is_dir(path)) return load_tokenizer(join_path(path, "tokenizer.model"), vocab_size_hint);
  if (read_file_prefix(path, 4) == "GGUF")
    fail(path, "", "a GGUF file: its tokenizer is read by formats/load.h (open_tokenizer)");
  std::string bytes = read_file(path);
  if (auto t = spm_from_proto(bytes)) return t;
  // Report against the format the file claims: a .model name, or a first
  // byte that tags one of ModelProto's length-delimited fields 1..5 (pieces,
  // trainer_spec, normalizer_spec, self_test_data, denormalizer_spec), is a
  // SentencePiece model that failed to parse, not a tokenizer.bin with a
  // strange max_token_length.
  auto not_spm = [&] {
    fail(path, "", "not a SentencePiece model: expected a tokenizer.model protobuf, and " +
                       (bytes.empty() ? std::string("the file is empty") : "it does not parse (truncated or corrupt?)"));
  };
  if (path.ends_with(".model")) not_spm();
  Vocab v;
  try {
    v = read_llama2c_vocab(path, bytes, vocab_size_hint);
  } catch (const Error&) {
    if (!bytes.empty() && (bytes[0] & 7) == 2 && bytes[0] >= 0x0a && bytes[0] <= 0x2a) not_spm();
    throw;
  }
  try {
    return tokenizer_from_vocab(std::move(v));
  } catch (const Error& e) {
    fail(path, "", e.what());
  }
}

StreamDecoder::StreamDecoder(const Tokenizer& tok) : tok_(tok) {}

std::string StreamDecoder::push(int id) {
  ids_.push_back(id);
  // Hold back while the trailing byte pieces are an unfinished UTF-8
  // character: decoding them now would give U+FFFD or a split character.
  int cont = 0;
  for (size_t i = ids_.size(); i-- > 0;) {
    int b = tok_.byte_value(ids_[i]);
    if (b < 0) break;
    if ((b & 0xC0) == 0x80) {
      if (++cont > 3) break;
      continue;
    }
    int need = (b & 0xE0) == 0xC0 ? 1 : (b & 0xF0) == 0xE0 ? 2 : (b & 0xF8) == 0xF0 ? 3 : 0;
    if (cont < need) return "";
    break;
  }
  std::string text = tok_.decode(ids_);
  std::string out = text.size() > emitted_ ? text.substr(emitted_) : "";
  emitted_ = std::max(emitted_, text.size());
  // Keep the work per token constant: restart from the last token when it
  // is text on its own (decode([a] + rest) == decode([a]) + the rest's text).
  if (ids_.size() >= 32 && tok_.byte_value(id) < 0) {
    std::string last = tok_.decode({id});
    if (!last.empty()) {
      ids_.assign(1, id);
      emitted_ = last.size();
    }
  }
  return out;
}

std::string StreamDecoder::flush() {
  std::string text = tok_.decode(ids_);
  std::string out = text.size() > emitted_ ? text.substr(emitted_) : "";
  ids_.clear();
  emitted_ = 0;
  return out;
}

}  // namespace solar::tokenizer
