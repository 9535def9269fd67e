// solar/parse/chart.h — vector charts told apart from other drawings.
//
// A chart is found by its axes: a straight rule (50 points at least) with
// three or more short perpendicular ticks on it at distinct positions, and
// two or more words beside the ticks (tick labels). Its box grows over the
// axes, their ticks and every drawn shape, bar, image and rule that touches
// them (the plot area, bars standing on the axis), until nothing more joins.
// Text labels further out (axis titles, legends) join later, like a
// figure's (layout.cpp). Rules inside a chart are no table's. Not charts: a
// box over 60 % of the page (a frame around everything), and pages of more
// than 3,000 rules (drawings; the search is quadratic).
#pragma once
#include <vector>

#include "parse/parse.h"

namespace solar::parse {

// The page's charts; rule_used[i] = 1 for the rules inside one.
std::vector<Box> find_charts(const Page& page, std::vector<char>& rule_used);

}  // namespace solar::parse
