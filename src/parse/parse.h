// solar/parse/parse.h — documents (PDF, PNG, JPEG) to structured elements:
// headings, paragraphs, lists, tables, figures, captions, headers/footers,
// shaped like Upstage Document Parse's output (see render.h, docs/parse.md).
//
// Two ways in, one layout:
//  - born-digital PDFs: the separately built GPL program `solar-pdf`
//    (tools/solar-pdf, linking poppler) runs as a subprocess and prints each
//    page's characters (font, size, bold/italic/mono, box), images, strokes
//    and filled rectangles (pdf_stream.h). This library never links poppler.
//  - images, and PDF pages without a text layer: Tesseract 5 words with
//    boxes (ocr.h), the page rendered by pdftoppm when it is a PDF page.
// Both become a Page of Words, Rules and image boxes; layout() turns a Page
// into Elements: words → lines → XY-cut reading order → blocks → categories,
// ruled tables → cells with row/column spans (table.h).
//
// Coordinates: points (PDF) or pixels (images), origin top-left, y down.
// Threads: every function works on its arguments only; pages may be laid
// out on different threads. Errors: solar::Error naming the file and page.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace solar::parse {

struct Box {
  double x0 = 0, y0 = 0, x1 = 0, y1 = 0;
  double w() const { return x1 - x0; }
  double h() const { return y1 - y0; }
  double cx() const { return (x0 + x1) / 2; }
  double cy() const { return (y0 + y1) / 2; }
  void add(const Box& b);  // grows to cover b (an empty box, x0 > x1, takes b)
  static Box empty() { return {1e300, 1e300, -1e300, -1e300}; }
};
double overlap_x(const Box& a, const Box& b);
double overlap_y(const Box& a, const Box& b);
double iou(const Box& a, const Box& b);

// A word: glyphs close enough on one baseline (PDF), or Tesseract's word.
struct Word {
  Box box;
  std::string text;  // UTF-8
  float size = 0;    // font size (PDF) or x-height-derived size (OCR)
  bool bold = false, italic = false, mono = false;
  int ocr_line = -1;  // Tesseract's text line (its layout analysis): not split at wide gaps
  bool doubtful = false;  // OCR confidence under 20: kept as table cell text only
};
// A straight stroke or a thin filled rectangle: table rules and underlines.
struct Rule {
  Box box;  // horizontal: h() small; vertical: w() small
  bool horizontal() const { return box.w() >= box.h(); }
};

struct Page {
  int number = 0;  // 1-based
  double width = 0, height = 0;
  std::vector<Word> words;
  std::vector<Rule> rules;
  std::vector<Box> images;    // placed raster images
  std::vector<Box> graphics;  // other filled shapes (curves, polygons): drawn figures
  std::vector<Box> shading;   // filled rectangles too large to be rules (code boxes, cell shading)
  bool ocr = false;           // words came from Tesseract
};

enum class Category { heading1, heading2, heading3, paragraph, list, table, figure, chart, caption, header,
                      footer, equation, index, footnote, code };
const char* category_name(Category c);  // "heading1", "paragraph", ...

struct Element {
  int id = 0;
  Category category = Category::paragraph;
  int page = 0;
  Box box;  // page units (points or pixels)
  double page_w = 0, page_h = 0;
  std::string html, markdown, text;
};

// Document-wide statistics the layout needs and that build up page by page
// (the body font size), so pages stream through with bounded memory.
struct LayoutState {
  std::vector<double> size_chars;  // characters seen per font size, 0.5-point bins
  // Text of lines near the top or bottom margin (digits dropped) → pages it
  // was seen on: a line repeated there is a running header or footer.
  std::map<std::string, int> margin_texts;
  double body_size() const;        // the most used size (10 before any text)
};

// One page to elements, in reading order. ids start at first_id.
std::vector<Element> layout(const Page& page, LayoutState& state, int first_id);

struct Options {
  std::string password;      // PDFs: the user or owner password
  std::string solar_pdf;     // the backend program; empty: beside the solar binary, then PATH
  std::string ocr_lang = "eng";
  int first_page = 1, last_page = 0;  // 0: to the end
  int64_t max_pixels = 100'000'000;   // images larger than this are refused
  bool ocr_empty_pages = true;        // PDF pages without text go through OCR (needs pdftoppm)
  int threads = 0;                    // scanned pages OCR'd side by side, one engine each (0: all cores)
};

// Parses one file (by content: %PDF, PNG, JPEG, TIFF), calling on_page for
// every page's elements as soon as the page is done (bounded memory for long
// documents). on_start gets the page count once known. Throws solar::Error
// naming the file for encrypted (without the right password), damaged,
// empty or unsupported input. Scanned PDF pages are OCR'd on opt.threads
// threads; on_page is still called on the caller's thread, in page order.
void parse_file(const std::string& path, const Options& opt,
                const std::function<void(int pages)>& on_start,
                const std::function<void(const Page&, std::vector<Element>&&)>& on_page);

// Whether path starts like an image parse_file reads (one page, OCR'd on one
// thread): callers parse several such files side by side. False when the
// file cannot be read (parse_file then says why).
bool is_image_file(const std::string& path);

}  // namespace solar::parse
