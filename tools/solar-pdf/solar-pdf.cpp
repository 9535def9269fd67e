// solar-pdf — prints what a PDF draws (characters with their font, images,
// straight strokes and filled rectangles) as lines of text, one page at a
// time, for `solar parse` to lay out.
//
// GPL-2.0-or-later: it links poppler's internal API (an OutputDev subclass),
// which is GPL. It is built and shipped as its own executable so that the
// solar library and the `solar` binary never link poppler; `solar parse`
// runs it as a subprocess and reads its output (see LICENSE and
// src/parse/pdf_stream.h for the format, "solar-pdf 1").
//
// Usage: solar-pdf FILE [--password PW] [--first N] [--last N]
// Exit: 0 done; 1 unreadable or damaged; 3 encrypted and no (right) password.
// On failure the last line on stdout is "X <message>" as well.
#include <GlobalParams.h>
#include <Error.h>
#include <GfxFont.h>
#include <GfxState.h>
#include <OutputDev.h>
#include <PDFDoc.h>
#include <ErrorCodes.h>
#include <goo/GooString.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <string>

namespace {

// One page's drawing can hold millions of path segments (plots); past this
// many a page's graphics are dropped (the text stays).
constexpr int kMaxGraphicsPerPage = 200000;

void silence(ErrorCategory, Goffset, const char*) {}

class LineDev : public OutputDev {
 public:
  bool upsideDown() override { return true; }
  bool useDrawChar() override { return true; }
  bool interpretType3Chars() override { return false; }

  void startPage(int page, GfxState* state, XRef*) override {
    graphics_ = 0;
    printf("P %d %.2f %.2f\n", page, state->getPageWidth(), state->getPageHeight());
  }
  void endPage() override { printf("E\n"); fflush(stdout); }

  void drawChar(GfxState* state, double x, double y, double dx, double dy, double, double, CharCode, int,
                const Unicode* u, int uLen) override {
    if (uLen <= 0) return;
    const GfxFont* font = state->getFont().get();
    double fs = state->getTransformedFontSize();
    if (!(fs > 0) || fs > 2000) return;
    double asc = 0.9, desc = -0.25;
    int fid = 0;
    if (font) {
      asc = std::clamp(font->getAscent(), 0.5, 1.1);
      desc = std::clamp(font->getDescent(), -0.5, 0.0);
      fid = font_id(font);
    }
    double x0, y0, x1, y1;
    state->transform(x, y, &x0, &y0);
    double ddx, ddy;
    state->textTransformDelta(dx * state->getHorizScaling(), dy, &ddx, &ddy);
    double tdx, tdy;
    state->transformDelta(ddx, ddy, &tdx, &tdy);
    x1 = x0 + tdx;
    y1 = y0 - fs * desc;
    double top = y0 - fs * asc;
    if (x1 < x0) std::swap(x0, x1);
    for (int i = 0; i < uLen; i++) {
      unsigned cp = u[i];
      if (cp > 0x10FFFF) continue;
      printf("C %.2f %.2f %.2f %.2f %d %.2f %x\n", x0, top, x1, y1, fid, fs, cp);
    }
  }

  void stroke(GfxState* state) override {
    const GfxPath* p = state->getPath();
    double w = state->getLineWidth();
    double tw, th;
    state->transformDelta(w, w, &tw, &th);
    w = std::max(std::fabs(tw), std::fabs(th));
    for (int s = 0; s < p->getNumSubpaths(); s++) {
      const GfxSubpath* sp = p->getSubpath(s);
      for (int i = 1; i < sp->getNumPoints(); i++) {
        if (sp->getCurve(i)) continue;
        if (++graphics_ > kMaxGraphicsPerPage) return;
        double ax, ay, bx, by;
        state->transform(sp->getX(i - 1), sp->getY(i - 1), &ax, &ay);
        state->transform(sp->getX(i), sp->getY(i), &bx, &by);
        printf("L %.2f %.2f %.2f %.2f %.2f\n", ax, ay, bx, by, w);
      }
    }
  }
  void fill(GfxState* state) override { fill_rects(state); }
  void eoFill(GfxState* state) override { fill_rects(state); }

  void drawImage(GfxState* state, Object*, Stream* str, int w, int h, GfxImageColorMap*, bool, const int*,
                 bool inlineImg) override {
    image(state, str, w, h, inlineImg);
  }
  void drawImageMask(GfxState* state, Object*, Stream* str, int w, int h, bool, bool, bool inlineImg) override {
    image(state, str, w, h, inlineImg);
  }
  void drawMaskedImage(GfxState* state, Object*, Stream* str, int w, int h, GfxImageColorMap*, bool, Stream*, int, int,
                       bool, bool) override {
    image(state, str, w, h, false);
  }
  void drawSoftMaskedImage(GfxState* state, Object*, Stream* str, int w, int h, GfxImageColorMap*, bool, Stream*, int,
                           int, GfxImageColorMap*, bool) override {
    image(state, str, w, h, false);
  }

 private:
  int font_id(const GfxFont* font) {
    std::string name = font->getName() ? *font->getName() : std::string("unnamed");
    int flags = 0;
    auto has = [&](const char* s) { return name.find(s) != std::string::npos; };
    if (font->isBold() || has("Bold") || has("bold") || has("Black") || has("Heavy") || has("Semibold") ||
        has("Demi"))
      flags |= 1;
    if (font->isItalic() || has("Italic") || has("Oblique")) flags |= 2;
    if (font->isFixedWidth() || has("Mono") || has("Courier") || has("Consol")) flags |= 4;
    std::string key = std::to_string(flags) + " " + name;
    auto it = fonts_.find(key);
    if (it != fonts_.end()) return it->second;
    int id = int(fonts_.size()) + 1;
    fonts_[key] = id;
    for (char& c : name)
      if (c <= ' ') c = '_';
    printf("F %d %d %s\n", id, flags, name.c_str());
    return id;
  }

  void image(GfxState* state, Stream* str, int w, int h, bool inlineImg) {
    if (inlineImg && str) {
      // Inline image data sits in the content stream: skip past it.
      str->reset();
      long n = long(w) * h;
      for (long i = 0; i < n && str->getChar() != EOF; i++) {
      }
      str->close();
    }
    double xs[4], ys[4];
    state->transform(0, 0, &xs[0], &ys[0]);
    state->transform(1, 0, &xs[1], &ys[1]);
    state->transform(0, 1, &xs[2], &ys[2]);
    state->transform(1, 1, &xs[3], &ys[3]);
    double x0 = std::min({xs[0], xs[1], xs[2], xs[3]}), x1 = std::max({xs[0], xs[1], xs[2], xs[3]});
    double y0 = std::min({ys[0], ys[1], ys[2], ys[3]}), y1 = std::max({ys[0], ys[1], ys[2], ys[3]});
    printf("I %.2f %.2f %.2f %.2f\n", x0, y0, x1, y1);
  }

  // Filled axis-aligned rectangles are table rules, cell shading and bars;
  // other fills (glyph-like shapes, curves) are counted as drawn regions only.
  void fill_rects(GfxState* state) {
    const GfxPath* p = state->getPath();
    GfxGray g = 0;
    if (state->getFillColorSpace()) state->getFillGray(&g);
    double gray = colToDbl(g);
    for (int s = 0; s < p->getNumSubpaths(); s++) {
      const GfxSubpath* sp = p->getSubpath(s);
      int n = sp->getNumPoints();
      if (n < 2 || ++graphics_ > kMaxGraphicsPerPage) return;
      double x0 = 1e30, y0 = 1e30, x1 = -1e30, y1 = -1e30;
      bool axis = true, curve = false;
      double px = 0, py = 0;
      for (int i = 0; i < n; i++) {
        double tx, ty;
        state->transform(sp->getX(i), sp->getY(i), &tx, &ty);
        if (sp->getCurve(i)) curve = true;
        if (i > 0 && std::fabs(tx - px) > 0.01 && std::fabs(ty - py) > 0.01) axis = false;
        px = tx, py = ty;
        x0 = std::min(x0, tx), x1 = std::max(x1, tx), y0 = std::min(y0, ty), y1 = std::max(y1, ty);
      }
      if (axis && !curve && n <= 6)
        printf("R %.2f %.2f %.2f %.2f %.3f\n", x0, y0, x1, y1, gray);
      else
        printf("G %.2f %.2f %.2f %.2f\n", x0, y0, x1, y1);
    }
  }

  std::map<std::string, int> fonts_;
  int graphics_ = 0;
};

int usage() {
  fprintf(stderr, "usage: solar-pdf FILE [--password PW] [--first N] [--last N]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string file, password;
  long first = 1, last = -1;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    if ((a == "--password" || a == "--first" || a == "--last") && i + 1 < argc) {
      std::string v = argv[++i];
      if (a == "--password") password = v;
      else (a == "--first" ? first : last) = std::strtol(v.c_str(), nullptr, 10);
    } else if (file.empty() && (a.empty() || a[0] != '-' || a == "-")) {
      file = a;
    } else {
      return usage();
    }
  }
  if (file.empty()) return usage();
  globalParams = std::make_unique<GlobalParams>();
  setErrorCallback(silence);
  std::optional<GooString> pw;
  if (!password.empty()) pw = GooString(password);
  auto doc = std::make_unique<PDFDoc>(std::make_unique<GooString>(file), pw, pw);
  printf("solar-pdf 1\n");
  if (!doc->isOk()) {
    int code = doc->getErrorCode();
    if (code == errEncrypted) {
      printf("X encrypted: %s\n", password.empty() ? "needs a password (--password)" : "wrong password");
      return 3;
    }
    const char* what = code == errOpenFile ? "cannot open file" : code == errBadCatalog ? "damaged (bad catalog)"
                       : code == errDamaged ? "damaged" : "not a readable PDF";
    printf("X %s (poppler error %d)\n", what, code);
    return 1;
  }
  int n = doc->getNumPages();
  printf("D %d\n", n);
  if (last < 0 || last > n) last = n;
  if (first < 1) first = 1;
  LineDev dev;
  for (long p = first; p <= last; p++) doc->displayPage(&dev, int(p), 72, 72, 0, false, true, false);
  fflush(stdout);
  return 0;
}
