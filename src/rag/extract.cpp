// Documents → blocks. Markdown, reStructuredText and plain text share one
// line scanner (paragraphs end at blank lines; the formats differ in what
// makes a heading, a list item, a table or a code block); HTML is reduced to
// the same blocks by a tag scanner; PDFs go through the document parser
// (parse/: headings, paragraphs, whole tables, running headers and footers
// left out), or poppler's pdftotext when its backend solar-pdf is absent.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <map>

#include "core/error.h"
#include "core/fs.h"
#include "core/json.h"
#include "parse/parse.h"
#include "parse/pdf_stream.h"
#include "rag/rag.h"

namespace solar::rag {
namespace {

std::string trim(std::string_view s) {
  size_t a = s.find_first_not_of(" \t\r\n"), b = s.find_last_not_of(" \t\r\n");
  return a == std::string_view::npos ? std::string() : std::string(s.substr(a, b - a + 1));
}
bool blank(std::string_view s) { return s.find_first_not_of(" \t\r") == std::string_view::npos; }

struct Line {
  std::string_view text;
  int64_t start;
};
std::vector<Line> split_lines(const std::string& t) {
  std::vector<Line> out;
  size_t pos = 0;
  while (pos <= t.size()) {
    size_t nl = t.find('\n', pos);
    if (nl == std::string::npos) nl = t.size();
    out.push_back({std::string_view(t).substr(pos, nl - pos), int64_t(pos)});
    if (nl == t.size()) break;
    pos = nl + 1;
  }
  return out;
}

bool is_list_item(std::string_view l) {
  size_t i = l.find_first_not_of(" \t");
  if (i == std::string_view::npos) return false;
  l = l.substr(i);
  if (l.size() >= 2 && (l[0] == '-' || l[0] == '*' || l[0] == '+') && l[1] == ' ') return true;
  size_t d = 0;
  while (d < l.size() && isdigit(uint8_t(l[d]))) d++;
  return d > 0 && d < l.size() - 1 && (l[d] == '.' || l[d] == ')') && l[d + 1] == ' ';
}
// An RST/setext underline: one punctuation character repeated, ≥ 3 long.
char underline_char(std::string_view l) {
  std::string t = trim(l);
  if (t.size() < 3 || !strchr("=-~^\"'`#*+:._", t[0])) return 0;
  for (char c : t)
    if (c != t[0]) return 0;
  return t[0];
}

class LineScanner {
 public:
  LineScanner(const std::string& text, const std::string& kind, int page) : t_(text), kind_(kind), page_(page) {}

  std::vector<Block> run() {
    auto lines = split_lines(t_);
    for (size_t i = 0; i < lines.size(); i++) {
      std::string_view l = lines[i].text;
      int64_t ls = lines[i].start, le = ls + int64_t(l.size());
      if (kind_ == "md" && (l.substr(0, 3) == "```" || l.substr(0, 3) == "~~~")) {  // fenced code: whole
        flush();
        size_t j = i + 1;
        while (j < lines.size() && lines[j].text.substr(0, 3) != l.substr(0, 3)) j++;
        int64_t end = j < lines.size() ? lines[j].start + int64_t(lines[j].text.size()) : int64_t(t_.size());
        add(std::string(t_.substr(size_t(ls), size_t(end - ls))), ls, end, true);
        i = j;
        continue;
      }
      if (kind_ == "md" && l.substr(0, 1) == "#") {
        size_t lvl = l.find_first_not_of('#');
        if (lvl != std::string_view::npos && lvl <= 6 && l[lvl] == ' ') {
          flush();
          set_heading(int(lvl), trim(l.substr(lvl)));
          continue;
        }
      }
      if (kind_ != "txt" && i + 1 < lines.size() && !blank(l) && cur_.empty() && underline_char(lines[i + 1].text) &&
          trim(lines[i + 1].text).size() >= trim(l).size()) {
        char c = underline_char(lines[i + 1].text);
        flush();
        set_heading(level_of(c), trim(l));
        i++;
        continue;
      }
      if (kind_ != "txt" && underline_char(l) && cur_.empty()) continue;  // RST overline / md rule
      if (blank(l)) {
        flush();
        continue;
      }
      bool table_line = kind_ != "txt" && (trim(l).substr(0, 1) == "|" || (kind_ == "rst" && trim(l).substr(0, 1) == "+"));
      if (table_line != in_table_ || (kind_ != "txt" && is_list_item(l) && !in_table_)) flush();
      in_table_ = table_line;
      if (cur_.empty()) cur_start_ = ls;
      if (!cur_.empty()) cur_ += '\n';
      cur_ += trim(l);
      cur_end_ = le;
    }
    flush();
    return std::move(out_);
  }

 private:
  const std::string& t_;
  std::string kind_;
  int page_;
  std::vector<Block> out_;
  std::vector<std::pair<int, std::string>> headings_;
  std::map<char, int> rst_levels_;
  std::string cur_;
  int64_t cur_start_ = 0, cur_end_ = 0;
  bool in_table_ = false;

  int level_of(char c) {
    if (kind_ == "md") return c == '=' ? 1 : 2;
    auto it = rst_levels_.find(c);
    if (it != rst_levels_.end()) return it->second;
    int l = int(rst_levels_.size()) + 1;
    rst_levels_[c] = l;
    return l;
  }
  void set_heading(int level, std::string text) {
    while (!headings_.empty() && headings_.back().first >= level) headings_.pop_back();
    headings_.push_back({level, std::move(text)});
  }
  std::string heading() const {
    std::string h;
    for (auto& [l, t] : headings_) h += (h.empty() ? "" : " > ") + t;
    return h;
  }
  void add(std::string text, int64_t s, int64_t e, bool atomic) {
    if (blank(text)) return;
    out_.push_back(Block{std::move(text), heading(), page_, s, e, atomic, false});
  }
  void flush() {
    if (!cur_.empty()) add(std::move(cur_), cur_start_, cur_end_, in_table_);
    cur_.clear();
    in_table_ = false;
  }
};

// HTML → text with block boundaries, headings and tables; entity-decoded.
class HtmlScanner {
 public:
  explicit HtmlScanner(const std::string& h) : h_(h) {}
  std::vector<Block> run() {
    size_t i = 0;
    while (i < h_.size()) {
      if (h_[i] != '<') {
        size_t j = h_.find('<', i);
        if (j == std::string::npos) j = h_.size();
        text(h_.substr(i, j - i));
        i = j;
        continue;
      }
      if (h_.compare(i, 4, "<!--") == 0) {
        size_t j = h_.find("-->", i);
        i = j == std::string::npos ? h_.size() : j + 3;
        continue;
      }
      size_t j = h_.find('>', i);
      if (j == std::string::npos) break;
      std::string tag = h_.substr(i + 1, j - i - 1);
      i = j + 1;
      bool close = !tag.empty() && tag[0] == '/';
      std::string name;
      for (size_t k = close; k < tag.size() && (isalnum(uint8_t(tag[k]))); k++) name += char(tolower(tag[k]));
      if (!close && (name == "script" || name == "style" || name == "head" || name == "noscript")) {
        size_t e = find_ci(h_, "</" + name, i);
        i = e == std::string::npos ? h_.size() : h_.find('>', e) + 1;
        if (i == 0) i = h_.size();
        continue;
      }
      if (name.size() == 2 && name[0] == 'h' && name[1] >= '1' && name[1] <= '6') {
        flush();
        if (close) {
          int lvl = name[1] - '0';
          while (!headings_.empty() && headings_.back().first >= lvl) headings_.pop_back();
          headings_.push_back({lvl, trim(cur_heading_)});
          cur_heading_.clear();
          in_heading_ = false;
        } else {
          in_heading_ = true;
        }
        continue;
      }
      if (name == "table") {
        flush();
        in_table_ = !close;
        if (close) flush_table();
        continue;
      }
      if (in_table_ && (name == "td" || name == "th") && close) cell_ += " | ";
      else if (in_table_ && name == "tr" && close) {
        std::string row = trim(cell_);
        if (!row.empty() && row.back() == '|') row = trim(row.substr(0, row.size() - 1));
        table_ += row + "\n";
        cell_.clear();
      } else if (name == "br") {
        append("\n");
      } else if (!in_table_ && (name == "p" || name == "div" || name == "li" || name == "pre" || name == "section" ||
                                name == "article" || name == "blockquote" || name == "dt" || name == "dd" ||
                                name == "ul" || name == "ol" || name == "body" || name == "main")) {
        flush();
      }
    }
    flush();
    flush_table();
    return std::move(out_);
  }
  std::string plain;  // the extracted text the spans refer to

 private:
  const std::string& h_;
  std::vector<Block> out_;
  std::vector<std::pair<int, std::string>> headings_;
  std::string cur_, cur_heading_, table_, cell_;
  bool in_heading_ = false, in_table_ = false;

  static size_t find_ci(const std::string& s, const std::string& needle, size_t from) {
    auto it = std::search(s.begin() + ptrdiff_t(from), s.end(), needle.begin(), needle.end(),
                          [](char a, char b) { return tolower(uint8_t(a)) == tolower(uint8_t(b)); });
    return it == s.end() ? std::string::npos : size_t(it - s.begin());
  }
  static std::string decode(const std::string& s) {
    static const std::map<std::string, std::string> named = {{"amp", "&"},  {"lt", "<"},     {"gt", ">"},
                                                             {"quot", "\""}, {"apos", "'"},  {"nbsp", " "},
                                                             {"mdash", "—"}, {"ndash", "–"}, {"hellip", "…"}};
    std::string out;
    for (size_t i = 0; i < s.size(); i++) {
      size_t semi = s[i] == '&' ? s.find(';', i) : std::string::npos;
      if (semi != std::string::npos && semi - i <= 10) {
        std::string ent = s.substr(i + 1, semi - i - 1);
        uint32_t cp = 0;
        bool ok = false;
        if (!ent.empty() && ent[0] == '#') {
          char* endp = nullptr;
          unsigned long v = ent.size() > 1 && (ent[1] == 'x' || ent[1] == 'X') ? strtoul(ent.c_str() + 2, &endp, 16)
                                                                               : strtoul(ent.c_str() + 1, &endp, 10);
          ok = endp && *endp == 0 && v > 0 && v < 0x110000 && !(v >= 0xD800 && v < 0xE000);
          cp = uint32_t(v);
        } else if (auto it = named.find(ent); it != named.end()) {
          out += it->second;
          i = semi;
          continue;
        }
        if (ok) {
          if (cp < 0x80) out += char(cp);
          else if (cp < 0x800) out += {char(0xC0 | (cp >> 6)), char(0x80 | (cp & 63))};
          else if (cp < 0x10000) out += {char(0xE0 | (cp >> 12)), char(0x80 | ((cp >> 6) & 63)), char(0x80 | (cp & 63))};
          else out += {char(0xF0 | (cp >> 18)), char(0x80 | ((cp >> 12) & 63)), char(0x80 | ((cp >> 6) & 63)), char(0x80 | (cp & 63))};
          i = semi;
          continue;
        }
      }
      out += s[i];
    }
    return out;
  }
  void text(const std::string& raw) {
    std::string t = decode(raw);
    std::string norm;
    for (char c : t) {
      bool ws = c == ' ' || c == '\n' || c == '\t' || c == '\r';
      if (ws) {
        if (!norm.empty() && norm.back() != ' ') norm += ' ';
      } else {
        norm += c;
      }
    }
    if (in_heading_) cur_heading_ += norm;
    else if (in_table_) cell_ += norm;
    else append(norm);
  }
  void append(const std::string& s) {
    if (cur_.empty() && blank(s)) return;
    cur_ += s;
  }
  std::string heading() const {
    std::string h;
    for (auto& [l, t] : headings_) h += (h.empty() ? "" : " > ") + t;
    return h;
  }
  void emit(std::string t, bool atomic) {
    t = trim(t);
    if (t.empty()) return;
    int64_t s = int64_t(plain.size()), e = s + int64_t(t.size());
    plain += t + "\n\n";
    out_.push_back(Block{std::move(t), heading(), 0, s, e, atomic, false});
  }
  void flush() {
    emit(cur_, false);
    cur_.clear();
  }
  void flush_table() {
    if (!trim(cell_).empty()) table_ += trim(cell_) + "\n";
    cell_.clear();
    emit(table_, true);
    table_.clear();
  }
};

bool valid_utf8(const std::string& s) {
  size_t i = 0, n = s.size();
  while (i < n) {
    uint8_t c = uint8_t(s[i]);
    if (c == 0) return false;
    int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (!len || i + size_t(len) > n) return false;
    for (int k = 1; k < len; k++)
      if ((uint8_t(s[i + size_t(k)]) & 0xC0) != 0x80) return false;
    i += size_t(len);
  }
  return true;
}

std::string kind_of(const std::string& path) {
  std::string ext;
  size_t dot = path.rfind('.'), slash = path.rfind('/');
  if (dot != std::string::npos && (slash == std::string::npos || dot > slash)) ext = path.substr(dot + 1);
  for (char& c : ext) c = char(tolower(uint8_t(c)));
  if (ext == "md" || ext == "markdown") return "md";
  if (ext == "rst") return "rst";
  if (ext == "html" || ext == "htm" || ext == "xhtml") return "html";
  if (ext == "jsonl" || ext == "ndjson") return "jsonl";
  if (ext == "pdf") return "pdf";
  return "txt";
}

std::string quote_shell(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

std::vector<Block> extract_pdf_text(const std::string& path) {
  check_input_file(path);
  std::string cmd = "pdftotext -enc UTF-8 -q " + quote_shell(path) + " - 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) fail(path, "pdftotext", std::string("could not run: ") + strerror(errno));
  std::string out;
  char buf[65536];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int st = pclose(p);
  if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) == 127)
    fail(path, "pdftotext", "not found: install poppler-utils (scripts/setup.sh)");
  if (WEXITSTATUS(st) != 0) fail(path, "PDF", "pdftotext could not read it (exit " + std::to_string(WEXITSTATUS(st)) + "): corrupt or encrypted?");
  std::vector<Block> blocks;
  size_t pos = 0;
  int page = 1;
  while (pos < out.size()) {
    size_t ff = out.find('\f', pos);
    if (ff == std::string::npos) ff = out.size();
    std::string pt = out.substr(pos, ff - pos);
    for (Block& b : LineScanner(pt, "txt", page).run()) blocks.push_back(std::move(b));
    pos = ff + 1;
    page++;
  }
  return blocks;
}

// One block per parsed element: a heading sets the heading path of what
// follows, a table is one block (Markdown rows) kept whole, running headers
// and footers are dropped, and a figure's stray label words too (its caption
// is an element of its own). Offsets are into the page's elements joined by
// blank lines.
std::vector<Block> extract_pdf(const std::string& path) {
  parse::Options opt;
  std::string backend = parse::find_solar_pdf(opt);
  if (backend.empty() || access(backend.c_str(), X_OK) != 0) return extract_pdf_text(path);
  std::vector<Block> blocks;
  std::vector<std::pair<int, std::string>> headings;
  parse::parse_file(path, opt, [](int) {}, [&](const parse::Page& page, std::vector<parse::Element>&& els) {
    int64_t off = 0;
    for (const parse::Element& e : els) {
      using C = parse::Category;
      if (e.category == C::header || e.category == C::footer || e.category == C::figure) continue;
      if (e.category == C::heading1 || e.category == C::heading2 || e.category == C::heading3) {
        int level = int(e.category) - int(C::heading1) + 1;
        while (!headings.empty() && headings.back().first >= level) headings.pop_back();
        headings.push_back({level, trim(e.text)});
        continue;
      }
      bool whole = e.category == C::table || e.category == C::code;
      std::string t = trim(e.category == C::table ? e.markdown : e.text);
      if (t.empty()) continue;
      std::string h;
      for (auto& [l, x] : headings) h += (h.empty() ? "" : " > ") + x;
      int64_t len = int64_t(t.size());
      blocks.push_back(Block{std::move(t), std::move(h), page.number, off, off + len, whole, false});
      off += len + 2;
    }
  });
  return blocks;
}

}  // namespace

std::vector<Block> extract_text(const std::string& text, const std::string& kind, const std::string& source,
                                const std::string& text_field) {
  if (!valid_utf8(text)) fail(source, "content", "not UTF-8 text (binary file?)");
  if (kind == "html") return HtmlScanner(text).run();
  if (kind == "jsonl") {
    std::vector<Block> out;
    int64_t line = 0;
    for (const Line& l : split_lines(text)) {
      line++;
      if (blank(l.text)) continue;
      nlohmann::json j = parse_json(l.text, source + ":" + std::to_string(line));
      if (!j.is_object() || !j.contains(text_field) || !j[text_field].is_string())
        fail(source, "line " + std::to_string(line), "expected an object with a string field \"" + text_field + "\" (--text-field)");
      std::string t = trim(j[text_field].get<std::string>());
      if (!t.empty()) out.push_back(Block{t, "", 0, l.start, l.start + int64_t(l.text.size()), false, true});
    }
    return out;
  }
  if (kind != "txt" && kind != "md" && kind != "rst") fail(source, "kind", "expected txt, md, rst, html or jsonl, got " + kind);
  return LineScanner(text, kind, 0).run();
}

std::vector<Block> extract_file(const std::string& path, const std::string& text_field) {
  std::string kind = kind_of(path);
  std::vector<Block> b = kind == "pdf" ? extract_pdf(path) : extract_text(read_file(path), kind, path, text_field);
  if (b.empty()) fail(path, "content", "no text found (empty document)");
  return b;
}

}  // namespace solar::rag
