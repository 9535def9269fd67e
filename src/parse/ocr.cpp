#include "parse/ocr.h"

#include <leptonica/allheaders.h>
#include <tesseract/baseapi.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <exception>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <omp.h>

#include "core/error.h"
#include "parse/table.h"

namespace solar::parse {

std::vector<Rule> detect_rules(const unsigned char* gray, int w, int h, int step) {
  std::vector<Rule> rules;
  if (w < 8 || h < 8) return rules;
  cv::Mat img(h, w, CV_8UC1, const_cast<unsigned char*>(gray), size_t(step));
  cv::Mat bin;
  cv::adaptiveThreshold(img, bin, 255, cv::ADAPTIVE_THRESH_MEAN_C, cv::THRESH_BINARY_INV, 15, 10);
  // A rule is a dark run at least 1/25 of the page long (and 20 px): longer
  // than any letter stroke, shorter than most table columns.
  for (int dir = 0; dir < 2; dir++) {
    int len = std::max(20, (dir == 0 ? w : h) / 25);
    cv::Mat k = cv::getStructuringElement(cv::MORPH_RECT, dir == 0 ? cv::Size(len, 1) : cv::Size(1, len));
    cv::Mat m;
    cv::morphologyEx(bin, m, cv::MORPH_OPEN, k);
    std::vector<std::vector<cv::Point>> contours;
    cv::findContours(m, contours, cv::RETR_EXTERNAL, cv::CHAIN_APPROX_SIMPLE);
    for (auto& c : contours) {
      cv::Rect r = cv::boundingRect(c);
      // Thick dark areas (filled boxes, photos) are no rules.
      if ((dir == 0 && r.height > 6) || (dir == 1 && r.width > 6)) continue;
      rules.push_back({Box{double(r.x), double(r.y), double(r.x + r.width), double(r.y + r.height)}});
    }
  }
  return rules;
}

// Figures on a raster: ink left once the recognised words are blanked out,
// smeared into regions; a region of at least 2% of the page is a figure (a
// photo, plot or drawing). Rules alone (thin boxes) are not.
static std::vector<Box> detect_figures(const cv::Mat& img, const std::vector<Word>& words) {
  cv::Mat bin;
  cv::threshold(img, bin, 0, 255, cv::THRESH_BINARY_INV | cv::THRESH_OTSU);
  for (const Word& w : words) {
    if (w.doubtful) continue;  // as often a photo's texture as text: its ink stays
    cv::rectangle(bin, cv::Rect(cv::Point(int(w.box.x0) - 2, int(w.box.y0) - 2), cv::Point(int(w.box.x1) + 2, int(w.box.y1) + 2)),
                  cv::Scalar(0), cv::FILLED);
  }
  int k = std::max(5, img.cols / 60);
  cv::dilate(bin, bin, cv::getStructuringElement(cv::MORPH_RECT, cv::Size(k, k)));
  std::vector<std::vector<cv::Point>> contours;
  cv::findContours(bin, contours, cv::RETR_EXTERNAL, cv::CHAIN_APPROX_SIMPLE);
  std::vector<Box> out;
  double page_area = double(img.cols) * img.rows;
  for (auto& c : contours) {
    cv::Rect r = cv::boundingRect(c);
    if (double(r.width) * r.height < 0.02 * page_area || r.width < 3 * k || r.height < 3 * k) continue;
    out.push_back(Box{double(r.x) + k / 2, double(r.y) + k / 2, double(r.x + r.width) - k / 2, double(r.y + r.height) - k / 2});
  }
  return out;
}

// Tesseract's LSTM engine reports no font weight. Bold glyphs have wider
// stems: the ink of a word divided by the dark runs its pixel rows cross is
// the mean stem width, and a word whose stems are 30% wider than the page's
// median word is bold. Relative to the page, so scan darkness and resolution
// cancel out.
static void mark_bold(const cv::Mat& img, std::vector<Word>& words) {
  cv::Mat bin;
  cv::threshold(img, bin, 0, 255, cv::THRESH_BINARY_INV | cv::THRESH_OTSU);
  std::vector<double> stem(words.size(), 0), typical;
  for (size_t i = 0; i < words.size(); i++) {
    const Box& b = words[i].box;
    int x0 = std::max(0, int(b.x0)), x1 = std::min(img.cols, int(b.x1) + 1);
    int y0 = std::max(0, int(b.y0)), y1 = std::min(img.rows, int(b.y1) + 1);
    double ink = 0;
    int runs = 0;
    for (int y = y0; y < y1; y++) {
      const unsigned char *g = img.ptr<unsigned char>(y), *d = bin.ptr<unsigned char>(y);
      bool in = false;
      for (int x = x0; x < x1; x++) {
        bool dark = d[x] != 0;
        if (dark && !in) runs++;
        if (dark) ink += (255 - g[x]) / 255.0;
        in = dark;
      }
    }
    stem[i] = runs ? ink / runs : 0;
    if (words[i].text.size() >= 3 && !words[i].doubtful) typical.push_back(stem[i]);
  }
  if (typical.size() < 20) return;  // too few words to know the page's regular weight
  std::nth_element(typical.begin(), typical.begin() + typical.size() / 2, typical.end());
  double median = typical[typical.size() / 2];
  for (size_t i = 0; i < words.size(); i++) words[i].bold = median > 0 && stem[i] > 1.3 * median;
}

// Table cells re-read one at a time. In a small table image (7-point text,
// 500 px wide) the page pass drops decimal points and misreads short cells,
// and a column of one-digit cells comes out as one tall "word" of garbage.
// Each run of words of one Tesseract line closer than a line height (a
// cell's text) is cropped with a margin, enlarged to 40 px high and read as
// one line (PSM 7); the new words replace the old when their mean confidence
// (per character) is higher. A run taller than 1.8 median word heights (a
// column read as one word) is read as a block (PSM 6) at the enlargement of
// the page's median word, and the words not lying on words read already
// replace it. Only words a table takes are re-read: on a page of running
// text the second reading lowered PubLayNet's mAP and took twice the time.
// The iterator's current word, trailing spaces and newlines cut, with its
// box in the recognised image's pixels; false for a word with no text or box.
static bool current_word(tesseract::ResultIterator& it, std::string* text, int* x0, int* y0, int* x1, int* y1) {
  std::unique_ptr<char[]> t(it.GetUTF8Text(tesseract::RIL_WORD));
  if (!t || !it.BoundingBox(tesseract::RIL_WORD, x0, y0, x1, y1)) return false;
  *text = t.get();
  while (!text->empty() && (text->back() == ' ' || text->back() == '\n')) text->pop_back();
  return !text->empty();
}

static void reread_cells(tesseract::TessBaseAPI& api, const cv::Mat& img, std::vector<Word>& words, std::vector<float>& conf,
                         const std::vector<char>& in_table) {
  std::vector<double> hs;
  int next_line = 0;
  for (const Word& w : words) {
    next_line = std::max(next_line, w.ocr_line + 1);
    if (!w.doubtful) hs.push_back(w.box.h());
  }
  if (hs.empty()) return;
  std::nth_element(hs.begin(), hs.begin() + long(hs.size() / 2), hs.end());
  const double median_h = hs[hs.size() / 2];
  struct Run {
    size_t a, b;
    Box box;
    bool tall;
  };
  std::vector<Run> runs;
  for (size_t a = 0, b = 0; a < words.size(); a = b) {
    b = a + 1;
    while (b < words.size() && words[b].ocr_line == words[a].ocr_line &&
           words[b].box.x0 - words[b - 1].box.x1 < std::max(words[b - 1].box.h(), words[b].box.h()) &&
           words[b].box.x0 > words[b - 1].box.x0)
      b++;
    Run r{a, b, Box::empty(), false};
    for (size_t k = a; k < b; k++) r.box.add(words[k].box);
    r.tall = r.box.h() > 1.8 * median_h;
    runs.push_back(r);
  }
  // Tall runs last: their block crops reach over words the others read.
  std::stable_partition(runs.begin(), runs.end(), [](const Run& r) { return !r.tall; });
  std::vector<Word> out;
  std::vector<float> out_conf;
  for (const Run& r : runs) {
    bool table = false;
    double old_conf = 0;
    size_t old_chars = 0;
    for (size_t k = r.a; k < r.b; k++) {
      table = table || in_table[k];
      old_conf += conf[k] * double(words[k].text.size()), old_chars += words[k].text.size();
    }
    old_conf /= double(std::max<size_t>(1, old_chars));
    const double h = r.box.h(), pad = std::max(2.0, 0.3 * h);
    const int x0 = std::max(0, int(r.box.x0 - pad)), y0 = std::max(0, int(r.box.y0 - pad));
    const int x1 = std::min(img.cols, int(std::ceil(r.box.x1 + pad))), y1 = std::min(img.rows, int(std::ceil(r.box.y1 + pad)));
    bool replaced = false;
    if (table && x1 - x0 >= 4 && y1 - y0 >= 4 && h >= 4) {
      api.SetPageSegMode(r.tall ? tesseract::PSM_SINGLE_BLOCK : tesseract::PSM_SINGLE_LINE);
      const double sc = std::clamp(40.0 / (r.tall ? median_h : h), 1.0, 8.0);
      const int border = 10;
      cv::Mat crop, big;
      cv::resize(img(cv::Rect(x0, y0, x1 - x0, y1 - y0)), crop, cv::Size(), sc, sc, cv::INTER_CUBIC);
      cv::copyMakeBorder(crop, big, border, border, border, border, cv::BORDER_CONSTANT, cv::Scalar(255));
      api.SetImage(big.data, big.cols, big.rows, 1, int(big.step));
      api.SetSourceResolution(300);
      if (api.Recognize(nullptr) == 0) {
        std::unique_ptr<tesseract::ResultIterator> it(api.GetIterator());
        std::vector<Word> nw;
        std::vector<float> nc;
        double new_conf = 0;
        size_t new_chars = 0;
        if (it) do {
            std::string s;
            int bx0, by0, bx1, by1;
            if (!current_word(*it, &s, &bx0, &by0, &bx1, &by1)) continue;
            if (r.tall && it->IsAtBeginningOf(tesseract::RIL_TEXTLINE)) next_line++;
            Word w = words[r.a];
            if (r.tall) w.ocr_line = next_line;
            w.text = std::move(s);
            w.box = {x0 + (bx0 - border) / sc, y0 + (by0 - border) / sc, x0 + (bx1 - border) / sc, y0 + (by1 - border) / sc};
            if (r.tall) {
              bool read = false;
              for (const Word& o : out)
                read = read || overlap_x(o.box, w.box) * overlap_y(o.box, w.box) > 0.3 * std::min(o.box.w() * o.box.h(), w.box.w() * w.box.h());
              if (read) continue;
            }
            float c = it->Confidence(tesseract::RIL_WORD);
            w.doubtful = c < 20;
            new_conf += c * double(w.text.size()), new_chars += w.text.size();
            nw.push_back(std::move(w)), nc.push_back(c);
          } while (it->Next(tesseract::RIL_WORD));
        new_conf /= double(std::max<size_t>(1, new_chars));
        if (r.tall || (!nw.empty() && new_conf > old_conf)) {
          for (size_t k = 0; k < nw.size(); k++) out.push_back(std::move(nw[k])), out_conf.push_back(nc[k]);
          replaced = true;
        }
      }
    }
    if (!replaced)
      for (size_t k = r.a; k < r.b; k++) out.push_back(words[k]), out_conf.push_back(conf[k]);
  }
  words = std::move(out);
  conf = std::move(out_conf);
}

// The page's text-sized ink: its connected components 3-40 page pixels
// tall (rules, figures and specks left out), each by its centre and area in
// the enlarged page's pixels. Found once, whatever the readings.
struct Ink {
  std::vector<std::pair<cv::Point, int>> parts;
  double total = 0;
};

static Ink text_ink(const cv::Mat& big, double up) {
  cv::Mat bin, label, stats, centre;
  cv::threshold(big, bin, 0, 255, cv::THRESH_BINARY_INV | cv::THRESH_OTSU);
  const int n = cv::connectedComponentsWithStats(bin, label, stats, centre, 8);
  Ink ink;
  for (int i = 1; i < n; i++) {
    const int w = stats.at<int>(i, cv::CC_STAT_WIDTH), h = stats.at<int>(i, cv::CC_STAT_HEIGHT);
    const int area = stats.at<int>(i, cv::CC_STAT_AREA);
    if (h < 3 * up || h > 40 * up || w > 3 * h + 10 || area < 2) continue;
    ink.parts.push_back({cv::Point(int(centre.at<double>(i, 0)), int(centre.at<double>(i, 1))), area});
    ink.total += area;
  }
  return ink;
}

// One Tesseract reading of the (enlarged) page: its words in the page's
// pixels with their confidences, and `ink`, the share of the page's text
// ink lying inside words read with confidence 20 or more.
struct Reading {
  std::vector<Word> words;
  std::vector<float> conf;
  double ink = 1;
};

static Reading read_page(tesseract::TessBaseAPI& api, const cv::Mat& big, double up, tesseract::PageSegMode psm,
                         const Ink& ink, const std::string& source) {
  api.SetPageSegMode(psm);
  api.SetImage(big.data, big.cols, big.rows, 1, int(big.step));
  api.SetSourceResolution(300);
  if (api.Recognize(nullptr) != 0) fail(source, "", "Tesseract failed to recognize the image");
  Reading r;
  std::unique_ptr<tesseract::ResultIterator> it(api.GetIterator());
  if (!it) return r;
  std::vector<cv::Rect> sure;  // confidently read words, in `big`'s pixels
  int line_no = -1;
  do {
    if (it->IsAtBeginningOf(tesseract::RIL_TEXTLINE)) line_no++;
    std::string s;
    int x0, y0, x1, y1;
    if (!current_word(*it, &s, &x0, &y0, &x1, &y1)) continue;
    Word wd;
    // A doubtful word is mostly specks or a photo's texture on a page, but
    // in a table it is usually a cell read half right ("1.090" for 1.000):
    // kept, it scores nearer the truth than an empty cell and holds up its
    // column. The layout drops the doubtful words no table takes.
    r.conf.push_back(it->Confidence(tesseract::RIL_WORD));
    wd.doubtful = r.conf.back() < 20;
    if (!wd.doubtful) sure.push_back(cv::Rect(cv::Point(x0 - 2, y0 - 2), cv::Point(x1 + 2, y1 + 2)));
    wd.box = {x0 / up, y0 / up, x1 / up, y1 / up};
    wd.text = std::move(s);
    wd.ocr_line = line_no;
    wd.size = float(y1 - y0) / float(up);
    r.words.push_back(std::move(wd));
  } while (it->Next(tesseract::RIL_WORD));
  double read = 0;
  for (const auto& [c, area] : ink.parts)
    for (const cv::Rect& b : sure)
      if (b.contains(c)) {
        read += area;
        break;
      }
  r.ink = ink.total > 0 ? read / ink.total : 1;
  return r;
}

static Page ocr_alone(const std::string& bytes, const std::string& source, const Options& opt, int page_number) {
  setMsgSeverity(L_SEVERITY_NONE);
  l_int32 format = 0, w = 0, h = 0, bps = 0, spp = 0, cmap = 0;
  // PNG's size is in its first chunk: checked even when the rest is missing.
  if (bytes.size() >= 24 && bytes.compare(0, 8, "\x89PNG\r\n\x1a\n") == 0) {
    auto be32 = [&](size_t at) {
      return (uint32_t(uint8_t(bytes[at])) << 24) | (uint32_t(uint8_t(bytes[at + 1])) << 16) |
             (uint32_t(uint8_t(bytes[at + 2])) << 8) | uint32_t(uint8_t(bytes[at + 3]));
    };
    uint64_t pw = be32(16), ph = be32(20);
    if (pw * ph > uint64_t(opt.max_pixels))
      fail(source, "", "image is " + std::to_string(pw) + " x " + std::to_string(ph) + " pixels, more than the limit of " +
                           std::to_string(opt.max_pixels) + " (--max-pixels)");
  }
  if (pixReadHeaderMem(reinterpret_cast<const l_uint8*>(bytes.data()), bytes.size(), &format, &w, &h, &bps, &spp, &cmap) != 0 ||
      w <= 0 || h <= 0)
    fail(source, "", "not a readable image (damaged or truncated header)");
  if (int64_t(w) * h > opt.max_pixels)
    fail(source, "", "image is " + std::to_string(w) + " x " + std::to_string(h) + " pixels, more than the limit of " +
                         std::to_string(opt.max_pixels) + " (--max-pixels)");
  std::vector<unsigned char> buf(bytes.begin(), bytes.end());
  cv::Mat img;
  try {
    img = cv::imdecode(buf, cv::IMREAD_GRAYSCALE);
  } catch (const cv::Exception&) {
  }
  if (img.empty()) fail(source, "", "not a readable image (damaged or truncated data)");
  Page page;
  page.number = page_number;
  page.width = img.cols, page.height = img.rows;
  page.ocr = true;
  page.rules = detect_rules(img.data, img.cols, img.rows, int(img.step));

  tesseract::TessBaseAPI api;
  api.SetVariable("debug_file", "/dev/null");  // "Detected N diacritics" and the like
  if (api.Init(nullptr, opt.ocr_lang.c_str(), tesseract::OEM_LSTM_ONLY) != 0)
    fail(source, "--ocr-lang", "Tesseract has no language data for \"" + opt.ocr_lang + "\" (install tesseract-ocr-" + opt.ocr_lang + ")");
  // A table column of one-digit cells is a tall narrow stack of glyphs that
  // Tesseract's layout takes for a line of vertical text and misreads; the
  // rotated text it is there for (axis titles, margin stamps) is rare in
  // documents, and lost is less than a table.
  api.SetVariable("textord_tabfind_vertical_text", "0");
  // Tesseract reads text of 20-30 px x-height best: small scans (a 600 px
  // wide page) are enlarged first and the boxes scaled back.
  double up = 1;
  cv::Mat big = img;
  if (img.cols < 1600 && int64_t(img.cols) * img.rows * 9 <= opt.max_pixels) {
    up = std::min(3.0, 1800.0 / img.cols);
    cv::resize(img, big, cv::Size(), up, up, cv::INTER_CUBIC);
  }
  const Ink ink = text_ink(big, up);
  Reading r = read_page(api, big, up, tesseract::PSM_AUTO, ink, source);
  // Tesseract's page layout now and then loses whole columns of a small
  // table (italic cells; rows underlined by rules taken for separators): the
  // words it returns are right, but half the text is missing. Such a page
  // is read again as one block of rows, kept when it reads clearly more ink.
  // Regular pages read 0.92-1.0 of their ink and are not read twice.
  if (r.ink < 0.85) {
    Reading b = read_page(api, big, up, tesseract::PSM_SINGLE_BLOCK, ink, source);
    if (b.ink > r.ink + 0.1) r = std::move(b);
  }
  page.words = std::move(r.words);
  std::vector<float> conf = std::move(r.conf);
  {
    std::vector<char> in_table(page.words.size(), 0);
    find_tables(page, in_table);
    if (std::find(in_table.begin(), in_table.end(), 1) != in_table.end()) reread_cells(api, img, page.words, conf, in_table);
  }
  // A word's height depends on its letters (ascenders, descenders) and a
  // text line's box on any speck Tesseract put in it: the size of a line is
  // the median height of its words (about one font size).
  for (size_t a = 0, b = 0; a < page.words.size(); a = b) {
    std::vector<float> h;
    for (b = a; b < page.words.size() && page.words[b].ocr_line == page.words[a].ocr_line; b++) h.push_back(page.words[b].size);
    std::nth_element(h.begin(), h.begin() + long(h.size() / 2), h.end());
    for (size_t k = a; k < b; k++) page.words[k].size = h[h.size() / 2];
  }
  mark_bold(img, page.words);
  page.images = detect_figures(img, page.words);
  return page;
}

// Tesseract's LSTM runs OpenMP regions of 4 threads inside, which on a
// 2-core machine spent two thirds of a table image's time spinning and
// switching (12.1 s wall, 9.2 s of it in the kernel, against 4.0 s with one
// thread); one thread per engine also lets pages run side by side instead
// of fighting over the cores. OMP_THREAD_LIMIT would do it but is read once,
// when libgomp loads: a host `teams` region's thread_limit is the run-time
// way, and holds for the regions Tesseract opens inside it. Inside an active
// parallel region (no teams allowed there) nested regions get one thread
// anyway.
Page ocr_image(const std::string& bytes, const std::string& source, const Options& opt, int page_number) {
  if (omp_get_active_level() > 0) return ocr_alone(bytes, source, opt, page_number);
  Page page;
  std::exception_ptr error;  // nothing may leave an OpenMP region
#pragma omp teams num_teams(1) thread_limit(1)
  {
    try {
      page = ocr_alone(bytes, source, opt, page_number);
    } catch (...) {
      error = std::current_exception();
    }
  }
  if (error) std::rethrow_exception(error);
  return page;
}

}  // namespace solar::parse
