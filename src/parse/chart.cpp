#include "parse/chart.h"

#include <algorithm>
#include <cmath>

namespace solar::parse {

namespace {

constexpr double kTol = 1.5;  // points: a tick this close to its axis touches it

bool touches(const Box& a, const Box& b, double tol) {
  return a.x0 <= b.x1 + tol && b.x0 <= a.x1 + tol && a.y0 <= b.y1 + tol && b.y0 <= a.y1 + tol;
}

// Distinct positions among xs, closer than 1 point merged.
int distinct(std::vector<double> xs) {
  std::sort(xs.begin(), xs.end());
  int n = 0;
  for (size_t i = 0; i < xs.size(); i++) n += i == 0 || xs[i] - xs[i - 1] > 1.0;
  return n;
}

}  // namespace

std::vector<Box> find_charts(const Page& page, std::vector<char>& rule_used) {
  std::vector<Box> out;
  const auto& rules = page.rules;
  // The search is quadratic in the rules: a page of thousands is a drawing
  // (a hatching, a map), not a chart with a few dozen ticks.
  if (rules.size() > 3000) return out;
  auto length = [](const Rule& r) { return std::max(r.box.w(), r.box.h()); };
  std::vector<int> ticks;
  for (size_t i = 0; i < rules.size(); i++)
    if (length(rules[i]) >= 1.5 && length(rules[i]) <= 7) ticks.push_back(int(i));
  for (size_t a = 0; a < rules.size(); a++) {
    const Rule& axis = rules[a];
    if (rule_used[a] || length(axis) < 50) continue;
    bool hz = axis.horizontal();
    std::vector<int> on;
    std::vector<double> pos;
    for (int t : ticks) {
      const Rule& r = rules[size_t(t)];
      if (r.horizontal() == hz || !touches(r.box, axis.box, kTol)) continue;
      // A tick ends at the axis (or crosses it); it does not lie along it.
      on.push_back(t);
      pos.push_back(hz ? r.box.cx() : r.box.cy());
    }
    if (distinct(pos) < 3) continue;
    Box ext = axis.box;
    for (int t : on) ext.add(rules[size_t(t)].box);
    // Tick labels: words just beyond the ticks.
    int labels = 0;
    for (const Word& w : page.words) {
      if (w.text.size() > 12) continue;
      double em = std::max(double(w.size), 4.0);
      Box reach = ext;
      if (hz) reach.y0 -= 2 * em, reach.y1 += 2 * em, reach.x0 -= em, reach.x1 += em;
      else reach.x0 -= 4 * em, reach.x1 += 4 * em, reach.y0 -= em, reach.y1 += em;
      labels += w.box.cx() > reach.x0 && w.box.cx() < reach.x1 && w.box.cy() > reach.y0 && w.box.cy() < reach.y1;
    }
    if (labels < 2) continue;
    // Grow over what touches the axes: the other axis, bars, curves, grid lines.
    Box box = ext;
    std::vector<char> in(rules.size(), 0);
    in[a] = 1;
    for (int t : on) in[size_t(t)] = 1;
    for (bool grew = true; grew;) {
      grew = false;
      for (size_t i = 0; i < rules.size(); i++)
        if (!in[i] && touches(rules[i].box, box, kTol)) in[i] = 1, box.add(rules[i].box), grew = true;
      for (const auto* v : {&page.graphics, &page.shading, &page.images})
        for (const Box& g : *v)
          if (touches(g, box, kTol) && (g.x0 < box.x0 || g.y0 < box.y0 || g.x1 > box.x1 || g.y1 > box.y1) &&
              g.w() * g.h() < 0.5 * page.width * page.height)
            box.add(g), grew = true;
    }
    // Grown over most of the page: a frame around it all, not a plot.
    if (box.w() * box.h() > 0.6 * page.width * page.height) continue;
    for (size_t i = 0; i < rules.size(); i++)
      if (in[i]) rule_used[i] = 1;
    out.push_back(box);
  }
  return out;
}

}  // namespace solar::parse
