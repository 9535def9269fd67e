// solar/parse/pdf_stream.h — the text format solar-pdf prints, and running it.
//
// Format "solar-pdf 1": one record per line, fields separated by one space,
// numbers in points with the origin at the page's top-left, y down:
//   solar-pdf 1                    first line (the version)
//   D <pages>                      page count, after the file opened
//   P <n> <width> <height>         a page starts
//   F <id> <flags> <name>          a font (flags: 1 bold, 2 italic, 4 monospace)
//   C <x0> <y0> <x1> <y1> <font> <size> <hex code point>   a glyph
//   I <x0> <y0> <x1> <y1>          a raster image
//   L <x0> <y0> <x1> <y1> <width>  a stroked straight segment
//   R <x0> <y0> <x1> <y1> <gray>   a filled axis-aligned rectangle (gray 0 black .. 1 white)
//   G <x0> <y0> <x1> <y1>          the box of another filled shape
//   E                              the page ends
//   X <message>                    failure (then solar-pdf exits non-zero)
// Font ids are per document (an F line comes before the first C using it).
//
// Threads: a PageStreamParser is one document's state; use one per thread.
// Errors: a malformed record throws solar::Error naming the source and line.
#pragma once
#include <functional>
#include <map>
#include <string>
#include <string_view>

#include "parse/parse.h"

namespace solar::parse {

class PageStreamParser {
 public:
  explicit PageStreamParser(std::string source) : source_(std::move(source)) {}
  // Feeds one line (without '\n'). Returns true when it completed a page,
  // which is then moved into *out.
  bool line(std::string_view s, Page* out);
  int pages() const { return pages_; }  // from the D record; -1 before it
  const std::string& failure() const { return failure_; }  // an X record's message

 private:
  struct Glyph {
    Box box;
    int font;
    float size;
    char32_t cp;
  };
  struct FontInfo {
    bool bold = false, italic = false, mono = false;
  };
  [[noreturn]] void bad(const std::string& what) const;
  void finish_page(Page* out);

  std::string source_;
  int64_t line_no_ = 0;
  int pages_ = -1;
  bool in_page_ = false, saw_header_ = false;
  Page page_;
  std::vector<Glyph> glyphs_;
  std::map<int, FontInfo> fonts_;
  std::string failure_;
};

// Runs solar-pdf on path and streams its pages to on_page; on_start gets the
// page count. Throws solar::Error naming path (encrypted, damaged, backend missing).
void read_pdf(const std::string& path, const Options& opt, const std::function<void(int)>& on_start,
              const std::function<void(Page&&)>& on_page);

// Where solar-pdf is: opt.solar_pdf, $SOLAR_PDF, beside /proc/self/exe, or PATH; "" if nowhere.
std::string find_solar_pdf(const Options& opt);

}  // namespace solar::parse
