// BertTokenizerFast's normalizer, pre-tokenizer and WordPiece model, on ICU.
#include "embed/wordpiece.h"

#include <unicode/uchar.h>
#include <unicode/unorm2.h>
#include <unicode/ustring.h>
#include <unicode/utf8.h>

#include "core/error.h"
#include "core/fs.h"

namespace solar::embed {
namespace {

// HF's is_chinese_char: the CJK Unified Ideographs blocks, not Hangul or kana.
bool is_cjk(UChar32 c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
         (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}
bool is_space(UChar32 c) { return c == '\t' || c == '\n' || c == '\r' || u_hasBinaryProperty(c, UCHAR_WHITE_SPACE); }
// HF's is_control: general category C* (Cc, Cf, Cn, Co, Cs) except tab and newlines.
bool is_other(UChar32 c) {
  if (c == '\t' || c == '\n' || c == '\r') return false;
  return (U_GET_GC_MASK(c) & U_GC_C_MASK) != 0;
}
bool is_punct(UChar32 c) {
  if (c < 128) return (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126);
  return (U_GET_GC_MASK(c) & U_GC_P_MASK) != 0;
}

std::vector<UChar32> decode_utf8(const std::string& s) {
  std::vector<UChar32> out;
  out.reserve(s.size());
  int32_t i = 0, n = int32_t(s.size());
  while (i < n) {
    UChar32 c;
    U8_NEXT(reinterpret_cast<const uint8_t*>(s.data()), i, n, c);
    out.push_back(c < 0 ? 0xFFFD : c);
  }
  return out;
}
void append_utf8(std::string& out, UChar32 c) {
  char buf[4];
  int32_t i = 0;
  U8_APPEND_UNSAFE(reinterpret_cast<uint8_t*>(buf), i, c);
  out.append(buf, size_t(i));
}

// Cleaned, CJK-spaced, accent-stripped, lower-cased code points.
std::vector<UChar32> normalize(const std::string& text, bool lower) {
  std::u16string u;
  u.reserve(text.size());
  for (UChar32 c : decode_utf8(text)) {
    if (c == 0 || c == 0xFFFD || is_other(c)) continue;
    if (is_space(c)) c = ' ';
    bool cjk = is_cjk(c);
    if (cjk) u.push_back(u' ');
    if (c > 0xFFFF) {
      u.push_back(char16_t(U16_LEAD(c)));
      u.push_back(char16_t(U16_TRAIL(c)));
    } else {
      u.push_back(char16_t(c));
    }
    if (cjk) u.push_back(u' ');
  }
  if (lower) {
    UErrorCode st = U_ZERO_ERROR;
    const UNormalizer2* nfd = unorm2_getNFDInstance(&st);
    std::u16string d(u.size() * 3 + 16, u'\0');
    int32_t n = unorm2_normalize(nfd, reinterpret_cast<const UChar*>(u.data()), int32_t(u.size()),
                                 reinterpret_cast<UChar*>(d.data()), int32_t(d.size()), &st);
    if (st == U_BUFFER_OVERFLOW_ERROR) {
      st = U_ZERO_ERROR;
      d.resize(size_t(n));
      n = unorm2_normalize(nfd, reinterpret_cast<const UChar*>(u.data()), int32_t(u.size()),
                           reinterpret_cast<UChar*>(d.data()), int32_t(d.size()), &st);
    }
    if (U_FAILURE(st)) fail("text", "NFD", u_errorName(st));
    d.resize(size_t(n));
    std::u16string kept;
    kept.reserve(d.size());
    for (int32_t i = 0; i < n;) {
      int32_t start = i;
      UChar32 c;
      U16_NEXT(d.data(), i, n, c);
      if (u_charType(c) != U_NON_SPACING_MARK) kept.append(d, size_t(start), size_t(i - start));
    }
    std::u16string l(kept.size() * 2 + 16, u'\0');
    st = U_ZERO_ERROR;
    n = u_strToLower(reinterpret_cast<UChar*>(l.data()), int32_t(l.size()), reinterpret_cast<const UChar*>(kept.data()),
                     int32_t(kept.size()), "", &st);
    if (st == U_BUFFER_OVERFLOW_ERROR) {
      st = U_ZERO_ERROR;
      l.resize(size_t(n));
      n = u_strToLower(reinterpret_cast<UChar*>(l.data()), int32_t(l.size()),
                       reinterpret_cast<const UChar*>(kept.data()), int32_t(kept.size()), "", &st);
    }
    if (U_FAILURE(st)) fail("text", "lower-case", u_errorName(st));
    l.resize(size_t(n));
    u = std::move(l);
  }
  std::vector<UChar32> out;
  out.reserve(u.size());
  for (int32_t i = 0, n = int32_t(u.size()); i < n;) {
    UChar32 c;
    U16_NEXT(u.data(), i, n, c);
    out.push_back(c);
  }
  return out;
}

constexpr size_t kMaxWordChars = 100;  // HF's max_input_chars_per_word

}  // namespace

WordPiece::WordPiece(std::vector<std::string> vocab, bool lower) : vocab_(std::move(vocab)), lower_(lower) {
  for (size_t i = 0; i < vocab_.size(); i++) ids_.emplace(vocab_[i], int32_t(i));  // first wins, as HF
  cls_ = id_of("[CLS]", "the [CLS] token");
  sep_ = id_of("[SEP]", "the [SEP] token");
  unk_ = id_of("[UNK]", "the [UNK] token");
}

int32_t WordPiece::id_of(const std::string& token, const char* what) const {
  auto it = ids_.find(token);
  if (it == ids_.end()) fail("vocab.txt", token, std::string("missing: expected ") + what + " in the vocabulary");
  return it->second;
}

WordPiece WordPiece::load(const std::string& vocab_path, bool lower) {
  std::string text = read_file(vocab_path);
  std::vector<std::string> vocab;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    std::string line = text.substr(pos, nl - pos);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    vocab.push_back(std::move(line));
    pos = nl + 1;
  }
  if (vocab.empty()) fail(vocab_path, "vocabulary", "empty: expected one token per line");
  try {
    return WordPiece(std::move(vocab), lower);
  } catch (const Error& e) {
    fail(vocab_path, "vocabulary", e.what());
  }
}

std::vector<std::string> WordPiece::basic_tokens(const std::string& text) const {
  std::vector<std::string> words;
  std::string cur;
  auto flush = [&] {
    if (!cur.empty()) words.push_back(std::move(cur));
    cur.clear();
  };
  for (UChar32 c : normalize(text, lower_)) {
    if (is_space(c)) {
      flush();
    } else if (is_punct(c)) {
      flush();
      append_utf8(cur, c);
      flush();
    } else {
      append_utf8(cur, c);
    }
  }
  flush();
  return words;
}

std::vector<int32_t> WordPiece::pieces(const std::string& text) const {
  std::vector<int32_t> ids;
  std::string sub;
  for (const std::string& w : basic_tokens(text)) {
    // Code point boundaries: a piece never splits a character.
    std::vector<size_t> bounds;
    for (size_t i = 0; i < w.size(); i++)
      if ((uint8_t(w[i]) & 0xC0) != 0x80) bounds.push_back(i);
    bounds.push_back(w.size());
    if (bounds.size() - 1 > kMaxWordChars) {
      ids.push_back(unk_);
      continue;
    }
    size_t n0 = ids.size(), b = 0;
    bool bad = false;
    while (b + 1 < bounds.size()) {
      int32_t found = -1;
      size_t e = bounds.size() - 1;
      for (; e > b; e--) {
        sub.assign(b ? "##" : "");
        sub.append(w, bounds[b], bounds[e] - bounds[b]);
        auto it = ids_.find(sub);
        if (it != ids_.end()) {
          found = it->second;
          break;
        }
      }
      if (found < 0) {
        bad = true;
        break;
      }
      ids.push_back(found);
      b = e;
    }
    if (bad) {
      ids.resize(n0);
      ids.push_back(unk_);
    }
  }
  return ids;
}

std::vector<int32_t> WordPiece::encode(const std::string& text, size_t max_len, bool* truncated) const {
  if (max_len < 2) fail("WordPiece::encode", "max_len", "expected at least 2 (room for [CLS] and [SEP]), got " + std::to_string(max_len));
  std::vector<int32_t> p = pieces(text);
  bool cut = p.size() > max_len - 2;
  if (cut) p.resize(max_len - 2);
  if (truncated) *truncated = cut;
  std::vector<int32_t> ids;
  ids.reserve(p.size() + 2);
  ids.push_back(cls_);
  ids.insert(ids.end(), p.begin(), p.end());
  ids.push_back(sep_);
  return ids;
}

}  // namespace solar::embed
