#include "parse/table.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <regex>

#include "parse/text.h"

namespace solar::parse {

namespace {

constexpr double kTol = 2.5;       // points: rules this close touch
constexpr size_t kMaxRules = 20000;  // past this a page's rules are a drawing, not tables

bool touch(const Box& a, const Box& b) {
  return a.x0 <= b.x1 + kTol && b.x0 <= a.x1 + kTol && a.y0 <= b.y1 + kTol && b.y0 <= a.y1 + kTol;
}

// Sorted positions merged when closer than kTol.
std::vector<double> cluster(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  std::vector<double> out;
  for (double x : v) {
    if (!out.empty() && x - out.back() <= kTol) continue;
    out.push_back(x);
  }
  return out;
}

struct UnionFind {
  std::vector<int> p;
  explicit UnionFind(int n) : p(n) { std::iota(p.begin(), p.end(), 0); }
  int find(int x) { return p[x] == x ? x : p[x] = find(p[x]); }
  void unite(int a, int b) { p[find(a)] = find(b); }
};

// Words of `idx` joined in reading order (lines top to bottom, left to right).
std::string join_words(const Page& page, std::vector<int> idx) {
  std::sort(idx.begin(), idx.end(), [&](int a, int b) {
    const Box &x = page.words[a].box, &y = page.words[b].box;
    if (overlap_y(x, y) > 0.5 * std::min(x.h(), y.h())) return x.x0 < y.x0;
    return x.cy() < y.cy();
  });
  std::string s;
  for (int i : idx) {
    if (!s.empty()) s += ' ';
    s += page.words[i].text;
  }
  return s;
}

// Fills the cells' text from the words in each cell's box; returns false when
// fewer than two cells hold text (a frame around one thing).
bool fill_cells(const Page& page, Table& t, const std::vector<Box>& boxes, std::vector<char>& used) {
  std::vector<std::vector<int>> in(t.cells.size());
  std::vector<int> taken;
  for (size_t w = 0; w < page.words.size(); w++) {
    if (used[w]) continue;
    const Box& b = page.words[w].box;
    for (size_t c = 0; c < boxes.size(); c++) {
      if (b.cx() >= boxes[c].x0 && b.cx() <= boxes[c].x1 && b.cy() >= boxes[c].y0 && b.cy() <= boxes[c].y1) {
        in[c].push_back(int(w));
        taken.push_back(int(w));
        break;
      }
    }
  }
  int filled = 0;
  for (size_t c = 0; c < t.cells.size(); c++) {
    t.cells[c].text = join_words(page, in[c]);
    filled += !t.cells[c].text.empty();
  }
  if (filled < 2) return false;
  for (int w : taken) used[w] = 1;
  // The first row is a header row when all its words are bold.
  bool bold = false, all = true;
  for (size_t c = 0; c < t.cells.size(); c++) {
    if (t.cells[c].row != 0) continue;
    for (int w : in[c]) bold = true, all = all && page.words[w].bold;
  }
  if (bold && all && t.rows > 1)
    for (auto& c : t.cells)
      if (c.row == 0) c.header = true;
  return true;
}

bool grid_table(const Page& page, const std::vector<Rule>& rules, Table& t, std::vector<char>& used) {
  std::vector<double> xs, ys;
  std::vector<Box> hs, vs;
  for (const Rule& r : rules) {
    if (r.horizontal()) hs.push_back(r.box), ys.push_back(r.box.cy());
    else vs.push_back(r.box), xs.push_back(r.box.cx());
  }
  // Tables often draw no outer border: the rules' extent is the table's edge.
  Box ext = Box::empty();
  for (const Rule& r : rules) ext.add(r.box);
  if (!hs.empty()) xs.push_back(ext.x0 + 0.5), xs.push_back(ext.x1 - 0.5);
  if (!vs.empty()) ys.push_back(ext.y0 + 0.5), ys.push_back(ext.y1 - 0.5);
  xs = cluster(xs), ys = cluster(ys);
  if (xs.size() < 3 || ys.size() < 2) return false;  // at least two columns
  int R = int(ys.size()) - 1, C = int(xs.size()) - 1;
  if (size_t(R) * C > 100000) return false;
  auto vrule_at = [&](double x, double y) {
    for (const Box& b : vs)
      if (std::fabs(b.cx() - x) <= kTol && b.y0 - kTol <= y && y <= b.y1 + kTol) return true;
    return false;
  };
  auto hrule_at = [&](double x, double y) {
    for (const Box& b : hs)
      if (std::fabs(b.cy() - y) <= kTol && b.x0 - kTol <= x && x <= b.x1 + kTol) return true;
    return false;
  };
  UnionFind uf(R * C);
  for (int r = 0; r < R; r++)
    for (int c = 0; c < C; c++) {
      double my = (ys[r] + ys[r + 1]) / 2, mx = (xs[c] + xs[c + 1]) / 2;
      if (c + 1 < C && !vrule_at(xs[c + 1], my)) uf.unite(r * C + c, r * C + c + 1);
      if (r + 1 < R && !hrule_at(mx, ys[r + 1])) uf.unite(r * C + c, (r + 1) * C + c);
    }
  std::vector<int> r0(R * C, R), r1(R * C, -1), c0(R * C, C), c1(R * C, -1);
  for (int r = 0; r < R; r++)
    for (int c = 0; c < C; c++) {
      int g = uf.find(r * C + c);
      r0[g] = std::min(r0[g], r), r1[g] = std::max(r1[g], r), c0[g] = std::min(c0[g], c), c1[g] = std::max(c1[g], c);
    }
  t.rows = R, t.cols = C;
  t.box = {xs.front(), ys.front(), xs.back(), ys.back()};
  std::vector<Box> boxes;
  for (int r = 0; r < R; r++)
    for (int c = 0; c < C; c++) {
      int g = uf.find(r * C + c);
      if (r0[g] != r || c0[g] != c) continue;
      t.cells.push_back({r, c, r1[g] - r + 1, c1[g] - c + 1, false, ""});
      boxes.push_back({xs[c], ys[r], xs[c1[g] + 1], ys[r1[g] + 1]});
    }
  // A grid whose cells are all one row or one column is a frame or a list.
  if (t.cells.size() < 2) return false;
  return fill_cells(page, t, boxes, used);
}

bool starts_lower(const std::string& s) {
  unsigned char c = s.empty() ? 0 : static_cast<unsigned char>(s[0]);
  return (c >= 'a' && c <= 'z') || c == '(';
}

// Row spans in the first column of a table's body: a label with empty
// first-column cells beside the following rows (their other cells filled)
// spans them, as does a label set against the middle of its rows (the body
// then starts with an empty first cell: each empty cell joins the nearer
// label, the one above on a tie). A wrapped label's second line beside the
// next row's cells is not joined: it cannot be told from a label of its own
// in a column of lower-case names. Returns per row the rowspan of its
// first-column cell, 0 where a cell above covers it.
template <class RowT>
std::vector<int> first_column_rowspans(std::vector<RowT>& rows, int head_rows) {
  const int R = int(rows.size());
  std::vector<int> span(size_t(R), 1);
  // 1: one-column label in column 0; 0: column 0 empty, other cells filled; -1: neither.
  auto kind = [&](int r) {
    const auto& sp = rows[size_t(r)].spans;
    if (sp.empty()) return -1;
    if (sp[0].c0 == 0) return sp[0].c1 == 0 ? 1 : -1;
    return 0;
  };
  if (R - head_rows < 2) return span;
  bool centred = kind(head_rows) == 0;
  std::vector<int> owner(size_t(R), -1);  // the label row each body row's first cell belongs to
  for (int r = head_rows; r < R; r++) {
    if (kind(r) == 1) {
      owner[size_t(r)] = r;
      continue;
    }
    if (kind(r) != 0) continue;
    int up = -1, down = -1;
    for (int q = r - 1; q >= head_rows && kind(q) != -1; q--)
      if (kind(q) == 1) {
        up = q;
        break;
      }
    if (centred)
      for (int q = r + 1; q < R && kind(q) != -1; q++)
        if (kind(q) == 1) {
          down = q;
          break;
        }
    if (up >= 0 && (down < 0 || r - up <= down - r)) owner[size_t(r)] = up;
    else if (down >= 0) owner[size_t(r)] = down;
  }
  for (int r = head_rows; r < R;) {
    int o = owner[size_t(r)], e = r + 1;
    while (o >= 0 && e < R && owner[size_t(e)] == o) e++;
    if (o >= 0 && e - r > 1) {
      if (o != r) {  // a centred label moves up to its first row
        auto& from = rows[size_t(o)].spans;
        rows[size_t(r)].spans.insert(rows[size_t(r)].spans.begin(), std::move(from.front()));
        from.erase(from.begin());
      }
      span[size_t(r)] = e - r;
      for (int q = r + 1; q < e; q++) span[size_t(q)] = 0;
    }
    r = e;
  }
  return span;
}

// The words in region as a table (an unruled or booktabs one).
//  - rows: text lines; a line continues the cell above (a multi-line cell)
//    when it only fills columns the line above fills and either starts in
//    lower case or sits closer than the table's row pitch;
//  - columns: x ranges that at most one line in eight covers, wider than
//    0.8 em: a header spanning several columns does not hide their gaps;
//  - a word across a column gap makes its cell span those columns, as does
//    a rule under a header cell that reaches over more columns;
//  - header rows: those above the first rule between text lines, else the
//    first line.
bool aligned_table(const Page& page, const Box& region, const std::vector<Box>& hrules, Table& t, std::vector<char>& used) {
  std::vector<int> ws;
  std::vector<float> sizes;
  for (size_t w = 0; w < page.words.size(); w++) {
    const Box& b = page.words[w].box;
    if (!used[w] && b.cx() > region.x0 && b.cx() < region.x1 && b.cy() > region.y0 && b.cy() < region.y1) {
      ws.push_back(int(w));
      sizes.push_back(page.words[w].size);
    }
  }
  if (ws.size() < 4) return false;
  std::nth_element(sizes.begin(), sizes.begin() + sizes.size() / 2, sizes.end());
  const double size = std::max(double(sizes[sizes.size() / 2]), 4.0);
  auto box = [&](int w) -> const Box& { return page.words[w].box; };
  // A word taller than two lines is OCR noise (a smudge read as text): it
  // would glue lines together.
  std::vector<int> tall;
  for (int w : ws)
    if (box(w).h() > 2.5 * size) tall.push_back(w);
  ws.erase(std::remove_if(ws.begin(), ws.end(), [&](int w) { return box(w).h() > 2.5 * size; }), ws.end());
  if (ws.size() < 4) return false;

  struct Line {
    double y0, y1;
    std::vector<int> words;
  };
  std::vector<Line> lines;
  std::sort(ws.begin(), ws.end(), [&](int a, int b) { return box(a).y0 < box(b).y0; });
  // A word shares a line when 60% of it lies beside the line (rows of a
  // dense table touch, one's descenders on the next one's ascenders). A word
  // much taller than the text (a mark, glyphs of two rows read as one) joins
  // without stretching the line, which then took in the next rows too; a
  // speck much shorter than the text goes afterwards to the line nearest its
  // centre, where it started lines of its own.
  std::vector<int> odd;
  for (int w : ws) {
    const Box& b = box(w);
    if (b.h() < 0.7 * size) {
      odd.push_back(w);
    } else if (!lines.empty() && b.y0 < lines.back().y1 - 0.4 * b.h()) {
      if (b.h() <= 1.5 * size) lines.back().y1 = std::max(lines.back().y1, b.y1);
      lines.back().words.push_back(w);
    } else {
      lines.push_back({b.y0, b.y1, {w}});
    }
  }
  for (int w : odd) {
    const Box& b = box(w);
    size_t best = 0;
    double dist = 1e300;
    for (size_t k = 0; k < lines.size(); k++) {
      const double d = std::abs((lines[k].y0 + lines[k].y1) / 2 - b.cy());
      if (d < dist) best = k, dist = d;
    }
    if (lines.empty() || dist > size)
      lines.insert(std::upper_bound(lines.begin(), lines.end(), b.y0, [](double y, const Line& l) { return y < l.y0; }),
                   Line{b.y0, b.y1, {w}});
    else
      lines[best].words.push_back(w);
  }
  if (lines.size() < 2) return false;
  for (Line& l : lines)
    std::sort(l.words.begin(), l.words.end(), [&](int a, int b) { return box(a).x0 < box(b).x0; });

  // Column gaps from how many lines cover each x (bins of 1/8 em).
  double lo = 1e300, hi = -1e300;
  for (int w : ws) lo = std::min(lo, box(w).x0), hi = std::max(hi, box(w).x1);
  const double bin = size / 8;
  const size_t nb = size_t((hi - lo) / bin) + 1;
  if (nb > 1000000) return false;
  std::vector<int> cover(nb, 0);
  for (const Line& l : lines) {
    std::vector<char> hit(nb, 0);
    for (int w : l.words)
      for (size_t i = size_t((box(w).x0 - lo) / bin); i <= size_t((box(w).x1 - lo) / bin) && i < nb; i++) hit[i] = 1;
    for (size_t i = 0; i < nb; i++) cover[i] += hit[i];
  }
  const int tol = int(lines.size() / 8);
  std::vector<double> xs{region.x0};
  for (size_t i = 0; i < nb;) {
    if (cover[i] <= tol) {
      size_t j = i;
      while (j < nb && cover[j] <= tol) j++;
      if (i > 0 && j < nb && double(j - i) * bin > 0.8 * size) xs.push_back(lo + (i + j) / 2.0 * bin);
      i = j;
    } else {
      i++;
    }
  }
  xs.push_back(region.x1);
  const int C = int(xs.size()) - 1;
  if (C < 2) return false;
  auto col_of = [&](double x) { return int(std::upper_bound(xs.begin() + 1, xs.end() - 1, x) - xs.begin()) - 1; };

  // Cells of a line: runs of columns joined by the words that cross gaps.
  struct Span {
    int c0, c1;
    std::vector<int> words;
  };
  auto spans_of = [&](const std::vector<int>& words) {
    std::vector<Span> out;
    for (int w : words) {
      // A word reaches into a column when a third of an em of it lies there.
      int a = col_of(box(w).x0 + size / 3), b = col_of(box(w).x1 - size / 3);
      a = std::min(a, col_of(box(w).cx())), b = std::max(b, col_of(box(w).cx()));
      if (!out.empty() && a <= out.back().c1) {
        out.back().c1 = std::max(out.back().c1, b);
        out.back().words.push_back(w);
      } else {
        out.push_back({a, b, {w}});
      }
    }
    return out;
  };
  auto rule_between = [&](double y0, double y1) {
    for (const Box& h : hrules)
      if (h.cy() > y0 - 1 && h.cy() < y1 + 1) return &h;
    return static_cast<const Box*>(nullptr);
  };

  // Header rows: above the first rule between two lines (in the upper half).
  int head = 1;
  for (size_t k = 0; k + 1 < lines.size() && k < lines.size() / 2; k++)
    if (rule_between(lines[k].y1, lines[k + 1].y0)) {
      head = int(k) + 1;
      break;
    }

  // Row pitch: a gap clearly smaller than the largest ones is inside a cell.
  std::vector<double> gaps;
  for (size_t k = 1; k < lines.size(); k++) gaps.push_back(lines[k].y0 - lines[k - 1].y1);
  const double gmin = *std::min_element(gaps.begin(), gaps.end());
  const double gmax = *std::max_element(gaps.begin() + std::min<size_t>(gaps.size() - 1, size_t(head)), gaps.end());
  const bool pitched = gmax > gmin + 0.5 * size;

  struct Row {
    double y0, y1;
    std::vector<Span> spans;
  };
  std::vector<Row> rows;
  int head_rows = 0;
  for (size_t k = 0; k < lines.size(); k++) {
    std::vector<Span> sp = spans_of(lines[k].words);
    bool merged = false;
    if (k > 0 && int(k) != head && !rule_between(lines[k - 1].y1, lines[k].y0)) {
      Row& up = rows.back();
      bool inside = true, lower = true;
      for (const Span& s : sp) {
        bool any = false;
        for (const Span& u : up.spans) any = any || (s.c0 >= u.c0 && s.c1 <= u.c1);
        inside = inside && any;
        lower = lower && starts_lower(page.words[s.words[0]].text);
      }
      bool tight = pitched && lines[k].y0 - lines[k - 1].y1 < gmin + 0.25 * size;
      if (inside && sp.size() < up.spans.size() + (lower ? 1 : 0) && (lower || tight)) {
        for (Span& s : sp)
          for (Span& u : up.spans)
            if (s.c0 >= u.c0 && s.c1 <= u.c1) u.words.insert(u.words.end(), s.words.begin(), s.words.end());
        up.y1 = lines[k].y1;
        merged = true;
      }
    }
    if (!merged) rows.push_back({lines[k].y0, lines[k].y1, std::move(sp)});
    if (int(k) + 1 == head) head_rows = int(rows.size());
  }
  if (rows.size() < 2) return false;

  // A rule just under a header cell, reaching over empty neighbours, widens it.
  for (int r = 0; r < head_rows && r + 1 < int(rows.size()); r++) {
    auto& sp = rows[r].spans;
    for (size_t i = 0; i < sp.size(); i++) {
      Box cb = Box::empty();
      for (int w : sp[i].words) cb.add(box(w));
      for (const Box& h : hrules) {
        if (h.w() > 0.9 * (xs.back() - xs.front())) continue;  // a rule across the table is a row separator
        if (h.cy() < rows[r].y1 - 1 || h.cy() > rows[r + 1].y0 + 1 || h.x0 > cb.cx() || h.x1 < cb.cx()) continue;
        int a = col_of(h.x0 + size / 2), b = col_of(h.x1 - size / 2);
        if (i > 0) a = std::max(a, sp[i - 1].c1 + 1);
        if (i + 1 < sp.size()) b = std::min(b, sp[i + 1].c0 - 1);
        if (a < b) sp[i].c0 = std::min(sp[i].c0, a), sp[i].c1 = std::max(sp[i].c1, b);
      }
    }
  }

  // On a scan an empty cell is as often a word Tesseract dropped: no row
  // spans from empty cells there (they lowered PubTabNet's TEDS 0.605 → 0.596).
  const std::vector<int> rowspan = page.ocr ? std::vector<int>(rows.size(), 1) : first_column_rowspans(rows, head_rows);

  t.rows = int(rows.size()), t.cols = C;
  t.box = region;
  int filled = 0;
  for (int r = 0; r < t.rows; r++) {
    size_t i = 0;
    for (int c = 0; c < C; c++) {
      const auto& sp = rows[r].spans;
      if (c == 0 && rowspan[r] == 0) continue;  // under a cell above
      if (i < sp.size() && sp[i].c0 == c) {
        t.cells.push_back({r, c, c == 0 ? rowspan[r] : 1, sp[i].c1 - c + 1, r < head_rows, join_words(page, sp[i].words)});
        c = sp[i].c1;
        i++;
        filled++;
      } else {
        t.cells.push_back({r, c, c == 0 ? rowspan[r] : 1, 1, r < head_rows, ""});
      }
    }
  }
  if (filled < 2) return false;
  for (int w : ws) used[w] = 1;
  for (int w : tall) used[w] = 1;
  return true;
}

bool numeric(const std::string& s) {
  int digits = 0, other = 0;
  for (unsigned char c : s) {
    if (std::isdigit(c)) digits++;
    else if (!std::strchr(" .,%+-()$€/:x", c) && c < 0x80) other++;
  }
  return digits > 0 && other <= 1;
}

bool list_marker(const std::string& s) {
  // "1." "a)" "(iv)", or a bullet alone: - * and one- or two-byte-tail UTF-8 signs (• · ▪).
  static const std::regex re(R"(^(\(?([0-9]{1,3}|[a-zA-Z]|[ivxIVX]{1,5})[.)]|[-*]|\xC2.|\xE2..)$)");
  return s.size() <= 6 && std::regex_match(s, re);
}

}  // namespace

std::vector<Table> find_unruled_tables(const Page& page, std::vector<char>& used, const std::vector<Box>& avoid) {
  std::vector<Table> out;
  if (page.ocr) return out;  // scanned pages: find_tables' whole-page pass
  struct Seg {
    Box box = Box::empty();
    int words = 0;
    std::string text;
  };
  struct Row {
    Box box = Box::empty();
    double size = 0;
    std::vector<int> words;
    std::vector<Seg> segs;
  };
  std::vector<int> ws;
  for (size_t w = 0; w < page.words.size(); w++) {
    const Word& x = page.words[w];
    if (used[w] || x.mono) continue;  // monospaced text is code, aligned by spaces
    bool on_fig = false;
    for (const Box& f : avoid)
      on_fig = on_fig || (x.box.cx() > f.x0 - x.size && x.box.cx() < f.x1 + x.size && x.box.cy() > f.y0 - x.size &&
                          x.box.cy() < f.y1 + x.size);
    if (!on_fig) ws.push_back(int(w));
  }
  auto box = [&](int w) -> const Box& { return page.words[w].box; };
  std::sort(ws.begin(), ws.end(), [&](int a, int b) { return box(a).y0 < box(b).y0; });
  std::vector<Row> rows;
  for (int w : ws) {
    const Box& b = box(w);
    if (!rows.empty() && b.y0 < rows.back().box.y1 - 0.3 * b.h()) rows.back().box.add(b);
    else rows.emplace_back(), rows.back().box = b;
    rows.back().words.push_back(w);
  }
  // A row's segments: its words split where the gap is over an em (wider
  // than any word space, even in justified text).
  for (Row& r : rows) {
    std::sort(r.words.begin(), r.words.end(), [&](int a, int b) { return box(a).x0 < box(b).x0; });
    std::vector<float> sz;
    for (int w : r.words) sz.push_back(page.words[w].size);
    std::nth_element(sz.begin(), sz.begin() + long(sz.size() / 2), sz.end());
    r.size = std::max(double(sz[sz.size() / 2]), 1.0);
    for (int w : r.words) {
      if (r.segs.empty() || box(w).x0 - r.segs.back().box.x1 > r.size) r.segs.emplace_back();
      Seg& s = r.segs.back();
      s.box.add(box(w));
      s.words++;
      s.text += (s.text.empty() ? "" : " ") + page.words[w].text;
    }
  }
  // Runs of rows with two or more segments, close together; a lone
  // one-segment row inside a run (a cell's second line) does not end it.
  // Dot leaders make a table of contents (an index), not a table.
  static const std::regex leader(R"((\.\s?){4,})");
  std::vector<char> toc(rows.size(), 0);
  for (size_t k = 0; k < rows.size(); k++)
    for (const Seg& sg : rows[k].segs) toc[k] = toc[k] || std::regex_search(sg.text, leader);
  size_t i = 0;
  while (i < rows.size()) {
    if (rows[i].segs.size() < 2 || toc[i]) {
      i++;
      continue;
    }
    size_t j = i + 1, last = i;
    while (j < rows.size() && !toc[j]) {
      double gap = rows[j].box.y0 - rows[j - 1].box.y1;
      if (gap > 1.5 * rows[j - 1].size || std::fabs(rows[j].size - rows[i].size) > 0.25 * rows[i].size) break;
      if (rows[j].segs.size() >= 2) last = j;
      else if (j > last + 1) break;
      j++;
    }
    size_t r0 = i, r1 = last + 1;
    i = last + 1;
    int multi = 0;
    for (size_t k = r0; k < r1; k++) multi += rows[k].segs.size() >= 2;
    if (multi < 3) continue;
    // Columns must line up: an x band at least an em wide that no row of
    // the run (the header row aside) covers.
    Box region = Box::empty();
    for (size_t k = r0; k < r1; k++) region.add(rows[k].box);
    const double em = rows[r0].size;
    std::vector<int> cover(size_t(region.w() / (em / 8)) + 2, 0);
    auto bin = [&](double x) { return std::min(cover.size() - 1, size_t(std::max(0.0, (x - region.x0) / (em / 8)))); };
    for (size_t k = r0 + 1; k < r1; k++)
      for (const Seg& s : rows[k].segs)
        for (size_t b = bin(s.box.x0); b <= bin(s.box.x1); b++) cover[b]++;
    std::vector<std::pair<double, double>> gutters;
    for (size_t b = 0; b < cover.size();) {
      size_t e = b;
      while (e < cover.size() && cover[e] == 0) e++;
      double g0 = region.x0 + double(b) * em / 8, g1 = region.x0 + double(e) * em / 8;
      // A gap a picture fills (an inline image in running text) is no gutter.
      bool drawn = false;
      for (const auto* v : {&page.images, &page.graphics})
        for (const Box& d : *v)
          drawn = drawn || (d.x0 >= g0 - 1 && d.x1 <= g1 + 1 && overlap_y(d, region) > 0);
      if (e > b && b > 0 && e < cover.size() && double(e - b) * em / 8 >= em && !drawn) gutters.push_back({g0, g1});
      b = e > b ? e : b + 1;
    }
    if (gutters.empty()) continue;
    // Prose in columns, lists and numbered paragraphs align too. A table has
    // a column of short or numeric cells, and its first column is not list
    // markers.
    std::vector<double> edges{region.x0};
    for (auto& g : gutters) edges.push_back((g.first + g.second) / 2);
    edges.push_back(region.x1);
    const size_t C = edges.size() - 1;
    std::vector<int> cells(C, 0), words(C, 0), nums(C, 0), markers(C, 0);
    int crowded = 0;  // rows with two segments in one column: widely spaced words, not cells
    for (size_t k = r0 + 1; k < r1; k++) {
      std::vector<int> in(C, 0);
      for (const Seg& s : rows[k].segs) {
        size_t c = size_t(std::upper_bound(edges.begin() + 1, edges.end() - 1, s.box.cx()) - edges.begin()) - 1;
        cells[c]++, words[c] += s.words, nums[c] += numeric(s.text), markers[c] += list_marker(s.text);
        crowded += ++in[c] == 2;
      }
    }
    if (4 * crowded > int(r1 - r0 - 1)) continue;
    bool short_col = false;
    for (size_t c = 0; c < C; c++)
      short_col = short_col || (cells[c] >= 2 && (words[c] <= 3 * cells[c] || 2 * nums[c] >= cells[c]));
    if (!short_col || markers[0] * 2 >= cells[0]) continue;
    region.x0 -= 1, region.y0 -= 1, region.x1 += 1, region.y1 += 1;
    std::vector<char> trial = used;
    Table t;
    if (aligned_table(page, region, {}, t, trial) && t.rows >= 3 && t.cols >= 2) {
      used = std::move(trial);
      out.push_back(std::move(t));
    }
  }
  return out;
}

std::vector<Table> find_tables(const Page& page, std::vector<char>& used) {
  std::vector<Table> out;
  const auto& rules = page.rules;
  if (rules.size() > kMaxRules) return out;
  UnionFind uf(int(rules.size()));
  std::vector<int> order(rules.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int a, int b) { return rules[a].box.y0 < rules[b].box.y0; });
  // Sweep by y so only rules that can touch are compared.
  for (size_t i = 0; i < order.size(); i++)
    for (size_t j = i + 1; j < order.size() && rules[order[j]].box.y0 <= rules[order[i]].box.y1 + kTol; j++)
      if (touch(rules[order[i]].box, rules[order[j]].box)) uf.unite(order[i], order[j]);
  std::vector<std::vector<Rule>> groups(rules.size());
  for (size_t i = 0; i < rules.size(); i++) groups[uf.find(int(i))].push_back(rules[i]);
  std::vector<Box> lone_h;
  for (auto& g : groups) {
    if (g.empty()) continue;
    int nv = 0;
    for (auto& r : g) nv += !r.horizontal();
    Table t;
    if (nv >= 2 && grid_table(page, g, t, used)) out.push_back(std::move(t));
    else if (nv == 0 && g.size() == 1 && g[0].box.w() > 20) lone_h.push_back(g[0].box);
  }
  // Booktabs: runs of three or more lone horizontal rules of the same extent.
  std::sort(lone_h.begin(), lone_h.end(), [](const Box& a, const Box& b) { return a.y0 < b.y0; });
  std::vector<char> taken(lone_h.size(), 0);
  for (size_t i = 0; i < lone_h.size(); i++) {
    if (taken[i]) continue;
    std::vector<Box> run{lone_h[i]};
    for (size_t j = i + 1; j < lone_h.size(); j++) {
      if (taken[j] || std::fabs(lone_h[j].x0 - run[0].x0) > 3 || std::fabs(lone_h[j].x1 - run[0].x1) > 3) continue;
      if (lone_h[j].y0 - run.back().y1 > 0.4 * page.height) break;
      run.push_back(lone_h[j]);
      taken[j] = 1;
    }
    Box region = Box::empty();
    for (const Box& b : run) region.add(b);
    Table t;
    if (run.size() >= 3 && aligned_table(page, region, run, t, used)) out.push_back(std::move(t));
  }
  // A scanned table without rules (or whose rules OCR could not see): all the
  // page's words form a table when they fall into columns of short cells
  // (two columns of running text have long ones).
  if (out.empty() && page.ocr) {
    Box region = Box::empty();
    for (size_t w = 0; w < page.words.size(); w++)
      if (!used[w]) region.add(page.words[w].box);
    std::vector<Box> hs;
    for (const Rule& r : rules)
      if (r.horizontal()) hs.push_back(r.box);
    std::vector<char> trial = used;
    Table t;
    if (region.x1 > region.x0 && aligned_table(page, region, hs, t, trial) && (t.rows >= 3 || t.cols >= 3)) {
      int words = 0, filled = 0;
      for (size_t w = 0; w < trial.size(); w++) words += trial[w] && !used[w];
      for (const Cell& c : t.cells) filled += !c.text.empty();
      if (filled > 0 && words <= 4 * filled && filled >= t.rows * t.cols / 3) {
        used = std::move(trial);
        out.push_back(std::move(t));
      }
    }
  }
  return out;
}

std::string table_html(const Table& t) {
  std::string s = "<table>";
  int r = -1;
  bool in_head = false, in_body = false;
  for (const Cell& c : t.cells) {
    if (c.row != r) {
      if (r >= 0) s += "</tr>";
      if (c.header && !in_head) s += "<thead>", in_head = true;
      if (!c.header && !in_body) {
        if (in_head) s += "</thead>";
        s += "<tbody>", in_body = true;
      }
      s += "<tr>";
      r = c.row;
    }
    const char* tag = c.header ? "th" : "td";
    s += std::string("<") + tag;
    if (c.rowspan > 1) s += " rowspan=\"" + std::to_string(c.rowspan) + "\"";
    if (c.colspan > 1) s += " colspan=\"" + std::to_string(c.colspan) + "\"";
    s += ">" + html_escape(c.text) + "</" + tag + ">";
  }
  if (r >= 0) s += "</tr>";
  s += in_body ? "</tbody>" : in_head ? "</thead>" : "";
  return s + "</table>";
}

std::string table_markdown(const Table& t) {
  std::vector<std::vector<std::string>> g(t.rows, std::vector<std::string>(t.cols));
  for (const Cell& c : t.cells)
    if (c.row < t.rows && c.col < t.cols) {
      std::string x = md_escape(c.text);
      g[c.row][c.col] = x;
    }
  std::string s;
  for (int r = 0; r < t.rows; r++) {
    s += "|";
    for (int c = 0; c < t.cols; c++) s += " " + g[r][c] + " |";
    s += "\n";
    if (r == 0) {
      s += "|";
      for (int c = 0; c < t.cols; c++) s += " --- |";
      s += "\n";
    }
  }
  if (!s.empty()) s.pop_back();
  return s;
}

std::string table_text(const Table& t) {
  std::string s;
  int r = -1;
  for (const Cell& c : t.cells) {
    if (c.row != r && r >= 0) s += "\n";
    else if (c.row == r) s += "\t";
    r = c.row;
    s += c.text;
  }
  return s;
}

}  // namespace solar::parse
