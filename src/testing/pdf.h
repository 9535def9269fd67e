// solar/testing/pdf.h — tiny PDFs written byte by byte for the parse tests:
// base-14 fonts (no embedding), text, strokes, and a correct xref table, so
// a test states exactly what a page draws.
#pragma once
#include <cstdio>
#include <string>
#include <vector>

namespace solar::testing {

class PdfBuilder {
 public:
  explicit PdfBuilder(double w = 612, double h = 792) : w_(w), h_(h) {}
  // Fonts: F1 Helvetica, F2 Helvetica-Bold, F3 Courier. y is from the top
  // (the baseline), as solar parse reports it.
  PdfBuilder& text(const std::string& font, double size, double x, double y, const std::string& s) {
    std::string esc;
    for (char c : s) {
      if (c == '(' || c == ')' || c == '\\') esc += '\\';
      esc += c;
    }
    cur_ += "BT /" + font + " " + num(size) + " Tf " + num(x) + " " + num(h_ - y) + " Td (" + esc + ") Tj ET\n";
    return *this;
  }
  PdfBuilder& line(double x0, double y0, double x1, double y1, double width = 0.5) {
    cur_ += num(width) + " w " + num(x0) + " " + num(h_ - y0) + " m " + num(x1) + " " + num(h_ - y1) + " l S\n";
    return *this;
  }
  PdfBuilder& raw(const std::string& ops) {
    cur_ += ops;
    return *this;
  }
  PdfBuilder& page() {
    pages_.push_back(cur_);
    cur_.clear();
    return *this;
  }
  // The whole file (call page() after the last page's content).
  std::string bytes() const {
    std::vector<std::string> objs;
    int n = int(pages_.size());
    objs.push_back("<< /Type /Catalog /Pages 2 0 R >>");
    std::string kids;
    for (int i = 0; i < n; i++) kids += std::to_string(6 + 2 * i) + " 0 R ";
    objs.push_back("<< /Type /Pages /Kids [" + kids + "] /Count " + std::to_string(n) + " >>");
    objs.push_back("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>");
    objs.push_back("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold >>");
    objs.push_back("<< /Type /Font /Subtype /Type1 /BaseFont /Courier >>");
    for (int i = 0; i < n; i++) {
      objs.push_back("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 " + num(w_) + " " + num(h_) +
                     "] /Resources << /Font << /F1 3 0 R /F2 4 0 R /F3 5 0 R >> >> /Contents " +
                     std::to_string(7 + 2 * i) + " 0 R >>");
      objs.push_back("<< /Length " + std::to_string(pages_[i].size()) + " >>\nstream\n" + pages_[i] + "\nendstream");
    }
    std::string out = "%PDF-1.4\n";
    std::vector<size_t> off;
    for (size_t i = 0; i < objs.size(); i++) {
      off.push_back(out.size());
      out += std::to_string(i + 1) + " 0 obj\n" + objs[i] + "\nendobj\n";
    }
    size_t xref = out.size();
    out += "xref\n0 " + std::to_string(objs.size() + 1) + "\n0000000000 65535 f \n";
    for (size_t o : off) {
      char b[32];
      snprintf(b, sizeof b, "%010zu 00000 n \n", o);
      out += b;
    }
    out += "trailer\n<< /Size " + std::to_string(objs.size() + 1) + " /Root 1 0 R >>\nstartxref\n" +
           std::to_string(xref) + "\n%%EOF\n";
    return out;
  }

 private:
  static std::string num(double v) {
    char b[32];
    snprintf(b, sizeof b, "%.2f", v);
    return b;
  }
  double w_, h_;
  std::string cur_;
  std::vector<std::string> pages_;
};

}  // namespace solar::testing
