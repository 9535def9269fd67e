// libFuzzer target: solar-pdf's page stream (what `solar parse` reads from
// its GPL backend) through the record parser, the layout (lines, XY-cut,
// blocks, ruled, aligned and unruled tables, charts) and every renderer; and grey images
// through the OpenCV rule detector. Elements or a solar::Error, never a
// crash, a hang or unbounded memory.
#include <string>
#include <string_view>

#include "core/error.h"
#include "fuzz.h"
#include "parse/ocr.h"
#include "parse/pdf_stream.h"
#include "parse/render.h"

namespace solar::fuzz {

void write_seeds(const std::string& dir) {
  write_text(dir + "/page.txt",
             "\x00solar-pdf 1\nD 1\nP 1 200 200\nF 1 1 Helvetica-Bold\nC 10 10 16 20 1 12 48\nC 16 10 22 20 1 12 69\n"
             "F 2 0 Helvetica\nC 10 40 15 48 2 8 61\nC 20 40 25 48 2 8 62\nL 5 30 150 30 0.5\nL 5 60 150 60 0.5\n"
             "L 5 30 5 60 0.5\nL 80 30 80 60 0.5\nL 150 30 150 60 0.5\nR 0 100 200 101 0\nI 10 120 90 190\nG 1 1 2 2\nE\n");
  // A bar chart (axes, three ticks, labels, a bar) and an unruled table (two aligned columns).
  write_text(dir + "/chart.txt",
             "\x00solar-pdf 1\nD 1\nP 1 300 300\nF 1 0 Helvetica\nL 50 50 50 200 0.5\nL 50 200 250 200 0.5\n"
             "L 100 200 100 204 0.5\nL 150 200 150 204 0.5\nL 200 200 200 204 0.5\nC 95 210 100 218 1 8 41\n"
             "C 145 210 150 218 1 8 42\nC 195 210 200 218 1 8 43\nR 90 150 110 200 0.4\nE\n");
  std::string table = "\x00solar-pdf 1\nD 1\nP 1 300 300\nF 1 0 Helvetica\n";
  for (int r = 0; r < 4; r++) {
    std::string y0 = std::to_string(10 + 14 * r), y1 = std::to_string(20 + 14 * r);
    table += "C 10 " + y0 + " 16 " + y1 + " 1 10 " + std::to_string(61 + r) + "\nC 60 " + y0 + " 66 " + y1 + " 1 10 " +
             std::to_string(31 + r) + "\n";
  }
  write_text(dir + "/unruled.txt", table + "E\n");
  std::string img(1 + 4 + 64 * 64, '\xff');
  img[0] = 1, img[1] = 64, img[3] = 64;
  for (int i = 0; i < 64; i++) img[5 + 32 * 64 + i] = 0, img[5 + i * 64 + 20] = 0;
  write_text(dir + "/image.bin", img);
}

}  // namespace solar::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  if (data[0] & 1) {
    // A grey image: two bytes of width, two of height, then pixels.
    if (size < 5) return 0;
    int w = data[1] | (data[2] << 8), h = data[3] | (data[4] << 8);
    if (w <= 0 || h <= 0 || size_t(w) * size_t(h) > size - 5) return 0;
    solar::parse::detect_rules(data + 5, w, h, w);
    return 0;
  }
  std::string_view s(reinterpret_cast<const char*>(data) + 1, size - 1);
  solar::parse::PageStreamParser p("fuzz.pdf");
  solar::parse::LayoutState st;
  std::vector<solar::parse::Element> all;
  try {
    size_t i = 0;
    while (i < s.size()) {
      size_t j = s.find('\n', i);
      if (j == std::string_view::npos) j = s.size();
      solar::parse::Page page;
      if (p.line(s.substr(i, j - i), &page)) {
        auto els = solar::parse::layout(page, st, int(all.size()));
        for (auto& e : els) all.push_back(std::move(e));
      }
      i = j + 1;
    }
  } catch (const solar::Error&) {
  }
  solar::parse::document_json(all, 1).dump();
  solar::parse::document_markdown(all);
  return 0;
}
