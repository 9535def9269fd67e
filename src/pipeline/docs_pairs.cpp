#include "pipeline/docs_pairs.h"

#include <cctype>
#include <nlohmann/json.hpp>
#include <regex>

#include "core/error.h"
#include "core/fs.h"
#include "core/rng.h"

namespace solar::pipeline {

using json = nlohmann::json;

namespace {

std::string trim(const std::string& s) {
  size_t a = s.find_first_not_of(" \t\r"), b = s.find_last_not_of(" \t\r");
  return a == std::string::npos ? "" : s.substr(a, b - a + 1);
}

// "=====", "-----": one punctuation character repeated, at least 3 long.
bool is_rule(const std::string& s) {
  if (s.size() < 3 || !std::ispunct(static_cast<unsigned char>(s[0]))) return false;
  return s.find_first_not_of(s[0]) == std::string::npos;
}

// A block that is prose: not indented, not a directive, comment, list item,
// table, field or transition.
bool is_prose(const std::vector<std::string>& block) {
  const std::string& f = block[0];
  if (f.empty() || std::isspace(static_cast<unsigned char>(f[0]))) return false;
  static const std::regex non_prose(R"(^(\.\.|[-*+|:>] |#\.|[0-9]+\. |\+[-=]|=+ |\*\*Source code)|^[-=+]{3,})");
  return !std::regex_search(f, non_prose);
}

}  // namespace

std::string rst_plain(const std::string& line) {
  static const std::regex role(R"(:[a-zA-Z:+-]+:`([^`<]*?)\s*(<[^>`]*>)?`)");  // :role:`text <target>` → text
  static const std::regex link(R"(`([^`<]*?)\s*(<[^>`]*>)?`__?)");           // `text <url>`_ → text
  static const std::regex literal(R"(``([^`]*)``)");
  static const std::regex strong(R"(\*\*([^*]+)\*\*)");
  static const std::regex emph(R"(\*([^*\s][^*]*)\*)");
  static const std::regex footnote(R"(\s*\[#?[-\w]*\]_)");
  static const std::regex spaces(R"(\s+)");
  std::string s = std::regex_replace(line, footnote, "");
  s = std::regex_replace(s, role, "$1");
  s = std::regex_replace(s, literal, "$1");
  s = std::regex_replace(s, link, "$1");
  s = std::regex_replace(s, strong, "$1");
  s = std::regex_replace(s, emph, "$1");
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size() && s[i + 1] == ' ') {  // "\ " joins words in rst
      ++i;
      continue;
    }
    if (s[i] == '`') continue;
    if (s[i] == '~' && (i == 0 || s[i - 1] == ' ')) continue;  // :func:`~a.b` shows "b"; keep the name whole
    out += s[i];
  }
  out = std::regex_replace(out, spaces, " ");
  while (out.size() >= 2 && out.compare(out.size() - 2, 2, "::") == 0) out.pop_back();  // "Example::" → "Example:"
  return trim(out);
}

std::string section_question(const std::string& heading) { return "What is " + heading + "?"; }

std::vector<DocSection> rst_sections(const std::string& text, const SectionOptions& o) {
  std::vector<std::string> lines;
  for (size_t at = 0; at <= text.size();) {
    size_t nl = std::min(text.find('\n', at), text.size());
    std::string l = text.substr(at, nl - at);
    if (!l.empty() && l.back() == '\r') l.pop_back();
    lines.push_back(l);
    at = nl + 1;
  }
  std::vector<DocSection> out;
  std::string heading;  // the current section's, until its paragraph is found
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string t = trim(lines[i]);
    // Heading: a text line whose underline is at least as long.
    if (i + 1 < lines.size() && !t.empty() && !is_rule(t) && !std::isspace(static_cast<unsigned char>(lines[i][0])) &&
        is_rule(trim(lines[i + 1])) && trim(lines[i + 1]).size() >= t.size()) {
      std::string h = rst_plain(t);
      heading = h.size() >= 3 && h.size() <= o.max_heading_chars ? h : "";
      ++i;
      continue;
    }
    if (heading.empty() || t.empty()) continue;
    std::vector<std::string> block;
    while (i < lines.size() && !trim(lines[i]).empty()) block.push_back(lines[i++]);
    if (!is_prose(block)) continue;
    std::string para;
    for (const auto& l : block) para += (para.empty() ? "" : " ") + trim(l);
    para = rst_plain(para);
    if (para.size() < o.min_chars || para.size() > o.max_chars) continue;
    out.push_back({heading, para});
    heading.clear();
  }
  return out;
}

DocsDataCounts write_docs_data(const std::vector<std::string>& files, const std::string& corpus,
                               const std::string& dir, const DocsDataOptions& o) {
  struct Item {
    size_t file;
    DocSection s;
  };
  std::vector<Item> train, held;
  const uint64_t key = rng_key(o.seed, "pipeline/heldout-docs");
  for (size_t f = 0; f < files.size(); ++f) {
    const bool out = rng_uniform64(key, f) < o.heldout_docs;
    for (auto& s : rst_sections(read_file(files[f], 64u << 20), o.sections)) {
      if (out && held.size() >= o.max_heldout) break;
      (out ? held : train).push_back({f, std::move(s)});
    }
  }
  if (train.size() < 8 || held.size() < 2)
    fail(corpus, "", "found " + std::to_string(train.size()) + " training and " + std::to_string(held.size()) +
                         " held-out sections with a heading and a first paragraph (expected at least 8 and 2: "
                         "reStructuredText headings); pass --sft-data and --dpo-data, or --no-align");
  // A rejected answer: the paragraph of a section of another document, seeded.
  const uint64_t pick = rng_key(o.seed, "pipeline/rejected");
  auto pairs = [&](const std::vector<Item>& items, size_t i) {
    const size_t n = items.size();
    size_t j = size_t(rng_uniform64(pick, i + (&items == &held ? 1u << 30 : 0)) * double(n)) % n;
    for (size_t k = 0; k < n && (items[j].file == items[i].file || j == i); ++k) j = (j + 1) % n;
    if (j == i) j = (i + 1) % n;  // a one-document set: another section of it
    auto turn = [](const char* role, const std::string& text) { return json::array({{{"role", role}, {"content", text}}}); };
    return json{{"prompt", turn("user", section_question(items[i].s.heading))},
                {"chosen", turn("assistant", items[i].s.paragraph)},
                {"rejected", turn("assistant", items[j].s.paragraph)}};
  };
  std::string sft_train, sft_eval, dpo_a, dpo_b, dpo_eval;
  for (size_t i = 0; i < train.size(); ++i) {
    sft_train += json{{"prompt", section_question(train[i].s.heading)}, {"completion", train[i].s.paragraph}}.dump() + "\n";
    (i % 2 ? dpo_b : dpo_a) += pairs(train, i).dump() + "\n";
  }
  for (size_t i = 0; i < held.size(); ++i) {
    sft_eval += json{{"prompt", section_question(held[i].s.heading)}, {"completion", held[i].s.paragraph}}.dump() + "\n";
    dpo_eval += pairs(held, i).dump() + "\n";
  }
  make_dirs(dir);
  write_file_atomic(join_path(dir, "sft_train.jsonl"), sft_train);
  write_file_atomic(join_path(dir, "sft_eval.jsonl"), sft_eval);
  write_file_atomic(join_path(dir, "dpo_a.jsonl"), dpo_a);
  write_file_atomic(join_path(dir, "dpo_b.jsonl"), dpo_b);
  write_file_atomic(join_path(dir, "dpo_eval.jsonl"), dpo_eval);
  return {files.size(), train.size(), held.size()};
}

}  // namespace solar::pipeline
