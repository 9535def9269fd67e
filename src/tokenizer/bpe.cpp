// Score-based BPE over a Vocab: llama2.c run.c's encode/decode, for
// tokenizer.bin and GGUF tokenizer metadata.
//
// run.c merges the adjacent pair whose concatenation has the highest score
// (leftmost on ties) until none is in the vocab, rescanning the whole
// sequence per merge: O(n^2). A heap with stale-entry checks makes exactly
// the same choices in O(n log n), so long training texts stay fast.
#include <cmath>
#include <cstdio>
#include <queue>
#include <unordered_map>

#include "core/error.h"
#include "tokenizer/tokenizer_impl.h"

namespace solar::tokenizer {
namespace {

constexpr std::string_view kSpace = "\xE2\x96\x81";  // "▁", SentencePiece's space

// Lets piece lookups take a string_view without building a std::string.
struct ViewHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

class BpeTokenizer : public Tokenizer {
 public:
  explicit BpeTokenizer(Vocab v) : v_(std::move(v)) {
    int n = (int)v_.pieces.size();
    if (n == 0) fail("", "vocab", "expected at least one piece, got 0");
    if ((int)v_.scores.size() != n || (int)v_.types.size() != n)
      fail("", "vocab", "expected " + std::to_string(n) + " scores and types, got " +
                            std::to_string(v_.scores.size()) + " and " + std::to_string(v_.types.size()));
    for (int id : {v_.bos, v_.eos, v_.unk})
      if (id < -1 || id >= n) fail("", "vocab.special_ids", "expected -1.." + std::to_string(n - 1) + ", got " + std::to_string(id));
    for (int i = 0; i < n; i++) ids_.emplace(v_.pieces[i], i);  // first id wins on duplicates
    bytes_.assign(n, -1);
    for (int i = 0; i < n; i++)
      if (v_.types[i] == 6 || v_.types[i] == 1) bytes_[i] = parse_byte_piece(v_.pieces[i]);
    for (int b = 0; b < 256; b++) {
      char name[8];
      snprintf(name, sizeof name, "<0x%02X>", b);
      byte_id_[b] = piece_to_id(name);
      if (byte_id_[b] < 0) byte_id_[b] = v_.unk;
    }
    space_ = piece_to_id(kSpace);
  }

  std::vector<int> encode(std::string_view text, bool add_bos, bool add_eos) const override {
    std::vector<int> out;
    if (add_bos && v_.bos >= 0) out.push_back(v_.bos);
    if (!text.empty()) {
      std::vector<int> ids;
      if (space_ >= 0) ids.push_back(space_);  // run.c's dummy prefix
      // One symbol per UTF-8 character (a lead byte and up to 3 continuation
      // bytes, as run.c groups them); unknown characters fall back to bytes.
      for (size_t i = 0; i < text.size();) {
        size_t j = i + 1;
        while (j < text.size() && (text[j] & 0xC0) == 0x80 && j - i < 4) j++;
        std::string_view ch = text.substr(i, j - i);
        int id = piece_to_id(ch == " " ? kSpace : ch);
        if (id >= 0) {
          ids.push_back(id);
        } else {
          for (unsigned char c : ch)
            if (byte_id_[c] >= 0) ids.push_back(byte_id_[c]);
        }
        i = j;
      }
      merge(ids);
      out.insert(out.end(), ids.begin(), ids.end());
    }
    if (add_eos && v_.eos >= 0) out.push_back(v_.eos);
    return out;
  }

  // run.c's decode: byte pieces become raw bytes, "▁" a space, and the
  // leading space of the first piece (and of a piece right after BOS) is
  // dropped. BOS/EOS, control and unknown pieces are skipped as HF does.
  std::string decode(const std::vector<int>& ids) const override {
    std::string out;
    bool strip = true;
    for (int id : ids) {
      check(id);
      if (id == v_.bos) {
        strip = true;
        continue;
      }
      if (id == v_.eos || v_.types[id] == 2 || v_.types[id] == 3) continue;
      if (bytes_[id] >= 0) {
        out.push_back((char)bytes_[id]);
      } else {
        std::string_view p = v_.pieces[id];
        if (strip && p.starts_with(kSpace)) p.remove_prefix(kSpace.size());
        for (size_t k; (k = p.find(kSpace)) != std::string_view::npos; p.remove_prefix(k + kSpace.size()))
          out.append(p.substr(0, k)).push_back(' ');
        out.append(p);
      }
      strip = false;
    }
    return out;
  }

  int vocab_size() const override { return (int)v_.pieces.size(); }
  int bos_id() const override { return v_.bos; }
  int eos_id() const override { return v_.eos; }
  Vocab vocab() const override { return v_; }
  int piece_to_id(std::string_view piece) const override {
    auto it = ids_.find(piece);
    return it == ids_.end() ? -1 : it->second;
  }
  std::string id_to_piece(int id) const override {
    check(id);
    return v_.pieces[id];
  }
  int byte_value(int id) const override {
    check(id);
    return bytes_[id];
  }

 private:
  Vocab v_;
  std::unordered_map<std::string, int, ViewHash, std::equal_to<>> ids_;
  std::vector<int> bytes_;  // per id: the raw byte of a "<0xNN>" piece, or -1
  int byte_id_[256];
  int space_ = -1;

  void check(int id) const {
    if (id < 0 || id >= vocab_size())
      fail("", "token id", "expected 0.." + std::to_string(vocab_size() - 1) + ", got " + std::to_string(id));
  }

  struct Cand {
    float score;
    int left, right, left_ver, right_ver, id;
    bool operator<(const Cand& o) const {  // max-heap: best score, then leftmost
      return score != o.score ? score < o.score : left > o.left;
    }
  };

  void merge(std::vector<int>& ids) const {
    int n = (int)ids.size();
    std::vector<int> next(n), prev(n), ver(n, 0);
    for (int i = 0; i < n; i++) next[i] = i + 1, prev[i] = i - 1;
    std::priority_queue<Cand> heap;
    std::string pair;
    auto consider = [&](int l, int r) {
      if (l < 0 || r >= n) return;
      pair.assign(v_.pieces[ids[l]]).append(v_.pieces[ids[r]]);
      int id = piece_to_id(pair);
      if (id >= 0 && v_.scores[id] > -1e10f) heap.push({v_.scores[id], l, r, ver[l], ver[r], id});
    };
    for (int i = 0; i + 1 < n; i++) consider(i, i + 1);
    while (!heap.empty()) {
      Cand c = heap.top();
      heap.pop();
      if (ver[c.left] != c.left_ver || ver[c.right] != c.right_ver || next[c.left] != c.right) continue;
      ids[c.left] = c.id;
      ver[c.left]++;
      ver[c.right] = -1;  // dead
      next[c.left] = next[c.right];
      if (next[c.left] < n) prev[next[c.left]] = c.left;
      consider(prev[c.left], c.left);
      consider(c.left, next[c.left]);
    }
    std::vector<int> kept;
    for (int i = 0; i < n; i = next[i]) kept.push_back(ids[i]);
    ids.swap(kept);
  }
};

}  // namespace

std::unique_ptr<Tokenizer> tokenizer_from_vocab(Vocab v) { return std::make_unique<BpeTokenizer>(std::move(v)); }

}  // namespace solar::tokenizer
