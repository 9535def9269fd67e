// solar/parse/ocr.h — a raster page to a Page: words from Tesseract 5
// (Apache-2.0, LSTM engine, its OpenMP regions held to one thread so pages
// run side by side), table rules from OpenCV morphology (long thin horizontal and
// vertical runs of dark pixels).
//
// Sizes are checked from the file header before decoding: an image over
// opt.max_pixels is refused without allocating it. Words carry a size
// derived from their text line's height (Tesseract gives no font sizes), in
// pixels like every box of the page. Threads: one Tesseract instance per call.
#pragma once
#include <string>

#include "parse/parse.h"

namespace solar::parse {

// Encoded PNG/JPEG/TIFF/BMP bytes → Page. Throws naming `source`.
Page ocr_image(const std::string& bytes, const std::string& source, const Options& opt, int page_number = 1);
// The table rules of a grey image (one byte per pixel, `step` bytes a row).
std::vector<Rule> detect_rules(const unsigned char* gray, int w, int h, int step);

}  // namespace solar::parse
