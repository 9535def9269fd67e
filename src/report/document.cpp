#include "report/document.h"

#include <cctype>

#include "report/plot.h"

namespace solar::report {

namespace {

// Position of the next run of exactly n backticks at or after `from`, or npos.
size_t backtick_run(std::string_view s, size_t from, size_t n) {
  while ((from = s.find('`', from)) != std::string_view::npos) {
    size_t end = s.find_first_not_of('`', from);
    if (end == std::string_view::npos) end = s.size();
    if (end - from == n) return from;
    from = end;
  }
  return std::string_view::npos;
}

}  // namespace

std::string markdown_inline_html(std::string_view s) {
  std::string o;
  for (size_t i = 0; i < s.size();) {
    char c = s[i];
    if (c == '\\' && i + 1 < s.size() && std::ispunct(static_cast<unsigned char>(s[i + 1]))) {
      o += xml_escape(s.substr(i + 1, 1));
      i += 2;
    } else if (c == '`') {
      size_t n = s.find_first_not_of('`', i);
      n = (n == std::string_view::npos ? s.size() : n) - i;
      size_t close = backtick_run(s, i + n, n);
      if (close == std::string_view::npos) {
        o += std::string(n, '`');
      } else {
        std::string_view code = s.substr(i + n, close - i - n);
        if (code.size() >= 2 && code.front() == ' ' && code.back() == ' ') code = code.substr(1, code.size() - 2);
        o += "<code>" + xml_escape(code) + "</code>";
        n = close + n - i;
      }
      i += n;
    } else if (s.compare(i, 2, "**") == 0 && s.find("**", i + 2) != std::string_view::npos) {
      size_t close = s.find("**", i + 2);
      o += "<strong>" + markdown_inline_html(s.substr(i + 2, close - i - 2)) + "</strong>";
      i = close + 2;
    } else {
      o += xml_escape(s.substr(i, 1));
      i++;
    }
  }
  return o;
}

void Document::heading(std::string text) {
  Block b{Block::Heading};
  b.text = std::move(text);
  blocks_.push_back(std::move(b));
}

void Document::paragraph(std::string md) {
  Block b{Block::Paragraph};
  b.text = std::move(md);
  blocks_.push_back(std::move(b));
}

void Document::image(std::string alt, std::string src) {
  Block b{Block::Image};
  b.text = std::move(alt), b.src = std::move(src);
  blocks_.push_back(std::move(b));
}

void Document::table(std::vector<std::string> header, std::vector<std::vector<std::string>> rows) {
  Block b{Block::Table};
  b.header = std::move(header), b.rows = std::move(rows);
  blocks_.push_back(std::move(b));
}

std::string Document::markdown() const {
  std::string s = "# " + title_ + "\n";
  for (auto& b : blocks_) {
    s += "\n";
    switch (b.kind) {
      case Block::Heading: s += "## " + b.text + "\n"; break;
      case Block::Paragraph: s += b.text + "\n"; break;
      case Block::Image: s += "![" + b.text + "](" + b.src + ")\n"; break;
      case Block::Table: s += markdown_table(b.header, b.rows); break;
    }
  }
  return s;
}

std::string Document::html() const {
  std::string s =
      "<!doctype html><html><head><meta charset=\"utf-8\"><title>" + xml_escape(title_) +
      "</title><style>body{font-family:sans-serif;max-width:1000px;margin:2em auto;padding:0 1em}"
      "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}"
      "td:first-child,th:first-child{text-align:left}img{max-width:100%}</style></head><body>\n<h1>" +
      markdown_inline_html(title_) + "</h1>\n";
  for (auto& b : blocks_) {
    switch (b.kind) {
      case Block::Heading: s += "<h2>" + markdown_inline_html(b.text) + "</h2>\n"; break;
      case Block::Paragraph: s += "<p>" + markdown_inline_html(b.text) + "</p>\n"; break;
      case Block::Image:
        s += "<p><img src=\"" + xml_escape(b.src) + "\" alt=\"" + xml_escape(b.text) + "\"></p>\n";
        break;
      case Block::Table: s += html_table(b.header, b.rows); break;
    }
  }
  return s + "</body></html>\n";
}

}  // namespace solar::report
