#include "parse/pdf_stream.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "core/error.h"
#include "core/fs.h"
#include "parse/text.h"

extern char** environ;

namespace solar::parse {

namespace {

// A page is laid out whole: past this many glyphs it is refused rather than
// letting one hostile page take all memory.
constexpr size_t kMaxGlyphsPerPage = 2'000'000;
constexpr double kMaxPagePoints = 1e5;  // PDF's own limit is 14,400 (200 inches)

struct Fields {
  std::string_view f[10];
  int n = 0;
};

Fields split(std::string_view s) {
  Fields r;
  size_t i = 0;
  while (i < s.size() && r.n < 10) {
    size_t j = s.find(' ', i);
    if (j == std::string_view::npos) j = s.size();
    // The last field of an F or X record is the rest of the line.
    if (r.n == 9 || (r.n == 3 && s[0] == 'F') || (r.n == 1 && s[0] == 'X')) j = s.size();
    r.f[r.n++] = s.substr(i, j - i);
    i = j + 1;
  }
  return r;
}

}  // namespace

void PageStreamParser::bad(const std::string& what) const {
  fail(source_, "solar-pdf output line " + std::to_string(line_no_), what);
}

static double num(std::string_view s, bool* ok) {
  double v = 0;
  auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  if (r.ec != std::errc() || r.ptr != s.data() + s.size() || !std::isfinite(v)) *ok = false;
  return v;
}

// An integer field: a number that int holds (a cast of 3e40 is undefined behaviour), else !ok and 0.
static int inum(std::string_view s, bool* ok) {
  const double v = num(s, ok);
  if (!(v >= -2147483648.0 && v <= 2147483647.0)) {
    *ok = false;
    return 0;
  }
  return int(v);
}

bool PageStreamParser::line(std::string_view s, Page* out) {
  line_no_++;
  if (!saw_header_) {
    if (s != "solar-pdf 1") bad("expected \"solar-pdf 1\", got \"" + std::string(s.substr(0, 40)) + "\"");
    saw_header_ = true;
    return false;
  }
  if (s.empty()) return false;
  Fields f = split(s);
  char k = s[0];
  if (f.f[0].size() != 1) bad("unknown record \"" + std::string(s.substr(0, 20)) + "\"");
  bool ok = true;
  auto need = [&](int n) {
    if (f.n != n) bad(std::string("record ") + k + ": expected " + std::to_string(n - 1) + " fields");
  };
  auto box = [&](int at) {
    Box b{num(f.f[at], &ok), num(f.f[at + 1], &ok), num(f.f[at + 2], &ok), num(f.f[at + 3], &ok)};
    if (b.x0 > b.x1) std::swap(b.x0, b.x1);
    if (b.y0 > b.y1) std::swap(b.y0, b.y1);
    return b;
  };
  auto in_page = [&] {
    if (!in_page_) bad(std::string("record ") + k + " outside a page");
  };
  switch (k) {
    case 'X':
      failure_ = f.n > 1 ? std::string(f.f[1]) : "failed";
      return false;
    case 'D':
      need(2);
      pages_ = inum(f.f[1], &ok);
      if (pages_ < 0) ok = false;
      break;
    case 'F': {
      need(4);
      int id = inum(f.f[1], &ok), fl = inum(f.f[2], &ok);
      fonts_[id] = FontInfo{bool(fl & 1), bool(fl & 2), bool(fl & 4)};
      if (fonts_.size() > 100000) bad("more than 100000 fonts");
      break;
    }
    case 'P': {
      need(4);
      if (in_page_) bad("page starts inside a page");
      page_ = Page{};
      page_.number = inum(f.f[1], &ok);
      page_.width = num(f.f[2], &ok);
      page_.height = num(f.f[3], &ok);
      if (ok && !(page_.width > 0 && page_.height > 0 && page_.width <= kMaxPagePoints && page_.height <= kMaxPagePoints))
        fail(source_, "page " + std::to_string(page_.number),
             "expected a page size within 1e5 points, got " + std::to_string(page_.width) + " x " +
                 std::to_string(page_.height));
      glyphs_.clear();
      in_page_ = true;
      break;
    }
    case 'C': {
      need(8);
      in_page();
      const double size = num(f.f[6], &ok);
      if (!(std::fabs(size) <= 1e30)) ok = false;  // a float must hold it (a cast of 1e300 is undefined)
      Glyph g{box(1), inum(f.f[5], &ok), ok ? float(size) : 0.f, 0};
      unsigned cp = 0;
      auto r = std::from_chars(f.f[7].data(), f.f[7].data() + f.f[7].size(), cp, 16);
      if (r.ec != std::errc() || cp > 0x10FFFF) ok = false;
      g.cp = cp;
      if (glyphs_.size() >= kMaxGlyphsPerPage) fail(source_, "page " + std::to_string(page_.number), "more than 2,000,000 glyphs");
      glyphs_.push_back(g);
      break;
    }
    case 'I':
      need(5);
      in_page();
      page_.images.push_back(box(1));
      break;
    case 'G':
      need(5);
      in_page();
      page_.graphics.push_back(box(1));
      break;
    case 'L': {
      need(6);
      in_page();
      Box b = box(1);
      double w = std::max(num(f.f[5], &ok), 0.1);
      // Diagonal strokes are drawings, not rules.
      if (b.w() > 1.0 && b.h() > 1.0) {
        page_.graphics.push_back(b);
        break;
      }
      if (b.h() <= 1.0) b.y0 -= w / 2, b.y1 += w / 2;
      else b.x0 -= w / 2, b.x1 += w / 2;
      page_.rules.push_back({b});
      break;
    }
    case 'R': {
      need(6);
      in_page();
      Box b = box(1);
      double gray = num(f.f[5], &ok);
      if (std::min(b.w(), b.h()) <= 3.0 && gray < 0.8) page_.rules.push_back({b});
      else if (gray < 0.995 && b.w() > 3 && b.h() > 3) page_.shading.push_back(b);
      break;
    }
    case 'E':
      need(1);
      in_page();
      finish_page(out);
      in_page_ = false;
      return true;
    default:
      bad("unknown record \"" + std::string(s.substr(0, 20)) + "\"");
  }
  if (!ok) bad("malformed number in \"" + std::string(s.substr(0, 60)) + "\"");
  if (page_.rules.size() + page_.graphics.size() + page_.images.size() > kMaxGlyphsPerPage)
    fail(source_, "page " + std::to_string(page_.number), "more than 2,000,000 drawn shapes");
  return false;
}

// Glyphs arrive in content-stream order, which in born-digital files is the
// writing order within a line; a word ends at a space, a gap wider than 15%
// of the font size, a jump back, or a change of baseline.
void PageStreamParser::finish_page(Page* out) {
  Word cur;
  const Glyph* prev = nullptr;
  auto flush = [&] {
    if (!cur.text.empty()) page_.words.push_back(std::move(cur));
    cur = Word{};
    prev = nullptr;
  };
  for (const Glyph& g : glyphs_) {
    bool space = g.cp == ' ' || g.cp == 0xA0 || g.cp == '\t' || g.cp == '\n' || g.cp == '\r' || g.cp == 0x3000;
    if (space || g.cp < 0x20 || (g.cp >= 0x7F && g.cp < 0xA0)) {
      flush();
      continue;
    }
    if (prev) {
      // Fake bold: the same glyph drawn again a fraction of a point away.
      if (prev->cp == g.cp && std::fabs(prev->box.x0 - g.box.x0) < 0.6 && std::fabs(prev->box.y1 - g.box.y1) < 0.6)
        continue;
      double sz = std::max(prev->size, g.size);
      double gap = g.box.x0 - prev->box.x1;
      bool same_line = std::fabs(g.box.y1 - prev->box.y1) < 0.3 * sz ||
                       overlap_y(g.box, prev->box) > 0.6 * std::min(g.box.h(), prev->box.h());
      if (!same_line || gap > 0.15 * sz || gap < -0.5 * sz) flush();
    }
    if (cur.text.empty()) {
      cur.box = g.box;
      cur.size = g.size;
      auto it = fonts_.find(g.font);
      if (it != fonts_.end()) cur.bold = it->second.bold, cur.italic = it->second.italic, cur.mono = it->second.mono;
    } else {
      cur.box.add(g.box);
    }
    append_utf8(cur.text, g.cp);
    prev = &g;
  }
  flush();
  glyphs_.clear();
  *out = std::move(page_);
  page_ = Page{};
}

std::string find_solar_pdf(const Options& opt) {
  if (!opt.solar_pdf.empty()) return opt.solar_pdf;
  if (const char* e = std::getenv("SOLAR_PDF"); e && *e) return e;
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n > 0) {
    buf[n] = 0;
    std::string p = join_path(parent_dir(buf), "solar-pdf");
    if (access(p.c_str(), X_OK) == 0) return p;
  }
  if (const char* path = std::getenv("PATH")) {
    std::string ps = path;
    size_t i = 0;
    while (i <= ps.size()) {
      size_t j = ps.find(':', i);
      if (j == std::string::npos) j = ps.size();
      std::string p = join_path(ps.substr(i, j - i), "solar-pdf");
      if (j > i && access(p.c_str(), X_OK) == 0) return p;
      i = j + 1;
    }
  }
  return "";
}

void read_pdf(const std::string& path, const Options& opt, const std::function<void(int)>& on_start,
              const std::function<void(Page&&)>& on_page) {
  check_input_file(path);
  std::string exe = find_solar_pdf(opt);
  if (exe.empty())
    fail(path, "", "reading PDFs needs the solar-pdf backend (tools/solar-pdf, GPL, links poppler): "
                   "not found beside solar, in $SOLAR_PDF or on PATH");
  std::vector<std::string> args{exe, path};
  if (!opt.password.empty()) args.insert(args.end(), {"--password", opt.password});
  if (opt.first_page > 1) args.insert(args.end(), {"--first", std::to_string(opt.first_page)});
  if (opt.last_page > 0) args.insert(args.end(), {"--last", std::to_string(opt.last_page)});
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) fail(path, "", "pipe failed");
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  pid_t pid = 0;
  int rc = posix_spawn(&pid, exe.c_str(), &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  close(fds[1]);
  if (rc != 0) {
    close(fds[0]);
    fail(path, "", "cannot run " + exe);
  }
  FILE* in = fdopen(fds[0], "r");
  auto reap = [&](bool kill_it) {
    if (in) fclose(in), in = nullptr;
    if (kill_it) kill(pid, SIGKILL);
    int st = 0;
    waitpid(pid, &st, 0);
    return st;
  };
  PageStreamParser parser(path);
  char* buf = nullptr;  // getline's buffer: freed on both paths
  size_t cap = 0;
  try {
    ssize_t n;
    bool started = false;
    Page page;
    while ((n = getline(&buf, &cap, in)) > 0) {
      std::string_view s(buf, size_t(n));
      if (s.back() == '\n') s.remove_suffix(1);
      bool done = parser.line(s, &page);
      if (!started && parser.pages() >= 0) {
        started = true;
        if (parser.pages() == 0) fail(path, "", "the PDF has no pages");
        on_start(parser.pages());
      }
      if (done) on_page(std::move(page));
    }
    free(buf);
    buf = nullptr;
  } catch (...) {
    free(buf);
    reap(true);
    throw;
  }
  int st = reap(false);
  int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  if (code != 0 || !parser.failure().empty()) {
    std::string msg = parser.failure().empty() ? "solar-pdf failed (status " + std::to_string(code) + ")" : parser.failure();
    fail(path, "", msg);
  }
}

}  // namespace solar::parse
