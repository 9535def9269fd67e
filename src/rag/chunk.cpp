// Blocks → chunks: pack neighbours under one heading and page up to the
// token budget; cut a block that alone exceeds it into overlapping windows.
#include <algorithm>

#include "rag/rag.h"

namespace solar::rag {
namespace {

struct Word {
  int64_t start, end;  // byte offsets in the block's text
};
std::vector<Word> words_of(const std::string& t) {
  std::vector<Word> w;
  size_t i = 0;
  while (i < t.size()) {
    while (i < t.size() && isspace(uint8_t(t[i]))) i++;
    size_t s = i;
    while (i < t.size() && !isspace(uint8_t(t[i]))) i++;
    if (i > s) w.push_back({int64_t(s), int64_t(i)});
  }
  return w;
}

}  // namespace

std::string embed_text(const Chunk& c) { return c.heading.empty() ? c.text : c.heading + "\n" + c.text; }

std::vector<Chunk> chunk_blocks(const std::vector<Block>& blocks, const ChunkOptions& opt,
                                const std::function<int64_t(const std::string&)>& count_tokens) {
  std::vector<Chunk> out;
  Chunk cur;
  int64_t cur_tokens = 0;
  bool cur_alone = false;
  auto flush = [&] {
    if (!cur.text.empty()) out.push_back(std::move(cur));
    cur = Chunk{};
    cur_tokens = 0;
  };
  for (const Block& b : blocks) {
    // The heading is embedded with the chunk, so it counts against the budget.
    int64_t budget = std::max<int64_t>(16, opt.max_tokens - (b.heading.empty() ? 0 : count_tokens(b.heading)));
    int64_t n = count_tokens(b.text);
    bool same = !cur.text.empty() && !cur_alone && !b.alone && cur.heading == b.heading && cur.page == b.page;
    if (n > budget) {
      flush();
      std::vector<Word> w = words_of(b.text);
      // Words per window from this block's tokens-per-word, with 10% slack.
      double tpw = double(n) / double(std::max<size_t>(1, w.size()));
      int64_t win = std::max<int64_t>(1, int64_t(double(budget) / tpw * 0.9));
      int64_t ov = std::min<int64_t>(win / 2, int64_t(double(opt.overlap) / tpw));
      for (int64_t s = 0; s < int64_t(w.size());) {
        int64_t e = std::min<int64_t>(int64_t(w.size()), s + win);
        auto piece = [&] { return b.text.substr(size_t(w[size_t(s)].start), size_t(w[size_t(e - 1)].end - w[size_t(s)].start)); };
        // Token-dense stretches (numbers, tables, CJK) overflow the estimate: shrink until it fits.
        while (e - s > 1 && count_tokens(piece()) > budget) e = s + std::max<int64_t>(1, (e - s) * 4 / 5);
        Chunk c{piece(), b.heading, b.page, b.start + w[size_t(s)].start, b.start + w[size_t(e - 1)].end};
        out.push_back(std::move(c));
        if (e == int64_t(w.size())) break;
        s = std::max(s + 1, e - ov);
      }
      continue;
    }
    if (!same || cur_tokens + n > budget) flush();
    if (cur.text.empty()) {
      cur = Chunk{b.text, b.heading, b.page, b.start, b.end};
      cur_alone = b.alone;
    } else {
      cur.text += "\n\n" + b.text;
      cur.end = b.end;
    }
    cur_tokens += n + 1;
  }
  flush();
  return out;
}

}  // namespace solar::rag
