#include "parse/table.h"

#include <algorithm>
#include <cmath>
#include <numeric>

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

// The words in region as a table: columns from their vertical white gaps,
// rows from text lines; a rule under the first row makes it a header row.
bool aligned_table(const Page& page, const Box& region, const std::vector<Box>& hrules, Table& t, std::vector<char>& used) {
  std::vector<int> ws;
  double size = 0;
  for (size_t w = 0; w < page.words.size(); w++) {
    const Box& b = page.words[w].box;
    if (!used[w] && b.cx() > region.x0 && b.cx() < region.x1 && b.cy() > region.y0 && b.cy() < region.y1) {
      ws.push_back(int(w));
      size += page.words[w].size;
    }
  }
  if (ws.size() < 4) return false;
  size /= ws.size();
  // Column gaps: x ranges no word covers, wider than a font size.
  std::vector<std::pair<double, double>> spans;
  for (int w : ws) spans.push_back({page.words[w].box.x0, page.words[w].box.x1});
  std::sort(spans.begin(), spans.end());
  std::vector<double> xs{region.x0};
  double reach = spans[0].second;
  for (auto& [a, b] : spans) {
    if (a - reach > std::max(size, 4.0)) xs.push_back((a + reach) / 2);
    reach = std::max(reach, b);
  }
  xs.push_back(region.x1);
  if (xs.size() < 3) return false;
  // Rows: text lines (word boxes overlapping vertically), split further by rules.
  std::vector<std::pair<double, double>> rows;
  std::vector<int> byy = ws;
  std::sort(byy.begin(), byy.end(), [&](int a, int b) { return page.words[a].box.y0 < page.words[b].box.y0; });
  for (int w : byy) {
    const Box& b = page.words[w].box;
    if (!rows.empty() && b.y0 < rows.back().second - 0.3 * b.h()) rows.back().second = std::max(rows.back().second, b.y1);
    else rows.push_back({b.y0, b.y1});
  }
  if (rows.size() < 2) return false;
  std::vector<double> ys{region.y0};
  for (size_t r = 1; r < rows.size(); r++) ys.push_back((rows[r - 1].second + rows[r].first) / 2);
  ys.push_back(region.y1);
  t.rows = int(ys.size()) - 1, t.cols = int(xs.size()) - 1;
  t.box = region;
  std::vector<Box> boxes;
  for (int r = 0; r < t.rows; r++)
    for (int c = 0; c < t.cols; c++) {
      t.cells.push_back({r, c, 1, 1, false, ""});
      boxes.push_back({xs[c], ys[r], xs[c + 1], ys[r + 1]});
    }
  if (!fill_cells(page, t, boxes, used)) return false;
  // The rule under the first text row makes it a header row.
  for (const Box& h : hrules)
    if (h.cy() > rows[0].second - 1 && h.cy() < rows[1].first + 1)
      for (auto& c : t.cells)
        if (c.row == 0) c.header = true;
  return true;
}

}  // namespace

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
    if (region.x1 > region.x0 && aligned_table(page, region, hs, t, trial) && t.rows >= 3) {
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
