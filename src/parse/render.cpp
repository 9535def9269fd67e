#include "parse/render.h"

namespace solar::parse {

std::string document_html(const std::vector<Element>& els) {
  std::string s;
  for (size_t i = 0; i < els.size(); i++) {
    const Element& e = els[i];
    if (e.category == Category::caption) {
      // Already inside the figure before it, or to go inside the one after.
      bool after_fig = i > 0 && els[i - 1].category == Category::figure && els[i - 1].page == e.page;
      bool before_fig = i + 1 < els.size() && els[i + 1].category == Category::figure && els[i + 1].page == e.page &&
                        !(i + 2 < els.size() && els[i + 2].category == Category::caption);
      if (after_fig || before_fig) continue;
    }
    std::string h = e.html;
    if (e.category == Category::figure) {
      std::string cap;
      if (i + 1 < els.size() && els[i + 1].category == Category::caption && els[i + 1].page == e.page) cap = els[i + 1].text;
      else if (i > 0 && els[i - 1].category == Category::caption && els[i - 1].page == e.page &&
               !(i > 1 && els[i - 2].category == Category::figure))
        cap = els[i - 1].text;
      if (!cap.empty()) {
        std::string fc = "<figcaption>";
        for (char c : cap) fc += c == '<' ? std::string("&lt;") : c == '>' ? std::string("&gt;") : c == '&' ? std::string("&amp;") : std::string(1, c);
        h.insert(h.size() - 9, fc + "</figcaption>");
      }
    }
    s += h;
    s += '\n';
  }
  return s;
}

std::string document_markdown(const std::vector<Element>& els) {
  std::string s;
  for (const Element& e : els) {
    if (e.category == Category::header || e.category == Category::footer || e.markdown.empty()) continue;
    if (!s.empty()) s += "\n\n";
    s += e.markdown;
  }
  return s + (s.empty() ? "" : "\n");
}

std::string document_text(const std::vector<Element>& els) {
  std::string s;
  for (const Element& e : els) {
    if (e.text.empty()) continue;
    s += e.text;
    s += '\n';
  }
  return s;
}

namespace {

nlohmann::json element_json(const Element& e) {
  auto pt = [&](double x, double y) {
    auto r4 = [](double v) { return std::round(std::clamp(v, 0.0, 1.0) * 10000) / 10000; };
    return nlohmann::json{{"x", r4(x / e.page_w)}, {"y", r4(y / e.page_h)}};
  };
  return {{"id", e.id},
          {"category", category_name(e.category)},
          {"page", e.page},
          {"coordinates", {pt(e.box.x0, e.box.y0), pt(e.box.x1, e.box.y0), pt(e.box.x1, e.box.y1), pt(e.box.x0, e.box.y1)}},
          {"content", {{"html", e.html}, {"markdown", e.markdown}, {"text", e.text}}}};
}

nlohmann::json document_head(const std::vector<Element>& els, int pages) {
  return {{"api", "solar-parse"},
          {"model", "solar-parse-1"},
          {"usage", {{"pages", pages}}},
          {"content", {{"html", document_html(els)}, {"markdown", document_markdown(els)}, {"text", document_text(els)}}},
          {"elements", nlohmann::json::array()}};
}

}  // namespace

nlohmann::json document_json(const std::vector<Element>& els, int pages) {
  nlohmann::json doc = document_head(els, pages);
  for (const Element& e : els) doc["elements"].push_back(element_json(e));
  return doc;
}

void write_document_json(const std::vector<Element>& els, int pages, const std::function<void(std::string_view)>& out) {
  std::string head = document_head(els, pages).dump(1);
  // A raw newline only ever separates members (strings escape theirs).
  const std::string key = "\n \"elements\": []";
  size_t at = head.find(key);
  if (els.empty() || at == std::string::npos) return out(head);
  out(std::string_view(head).substr(0, at + key.size() - 1));
  for (size_t i = 0; i < els.size(); i++) {
    // dump(1) of one element, indented two levels deeper (inside the array).
    std::string one = element_json(els[i]).dump(1), piece = i ? ",\n  " : "\n  ";
    for (char c : one) piece += c == '\n' ? std::string("\n  ") : std::string(1, c);
    out(piece);
  }
  out("\n ]");
  out(std::string_view(head).substr(at + key.size()));
}

}  // namespace solar::parse
