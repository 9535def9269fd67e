// Page → elements: words → lines → XY-cut reading order → blocks → categories.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <regex>
#include <set>

#include "parse/chart.h"
#include "parse/parse.h"
#include "parse/table.h"
#include "parse/text.h"

namespace solar::parse {

void Box::add(const Box& b) {
  x0 = std::min(x0, b.x0), y0 = std::min(y0, b.y0), x1 = std::max(x1, b.x1), y1 = std::max(y1, b.y1);
}
double overlap_x(const Box& a, const Box& b) { return std::max(0.0, std::min(a.x1, b.x1) - std::max(a.x0, b.x0)); }
double overlap_y(const Box& a, const Box& b) { return std::max(0.0, std::min(a.y1, b.y1) - std::max(a.y0, b.y0)); }
double iou(const Box& a, const Box& b) {
  double i = overlap_x(a, b) * overlap_y(a, b);
  double u = a.w() * a.h() + b.w() * b.h() - i;
  return u > 0 ? i / u : 0;
}

const char* category_name(Category c) {
  static const char* names[] = {"heading1", "heading2", "heading3", "paragraph", "list",   "table",  "figure", "chart",
                                "caption",  "header",   "footer",   "equation",  "index",  "footnote", "code"};
  return names[int(c)];
}

double LayoutState::body_size() const {
  if (size_chars.empty()) return 10;
  size_t best = std::max_element(size_chars.begin(), size_chars.end()) - size_chars.begin();
  return size_chars[best] > 0 ? best * 0.5 : 10;
}

namespace {

struct Line {
  Box box;
  std::vector<const Word*> words;
  double size = 0;  // character-weighted mean font size
  bool bold = false, mono = false;
  std::string text;
};

// An item of the reading order: a text line, a table or a figure.
struct Item {
  Box box;
  int line = -1, table = -1, figure = -1;
};

std::vector<Line> make_lines(const Page& page, const std::vector<char>& used) {
  std::vector<const Word*> ws;
  for (size_t i = 0; i < page.words.size(); i++)
    if (!used[i]) ws.push_back(&page.words[i]);
  std::sort(ws.begin(), ws.end(), [](const Word* a, const Word* b) { return a->box.cy() < b->box.cy(); });
  // Rows: words overlapping the row's first word vertically by half the
  // smaller height (against the first word, so a row cannot drift downwards).
  std::vector<std::vector<const Word*>> rows;
  std::vector<Box> anchors;
  for (const Word* w : ws) {
    bool placed = false;
    for (size_t r = rows.size(); r-- > 0 && r + 8 > rows.size();) {
      if (overlap_y(anchors[r], w->box) >= 0.5 * std::min(anchors[r].h(), w->box.h())) {
        rows[r].push_back(w);
        placed = true;
        break;
      }
    }
    if (!placed) rows.push_back({w}), anchors.push_back(w->box);
  }
  // On a scan Tesseract may split one printed line into two text lines whose
  // words interleave (a skewed or noisy line): rows at one height that share
  // columns are one row. Distinct lines side by side (two columns) do not.
  if (page.ocr) {
    std::vector<Box> rb(rows.size(), Box::empty());
    for (size_t r = 0; r < rows.size(); r++)
      for (const Word* w : rows[r]) rb[r].add(w->box);
    for (size_t r = 0; r < rows.size(); r++)
      for (size_t q = r + 1; q < std::min(rows.size(), r + 4); q++) {
        if (rows[q].empty() || rows[r].empty()) continue;
        if (overlap_y(rb[r], rb[q]) < 0.5 * std::min(rb[r].h(), rb[q].h()) || overlap_x(rb[r], rb[q]) <= 0) continue;
        rows[r].insert(rows[r].end(), rows[q].begin(), rows[q].end());
        rb[r].add(rb[q]);
        rows[q].clear();
      }
    for (size_t r = rows.size(); r-- > 0;)
      if (rows[r].empty()) rows.erase(rows.begin() + long(r)), anchors.erase(anchors.begin() + long(r));
  }
  for (auto& row : rows)
    std::sort(row.begin(), row.end(), [](const Word* a, const Word* b) { return a->box.x0 < b->box.x0; });
  // Tesseract drops words it cannot read, leaving holes in a line. A hole is
  // a column gutter only when the rows just above and below are white there
  // too; a word of theirs across it means one column.
  auto crossed = [&](size_t r, double x0, double x1) {
    double reach = 2.5 * std::max(1.0, anchors[r].h());
    for (size_t q = r >= 3 ? r - 3 : 0; q < std::min(rows.size(), r + 4); q++) {
      if (q == r || std::fabs(anchors[q].cy() - anchors[r].cy()) > reach) continue;
      for (const Word* w : rows[q])
        if (w->box.x0 < x0 && w->box.x1 > x1) return true;
    }
    return false;
  };
  std::vector<Line> lines;
  for (size_t r = 0; r < rows.size(); r++) {
    const auto& row = rows[r];
    Line cur;
    auto flush = [&] {
      if (cur.words.empty()) return;
      double chars = 0, sz = 0;
      int bold = 0, mono = 0;
      for (const Word* w : cur.words) {
        double n = double(w->text.size());
        chars += n, sz += n * w->size, bold += w->bold ? int(n) : 0, mono += w->mono ? int(n) : 0;
        if (!cur.text.empty()) cur.text += ' ';
        cur.text += w->text;
      }
      cur.size = sz / std::max(chars, 1.0);
      cur.bold = bold >= 0.8 * chars;
      cur.mono = mono >= 0.8 * chars;
      lines.push_back(std::move(cur));
      cur = Line{};
    };
    for (const Word* w : row) {
      if (!cur.words.empty()) {
        double gap = w->box.x0 - cur.box.x1;
        double sz = std::max(double(w->size), double(cur.words.back()->size));
        bool same_ocr_line = w->ocr_line >= 0 && w->ocr_line == cur.words.back()->ocr_line;
        if (gap > 1.2 * sz && !same_ocr_line && !(page.ocr && crossed(r, cur.box.x1, w->box.x0))) flush();
      }
      if (cur.words.empty()) cur.box = w->box;
      else cur.box.add(w->box);
      cur.words.push_back(w);
    }
    flush();
  }
  return lines;
}

// XY-cut. A set is cut into horizontal stripes at every white band across
// it; neighbouring stripes are merged while their union still has a vertical
// white band (so the columns of a two-column page are not chopped where their
// paragraph gaps happen to line up); a merged group with a vertical band is
// cut into columns, read left to right, each cut again.
void xycut(const std::vector<Item>& items, std::vector<int> idx, double vgap, std::vector<int>& out, int depth) {
  auto by_y = [&](int a, int b) {
    return items[a].box.y0 < items[b].box.y0 || (items[a].box.y0 == items[b].box.y0 && items[a].box.x0 < items[b].box.x0);
  };
  if (idx.size() <= 1 || depth > 60) {
    std::sort(idx.begin(), idx.end(), by_y);
    out.insert(out.end(), idx.begin(), idx.end());
    return;
  }
  auto columns = [&](std::vector<int> set) {
    std::sort(set.begin(), set.end(), [&](int a, int b) { return items[a].box.x0 < items[b].box.x0; });
    std::vector<std::vector<int>> cols{{}};
    double reach = -1e300;
    for (int i : set) {
      if (!cols.back().empty() && items[i].box.x0 - reach > vgap) cols.push_back({});
      cols.back().push_back(i);
      reach = std::max(reach, items[i].box.x1);
    }
    return cols;
  };
  std::sort(idx.begin(), idx.end(), by_y);
  std::vector<std::vector<int>> stripes{{}};
  double reach = -1e300;
  for (int i : idx) {
    if (!stripes.back().empty() && items[i].box.y0 > reach) stripes.push_back({});
    stripes.back().push_back(i);
    reach = std::max(reach, items[i].box.y1);
  }
  std::vector<std::vector<int>> groups;
  for (size_t k = 0; k < stripes.size(); k++) {
    const std::vector<int>& s = stripes[k];
    if (!groups.empty()) {
      std::vector<int> u = groups.back();
      u.insert(u.end(), s.begin(), s.end());
      // A stripe within one column (its neighbour column has a gap there)
      // joins when the columns go on below it; a short heading over
      // full-width text below does not.
      bool cols_on = columns(s).size() > 1;
      std::vector<int> v = u;
      for (size_t j = k + 1; !cols_on && j < stripes.size() && j < k + 50; j++) {
        v.insert(v.end(), stripes[j].begin(), stripes[j].end());
        if (columns(v).size() < 2) break;  // something across the gutter: the columns end
        cols_on = columns(stripes[j]).size() > 1;
      }
      if (cols_on && columns(u).size() > 1 && columns(groups.back()).size() > 1) {
        groups.back() = std::move(u);
        continue;
      }
    }
    groups.push_back(s);
  }
  for (auto& g : groups) {
    auto cols = columns(g);
    if (cols.size() > 1) {
      for (auto& c : cols) xycut(items, c, vgap, out, depth + 1);
    } else {
      std::sort(g.begin(), g.end(), by_y);
      out.insert(out.end(), g.begin(), g.end());
    }
  }
}

bool starts_with_marker(const std::string& t, bool* ordered) {
  static const char* bullets[] = {"\u2022", "\u25E6", "\u25AA", "\u25CF", "\u25CB", "\u2023", "\u2043", "\u2013",
                                  "\u00B7", "\u25A0", "\u25A1", "\u2219", "-",      "*",      "\u27A2"};
  for (const char* b : bullets) {
    size_t n = strlen(b);
    if (t.compare(0, n, b) == 0 && (t.size() == n || t[n] == ' ')) return *ordered = false, true;
  }
  // "1." "12)" "a)" "(iv)" "iii."
  static const std::regex num(R"(^(\(?([0-9]{1,3}|[a-z]|[ivx]{1,5})[.)])( |$))");
  if (std::regex_search(t, num)) return *ordered = true, true;
  return false;
}

std::string strip_marker(const std::string& t) {
  size_t sp = t.find(' ');
  return sp == std::string::npos ? "" : t.substr(sp + 1);
}

// Lines joined with spaces; a word hyphenated across lines is joined whole.
std::string join_lines(const std::vector<std::string>& ls) {
  std::string s;
  for (const std::string& l : ls) {
    if (l.empty()) continue;
    if (s.size() >= 2 && s.back() == '-' && std::isalpha((unsigned char)s[s.size() - 2]) &&
        std::islower((unsigned char)l[0]))
      s.pop_back();
    else if (!s.empty())
      s += ' ';
    s += l;
  }
  return s;
}

std::string norm_margin_text(const std::string& t) {
  std::string s;
  for (char c : t)
    if (!std::isdigit((unsigned char)c) && !std::isspace((unsigned char)c)) s += char(std::tolower((unsigned char)c));
  return s;
}

bool is_page_number(const std::string& t) {
  static const std::regex re(R"(^((page|p\.)\s*)?([0-9]{1,5}|[ivxlcdm]{1,7})(\s*(/|of)\s*[0-9]{1,5})?$)", std::regex::icase);
  return t.size() < 30 && std::regex_match(t, re);
}

struct Block {
  std::vector<int> lines;
  Box box = Box::empty();
};

// Paragraphs set without space between them: a first line indented under a
// flush-left one, or a line after a short last line of justified text.
// A block's second line may be indented (a hanging indent: references, list
// items), so one line is not enough to know the block's left edge.
bool new_paragraph(const std::vector<Line>& lines, const Block& b, const Line& P, const Line& L, double em) {
  double left = b.box.x0, right = b.box.x1;
  bool p_flush = P.box.x0 - left < 0.4 * em;
  double indent = L.box.x0 - left;
  if (p_flush && indent > 0.8 * em && indent < 6 * em && (b.lines.size() >= 2 || P.box.x1 < L.box.x1 - 3 * em)) return true;
  // Justified: the earlier lines (two at least) all end at the block's right edge.
  if (b.lines.size() < 3 || P.box.x1 > right - std::max(3 * em, 0.15 * b.box.w())) return false;
  for (size_t i = 0; i + 1 < b.lines.size(); i++)
    if (lines[b.lines[i]].box.x1 < right - 0.5 * em) return false;
  return L.box.x1 > right - 0.5 * em || L.box.w() > 0.8 * b.box.w();
}

}  // namespace

std::vector<Element> layout(const Page& page, LayoutState& st, int first_id) {
  const double W = page.width, H = page.height;
  if (st.size_chars.empty()) st.size_chars.assign(400, 0);
  for (const Word& w : page.words) {
    if (w.doubtful) continue;
    size_t bin = size_t(std::clamp(std::lround(w.size * 2), 0L, 399L));
    st.size_chars[bin] += double(w.text.size());
  }
  const double body = st.body_size();

  std::vector<char> used(page.words.size(), 0);
  // Charts first: their axes and ticks are rules that would make a grid.
  std::vector<char> chart_rules(page.rules.size(), 0);
  std::vector<Box> charts = find_charts(page, chart_rules);
  std::vector<Table> tables;
  if (charts.empty()) {
    tables = find_tables(page, used);
  } else {
    Page rest;
    rest.number = page.number, rest.width = W, rest.height = H, rest.ocr = page.ocr, rest.words = page.words;
    for (size_t i = 0; i < page.rules.size(); i++)
      if (!chart_rules[i]) rest.rules.push_back(page.rules[i]);
    tables = find_tables(rest, used);
  }
  // Outside a table a doubtful OCR word is more often a speck than text:
  // left out of lines, headings and figure labels.
  for (size_t i = 0; i < page.words.size(); i++)
    if (page.words[i].doubtful) used[i] = 1;

  // Figures: placed images (not a scanned page's background) and clusters of
  // drawn shapes; the words on them are the figure's text.
  std::vector<Box> figs = charts;
  std::vector<char> fig_chart(figs.size(), 1);
  auto in_table = [&](const Box& b) {
    for (const Table& t : tables)
      if (overlap_x(b, t.box) * overlap_y(b, t.box) > 0.3 * b.w() * b.h()) return true;
    return false;
  };
  for (const Box& b : page.images)
    if (b.w() >= 0.05 * W && b.h() >= 0.03 * H && b.w() * b.h() < 0.8 * W * H && !in_table(b))
      figs.push_back(b), fig_chart.push_back(0);
  {
    std::vector<Box> g = page.graphics;
    std::vector<char> dead(g.size(), 0);
    std::vector<int> count(g.size(), 1);
    for (bool changed = true; changed && g.size() < 5000;) {
      changed = false;
      for (size_t i = 0; i < g.size(); i++)
        for (size_t j = i + 1; j < g.size() && !dead[i]; j++) {
          if (dead[j]) continue;
          Box a = g[i];
          a.x0 -= 4, a.y0 -= 4, a.x1 += 4, a.y1 += 4;
          if (overlap_x(a, g[j]) > 0 && overlap_y(a, g[j]) > 0) {
            g[i].add(g[j]), count[i] += count[j], dead[j] = 1, changed = true;
          }
        }
    }
    for (size_t i = 0; i < g.size(); i++)
      if (!dead[i] && count[i] >= 5 && g[i].w() * g[i].h() >= 0.02 * W * H) figs.push_back(g[i]), fig_chart.push_back(0);
  }
  std::vector<std::vector<int>> fig_words(figs.size());
  for (size_t w = 0; w < page.words.size(); w++) {
    if (used[w]) continue;
    for (size_t f = 0; f < figs.size(); f++) {
      const Box& b = page.words[w].box;
      if (b.cx() > figs[f].x0 && b.cx() < figs[f].x1 && b.cy() > figs[f].y0 && b.cy() < figs[f].y1) {
        fig_words[f].push_back(int(w));
        used[w] = 1;
        break;
      }
    }
  }

  for (Table& t : find_unruled_tables(page, used, figs)) tables.push_back(std::move(t));
  std::vector<Line> lines = make_lines(page, used);
  static const std::regex caption_re(R"(^(figure|fig\.|table|tab\.|chart|listing|algorithm|scheme)\s*[0-9ivx]+)",
                                     std::regex::icase);
  // A figure's labels (axis ticks, legends, panel letters) often lie beside
  // the image or drawing: short lines touching a figure join it, and figures
  // that then touch are one (the panels of a plot). Captions stay apart.
  std::vector<int> line_fig(lines.size(), -1);
  for (bool changed = !figs.empty(); changed;) {
    changed = false;
    for (size_t i = 0; i < figs.size(); i++)
      for (size_t j = i + 1; j < figs.size(); j++) {
        Box a = figs[i];
        a.x0 -= body, a.y0 -= body, a.x1 += body, a.y1 += body;
        if (overlap_x(a, figs[j]) <= 0 || overlap_y(a, figs[j]) <= 0) continue;
        figs[i].add(figs[j]);
        fig_chart[i] = fig_chart[i] || fig_chart[j];
        fig_words[i].insert(fig_words[i].end(), fig_words[j].begin(), fig_words[j].end());
        figs.erase(figs.begin() + long(j)), fig_words.erase(fig_words.begin() + long(j));
        fig_chart.erase(fig_chart.begin() + long(j));
        for (int& f : line_fig) f = f == int(j) ? int(i) : f > int(j) ? f - 1 : f;
        j = i;
        changed = true;
      }
    for (size_t l = 0; l < lines.size(); l++) {
      const Line& L = lines[l];
      if (line_fig[l] >= 0 || L.words.size() > 6 || L.box.w() > 0.3 * W || std::regex_search(L.text, caption_re)) continue;
      double m = 1.5 * std::max(L.size, 1.0);
      for (size_t f = 0; f < figs.size(); f++) {
        const Box& b = figs[f];
        if (L.box.x1 > b.x0 - m && L.box.x0 < b.x1 + m && L.box.y1 > b.y0 - m && L.box.y0 < b.y1 + m) {
          line_fig[l] = int(f);
          figs[f].add(L.box);
          changed = true;
          break;
        }
      }
    }
  }
  for (size_t l = 0; l < lines.size(); l++)
    if (line_fig[l] >= 0)
      for (const Word* w : lines[l].words) fig_words[size_t(line_fig[l])].push_back(int(w - page.words.data()));
  std::vector<Item> items;
  for (size_t i = 0; i < lines.size(); i++)
    if (line_fig[i] < 0) items.push_back({lines[i].box, int(i), -1, -1});
  for (size_t i = 0; i < tables.size(); i++) items.push_back({tables[i].box, -1, int(i), -1});
  for (size_t i = 0; i < figs.size(); i++) items.push_back({figs[i], -1, -1, int(i)});

  // Running headers and footers first, so they do not join the body's cut.
  std::vector<char> margin(items.size(), 0);
  std::vector<int> idx;
  std::set<std::string> page_margin_keys;  // counted once per page, after it: repeats on earlier pages count
  for (size_t i = 0; i < items.size(); i++) {
    const Item& it = items[i];
    if (it.line >= 0) {
      const std::string& t = lines[it.line].text;
      bool top = it.box.y1 < 0.07 * H, bottom = it.box.y0 > 0.93 * H;
      // A line in the margin that a body paragraph continues from (or into) is body text.
      if (top || bottom) {
        const Line& L = lines[it.line];
        for (const Item& o : items) {
          if (o.line < 0 || o.line == it.line || overlap_x(o.box, it.box) <= 0) continue;
          double gap = top ? o.box.y0 - it.box.y1 : it.box.y0 - o.box.y1;
          bool beyond = top ? o.box.y1 >= 0.07 * H : o.box.y0 <= 0.93 * H;
          if (beyond && gap > -0.3 * L.size && gap < 0.6 * L.size) top = bottom = false;
        }
      }
      bool near = it.box.y1 < 0.12 * H || it.box.y0 > 0.88 * H;
      std::string key = norm_margin_text(t);
      int seen = 0;
      if (near && !key.empty()) {
        auto m = st.margin_texts.find(key);
        seen = m == st.margin_texts.end() ? 0 : m->second;
        page_margin_keys.insert(key);
      }
      // Repetition alone marks small text only: chapter-style headings
      // ("Section 2 Overview") repeat near the top too.
      bool small = lines[it.line].size <= 1.1 * body;
      if (top || bottom || (near && small && (seen >= 2 || is_page_number(t)))) {
        margin[i] = it.box.cy() < H / 2 ? 1 : 2;
        continue;
      }
    }
    idx.push_back(int(i));
  }
  for (const std::string& k : page_margin_keys)
    if (st.margin_texts.size() < 10000 || st.margin_texts.count(k)) st.margin_texts[k]++;
  std::vector<int> order;
  xycut(items, idx, std::max(body, 4.0), order, 0);

  // Blocks: consecutive lines of one style with paragraph-sized gaps.
  std::vector<Block> blocks;
  std::vector<int> block_item;  // non-line items become blocks of their own
  for (int i : order) {
    const Item& it = items[i];
    if (it.line < 0) {
      blocks.push_back({{}, it.box});
      block_item.push_back(i);
      continue;
    }
    const Line& L = lines[it.line];
    bool join = false;
    if (!blocks.empty() && block_item.back() < 0) {
      const Block& b = blocks.back();
      const Line& P = lines[b.lines.back()];
      double gap = L.box.y0 - P.box.y1;
      double sz = std::max(L.size, P.size);
      bool ordered;
      // OCR sizes come from line heights, which vary with ascenders and descenders.
      double size_tol = page.ocr ? 0.3 : 0.12, gap_max = page.ocr ? 0.9 : 0.6;
      join = gap > -0.5 * sz && gap < gap_max * sz && std::fabs(L.size - P.size) < size_tol * sz && L.bold == P.bold &&
             L.mono == P.mono && overlap_x(L.box, b.box) > 0.2 * std::min(L.box.w(), b.box.w()) &&
             !(starts_with_marker(L.text, &ordered) && !L.mono) && !(!L.mono && new_paragraph(lines, b, P, L, sz));
    }
    if (join) {
      blocks.back().lines.push_back(it.line);
      blocks.back().box.add(L.box);
    } else {
      blocks.push_back({{it.line}, L.box});
      block_item.push_back(-1);
    }
  }

  std::vector<Element> out;
  auto emit = [&](Category c, const Box& b, std::string html, std::string md, std::string text) {
    Element e;
    e.id = first_id + int(out.size());
    e.category = c;
    e.page = page.number;
    e.box = b;
    e.page_w = W, e.page_h = H;
    e.html = std::move(html), e.markdown = std::move(md), e.text = std::move(text);
    out.push_back(std::move(e));
  };
  auto attr = [&](const char* cat) {
    return std::string(" id=\"") + std::to_string(first_id + int(out.size())) + "\" data-category=\"" + cat + "\"";
  };

  // The page's header lines (pass 1) or footer lines (pass 2) as one element.
  auto margin_element = [&](int pass) {
    std::vector<int> m;
    for (size_t i = 0; i < items.size(); i++)
      if (margin[i] == pass) m.push_back(int(i));
    if (m.empty()) return;
    std::sort(m.begin(), m.end(), [&](int a, int b) { return items[a].box.x0 < items[b].box.x0; });
    Box b = Box::empty();
    std::string t;
    for (int i : m) {
      b.add(items[i].box);
      if (!t.empty()) t += ' ';
      t += lines[items[i].line].text;
    }
    const char* tag = pass == 1 ? "header" : "footer";
    emit(pass == 1 ? Category::header : Category::footer, b,
         std::string("<") + tag + attr(tag) + ">" + html_escape(t) + "</" + tag + ">", "", t);
  };
  margin_element(1);

  static const std::regex section_re(R"(^[0-9]{1,2}(\.[0-9]{1,2})+\.?\s+[A-Z][A-Za-z]+)");
  static const std::regex numbered_re(R"(^([0-9]+(\.[0-9]+)*)\.?\s+\S)");
  static const std::regex leader_re(R"((\.\s?){4,}\s*[0-9ivx]+$)");
  for (size_t k = 0; k < blocks.size(); k++) {
    const Block& bl = blocks[k];
    if (block_item[k] >= 0) {
      const Item& it = items[block_item[k]];
      if (it.table >= 0) {
        const Table& t = tables[it.table];
        std::string h = table_html(t);
        h.insert(6, attr("table"));
        emit(Category::table, t.box, h, table_markdown(t), table_text(t));
      } else {
        std::vector<int> ws = fig_words[it.figure];
        std::sort(ws.begin(), ws.end(), [&](int a, int b) {
          const Box &x = page.words[a].box, &y = page.words[b].box;
          return std::fabs(x.cy() - y.cy()) > 0.5 * std::min(x.h(), y.h()) ? x.cy() < y.cy() : x.x0 < y.x0;
        });
        std::string t;
        for (int w : ws) t += (t.empty() ? "" : " ") + page.words[w].text;
        const char* cn = fig_chart[size_t(it.figure)] ? "chart" : "figure";
        emit(fig_chart[size_t(it.figure)] ? Category::chart : Category::figure, it.box,
             "<figure" + attr(cn) + "><img alt=\"" + html_escape(t) + "\"></figure>",
             "![" + md_escape(t) + "](" + cn + ")", t);
      }
      continue;
    }
    std::vector<std::string> ls;
    double size = 0, chars = 0;
    bool bold = true, mono = true;
    int nwords = 0;
    for (int l : bl.lines) {
      ls.push_back(lines[l].text);
      double n = double(lines[l].text.size());
      size += n * lines[l].size, chars += n;
      bold = bold && lines[l].bold;
      mono = mono && lines[l].mono;
      nwords += int(lines[l].words.size());
    }
    size /= std::max(chars, 1.0);
    std::string text = join_lines(ls);
    double ratio = size / body;
    bool ordered = false;
    std::smatch m;
    Category cat = Category::paragraph;
    int leaders = 0;
    for (auto& l : ls) leaders += std::regex_search(l, leader_re);
    if (mono && !page.ocr) {
      cat = Category::code;
    } else if (std::regex_search(text, caption_re) && bl.lines.size() <= 6) {
      cat = Category::caption;
    } else if (leaders * 2 >= int(ls.size()) && leaders >= 1) {
      cat = Category::index;
    } else if (bl.lines.size() <= 3 && nwords <= 25 &&
               // OCR sizes are line heights (noisy) and carry no weight: a clearer margin.
               (ratio >= (page.ocr ? 1.25 : 1.15) || (bold && ratio >= (page.ocr ? 0.8 : 0.95) && nwords <= 15)) &&
               text.back() != '.' && text.back() != ',') {
      int level = ratio >= 1.5 ? 1 : ratio >= 1.2 ? 2 : 3;
      if (std::regex_search(text, m, numbered_re)) {
        std::string n = m[1].str();
        level = std::min(3, 1 + int(std::count(n.begin(), n.end(), '.')));
      }
      cat = level == 1 ? Category::heading1 : level == 2 ? Category::heading2 : Category::heading3;
    } else if (bl.lines.size() == 1 && nwords <= 10 && std::regex_search(text, section_re) && text.back() != '.' &&
               ratio >= 0.8) {
      // "2.1. Nematode Inoculums": a multi-level number (a list counts 1, 2, 3)
      // before a capitalised title on a line of its own, whatever its weight.
      std::string n = std::regex_search(text, m, numbered_re) ? m[1].str() : "1.1";
      int level = std::min(3, 1 + int(std::count(n.begin(), n.end(), '.')));
      cat = level == 1 ? Category::heading1 : level == 2 ? Category::heading2 : Category::heading3;
    } else if (starts_with_marker(ls[0], &ordered)) {
      cat = Category::list;
    } else if (ratio <= 0.88 && bl.box.y0 > 0.7 * H) {
      cat = Category::footnote;
    } else {
      int math = 0, letters = 0;
      for (size_t i = 0; i < text.size(); i++) {
        unsigned char c = text[i];
        if (std::isalpha(c)) letters++;
        else if (c == '=' || c == '+' || c == '^') math++;
        else if (c == 0xE2 && i + 1 < text.size() && ((unsigned char)text[i + 1] == 0x88 || (unsigned char)text[i + 1] == 0x89))
          math += 2;  // U+2200..U+227F: mathematical operators
        else if (c == 0xCE || c == 0xCF) math++;  // Greek
      }
      if (math >= 2 && math * 2 >= letters) cat = Category::equation;
    }
    const char* cn = category_name(cat);
    switch (cat) {
      case Category::heading1:
      case Category::heading2:
      case Category::heading3: {
        int lv = int(cat) + 1;
        std::string tag = "h" + std::to_string(lv);
        emit(cat, bl.box, "<" + tag + attr(cn) + ">" + html_escape(text) + "</" + tag + ">",
             std::string(lv, '#') + " " + md_escape(text), text);
        break;
      }
      case Category::code: {
        // Monospaced: indentation from the x offset in character widths.
        std::string body_text;
        for (int l : bl.lines) {
          double cw = 0.6 * lines[l].size;
          int ind = cw > 0 ? int(std::lround((lines[l].box.x0 - bl.box.x0) / cw)) : 0;
          if (!body_text.empty()) body_text += '\n';
          body_text += std::string(std::clamp(ind, 0, 80), ' ') + lines[l].text;
        }
        emit(cat, bl.box, "<pre" + attr(cn) + "><code>" + html_escape(body_text) + "</code></pre>",
             "```\n" + body_text + "\n```", body_text);
        break;
      }
      case Category::list: {
        std::string item = strip_marker(text);
        // Consecutive items are one list element (in one column: an item at
        // the top of the next column starts a new one).
        if (!out.empty() && out.back().category == Category::list && out.back().page == page.number &&
            bl.box.y0 > out.back().box.y1 - 0.5 * size && overlap_x(bl.box, out.back().box) > 0) {
          Element& e = out.back();
          e.box.add(bl.box);
          std::string close = e.html.substr(e.html.size() - 5);
          e.html.insert(e.html.size() - 5, "<li>" + html_escape(item) + "</li>");
          e.markdown += std::string("\n") + (close == "</ol>" ? "1. " : "- ") + md_escape(item);
          e.text += "\n" + text;
          break;
        }
        const char* tag = ordered ? "ol" : "ul";
        emit(cat, bl.box, std::string("<") + tag + attr(cn) + "><li>" + html_escape(item) + "</li></" + tag + ">",
             std::string(ordered ? "1. " : "- ") + md_escape(item), text);
        break;
      }
      case Category::equation:
        emit(cat, bl.box, "<p" + attr(cn) + ">" + html_escape(text) + "</p>", "$$" + text + "$$", text);
        break;
      default: {
        // Lines right under a list item and indented past its marker continue
        // the item (its marker's line was a block of its own, or OCR lost the marker).
        Element* e = out.empty() ? nullptr : &out.back();
        if (cat == Category::paragraph && e && e->category == Category::list && e->page == page.number &&
            bl.box.x0 > e->box.x0 + 0.5 * size && bl.box.y0 - e->box.y1 < size && overlap_x(bl.box, e->box) > 0) {
          e->box.add(bl.box);
          e->html.insert(e->html.rfind("</li>"), " " + html_escape(text));
          e->markdown += " " + md_escape(text);
          e->text += " " + text;
          break;
        }
        emit(cat, bl.box, "<p" + attr(cn) + ">" + html_escape(text) + "</p>", md_escape(text), text);
      }
    }
  }

  margin_element(2);
  return out;
}

}  // namespace solar::parse
