// solar/report/document.h — one report, written as Markdown and as HTML.
//
// Blocks (headings, paragraphs, tables, images) are kept once and rendered
// twice, so report.md and report.html always say the same thing. Text is
// Markdown inline syntax (`code`, **strong**, backslash escapes); the HTML
// renders it as <code> and <strong> instead of showing the marks.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace solar::report {

// Markdown inline text → escaped HTML; unmatched marks stay as literal text.
std::string markdown_inline_html(std::string_view md);

class Document {
 public:
  explicit Document(std::string title) : title_(std::move(title)) {}
  void heading(std::string text);
  void paragraph(std::string md);
  void image(std::string alt, std::string src);
  void table(std::vector<std::string> header, std::vector<std::vector<std::string>> rows);
  std::string markdown() const;
  std::string html() const;  // a standalone page

 private:
  struct Block {
    enum Kind { Heading, Paragraph, Image, Table } kind;
    explicit Block(Kind k) : kind(k) {}
    std::string text, src;
    std::vector<std::string> header;
    std::vector<std::vector<std::string>> rows;
  };
  std::string title_;
  std::vector<Block> blocks_;
};

}  // namespace solar::report
