// solar/pipeline/docs_pairs.h — instruction and preference data from
// reStructuredText documentation, so the recipe's alignment half needs
// nothing a fresh machine lacks (the Python docs' Sphinx sources).
//
// A section is a heading (a text line underlined with one repeated
// punctuation character, as rst writes them) and its first prose paragraph:
// indented blocks (code, directive bodies), directives and comments (".."),
// lists, tables and transitions are skipped, inline markup is reduced to its
// text (:role:`x <target>` → x, ``x`` → x, `text <url>`_ → text, **x** → x),
// and paragraphs outside [min_chars, max_chars] are passed over. Then:
//   instruction  {prompt: question from the heading, completion: paragraph}
//   preference   {prompt, chosen: the paragraph, rejected: the first
//                 paragraph of a section of another document}
// Held-out data comes from whole documents never trained on (a seeded share
// of the files), so held-out questions are about unseen pages.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace solar::pipeline {

struct DocSection {
  std::string heading, paragraph;
};

struct SectionOptions {
  size_t min_chars = 80, max_chars = 400;  // paragraph length
  size_t max_heading_chars = 80;
};
// The sections of one rst text, in order.
std::vector<DocSection> rst_sections(const std::string& text, const SectionOptions& o = {});
// rst inline markup reduced to its text (one line in, one line out).
std::string rst_plain(const std::string& line);
// "What is <heading>?" — the instruction a section answers.
std::string section_question(const std::string& heading);

struct DocsDataOptions {
  double heldout_docs = 0.1;  // share of files held out
  size_t max_heldout = 100;   // held-out examples kept (the first, in file order)
  uint64_t seed = 1234;
  SectionOptions sections;
};
// Writes into dir: sft_train.jsonl / sft_eval.jsonl (prompt, completion),
// dpo_a.jsonl / dpo_b.jsonl (the training pairs split in two disjoint halves)
// and dpo_eval.jsonl (TRL's conversational pair form). Throws solar::Error
// naming the corpus when fewer than 8 training or 2 held-out sections are found.
struct DocsDataCounts {
  size_t files = 0, train = 0, heldout = 0;
};
DocsDataCounts write_docs_data(const std::vector<std::string>& files, const std::string& corpus,
                               const std::string& dir, const DocsDataOptions& o);

}  // namespace solar::pipeline
