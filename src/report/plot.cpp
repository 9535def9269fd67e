#include "report/plot.h"

#include <algorithm>
#include <cmath>
#include <cctype>
#include <cstdio>
#include <cstring>

#include "core/fs.h"
#include "report/document.h"

namespace solar::report {

namespace {

// Colour-blind-safe palette (Okabe–Ito).
const char* kColors[] = {"#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000"};

std::string num(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.6g", std::fabs(v) < 1e-12 ? 0.0 : v);
  return b;
}

std::string fmt(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.1f", v);
  return b;
}

}  // namespace

double text_width(std::string_view s, double font_px) {
  // DejaVu Sans's advance widths (the widest common default sans-serif)
  // rounded up per class, so every ASCII character gets at least its room.
  double em = 0;
  for (unsigned char c : s) {
    if ((c & 0xC0) == 0x80) continue;  // UTF-8 continuation byte
    if (c >= 0x80 || c == 'm' || c == 'w' || c == 'M' || c == 'W' || c == '@' || c == '%') em += 1.0;
    else if (std::strchr(" .,:;'!|iljtfr()[]", c)) em += 0.42;
    else if (std::strchr("+=<>~^#&$", c)) em += 0.85;
    else if (std::isupper(c)) em += 0.8;
    else em += 0.66;
  }
  return em * font_px;
}

std::vector<double> nice_ticks(double lo, double hi, int target) {
  if (!(hi > lo)) return {lo};
  double raw = (hi - lo) / std::max(1, target);
  double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double f = raw / mag;
  double step = (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
  std::vector<double> t;
  for (double v = std::ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step) t.push_back(v);
  return t;
}

std::string xml_escape(std::string_view s) {
  std::string o;
  for (char c : s) switch (c) {
      case '&': o += "&amp;"; break;
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '"': o += "&quot;"; break;
      case '\'': o += "&#39;"; break;
      default: o += c;
    }
  return o;
}

std::string svg_line_plot(const std::vector<Series>& series, const PlotOptions& opt) {
  auto ok = [&](double x, double y) { return std::isfinite(x) && std::isfinite(y) && (!opt.log_y || y > 0); };
  auto ty = [&](double y) { return opt.log_y ? std::log10(y) : y; };
  double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
  for (auto& s : series)
    for (size_t i = 0; i < std::min(s.x.size(), s.y.size()); i++)
      if (ok(s.x[i], s.y[i])) {
        x0 = std::min(x0, s.x[i]), x1 = std::max(x1, s.x[i]);
        y0 = std::min(y0, ty(s.y[i])), y1 = std::max(y1, ty(s.y[i]));
      }
  if (x0 > x1) x0 = 0, x1 = 1, y0 = 0, y1 = 1;  // nothing to draw: empty axes
  if (x1 == x0) x0 -= 0.5, x1 += 0.5;
  if (y1 == y0) y0 -= 0.5, y1 += 0.5;
  std::vector<double> xt = nice_ticks(x0, x1, 6), yt = nice_ticks(y0, y1, 5);
  // Round the y range out to ticks so curves never touch the frame.
  double ystep = yt.size() > 1 ? yt[1] - yt[0] : 1;
  y0 = std::floor(y0 / ystep + 1e-9) * ystep, y1 = std::ceil(y1 / ystep - 1e-9) * ystep;
  yt = nice_ticks(y0, y1, 5);

  // The legend gets its own column right of the frame, as wide as its longest
  // name, so no name is ever cut off or drawn over a curve.
  double legend_w = 0;
  for (auto& se : series) legend_w = std::max(legend_w, 38 + text_width(se.name, 12));
  const double W = opt.width, H = opt.height, L = 64, R = 16, T = opt.title.empty() ? 16 : 36, B = 48;
  const double SW = std::max(W + legend_w, opt.title.empty() ? 0 : text_width(opt.title, 15) + 24);
  auto px = [&](double x) { return L + (x - x0) / (x1 - x0) * (W - L - R); };
  auto py = [&](double y) { return H - B - (y - y0) / (y1 - y0) * (H - T - B); };

  std::string s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + num(SW) + "\" height=\"" + num(H) +
                  "\" viewBox=\"0 0 " + num(SW) + " " + num(H) +
                  "\" font-family=\"sans-serif\" font-size=\"12\">\n"
                  "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  if (!opt.title.empty())
    s += "<text x=\"" + fmt(SW / 2) + "\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">" + xml_escape(opt.title) +
         "</text>\n";
  for (double v : xt) {
    std::string X = fmt(px(v));
    s += "<line x1=\"" + X + "\" y1=\"" + fmt(T) + "\" x2=\"" + X + "\" y2=\"" + fmt(H - B) +
         "\" stroke=\"#e5e5e5\"/>\n<text x=\"" + X + "\" y=\"" + fmt(H - B + 16) + "\" text-anchor=\"middle\">" +
         num(v) + "</text>\n";
  }
  for (double v : yt) {
    std::string Y = fmt(py(v));
    s += "<line x1=\"" + fmt(L) + "\" y1=\"" + Y + "\" x2=\"" + fmt(W - R) + "\" y2=\"" + Y +
         "\" stroke=\"#e5e5e5\"/>\n<text x=\"" + fmt(L - 6) + "\" y=\"" + Y +
         "\" text-anchor=\"end\" dominant-baseline=\"middle\">" + num(opt.log_y ? std::pow(10.0, v) : v) +
         "</text>\n";
  }
  s += "<rect x=\"" + fmt(L) + "\" y=\"" + fmt(T) + "\" width=\"" + fmt(W - L - R) + "\" height=\"" +
       fmt(H - T - B) + "\" fill=\"none\" stroke=\"#333\"/>\n";
  if (!opt.xlabel.empty())
    s += "<text x=\"" + fmt(L + (W - L - R) / 2) + "\" y=\"" + fmt(H - 10) + "\" text-anchor=\"middle\">" +
         xml_escape(opt.xlabel) + "</text>\n";
  if (!opt.ylabel.empty())
    s += "<text transform=\"translate(14," + fmt(T + (H - T - B) / 2) + ") rotate(-90)\" text-anchor=\"middle\">" +
         xml_escape(opt.ylabel) + "</text>\n";

  for (size_t k = 0; k < series.size(); k++) {
    auto& se = series[k];
    std::string color = kColors[k % 8], pts;
    for (size_t i = 0; i < std::min(se.x.size(), se.y.size()); i++) {
      if (!ok(se.x[i], se.y[i])) continue;
      std::string p = fmt(px(se.x[i])) + "," + fmt(py(ty(se.y[i])));
      pts += (pts.empty() ? "" : " ") + p;
      if (se.markers)
        s += "<circle cx=\"" + fmt(px(se.x[i])) + "\" cy=\"" + fmt(py(ty(se.y[i]))) + "\" r=\"3\" fill=\"" + color +
             "\"/>\n";
    }
    if (!pts.empty())
      s += "<polyline fill=\"none\" stroke=\"" + color + "\" stroke-width=\"1.5\" points=\"" + pts + "\"/>\n";
    double ly = T + 8 + 18 * double(k);
    s += "<line x1=\"" + fmt(W) + "\" y1=\"" + fmt(ly) + "\" x2=\"" + fmt(W + 20) + "\" y2=\"" +
         fmt(ly) + "\" stroke=\"" + color + "\" stroke-width=\"2\"/>\n<text x=\"" + fmt(W + 26) + "\" y=\"" +
         fmt(ly) + "\" dominant-baseline=\"middle\">" + xml_escape(se.name) + "</text>\n";
  }
  return s + "</svg>\n";
}

void write_svg_line_plot(const std::string& path, const std::vector<Series>& series, const PlotOptions& opt) {
  write_file_atomic(path, svg_line_plot(series, opt));
}

std::string markdown_table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows) {
  auto cell = [](const std::string& c) {
    std::string o;
    for (char ch : c) {
      if (ch == '|') o += "\\|";
      else if (ch == '\n') o += ' ';
      else o += ch;
    }
    return o;
  };
  auto row = [&](const std::vector<std::string>& r) {
    std::string o = "|";
    for (size_t i = 0; i < header.size(); i++) o += " " + cell(i < r.size() ? r[i] : "") + " |";
    return o + "\n";
  };
  std::string s = row(header) + "|";
  for (size_t i = 0; i < header.size(); i++) s += " --- |";
  s += "\n";
  for (auto& r : rows) s += row(r);
  return s;
}

std::string html_table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows) {
  std::string s = "<table>\n<thead><tr>";
  for (auto& h : header) s += "<th>" + markdown_inline_html(h) + "</th>";
  s += "</tr></thead>\n<tbody>\n";
  for (auto& r : rows) {
    s += "<tr>";
    for (size_t i = 0; i < header.size(); i++) s += "<td>" + markdown_inline_html(i < r.size() ? r[i] : "") + "</td>";
    s += "</tr>\n";
  }
  return s + "</tbody>\n</table>\n";
}

}  // namespace solar::report
