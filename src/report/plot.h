// solar/report/plot.h — dependency-free SVG line charts and small tables.
//
// Loss curves here, the pipeline report later: a chart is a handful of named
// (x, y) series drawn on shared axes with "nice" ticks (1, 2, 5 × 10^k), a
// legend and a title. Non-finite points are skipped (a NaN loss must not
// break the picture of everything before it). Files are written atomically.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace solar::report {

struct Series {
  std::string name;
  std::vector<double> x, y;
  bool markers = false;  // dots at each point (sparse series such as val loss)
};

struct PlotOptions {
  std::string title, xlabel, ylabel;
  int width = 720, height = 420;  // of the axes and frame; the legend column widens the picture
  bool log_y = false;  // positive y only; others are skipped
};

std::string svg_line_plot(const std::vector<Series>& series, const PlotOptions& opt);
void write_svg_line_plot(const std::string& path, const std::vector<Series>& series, const PlotOptions& opt);

// Tick positions covering [lo, hi] with about `target` steps of 1, 2 or 5 × 10^k.
std::vector<double> nice_ticks(double lo, double hi, int target = 5);

// Generous estimate of the rendered width of `s` (UTF-8) in a sans-serif
// font of font_px pixels, for laying out text that must not be clipped.
double text_width(std::string_view s, double font_px);

std::string xml_escape(std::string_view s);  // & < > " ' for SVG and HTML text
// Cells are Markdown inline text (`code`, **strong**; report/document.h).
// GitHub-flavoured Markdown table; '|' in cells is escaped.
std::string markdown_table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows);
// <table> with <thead>/<tbody>, cells rendered to HTML.
std::string html_table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows);

}  // namespace solar::report
