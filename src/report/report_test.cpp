#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <regex>

#include "core/fs.h"
#include "report/plot.h"

using namespace solar::report;

TEST(ReportPlot, NiceTicks) {
  EXPECT_EQ(nice_ticks(0, 10, 5), (std::vector<double>{0, 2, 4, 6, 8, 10}));
  EXPECT_EQ(nice_ticks(0, 1000, 4), (std::vector<double>{0, 500, 1000}));
  auto t = nice_ticks(2.31, 5.87, 5);
  ASSERT_FALSE(t.empty());
  EXPECT_GE(t.front(), 2.31);
  EXPECT_LE(t.back(), 5.87 + 1e-9);
  for (size_t i = 1; i < t.size(); i++) EXPECT_NEAR(t[i] - t[i - 1], 1.0, 1e-12);  // 3.56/5 rounds up to 1
  EXPECT_EQ(nice_ticks(3, 3).size(), 1u);  // degenerate range: one tick, no infinite loop
}

TEST(ReportPlot, SvgHasSeriesLegendAndSkipsNaN) {
  Series train{"train", {1, 2, 3, 4}, {4.0, 3.5, NAN, 2.5}};
  Series val{"val <held-out>", {2, 4}, {3.7, 2.9}, true};
  std::string s = svg_line_plot({train, val}, {"Loss & more", "step", "loss"});
  EXPECT_EQ(s.rfind("<svg", 0), 0u);
  EXPECT_NE(s.find("</svg>"), std::string::npos);
  EXPECT_NE(s.find("Loss &amp; more"), std::string::npos);
  EXPECT_NE(s.find("val &lt;held-out&gt;"), std::string::npos);
  EXPECT_FALSE(std::regex_search(s, std::regex("[^a-z]nan[^a-z]", std::regex::icase)));
  // Train polyline has 3 finite points; val has 2 points and 2 markers.
  std::regex poly("points=\"([^\"]*)\"");
  std::vector<int> counts;
  for (std::sregex_iterator it(s.begin(), s.end(), poly), end; it != end; ++it) {
    std::string p = (*it)[1];
    counts.push_back(int(std::count(p.begin(), p.end(), ' ')) + 1);
  }
  EXPECT_EQ(counts, (std::vector<int>{3, 2}));
  size_t circles = 0;
  for (size_t p = s.find("<circle"); p != std::string::npos; p = s.find("<circle", p + 1)) circles++;
  EXPECT_EQ(circles, 2u);
  // Larger loss is drawn higher on the page (smaller y): the first train point is above the last.
  std::smatch m;
  ASSERT_TRUE(std::regex_search(s, m, poly));
  std::string pts = m[1];
  double y_first = std::stod(pts.substr(pts.find(',') + 1));
  double y_last = std::stod(pts.substr(pts.rfind(',') + 1));
  EXPECT_LT(y_first, y_last);
}

TEST(ReportPlot, EmptyAndLogPlotsAreValid) {
  std::string e = svg_line_plot({}, {});
  EXPECT_NE(e.find("</svg>"), std::string::npos);
  std::string l = svg_line_plot({{"ppl", {0, 1, 2}, {1000, 100, -1}}}, {"", "", "", 720, 420, true});
  EXPECT_NE(l.find(">1000<"), std::string::npos);
  EXPECT_NE(l.find(">100<"), std::string::npos);
}

TEST(ReportPlot, WrittenAtomically) {
  std::string p = (std::filesystem::temp_directory_path() / ("solar_plot_" + std::to_string(getpid()) + ".svg")).string();
  PlotOptions o;
  o.title = "t";
  write_svg_line_plot(p, {{"a", {0, 1}, {1, 2}}}, o);
  EXPECT_NE(solar::read_file(p).find("<polyline"), std::string::npos);
  EXPECT_FALSE(solar::path_exists(p + ".tmp-" + std::to_string(getpid())));
  std::filesystem::remove(p);
}

TEST(ReportTable, MarkdownAndHtml) {
  EXPECT_EQ(markdown_table({"step", "loss"}, {{"1", "3.5"}, {"a|b"}}),
            "| step | loss |\n| --- | --- |\n| 1 | 3.5 |\n| a\\|b |  |\n");
  EXPECT_EQ(html_table({"x"}, {{"<b>"}}), "<table>\n<thead><tr><th>x</th></tr></thead>\n<tbody>\n<tr><td>&lt;b&gt;</td></tr>\n</tbody>\n</table>\n");
}

// Legend names are drawn in full in a column right of the frame, and the
// picture is wide enough for the longest (the pipeline's arms once were cut off).
TEST(ReportPlot, LegendNamesFitInThePicture) {
  const std::string longest = "DUS + continued pretraining (12 layers, WWW)";
  std::string s = svg_line_plot({{"base", {0, 1}, {4, 3}}, {longest, {0, 1}, {4.5, 3.2}}}, {"t", "x", "y"});
  std::smatch m;
  ASSERT_TRUE(std::regex_search(s, m, std::regex("<svg [^>]*width=\"([0-9.]+)\"[^>]*viewBox=\"0 0 ([0-9.]+) ")));
  double width = std::stod(m[1]);
  EXPECT_EQ(std::stod(m[2]), width);
  ASSERT_TRUE(std::regex_search(s, m, std::regex("<text x=\"([0-9.]+)\"[^>]*>([^<]*WWW\\))</text>")));
  EXPECT_EQ(m[2].str(), longest);
  double legend_x = std::stod(m[1]);
  // DejaVu Sans (Debian's default sans-serif) draws it 285.2 px wide at 12 px (its hmtx advances).
  EXPECT_GE(width - legend_x, 285.2) << s;
  // The frame stops left of the legend's lines, so no curve runs under a name.
  ASSERT_TRUE(std::regex_search(s, m, std::regex("<rect x=\"([0-9.]+)\" y=\"[0-9.]+\" width=\"([0-9.]+)\"")));
  EXPECT_LT(std::stod(m[1]) + std::stod(m[2]), legend_x - 26);
  // Wider text is estimated wider, and non-ASCII counts once per character.
  EXPECT_GT(text_width("WWWW", 12), text_width("iiii", 12));
  EXPECT_EQ(text_width("\xE2\x88\x92", 12), text_width("W", 12));
}
