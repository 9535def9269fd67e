// solar parse — documents (PDF, PNG, JPEG, TIFF) to structured HTML, JSON
// and Markdown shaped like Upstage Document Parse's output (src/parse/).
#include <cstdio>
#include <future>
#include <map>
#include <memory>
#include <set>

#include "cli/cli.h"
#include "cli/common.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/log.h"
#include "core/progress.h"
#include "parse/parse.h"
#include "parse/render.h"

namespace solar::cli {

namespace {

std::string stem_of(const std::string& path) {
  size_t s = path.find_last_of('/');
  std::string name = s == std::string::npos ? path : path.substr(s + 1);
  size_t d = name.find_last_of('.');
  return d == std::string::npos || d == 0 ? name : name.substr(0, d);
}

std::string ext_of(const std::string& path) {
  size_t d = path.find_last_of('.'), s = path.find_last_of('/');
  if (d == std::string::npos || (s != std::string::npos && d < s)) return "";
  return path.substr(d + 1);
}

std::string render(const std::string& fmt, const std::vector<parse::Element>& els) {
  if (fmt == "html") return "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"></head><body>\n" + parse::document_html(els) + "</body></html>\n";
  if (fmt == "md") return parse::document_markdown(els);
  return parse::document_text(els);
}

// The process's peak resident memory (VmHWM, kB): its own address space's
// high-water mark. getrusage's ru_maxrss would also carry the launching
// process's peak over exec.
long peak_rss_kb() {
  FILE* f = fopen("/proc/self/status", "r");
  if (!f) return -1;
  char line[256];
  long kb = -1;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "VmHWM: %ld kB", &kb) == 1) break;
  fclose(f);
  return kb;
}

}  // namespace

static int run_parse(const std::vector<std::string>& argv) {
  Args a("parse", "solar parse FILE... [-o OUT] [--format html,json,md,text] [options]");
  auto& files = a.positional("FILE", "PDF, PNG, JPEG or TIFF files");
  auto& out = a.str("-o,--output", "OUT",
                    "a folder for <name>.<format> files; with one input, a file whose extension (.json .html .md .txt) "
                    "names the format (default: standard output)");
  auto& formats = a.str("--format", "LIST", "comma-separated: json, html, md, text (default: json, or -o's extension)");
  auto& password = a.str("--password", "PW", "password of an encrypted PDF");
  auto& first = a.integer("--first-page", 1, "first PDF page to parse", 1, 1000000000);
  auto& last = a.integer("--last-page", 0, "last PDF page to parse (0: the last)", 0, 1000000000);
  auto& lang = a.str("--ocr-lang", "LANGS", "Tesseract languages for images and scanned pages, e.g. eng+kor", "eng");
  auto& max_pixels = a.integer("--max-pixels", 100'000'000, "refuse images with more pixels than this", 1, int64_t(1) << 40);
  auto& no_ocr = a.flag("--no-ocr", "leave PDF pages without a text layer empty instead of OCR-ing them");
  auto& backend = a.str("--solar-pdf", "PATH", "the PDF backend program (default: beside solar, $SOLAR_PDF, PATH)");
  auto& threads = a.threads();
  auto& quiet = a.flag("-q,--quiet", "no progress bar");
  if (!a.parse(argv)) return a.exit_code();
  if (files.empty()) usage_error("solar parse: expected at least one FILE");
  if (last > 0 && last < first) fail("--last-page", "", "expected >= --first-page");

  std::string fmts = formats;
  bool single = !out.empty() && files.size() == 1 && !ext_of(out).empty() && !is_dir(out);
  if (fmts.empty()) {
    std::string e = single ? ext_of(out) : "json";
    fmts = e == "txt" ? "text" : e == "htm" ? "html" : e == "markdown" ? "md" : e;
  }
  std::vector<std::string> fl;
  for (size_t i = 0; i <= fmts.size();) {
    size_t j = fmts.find(',', i);
    if (j == std::string::npos) j = fmts.size();
    std::string f = fmts.substr(i, j - i);
    if (f != "json" && f != "html" && f != "md" && f != "text")
      fail("--format", "", "expected json, html, md or text, got \"" + f + "\"");
    fl.push_back(f);
    i = j + 1;
  }
  if (single && fl.size() > 1) fail("--format", "", "several formats need -o to name a folder");
  if (!out.empty()) check_output_apart(out, files);
  if (!out.empty() && !single) make_dirs(out);

  parse::Options opt;
  opt.password = password;
  opt.solar_pdf = backend;
  opt.ocr_lang = lang;
  opt.first_page = int(first);
  opt.last_page = int(last);
  opt.max_pixels = max_pixels;
  opt.ocr_empty_pages = !no_ocr;
  opt.threads = int(threads);  // scanned pages (and image files) OCR'd side by side

  // One file's elements, or the error that stopped it.
  struct Result {
    std::vector<parse::Element> els;
    int pages = 0;
    std::string error;
  };
  auto parse_one = [&](const std::string& file, const parse::Options& o, bool show_bar) {
    Result r;
    std::unique_ptr<Progress> bar;
    try {
      parse::parse_file(
          file, o,
          [&](int n) {
            int todo = std::max(0, (o.last_page > 0 ? std::min(n, o.last_page) : n) - o.first_page + 1);
            if (show_bar && todo > 1) bar = std::make_unique<Progress>("parse " + stem_of(file), todo, "page");
          },
          [&](const parse::Page&, std::vector<parse::Element>&& e) {
            r.pages++;
            for (auto& x : e) r.els.push_back(std::move(x));
            if (bar) bar->update(r.pages, r.pages);
          });
      if (bar) bar->finish(r.pages);
    } catch (const Error& e) {
      r.error = e.what();
    }
    return r;
  };
  // Images are one page each: up to -t of them are OCR'd side by side (one
  // Tesseract engine per thread), read ahead of the file being written, and
  // written in input order, so the output does not depend on -t. A PDF is
  // parsed alone (its scanned pages use the threads).
  const size_t width = size_t(threads > 0 ? threads : max_threads());
  parse::Options one = opt;
  one.threads = 1;
  std::vector<char> image(files.size());
  for (size_t i = 0; i < files.size(); i++) image[i] = parse::is_image_file(files[i]);
  std::map<size_t, std::future<Result>> ahead;
  int failed = 0;
  std::set<std::string> stems;
  for (size_t i = 0; i < files.size(); i++) {
    const std::string& file = files[i];
    for (size_t k = i; k < files.size() && image[k] && k < i + width; k++)
      if (!ahead.count(k)) ahead[k] = std::async(std::launch::async, parse_one, files[k], one, false);
    Result r;
    if (ahead.count(i)) {
      r = ahead[i].get();
      ahead.erase(i);
    } else {
      r = parse_one(file, opt, !quiet);
    }
    if (!r.error.empty()) {
      fprintf(stderr, "solar: error: %s\n", r.error.c_str());
      failed++;
      continue;
    }
    std::string stem = stem_of(file);
    for (int k = 2; stems.count(stem); k++) stem = stem_of(file) + "-" + std::to_string(k);
    stems.insert(stem);
    for (const std::string& f : fl) {
      std::unique_ptr<AtomicFile> file_out;
      if (!out.empty()) file_out = std::make_unique<AtomicFile>(single ? out : join_path(out, stem + "." + (f == "text" ? "txt" : f)));
      auto put = [&](std::string_view s) {
        if (file_out) file_out->write(s);
        else fwrite(s.data(), 1, s.size(), stdout);
      };
      if (f == "json") parse::write_document_json(r.els, r.pages, put), put("\n");
      else put(render(f, r.els));
      if (file_out) file_out->commit();
    }
  }
  log_debug("parse", "done", {{"files", files.size()}, {"failed", failed}, {"peak_rss_kb", peak_rss_kb()}});
  return failed ? 1 : 0;
}

static Register reg("parse", "documents (PDF, images) to HTML, JSON and Markdown elements", run_parse);

}  // namespace solar::cli
