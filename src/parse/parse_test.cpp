#include "parse/parse.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <algorithm>
#include <filesystem>

#include "core/fs.h"
#include "core/json.h"
#include "parse/pdf_stream.h"
#include "parse/render.h"
#include "parse/table.h"
#include "testing/models.h"
#include "testing/pdf.h"
#include "testing/testing.h"

namespace solar::parse {
namespace {

using testing::error_of;
using testing::PdfBuilder;

#ifdef SOLAR_PDF_BIN
constexpr const char* kBackend = SOLAR_PDF_BIN;
#else
constexpr const char* kBackend = "";
#endif

// Three pages: a header and page number on each; headings, a hyphenated
// paragraph, a list, a ruled table with a column span, a caption; then two
// columns; then plain text.
std::string fixture_pdf() {
  PdfBuilder b;
  for (int p = 1; p <= 3; p++) {
    b.text("F1", 9, 72, 40, "Solar Test Report").text("F1", 9, 300, 770, std::to_string(p));
    if (p == 1) {
      b.text("F2", 18, 72, 100, "1 Introduction");
      b.text("F1", 11, 72, 130, "This is the first paragraph of the docu-");
      b.text("F1", 11, 72, 144, "ment, and it goes on for a while to");
      b.text("F1", 11, 72, 158, "make three lines of body text.");
      b.text("F1", 11, 72, 190, "A second paragraph follows after a gap.");
      b.text("F1", 11, 72, 220, "- first item").text("F1", 11, 72, 234, "- second item");
      for (double y : {260, 276, 292, 308}) b.line(72, y, 372, y);
      for (double x : {72, 172, 372}) b.line(x, 260, x, 308);
      b.line(272, 260, 272, 292);  // no rule in the last row: "spans two columns" spans
      b.text("F2", 10, 80, 272, "Name").text("F2", 10, 180, 272, "Size").text("F2", 10, 280, 272, "Kind");
      b.text("F1", 10, 80, 288, "alpha").text("F1", 10, 180, 288, "12").text("F1", 10, 280, 288, "small");
      b.text("F1", 10, 80, 304, "beta").text("F1", 10, 180, 304, "spans two columns");
      b.text("F1", 11, 72, 340, "Table 1: Sizes of things");
      b.text("F2", 13, 72, 380, "1.1 Details");
      b.text("F3", 10, 72, 410, "int main() {").text("F3", 10, 96, 422, "return 0;").text("F3", 10, 72, 434, "}");
    } else if (p == 2) {
      for (int i = 0; i < 10; i++) {
        b.text("F1", 11, 72, 100 + 14 * i, "Left column line " + std::to_string(i));
        b.text("F1", 11, 320, 100 + 14 * i, "Right column line " + std::to_string(i));
      }
    } else {
      b.text("F1", 11, 72, 100, "The last page has one paragraph.");
    }
    b.page();
  }
  return b.bytes();
}

// A file in a fresh temporary folder (the previous call's folder is emptied).
std::string write_tmp(const std::string& name, const std::string& bytes) {
  std::string dir = testing::temp_dir("parse");
  std::string p = join_path(dir, name);
  write_file_atomic(p, bytes);
  return p;
}

std::vector<Element> parse_all(const std::string& path, Options opt = {}) {
  if (opt.solar_pdf.empty()) opt.solar_pdf = kBackend;
  std::vector<Element> all;
  parse_file(path, opt, [](int) {}, [&](const Page&, std::vector<Element>&& e) {
    for (auto& x : e) all.push_back(std::move(x));
  });
  return all;
}

const Element* find(const std::vector<Element>& els, Category c, const std::string& needle, int page = 0) {
  for (const Element& e : els)
    if (e.category == c && e.text.find(needle) != std::string::npos && (page == 0 || e.page == page)) return &e;
  return nullptr;
}

#define NEED_BACKEND() \
  if (!*kBackend) GTEST_SKIP() << "solar-pdf was not built (poppler's libpoppler-private-dev missing)"

TEST(Parse, BornDigitalPdfElements) {
  NEED_BACKEND();
  auto els = parse_all(write_tmp("fixture.pdf", fixture_pdf()));
  ASSERT_TRUE(find(els, Category::heading1, "1 Introduction", 1));
  ASSERT_TRUE(find(els, Category::heading2, "1.1 Details", 1));
  // The hyphenated word is joined across the line break.
  const Element* p = find(els, Category::paragraph, "first paragraph of the document, and", 1);
  ASSERT_TRUE(p);
  EXPECT_NE(p->text.find("three lines of body text."), std::string::npos);
  const Element* l = find(els, Category::list, "first item");
  ASSERT_TRUE(l);
  EXPECT_EQ(l->html, "<ul id=\"" + std::to_string(l->id) + "\" data-category=\"list\"><li>first item</li><li>second item</li></ul>");
  const Element* t = find(els, Category::table, "alpha");
  ASSERT_TRUE(t);
  EXPECT_NE(t->html.find("<thead><tr><th>Name</th><th>Size</th><th>Kind</th></tr></thead>"), std::string::npos) << t->html;
  EXPECT_NE(t->html.find("<td>beta</td><td colspan=\"2\">spans two columns</td>"), std::string::npos) << t->html;
  EXPECT_TRUE(find(els, Category::caption, "Table 1: Sizes of things"));
  const Element* code = find(els, Category::code, "int main");
  ASSERT_TRUE(code);
  EXPECT_EQ(code->text, "int main() {\n    return 0;\n}");
  for (int page = 1; page <= 3; page++) {
    EXPECT_TRUE(find(els, Category::header, "Solar Test Report", page)) << page;
    EXPECT_TRUE(find(els, Category::footer, std::to_string(page), page)) << page;
  }
  // Two columns: the whole left column comes before the right one.
  std::string order;
  for (const Element& e : els)
    if (e.page == 2 && e.category == Category::paragraph) order += e.text + "\n";
  size_t last_left = order.rfind("Left column line 9"), first_right = order.find("Right column line 0");
  ASSERT_NE(last_left, std::string::npos);
  ASSERT_NE(first_right, std::string::npos);
  EXPECT_LT(last_left, first_right) << order;
  // Element boxes are on the page; ids count up in reading order.
  for (size_t i = 0; i < els.size(); i++) {
    EXPECT_EQ(els[i].id, int(i));
    EXPECT_GE(els[i].box.x0, 0);
    EXPECT_LE(els[i].box.y1, els[i].page_h);
  }
}

TEST(Parse, JsonShapeAndMarkdown) {
  NEED_BACKEND();
  auto els = parse_all(write_tmp("fixture.pdf", fixture_pdf()));
  auto j = document_json(els, 3);
  ASSERT_TRUE(j["content"]["html"].is_string());
  ASSERT_EQ(j["elements"].size(), els.size());
  const auto& e0 = j["elements"][0];
  EXPECT_EQ(e0["coordinates"].size(), 4u);
  for (const char* k : {"html", "markdown", "text"}) EXPECT_TRUE(e0["content"][k].is_string()) << k;
  std::string md = j["content"]["markdown"];
  EXPECT_NE(md.find("# 1 Introduction\n"), std::string::npos) << md;
  EXPECT_NE(md.find("| Name | Size | Kind |\n| --- | --- | --- |\n| alpha | 12 | small |"), std::string::npos) << md;
  EXPECT_EQ(md.find("Solar Test Report"), std::string::npos) << "headers stay out of the Markdown";
}

TEST(Parse, StreamRecordsAreChecked) {
  Page p;
  PageStreamParser ok("x.pdf");
  for (const char* l : {"solar-pdf 1", "D 1", "P 1 100 100", "F 1 1 Helvetica-Bold", "C 10 10 15 20 1 10 48",
                        "C 15 10 20 20 1 10 69", "C 20 10 22 20 1 10 20", "C 22 10 27 20 1 10 79", "L 0 50 100 50 1"})
    EXPECT_FALSE(ok.line(l, &p));
  ASSERT_TRUE(ok.line("E", &p));
  ASSERT_EQ(p.words.size(), 2u);
  EXPECT_EQ(p.words[0].text, "Hi");
  EXPECT_TRUE(p.words[0].bold);
  EXPECT_EQ(p.rules.size(), 1u);
  for (const char* bad : {"C 1 2 3", "C 1 2 3 4 1 10 zz", "Q 1", "P 1 -5 10", "P 1 1e9 10", "C nan 1 2 3 1 10 41"}) {
    PageStreamParser s("x.pdf");
    s.line("solar-pdf 1", &p);
    if (std::string(bad)[0] != 'P') s.line("P 1 100 100", &p);
    std::string err = error_of([&] { s.line(bad, &p); });
    EXPECT_NE(err.find("x.pdf"), std::string::npos) << bad << ": " << err;
  }
  PageStreamParser v("y.pdf");
  EXPECT_NE(error_of([&] { v.line("solar-pdf 9", &p); }).find("expected \"solar-pdf 1\""), std::string::npos);
}

TEST(Parse, BadInputNamesTheFile) {
  NEED_BACKEND();
  std::string garbage = write_tmp("garbage.pdf", "%PDF-1.4\nthis is not a pdf at all\n");
  EXPECT_NE(error_of([&] { parse_all(garbage); }).find("garbage.pdf"), std::string::npos);
  std::string empty = write_tmp("empty.pdf", PdfBuilder().bytes());
  std::string e = error_of([&] { parse_all(empty); });
  EXPECT_NE(e.find("empty.pdf"), std::string::npos) << e;
  std::string txt = write_tmp("notes.txt", "plain text\n");
  EXPECT_NE(error_of([&] { parse_all(txt); }).find("unsupported format"), std::string::npos);
  std::string zero = write_tmp("zero.png", "");
  EXPECT_NE(error_of([&] { parse_all(zero); }).find("zero.png: empty file"), std::string::npos);
  Options o;
  o.solar_pdf = "/nonexistent/solar-pdf";
  EXPECT_NE(error_of([&] { parse_all(write_tmp("f.pdf", fixture_pdf()), o); }).find("f.pdf"), std::string::npos);
  // Truncated: poppler rebuilds what it can or fails; either way no crash.
  std::string full = fixture_pdf();
  for (size_t cut : {full.size() / 3, full.size() / 2, full.size() - 40}) {
    std::string t = write_tmp("cut.pdf", full.substr(0, cut));
    std::string err = error_of([&] { parse_all(t); });
    if (!err.empty()) EXPECT_NE(err.find("cut.pdf"), std::string::npos) << err;
  }
}

// A PNG whose header claims w x h pixels (and nothing after it).
std::string png_header(uint32_t w, uint32_t h) {
  std::string s = "\x89PNG\r\n\x1a\n";
  std::string ihdr = "IHDR";
  for (uint32_t v : {w, h}) for (int k = 3; k >= 0; k--) ihdr += char((v >> (8 * k)) & 0xFF);
  ihdr += std::string("\x08\x00\x00\x00\x00", 5);
  s += std::string("\x00\x00\x00\x0d", 4) + ihdr;
  uint32_t crc = uint32_t(crc32(0, reinterpret_cast<const Bytef*>(ihdr.data()), uInt(ihdr.size())));
  for (int k = 3; k >= 0; k--) s += char((crc >> (8 * k)) & 0xFF);
  return s;
}

TEST(Parse, BadImages) {
  std::string huge = write_tmp("huge.png", png_header(200000, 200000));
  std::string e = error_of([&] { parse_all(huge); });
  EXPECT_NE(e.find("huge.png: image is 200000 x 200000 pixels"), std::string::npos) << e;
  std::string cut = write_tmp("cut.png", png_header(64, 64));
  e = error_of([&] { parse_all(cut); });
  EXPECT_NE(e.find("cut.png"), std::string::npos) << e;
  std::string jpg = write_tmp("bad.jpg", "\xFF\xD8\xFF\xE0 not really a jpeg");
  e = error_of([&] { parse_all(jpg); });
  EXPECT_NE(e.find("bad.jpg"), std::string::npos) << e;
}

TEST(Parse, ScannedPageThroughOcr) {
  NEED_BACKEND();
  std::string pdf = write_tmp("fixture.pdf", fixture_pdf());
  std::string dir = parent_dir(pdf);
  std::string cmd = "pdftoppm -png -r 150 -f 1 -l 1 -singlefile " + pdf + " " + dir + "/scan 2>/dev/null";
  if (std::system(cmd.c_str()) != 0) GTEST_SKIP() << "pdftoppm (poppler-utils) missing";
  auto els = parse_all(dir + "/scan.png");
  ASSERT_TRUE(find(els, Category::heading1, "Introduction")) << document_text(els);
  const Element* t = find(els, Category::table, "alpha");
  ASSERT_TRUE(t) << document_text(els);
  EXPECT_NE(t->html.find("colspan=\"2\""), std::string::npos) << t->html;
}

// A scanned PDF: each page of `text_pdf` rendered by pdftoppm (grey, 100
// dpi) and placed back as an inline image, with no text layer.
std::string scanned_pdf(const std::string& text_pdf, int pages) {
  std::string dir = parent_dir(text_pdf);
  PdfBuilder b;
  for (int p = 1; p <= pages; p++) {
    std::string cmd = "pdftoppm -gray -r 100 -f " + std::to_string(p) + " -l " + std::to_string(p) + " -singlefile " +
                      text_pdf + " " + dir + "/scan" + std::to_string(p) + " 2>/dev/null";
    if (std::system(cmd.c_str()) != 0) return "";
    std::string pgm = read_file(dir + "/scan" + std::to_string(p) + ".pgm");
    int w = 0, h = 0, maxv = 0, off = 0;
    if (sscanf(pgm.c_str(), "P5 %d %d %d%n", &w, &h, &maxv, &off) != 3 || maxv != 255) return "";
    std::string px = pgm.substr(size_t(off) + 1);
    uLongf n = compressBound(uLong(px.size()));
    std::string z(n, '\0');
    if (compress2(reinterpret_cast<Bytef*>(z.data()), &n, reinterpret_cast<const Bytef*>(px.data()), uLong(px.size()), 6) != Z_OK)
      return "";
    z.resize(n);
    // Hex over deflate: the image data cannot contain an "EI" that ends it early.
    std::string hex;
    for (unsigned char c : z) hex += "0123456789abcdef"[c >> 4], hex += "0123456789abcdef"[c & 15];
    b.raw("q 612 0 0 792 0 0 cm BI /W " + std::to_string(w) + " /H " + std::to_string(h) +
          " /CS /G /BPC 8 /F [/AHx /Fl] ID " + hex + "> EI Q\n").page();
  }
  return b.bytes();
}

TEST(Parse, ScannedPagesInParallelComeOutInOrder) {
  NEED_BACKEND();
  PdfBuilder t;
  const char* names[] = {"first", "second", "third", "fourth"};
  for (const char* n : names) {
    t.text("F2", 20, 72, 100, std::string("The ") + n + " page");
    for (int i = 0; i < 5; i++) t.text("F1", 14, 72, 140 + 20 * i, std::string("Body text of the ") + n + " page goes on here.");
    t.page();
  }
  std::string text_pdf = write_tmp("text.pdf", t.bytes());
  std::string scan = scanned_pdf(text_pdf, 4);
  if (scan.empty()) GTEST_SKIP() << "pdftoppm (poppler-utils) missing";
  std::string pdf = join_path(parent_dir(text_pdf), "scan.pdf");
  write_file_atomic(pdf, scan);
  Options o;
  o.threads = 1;
  auto one = parse_all(pdf, o);
  o.threads = 3;
  auto three = parse_all(pdf, o);
  ASSERT_FALSE(one.empty());
  EXPECT_EQ(document_json(one, 4).dump(), document_json(three, 4).dump());
  for (int p = 1; p <= 4; p++) {
    const Element* e = find(three, Category::paragraph, std::string("Body text of the ") + names[p - 1], p);
    EXPECT_TRUE(e) << names[p - 1] << "\n" << document_text(three);
  }
  for (size_t i = 1; i < three.size(); i++) EXPECT_LE(three[i - 1].page, three[i].page);
}

TEST(Parse, CliWritesEveryFormatAtomically) {
  NEED_BACKEND();
  std::string pdf = write_tmp("fixture.pdf", fixture_pdf());
  std::string out = parent_dir(pdf) + "/out";
  std::string log;
  ASSERT_EQ(testing::run_solar("parse " + pdf + " -q -o " + out + " --format json,html,md,text --solar-pdf " + kBackend, &log), 0) << log;
  auto j = read_json_file(out + "/fixture.json");
  EXPECT_EQ(j["usage"]["pages"], 3);
  EXPECT_NE(read_file(out + "/fixture.html").find("<h1 id="), std::string::npos);
  EXPECT_NE(read_file(out + "/fixture.md").find("# 1 Introduction"), std::string::npos);
  EXPECT_NE(read_file(out + "/fixture.txt").find("spans two columns"), std::string::npos);
  EXPECT_TRUE(testing::no_leftovers(out));
  // One bad file among good ones: the good one is written, the exit is 1.
  std::string bad = parent_dir(pdf) + "/bad.pdf";
  write_file_atomic(bad, "%PDF-1.7 broken");
  ASSERT_EQ(testing::run_solar("parse " + pdf + " " + bad + " -q -o " + out + "2 --solar-pdf " + kBackend, &log), 1) << log;
  EXPECT_NE(log.find("bad.pdf"), std::string::npos) << log;
  EXPECT_TRUE(path_exists(out + "2/fixture.json"));
  ASSERT_EQ(testing::run_solar("parse " + pdf + " -q --format pdf", &log), 2) << log;
}

TEST(Parse, RuledTableWithRowSpan) {
  // A grid whose first column's two lower cells are one (no rule between them).
  Page p;
  p.width = p.height = 500;
  auto h = [&](double y, double x0, double x1) { p.rules.push_back({{x0, y - 0.25, x1, y + 0.25}}); };
  auto v = [&](double x, double y0, double y1) { p.rules.push_back({{x - 0.25, y0, x + 0.25, y1}}); };
  h(100, 100, 300), h(120, 100, 300), h(140, 200, 300), h(160, 100, 300);
  v(100, 100, 160), v(200, 100, 160), v(300, 100, 160);
  auto w = [&](double x, double y, const char* t) { p.words.push_back({{x, y - 8, x + 20, y}, t, 10}); };
  w(110, 115, "k"), w(210, 115, "v"), w(110, 145, "both"), w(210, 135, "a"), w(210, 155, "b");
  std::vector<char> used(p.words.size(), 0);
  auto ts = find_tables(p, used);
  ASSERT_EQ(ts.size(), 1u);
  EXPECT_EQ(table_html(ts[0]),
            "<table><tbody><tr><td>k</td><td>v</td></tr><tr><td rowspan=\"2\">both</td><td>a</td></tr>"
            "<tr><td>b</td></tr></tbody></table>");
}

TEST(Parse, BooktabsTableWithSpanningHeaderAndMultiLineCell) {
  // Three rules of one extent (top, under the header, bottom), no vertical
  // ones. "Group A" reaches across the gap between the two number columns
  // (a colspan); "continued" starts in lower case under "beta" in the first
  // column only (the second line of beta's cell).
  Page p;
  p.width = 400, p.height = 500;
  for (double y : {5.0, 30.0, 160.0}) p.rules.push_back({{0, y - 0.25, 300, y + 0.25}});
  auto w = [&](double x0, double x1, double y, const char* t) { p.words.push_back({{x0, y, x1, y + 10}, t, 10}); };
  w(10, 40, 15, "Name"), w(150, 185, 15, "Group"), w(190, 230, 15, "A");
  const char* names[] = {"alpha", "beta", "continued", "gamma", "delta", "eps", "zeta", "eta", "theta"};
  for (int i = 0; i < 9; i++) {
    double y = 36 + 12 * i;
    w(10, 60, y, names[i]);
    if (i == 2) continue;
    w(120, 140, y, std::to_string(2 * i).c_str()), w(220, 240, y, std::to_string(2 * i + 1).c_str());
  }
  std::vector<char> used(p.words.size(), 0);
  auto ts = find_tables(p, used);
  ASSERT_EQ(ts.size(), 1u);
  std::string html = table_html(ts[0]);
  EXPECT_EQ(html.substr(0, html.find("<tr><td>gamma")),
            "<table><thead><tr><th>Name</th><th colspan=\"2\">Group A</th></tr></thead><tbody>"
            "<tr><td>alpha</td><td>0</td><td>1</td></tr><tr><td>beta continued</td><td>2</td><td>3</td></tr>");
  EXPECT_EQ(ts[0].rows, 9);  // the header and eight body rows
  EXPECT_EQ(ts[0].cols, 3);
  EXPECT_EQ(std::count(used.begin(), used.end(), 1), long(p.words.size()));
}

TEST(Parse, SharedDebianReferencePages) {
  NEED_BACKEND();
  std::string pdf = std::string(SOLAR_SHARED_DATA) + "/layout/debian-reference.en.pdf";
  if (!path_exists(pdf)) GTEST_SKIP() << pdf << " absent (shared data not mounted)";
  Options o;
  o.first_page = 47, o.last_page = 47;
  auto els = parse_all(pdf, o);
  const Element* t = find(els, Category::table, "bash-completion");
  ASSERT_TRUE(t);
  EXPECT_NE(t->html.find("<th>package</th><th>popcon</th><th>size</th><th>POSIX shell</th><th>description</th>"),
            std::string::npos) << t->html;
  EXPECT_TRUE(find(els, Category::caption, "Table 1.13: List of shell programs"));
  EXPECT_TRUE(find(els, Category::heading3, "1.4.1 The login shell"));
  EXPECT_TRUE(find(els, Category::heading2, "1.4 The basic Unix-like work environment"));
}

// A page of words laid out line by line: `line` adds words of 10 units size
// from x at the baseline y, 6 units a character and one space apart.
struct PageBuilder {
  Page p;
  PageBuilder() { p.number = 1, p.width = 600, p.height = 800; }
  PageBuilder& line(double x, double y, const std::string& text, float size = 10) {
    size_t i = 0;
    while (i < text.size()) {
      size_t j = text.find(' ', i);
      if (j == std::string::npos) j = text.size();
      std::string w = text.substr(i, j - i);
      p.words.push_back({{x, y - size, x + 0.6 * size * double(w.size()), y}, w, size});
      x += 0.6 * size * double(w.size() + 1);
      i = j + 1;
    }
    return *this;
  }
};

std::vector<Element> lay(const Page& p) {
  LayoutState st;
  return layout(p, st, 0);
}

TEST(Layout, IndentedParagraphsWithoutSpaceAreTwo) {
  // Justified lines, 12 units apart, the second paragraph's first line indented.
  PageBuilder b;
  const std::string full = "aaaa bbbb cccc dddd eeee ffff gggg hhhh iiii jjjj kkkk";
  b.line(80, 200, "     " + full.substr(5)).line(50, 212, full).line(50, 224, "end of one.");
  b.line(80, 236, "Then " + full.substr(10)).line(50, 248, full).line(50, 260, full);
  auto els = lay(b.p);
  ASSERT_EQ(els.size(), 2u) << document_text(els);
  EXPECT_EQ(els[0].category, Category::paragraph);
  EXPECT_NE(els[0].text.find("end of one."), std::string::npos);
  EXPECT_EQ(els[1].text.substr(0, 4), "Then");
  // A hanging indent (a reference list) is one block per entry, not per line.
  PageBuilder r;
  r.line(50, 200, "[1] " + full).line(80, 212, full.substr(0, 40)).line(80, 224, full.substr(0, 20));
  els = lay(r.p);
  ASSERT_EQ(els.size(), 1u) << document_text(els);
}

TEST(Layout, FigureLabelsJoinTheFigureAndCaptionsStayOut) {
  PageBuilder b;
  b.p.images.push_back({100, 100, 300, 250});
  b.p.images.push_back({308, 100, 508, 250});  // a second panel, less than an em away
  b.line(80, 130, "1.0").line(80, 240, "0.0").line(180, 266, "time (s)").line(518, 180, "legend");
  b.line(100, 290, "Figure 1: Two panels of one plot, labelled outside the images.");
  auto els = lay(b.p);
  ASSERT_EQ(els.size(), 2u) << document_text(els);
  EXPECT_EQ(els[0].category, Category::figure);
  EXPECT_LE(els[0].box.x0, 80);
  EXPECT_GE(els[0].box.x1, 540);
  for (const char* t : {"1.0", "0.0", "time", "legend"}) EXPECT_NE(els[0].text.find(t), std::string::npos) << t;
  EXPECT_EQ(els[1].category, Category::caption);
}

TEST(Layout, ParagraphRunningIntoTheTopMarginIsBody) {
  PageBuilder b;
  b.line(50, 20, "Journal of Tests 12");  // the running header, then a gap
  const std::string full = "aaaa bbbb cccc dddd eeee ffff gggg hhhh iiii jjjj kkkk";
  for (int i = 0; i < 4; i++) b.line(50, 50 + 12 * i, full);  // starts at 5% of the height
  auto els = lay(b.p);
  ASSERT_EQ(els.size(), 2u) << document_text(els);
  EXPECT_EQ(els[0].category, Category::header);
  EXPECT_EQ(els[0].text, "Journal of Tests 12");
  EXPECT_EQ(els[1].category, Category::paragraph);
  EXPECT_LT(els[1].box.y0, 0.07 * b.p.height);
}

TEST(Layout, NumberedSectionTitleAtBodySize) {
  PageBuilder b;
  const std::string full = "aaaa bbbb cccc dddd eeee ffff gggg hhhh iiii jjjj kkkk";
  b.line(50, 100, "2.1. Nematode Inoculums");
  for (int i = 0; i < 3; i++) b.line(50, 124 + 12 * i, full);
  b.line(50, 180, "2. Not a section but a list item");
  auto els = lay(b.p);
  ASSERT_EQ(els.size(), 3u) << document_text(els);
  EXPECT_EQ(els[0].category, Category::heading2);
  EXPECT_EQ(els[1].category, Category::paragraph);
  EXPECT_EQ(els[2].category, Category::list);
}

TEST(Layout, InterleavedOcrLinesAreOneLine) {
  // Tesseract read one printed line as two text lines: "two" and "four" sit
  // lower than "one" (too low for one row with it) but within the line that
  // "gyp"'s descender makes.
  Page p;
  p.number = 1, p.width = 600, p.height = 800, p.ocr = true;
  auto w = [&](double x0, double y0, double y1, const char* t, int line) {
    p.words.push_back({{x0, y0, x0 + 20, y1}, t, 10, false, false, false, line});
  };
  w(50, 90, 100, "one", 0), w(80, 96, 106, "two", 1), w(110, 90, 104, "gyp", 0), w(140, 96, 106, "four", 1),
      w(170, 90, 100, "five", 0);
  auto els = lay(p);
  ASSERT_EQ(els.size(), 1u) << document_text(els);
  EXPECT_EQ(els[0].text, "one two gyp four five");
}

TEST(Layout, ColumnReadWholeAcrossAGapInTheOtherColumn) {
  // Two columns; the right one pauses for two lines while the left one goes
  // on: the left column is still read to its end before the right one.
  PageBuilder b;
  for (int i = 0; i < 6; i++) b.line(50, 110 + 12 * i, "left column text goes on " + std::to_string(i));
  for (int i : {0, 1, 4, 5}) b.line(320, 110 + 12 * i, "right column words " + std::to_string(i));
  auto els = lay(b.p);
  std::string t = document_text(els);
  ASSERT_NE(t.find("on 5"), std::string::npos) << t;
  EXPECT_LT(t.find("on 5"), t.find("words 0")) << t;
  // List items at the bottom of the left column and the top of the right one are two lists.
  PageBuilder l;
  l.line(50, 300, "- first item of the left column");
  l.line(320, 100, "- an item at the top of the right column");
  for (int i = 0; i < 16; i++) l.line(50, 100 + 12 * i, "left column text goes on " + std::to_string(i));
  els = lay(l.p);
  int lists = 0;
  for (const Element& e : els) lists += e.category == Category::list;
  EXPECT_EQ(lists, 2) << document_text(els);
}

TEST(Parse, BoldHeadingOnAScanAtBodySize) {
  // Tesseract gives no weights: the stems' width tells the bold heading.
  NEED_BACKEND();
  PdfBuilder b;
  b.text("F2", 11, 72, 100, "Materials and Methods");
  for (int i = 0; i < 8; i++)
    b.text("F1", 11, 72, 130 + 14 * i, "The samples were collected over three weeks and kept cold until");
  b.page();
  std::string pdf = write_tmp("bold.pdf", b.bytes());
  std::string cmd = "pdftoppm -png -r 150 -singlefile " + pdf + " " + parent_dir(pdf) + "/bold 2>/dev/null";
  if (std::system(cmd.c_str()) != 0) GTEST_SKIP() << "pdftoppm (poppler-utils) missing";
  auto els = parse_all(parent_dir(pdf) + "/bold.png");
  const Element* h = nullptr;
  for (const Element& e : els)
    if (e.text.find("Methods") != std::string::npos) h = &e;
  ASSERT_TRUE(h) << document_text(els);
  EXPECT_TRUE(h->category == Category::heading1 || h->category == Category::heading2 || h->category == Category::heading3)
      << category_name(h->category);
  EXPECT_TRUE(find(els, Category::paragraph, "samples were collected")) << document_text(els);
}

}  // namespace
}  // namespace solar::parse
