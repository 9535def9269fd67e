// solar parse — documents (PDF, PNG, JPEG, TIFF) to structured HTML, JSON
// and Markdown shaped like Upstage Document Parse's output (src/parse/).
#include <cstdio>
#include <set>

#include "cli/cli.h"
#include "cli/common.h"
#include "core/error.h"
#include "core/fs.h"
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

std::string render(const std::string& fmt, const std::vector<parse::Element>& els, int pages) {
  if (fmt == "json") return parse::document_json(els, pages).dump(1) + "\n";
  if (fmt == "html") return "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"></head><body>\n" + parse::document_html(els) + "</body></html>\n";
  if (fmt == "md") return parse::document_markdown(els);
  return parse::document_text(els);
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
  opt.threads = int(threads);  // scanned pages OCR'd side by side

  int failed = 0;
  std::set<std::string> stems;
  for (const std::string& file : files) {
    std::vector<parse::Element> els;
    int pages = 0;
    std::unique_ptr<Progress> bar;
    try {
      parse::parse_file(
          file, opt,
          [&](int n) {
            int todo = std::max(0, (opt.last_page > 0 ? std::min(n, opt.last_page) : n) - opt.first_page + 1);
            if (!quiet && todo > 1) bar = std::make_unique<Progress>("parse " + stem_of(file), todo, "page");
          },
          [&](const parse::Page&, std::vector<parse::Element>&& e) {
            pages++;
            for (auto& x : e) els.push_back(std::move(x));
            if (bar) bar->update(pages, pages);
          });
      if (bar) bar->finish(pages);
    } catch (const Error& e) {
      fprintf(stderr, "solar: error: %s\n", e.what());
      failed++;
      continue;
    }
    std::string stem = stem_of(file);
    for (int k = 2; stems.count(stem); k++) stem = stem_of(file) + "-" + std::to_string(k);
    stems.insert(stem);
    for (const std::string& f : fl) {
      std::string body = render(f, els, pages);
      if (out.empty()) fwrite(body.data(), 1, body.size(), stdout);
      else if (single) write_file_atomic(out, body);
      else write_file_atomic(join_path(out, stem + "." + (f == "text" ? "txt" : f)), body);
    }
  }
  return failed ? 1 : 0;
}

static Register reg("parse", "documents (PDF, images) to HTML, JSON and Markdown elements", run_parse);

}  // namespace solar::cli
