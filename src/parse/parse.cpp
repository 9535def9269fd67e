#include "parse/parse.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <deque>
#include <future>
#include <thread>

#include "core/error.h"
#include "core/fs.h"
#include "parse/ocr.h"
#include "parse/pdf_stream.h"

extern char** environ;

namespace solar::parse {

namespace {

constexpr uint64_t kMaxImageBytes = uint64_t(512) << 20;

enum class Kind { pdf, image, unknown };

Kind sniff(const std::string& head) {
  if (head.find("%PDF") != std::string::npos) return Kind::pdf;
  auto starts = [&](const char* m, size_t n) { return head.size() >= n && head.compare(0, n, m, n) == 0; };
  if (starts("\x89PNG", 4) || starts("\xFF\xD8\xFF", 3) || starts("II*\0", 4) || starts("MM\0*", 4) || starts("BM", 2))
    return Kind::image;
  return Kind::unknown;
}

// Renders one PDF page with pdftoppm (poppler-utils, run as a program) for
// OCR; returns the PNG's bytes, or "" when pdftoppm is missing or fails.
std::string render_page(const std::string& path, const Options& opt, int page, int dpi) {
  char tmpl[] = "/tmp/solar-parse-XXXXXX";
  if (!mkdtemp(tmpl)) return "";
  std::string dir = tmpl, prefix = dir + "/p";
  std::vector<std::string> args{"pdftoppm", "-png", "-r", std::to_string(dpi), "-f", std::to_string(page),
                                "-l", std::to_string(page), "-singlefile"};
  if (!opt.password.empty()) args.insert(args.end(), {"-upw", opt.password});
  args.insert(args.end(), {path, prefix});
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  pid_t pid;
  int rc = posix_spawnp(&pid, "pdftoppm", &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  std::string png;
  if (rc == 0) {
    int st = 0;
    waitpid(pid, &st, 0);
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0 && path_exists(prefix + ".png")) png = read_file(prefix + ".png", kMaxImageBytes);
  }
  remove_all(dir);
  return png;
}

}  // namespace

bool is_image_file(const std::string& path) {
  // Non-blocking: a FIFO must not hang here (parse_file refuses it by name).
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return false;
  struct stat st {};
  char head[16];
  ssize_t n = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) ? pread(fd, head, sizeof head, 0) : -1;
  close(fd);
  return n > 0 && sniff(std::string(head, size_t(n))) == Kind::image;
}

void parse_file(const std::string& path, const Options& opt, const std::function<void(int)>& on_start,
                const std::function<void(const Page&, std::vector<Element>&&)>& on_page) {
  uint64_t size = 0;
  int fd = open_input(path, &size);
  char head[1024];
  ssize_t n = pread(fd, head, sizeof head, 0);
  close(fd);
  if (n <= 0) fail(path, "", "empty file (expected a PDF, PNG, JPEG or TIFF)");
  Kind kind = sniff(std::string(head, size_t(n)));
  LayoutState state;
  int next_id = 0;
  if (kind == Kind::image) {
    if (size > kMaxImageBytes) fail(path, "", "image file larger than 512 MiB");
    on_start(1);
    Page p = ocr_image(read_file(path, kMaxImageBytes), path, opt, 1);
    auto els = layout(p, state, next_id);
    on_page(p, std::move(els));
    return;
  }
  if (kind != Kind::pdf) fail(path, "", "unsupported format (expected a PDF, PNG, JPEG or TIFF file)");
  // Scanned pages are rendered and OCR'd on up to opt.threads threads, one
  // Tesseract engine each; pages are laid out and handed on in page order
  // (the layout state builds up page by page), and at most opt.threads pages
  // wait, so memory stays bounded however long the document.
  struct Pending {
    Page page;
    std::future<void> ocr;  // invalid when the page needs none
    bool ready() const { return !ocr.valid() || ocr.wait_for(std::chrono::seconds(0)) == std::future_status::ready; }
  };
  std::deque<Pending> pending;  // push_back and pop_front keep references to the others valid
  const size_t max_pending = size_t(std::max(1, opt.threads > 0 ? opt.threads : int(std::thread::hardware_concurrency())));
  auto finish_front = [&] {
    Pending& f = pending.front();
    if (f.ocr.valid()) f.ocr.get();  // rethrows the page's error
    auto els = layout(f.page, state, next_id);
    next_id += int(els.size());
    on_page(f.page, std::move(els));
    pending.pop_front();
  };
  read_pdf(path, opt, on_start, [&](Page&& p) {
    const int dpi = 200;
    // A page without a text layer but with an image is a scan: OCR it, in points.
    bool scan = p.words.empty() && !p.images.empty() && opt.ocr_empty_pages &&
                int64_t(p.width * dpi / 72) * int64_t(p.height * dpi / 72) <= opt.max_pixels;
    // Room first: a page's OCR starts once fewer than max_pending are held
    // (started before, -t 1 ran two pages' OCR at once, -t 2 three).
    while (pending.size() >= max_pending) finish_front();
    pending.push_back({std::move(p), {}});
    if (scan) {
      Page* page = &pending.back().page;
      pending.back().ocr = std::async(std::launch::async, [page, &path, &opt] {
        std::string png = render_page(path, opt, page->number, dpi);
        if (png.empty()) return;
        Page o = ocr_image(png, path + " page " + std::to_string(page->number), opt, page->number);
        double k = 72.0 / dpi;
        auto scale = [&](Box& b) { b.x0 *= k, b.y0 *= k, b.x1 *= k, b.y1 *= k; };
        for (Word& w : o.words) scale(w.box), w.size *= float(k);
        page->words = std::move(o.words);
        page->ocr = true;
        // The scan itself is the page, not a figure on it.
        page->images.clear();
      });
    }
    while (!pending.empty() && pending.front().ready()) finish_front();
  });
  while (!pending.empty()) finish_front();
}

}  // namespace solar::parse
