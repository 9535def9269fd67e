#include "parse/parse.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <map>
#include <thread>

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

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kSanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif
#else
constexpr bool kSanitized = false;
#endif

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
  // Written piece by piece, the same bytes as the tree's.
  std::string streamed, none;
  write_document_json(els, 3, [&](std::string_view s) { streamed += s; });
  EXPECT_EQ(streamed, j.dump(1));
  write_document_json({}, 0, [&](std::string_view s) { none += s; });
  EXPECT_EQ(none, document_json({}, 0).dump(1));
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

// The fixture's first page as a 150 dpi PNG (pdftoppm), or "" without poppler-utils.
std::string fixture_scan() {
  std::string pdf = write_tmp("fixture.pdf", fixture_pdf());
  std::string cmd = "pdftoppm -png -r 150 -f 1 -l 1 -singlefile " + pdf + " " + parent_dir(pdf) + "/scan 2>/dev/null";
  return std::system(cmd.c_str()) == 0 ? parent_dir(pdf) + "/scan.png" : "";
}

TEST(Parse, ScannedPageThroughOcr) {
  NEED_BACKEND();
  const std::string scan = fixture_scan();
  if (scan.empty()) GTEST_SKIP() << "pdftoppm (poppler-utils) missing";
  auto els = parse_all(scan);
  ASSERT_TRUE(find(els, Category::heading1, "Introduction")) << document_text(els);
  const Element* t = find(els, Category::table, "alpha");
  ASSERT_TRUE(t) << document_text(els);
  EXPECT_NE(t->html.find("colspan=\"2\""), std::string::npos) << t->html;
}

int threads_of_process() {
  int n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/task")) n++;
  return n;
}

// Tesseract's LSTM opens OpenMP regions of 4 threads; held to one, a page
// takes no threads beside its own (libgomp keeps a thread's team alive
// until the thread ends: 3 more threads here when unheld). On two cores
// the teams of 4 spent two thirds of a table image's time spinning.
TEST(Parse, OcrRunsTesseractOnItsOwnThread) {
  NEED_BACKEND();
  const std::string scan = fixture_scan();
  if (scan.empty()) GTEST_SKIP() << "pdftoppm (poppler-utils) missing";
  // OpenCV's TBB workers are the process's, started by the first page.
  std::vector<Element> els = parse_all(scan);
  int before = 0, after = 0;
  std::thread t([&] {  // a fresh thread: no OpenMP team of its own yet
    before = threads_of_process();
    els = parse_all(scan);
    after = threads_of_process();
  });
  t.join();
  ASSERT_TRUE(find(els, Category::heading1, "Introduction")) << document_text(els);
  EXPECT_EQ(after, before);
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

const char* const names[] = {"first", "second", "third", "fourth"};

// Four pages, "The first <noun>" and lines of "Body text of the first <noun> goes on."
std::string four_pages(const std::string& noun) {
  PdfBuilder t;
  for (const char* n : names) {
    t.text("F2", 20, 72, 100, std::string("The ") + n + " " + noun);
    for (int i = 0; i < 5; i++) t.text("F1", 14, 72, 140 + 20 * i, std::string("Body text of the ") + n + " " + noun + " goes on.");
    t.page();
  }
  return t.bytes();
}

// four_pages("page") scanned, written to a file: its path, or "" without pdftoppm.
std::string four_scanned_pages() {
  std::string text_pdf = write_tmp("text.pdf", four_pages("page"));
  std::string scan = scanned_pdf(text_pdf, 4);
  if (scan.empty()) return "";
  std::string pdf = join_path(parent_dir(text_pdf), "scan.pdf");
  write_file_atomic(pdf, scan);
  return pdf;
}

TEST(Parse, ScannedPagesInParallelComeOutInOrder) {
  NEED_BACKEND();
  const std::string pdf = four_scanned_pages();
  if (pdf.empty()) GTEST_SKIP() << "pdftoppm (poppler-utils) missing";
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

// -t N: at most N pages OCR'd at once. Sampled while a 4-page scan is
// parsed with -t 1: never a thread beside the caller's and one page's (the
// next page's OCR once started before the page before it was done).
TEST(Parse, OneThreadOcrsOnePageAtATime) {
  NEED_BACKEND();
  const std::string pdf = four_scanned_pages();
  if (pdf.empty()) GTEST_SKIP() << "pdftoppm (poppler-utils) missing";
  Options o;
  o.threads = 1;
  parse_all(pdf, o);  // OpenCV's TBB workers are the process's, started by the first page
  const int base = threads_of_process();
  std::atomic<bool> done{false};
  int run = 0, longest = 0;  // samples in a row with two page threads: a page's thread may still be ending as the next starts
  std::thread sampler([&] {
    while (!done) {
      run = threads_of_process() - base - 1 > 1 ? run + 1 : 0;  // less the sampler
      longest = std::max(longest, run);
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  });
  auto els = parse_all(pdf, o);
  done = true;
  sampler.join();
  EXPECT_FALSE(els.empty());
  EXPECT_LT(longest, 20) << "two pages OCR'd at once with -t 1 for that many samples (1 ms apart)";
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

TEST(Parse, ImageFilesOcrdInParallelMatchOneThread) {
  // Four page images (one unreadable file among them): -t 4 OCRs them side
  // by side and writes what -t 1 writes, in input order.
  NEED_BACKEND();
  std::string pdf = write_tmp("images.pdf", four_pages("image"));
  std::string dir = parent_dir(pdf), list;
  for (int p = 1; p <= 4; p++) {
    std::string stem = dir + "/" + names[p - 1];
    std::string cmd = "pdftoppm -png -r 100 -f " + std::to_string(p) + " -l " + std::to_string(p) + " -singlefile " + pdf +
                      " " + stem + " 2>/dev/null";
    if (std::system(cmd.c_str()) != 0) GTEST_SKIP() << "pdftoppm (poppler-utils) missing";
    list += " " + stem + ".png";
    if (p == 2) {
      write_file_atomic(dir + "/broken.png", "\x89PNG\r\n\x1a\nnot really");
      list += " " + dir + "/broken.png";
    }
  }
  std::string log1, log4;
  ASSERT_EQ(testing::run_solar("parse" + list + " -q -t 1 -o " + dir + "/t1 --format json,md", &log1), 1) << log1;
  ASSERT_EQ(testing::run_solar("parse" + list + " -q -t 4 -o " + dir + "/t4 --format json,md", &log4), 1) << log4;
  EXPECT_EQ(log1, log4);
  EXPECT_NE(log4.find("broken.png"), std::string::npos) << log4;
  for (const char* n : names)
    for (const char* ext : {".json", ".md"}) {
      std::string a = read_file(dir + "/t1/" + n + ext), b = read_file(dir + "/t4/" + n + ext);
      EXPECT_EQ(a, b) << n << ext;
      if (std::string(ext) == ".md") EXPECT_NE(b.find(std::string("Body text of the ") + n), std::string::npos) << b;
    }
  // To standard output: the documents in input order.
  std::string out;
  ASSERT_EQ(testing::run_solar("parse" + list + " -q -t 4 --format text", &out), 1) << out;
  size_t at = 0;
  for (const char* n : names) {
    size_t k = out.find(std::string("The ") + n + " image", at);
    ASSERT_NE(k, std::string::npos) << n << "\n" << out;
    at = k;
  }
}

TEST(Parse, LongDocumentStreamsInBoundedMemory) {
  // Pages stream through solar-pdf and the layout one at a time: only the
  // elements stay. 2,000 pages of 32 lines (the 10,000-page run is
  // bench/parse_eval.py --only pages): every page comes out, in order, and
  // the peak RSS grows by less than twice the output's size.
  NEED_BACKEND();
  const int kPages = 2000;
  PdfBuilder b;
  for (int p = 1; p <= kPages; p++) {
    b.text("F2", 14, 72, 60, "Section " + std::to_string(p));
    for (int l = 0; l < 31; l++)
      b.text("F1", 10, 72, 90 + 20 * l, "Line " + std::to_string(l) + " of page " + std::to_string(p) + " carries some words.");
    b.page();
  }
  std::string pdf = write_tmp("long.pdf", b.bytes());
  std::string out = parent_dir(pdf) + "/long.json", log;
  ASSERT_EQ(testing::run_solar("--log-level debug --log-format json parse -q " + pdf + " -o " + out + " --solar-pdf " +
                                   kBackend, &log), 0) << log;
  auto j = read_json_file(out);
  ASSERT_EQ(j["usage"]["pages"], kPages);
  int heads = 0, last_page = 0;
  std::map<int, std::string> sampled;  // every 500th page's text
  for (const auto& e : j["elements"]) {
    int page = e["page"];
    ASSERT_GE(page, last_page);
    last_page = page;
    std::string text = e["content"]["text"];
    if (text.rfind("Section ", 0) == 0) {
      EXPECT_EQ(text, "Section " + std::to_string(page));
      heads++;
    }
    if (page % 500 == 0) sampled[page] += text + "\n";
  }
  EXPECT_EQ(heads, kPages);
  EXPECT_EQ(last_page, kPages);
  ASSERT_EQ(sampled.size(), size_t(kPages / 500));
  for (auto& [page, text] : sampled)
    for (int l : {0, 15, 30})
      EXPECT_NE(text.find("Line " + std::to_string(l) + " of page " + std::to_string(page) + " carries"), std::string::npos)
          << text;
  auto peak_of = [](const std::string& log) {
    long kb = -1;
    for (size_t at = 0, nl; at < log.size(); at = nl + 1) {
      nl = log.find('\n', at);
      if (nl == std::string::npos) nl = log.size();
      auto r = nlohmann::json::parse(log.substr(at, nl - at), nullptr, false);
      if (!r.is_discarded() && r.is_object() && r.contains("peak_rss_kb")) kb = r["peak_rss_kb"];
    }
    return kb;
  };
  long peak_kb = peak_of(log);
  ASSERT_GT(peak_kb, 0) << log;
  std::string one_log;
  ASSERT_EQ(testing::run_solar("--log-level debug --log-format json parse -q --last-page 1 " + pdf + " -o " +
                                   parent_dir(pdf) + "/one.json --solar-pdf " + kBackend, &one_log), 0) << one_log;
  long base_kb = peak_of(one_log);
  ASSERT_GT(base_kb, 0) << one_log;
  double out_kb = double(read_file(out).size()) / 1024;
  std::fprintf(stderr, "peak RSS %ld kB for %d pages, %ld kB for one; output %.0f kB\n", peak_kb, kPages, base_kb, out_kb);
  // What grows is the elements and the output, not the pages. Building the
  // JSON as one tree took 6x the output (263 MB over one page's peak for a
  // 44 MB file). ASan's shadow memory and quarantine inflate RSS: not checked there.
  if (!kSanitized) EXPECT_LT(double(peak_kb - base_kb), 2.0 * out_kb) << "peak RSS growth over " << kPages << " pages";
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

// An unruled table (columns from alignment alone) between two paragraphs,
// then a page of two-column prose and one of a list with wide gaps after
// its markers: only the table is a table.
TEST(Parse, UnruledTableInBornDigitalPdf) {
  NEED_BACKEND();
  PdfBuilder b;
  b.text("F1", 10, 72, 100, "The packages below make up the base system of the test machine.");
  const double xs[] = {72, 172, 232, 292};
  const char* head[] = {"Package", "Version", "Size", "Description"};
  for (int c = 0; c < 4; c++) b.text("F2", 10, xs[c], 130, head[c]);
  const char* rows[][4] = {{"bash", "5.2", "1024", "GNU Bourne Again shell"},
                           {"coreutils", "9.1", "2880", "basic file utilities"},
                           {"grep", "3.8", "512", "pattern matcher"},
                           {"sed", "4.9", "360", "stream editor"}};
  for (int r = 0; r < 4; r++)
    for (int c = 0; c < 4; c++) b.text("F1", 10, xs[c], 144 + 14 * r, rows[r][c]);
  b.text("F1", 10, 72, 220, "A paragraph after the table closes the page.");
  b.page();
  const std::string left = "the quick brown fox jumps over the lazy dog";
  const std::string right = "and then the dog wakes up and chases it";
  for (int i = 0; i < 12; i++) b.text("F1", 10, 72, 100 + 13 * i, left).text("F1", 10, 320, 100 + 13 * i, right);
  b.page();
  for (int i = 1; i <= 5; i++)
    b.text("F1", 10, 72, 100 + 14 * i, std::to_string(i) + ".").text("F1", 10, 100, 100 + 14 * i, "An item of the list, long enough");
  b.page();
  auto els = parse_all(write_tmp("unruled.pdf", b.bytes()));
  int tables = 0;
  for (const Element& e : els) tables += e.category == Category::table;
  EXPECT_EQ(tables, 1) << document_text(els);
  const Element* t = find(els, Category::table, "coreutils", 1);
  ASSERT_TRUE(t) << document_text(els);
  EXPECT_NE(t->html.find("<thead><tr><th>Package</th><th>Version</th><th>Size</th><th>Description</th></tr></thead>"),
            std::string::npos) << t->html;
  EXPECT_NE(t->html.find("<tr><td>coreutils</td><td>9.1</td><td>2880</td><td>basic file utilities</td></tr>"),
            std::string::npos) << t->html;
  EXPECT_NE(t->html.find("<td>sed</td><td>4.9</td><td>360</td><td>stream editor</td></tr></tbody></table>"),
            std::string::npos) << t->html;
  EXPECT_TRUE(find(els, Category::paragraph, "packages below", 1));
  EXPECT_TRUE(find(els, Category::paragraph, "closes the page", 1));
  // The table sits between the two paragraphs in reading order.
  std::string order;
  for (const Element& e : els)
    if (e.page == 1) order += std::string(category_name(e.category)) + " ";
  EXPECT_EQ(order, "paragraph table paragraph ") << document_text(els);
  for (const Element& e : els)
    if (e.page == 2) EXPECT_EQ(e.category, Category::paragraph) << e.text;
  EXPECT_TRUE(find(els, Category::list, "1.", 3)) << document_text(els);
}

// A bar chart (axes with ticks, tick labels, bars, a legend) above a drawing
// of curves: the first is a chart, the second a figure, neither a table.
TEST(Parse, ChartsToldApartFromFigures) {
  NEED_BACKEND();
  PdfBuilder b;
  b.text("F1", 10, 72, 80, "Sales went up in every region this year, as the chart shows.");
  b.line(100, 250, 100, 400).line(100, 400, 400, 400);  // the axes
  for (int i = 0; i < 4; i++) {
    double y = 400 - 50 * i;
    b.line(96, y, 100, y).text("F1", 8, 80, y + 3, std::to_string(10 * i));
  }
  const char* regions[] = {"North", "South", "East", "West", "Centre"};
  for (int i = 0; i < 5; i++) {
    double x = 150 + 50 * i, h = 30 + 20 * i;
    b.line(x, 400, x, 404).text("F1", 8, x - 10, 414, regions[i]);
    b.raw("0.4 g " + std::to_string(x - 12) + " " + std::to_string(792 - 400) + " 24 " + std::to_string(h) + " re f 0 g\n");
  }
  b.text("F1", 8, 330, 262, "Sales 2024");
  b.text("F1", 10, 72, 440, "Figure 1: Sales per region.");
  for (int i = 0; i < 6; i++) {
    double x = 100 + 40 * i, y = 792 - 600;
    b.raw(std::to_string(x) + " " + std::to_string(y) + " m " + std::to_string(x + 10) + " " + std::to_string(y + 60) + " " +
          std::to_string(x + 30) + " " + std::to_string(y + 60) + " " + std::to_string(x + 38) + " " + std::to_string(y) +
          " c h f\n");
  }
  b.text("F1", 10, 72, 640, "Figure 2: Six arches.");
  b.page();
  auto els = parse_all(write_tmp("chart.pdf", b.bytes()));
  std::string cats;
  for (const Element& e : els) cats += std::string(category_name(e.category)) + " ";
  EXPECT_EQ(cats, "paragraph chart caption figure caption ") << document_text(els);
  const Element* c = find(els, Category::chart, "Sales 2024");
  ASSERT_TRUE(c) << document_text(els);
  for (const char* label : {"North", "Centre", "30"}) EXPECT_NE(c->text.find(label), std::string::npos) << label;
  EXPECT_EQ(c->html.find("<figure id=\"" + std::to_string(c->id) + "\" data-category=\"chart\"><img alt="), 0u) << c->html;
  EXPECT_LE(c->box.x0, 80.5);
  EXPECT_GE(c->box.y1, 404);
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

// Rows of cells at x = 50, 150, 250 ("" leaves a cell empty), 14 units apart.
Page table_page(const std::vector<std::vector<std::string>>& rows) {
  PageBuilder b;
  for (size_t r = 0; r < rows.size(); r++)
    for (size_t c = 0; c < rows[r].size(); c++)
      if (!rows[r][c].empty()) b.line(50 + 100 * double(c), 100 + 14 * double(r), rows[r][c]);
  return b.p;
}

std::string unruled_html(const Page& p) {
  std::vector<char> used(p.words.size(), 0);
  auto ts = find_unruled_tables(p, used, {});
  return ts.size() == 1 ? table_html(ts[0]) : std::to_string(ts.size()) + " tables";
}

TEST(Layout, UnruledTableRowSpans) {
  const std::string head = "<table><thead><tr><th>Group</th><th>Item</th><th>Count</th></tr></thead><tbody>",
                    fruit = "<tr><td rowspan=\"3\">Fruit</td><td>apple</td><td>3</td></tr><tr><td>pear</td><td>4</td></tr>"
                            "<tr><td>plum</td><td>5</td></tr>",
                    veg = "<td>kale</td><td>1</td></tr><tr><td>leek</td><td>2</td></tr>", end = "</tbody></table>";
  // Labels at the top of their rows, empty first cells below them.
  EXPECT_EQ(unruled_html(table_page({{"Group", "Item", "Count"}, {"Fruit", "apple", "3"}, {"", "pear", "4"},
                                     {"", "plum", "5"}, {"Veg", "kale", "1"}, {"", "leek", "2"}})),
            head + fruit + "<tr><td rowspan=\"2\">Veg</td>" + veg + end);
  // Labels set against the middle of their rows.
  EXPECT_EQ(unruled_html(table_page({{"Group", "Item", "Count"}, {"", "apple", "3"}, {"Fruit", "pear", "4"}, {"", "plum", "5"},
                                     {"", "kale", "1"}, {"Veg", "leek", "2"}, {"", "okra", "6"}})),
            head + fruit + "<tr><td rowspan=\"3\">Veg</td>" + veg + "<tr><td>okra</td><td>6</td></tr>" + end);
  // Every first cell filled: no spans.
  EXPECT_EQ(unruled_html(table_page({{"Name", "Value"}, {"alpha", "1"}, {"beta", "2"}, {"gamma", "3"}})),
            "<table><thead><tr><th>Name</th><th>Value</th></tr></thead><tbody>"
            "<tr><td>alpha</td><td>1</td></tr><tr><td>beta</td><td>2</td></tr><tr><td>gamma</td><td>3</td></tr>"
            "</tbody></table>");
}

TEST(Layout, ProseListsAndColumnsAreNoUnruledTable) {
  const std::string l = "the committee met twice in the spring and agreed";
  const std::string r = "that the bridge would be finished by autumn next";
  // Two columns of running text.
  PageBuilder cols;
  for (int i = 0; i < 8; i++) cols.line(50, 100 + 12 * i, l).line(330, 100 + 12 * i, r);
  EXPECT_EQ(unruled_html(cols.p), "0 tables");
  // A numbered list with wide gaps after its markers.
  PageBuilder list;
  for (int i = 1; i <= 5; i++) list.line(50, 100 + 14 * i, std::to_string(i) + ".").line(80, 100 + 14 * i, l);
  EXPECT_EQ(unruled_html(list.p), "0 tables");
  // A paragraph: one segment a line.
  PageBuilder para;
  for (int i = 0; i < 6; i++) para.line(50, 100 + 12 * i, l + " " + r);
  EXPECT_EQ(unruled_html(para.p), "0 tables");
}

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

TEST(Layout, DoubtfulOcrWordsOnlyInTables) {
  // Tesseract's low-confidence words: a cell read half right is kept in its
  // table, a speck in the body text is dropped.
  Page p;
  p.number = 1, p.width = 600, p.height = 800, p.ocr = true;
  auto h = [&](double y) { p.rules.push_back({{100, y - 0.5, 300, y + 0.5}}); };
  auto v = [&](double x) { p.rules.push_back({{x - 0.5, 100, x + 0.5, 160}}); };
  h(100), h(130), h(160), v(100), v(200), v(300);
  auto w = [&](double x, double y, const char* t, int line, bool doubtful) {
    Word wd{{x, y - 10, x + 40, y}, t, 10, false, false, false, line};
    wd.doubtful = doubtful;
    p.words.push_back(wd);
  };
  w(110, 120, "dose", 0, false), w(210, 120, "1.090", 0, true), w(110, 150, "age", 1, false), w(210, 150, "62", 1, false);
  w(50, 300, "Body", 2, false), w(100, 300, "text", 2, false), w(150, 300, "~:", 2, true), w(200, 300, "here.", 2, false);
  auto els = lay(p);
  const Element* t = nullptr;
  for (const Element& e : els)
    if (e.category == Category::table) t = &e;
  ASSERT_TRUE(t) << document_text(els);
  EXPECT_NE(t->html.find("1.090"), std::string::npos) << t->html;
  EXPECT_NE(document_text(els).find("Body text here."), std::string::npos) << document_text(els);
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
