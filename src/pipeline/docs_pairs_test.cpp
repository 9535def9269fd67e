// Instruction and preference data from rst sources: what counts as a section
// and its first paragraph, markup reduced to text, held-out documents kept
// apart, rejected answers from other documents, GSM8K answers read as the
// harness reads them.
#include "pipeline/docs_pairs.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "core/fs.h"
#include "core/progress.h"
#include "pipeline/align.h"
#include "testing/testing.h"

using namespace solar;
using namespace solar::pipeline;
using json = nlohmann::json;

namespace {

const char* kPage = R"(:mod:`json` --- JSON encoder and decoder
========================================

.. module:: json
   :synopsis: Encode and decode the JSON format.

**Source code:** :source:`Lib/json/__init__.py`

--------------

`JSON <https://json.org>`_, specified by :rfc:`7159`, is a lightweight data interchange format
inspired by ``JavaScript`` object literal syntax [#rfc-errata]_.

Basic Usage
-----------

.. function:: dump(obj, fp)

   Serialize *obj* as a JSON formatted stream to *fp* (a :meth:`~io.TextIOBase.write`-supporting file).

* a list item that is long enough to be a paragraph if lists were prose, which they are not here.

Short.

Encoding basic Python object hierarchies is what :func:`dumps` does; its **options** mirror those of
:func:`dump`, as the table below says::

    >>> import json

Empty Heading Section
~~~~~~~~~~~~~~~~~~~~~

Overlong
--------

)";

}  // namespace

TEST(DocsPairs, SectionsAreHeadingsWithTheirFirstProseParagraph) {
  std::string page = kPage + std::string("x") + std::string(500, 'y') + "\n";
  auto s = rst_sections(page);
  ASSERT_EQ(s.size(), 2u) << (s.empty() ? "" : s.back().heading);
  EXPECT_EQ(s[0].heading, "json --- JSON encoder and decoder");
  EXPECT_EQ(s[0].paragraph,
            "JSON, specified by 7159, is a lightweight data interchange format inspired by JavaScript object "
            "literal syntax.");
  // The directive body, the list item and the short line are passed over; "::" ends as ":".
  EXPECT_EQ(s[1].heading, "Basic Usage");
  EXPECT_EQ(s[1].paragraph,
            "Encoding basic Python object hierarchies is what dumps does; its options mirror those of dump, as the "
            "table below says:");
  EXPECT_EQ(section_question("Basic Usage"), "What is Basic Usage?");
}

TEST(DocsPairs, MarkupIsReducedToText) {
  EXPECT_EQ(rst_plain(":class:`~collections.OrderedDict` and :ref:`the guide <tut-guide>`"),
            "collections.OrderedDict and the guide");
  EXPECT_EQ(rst_plain("``a = 1``, *emphasis*, **strong**, `link`_ and `named <http://x>`__"),
            "a = 1, emphasis, strong, link and named");
  EXPECT_EQ(rst_plain("words\\ joined and a note [1]_ here"), "wordsjoined and a note here");
}

TEST(DocsPairs, HeldOutDocumentsAreNeverTrainedOnAndRejectedComesFromAnotherDocument) {
  std::string dir = solar::testing::temp_dir("docs_pairs");
  std::vector<std::string> files;
  for (int f = 0; f < 30; ++f) {
    std::string text;
    for (int k = 0; k < 3; ++k)
      text += "Topic " + std::to_string(f) + "." + std::to_string(k) + "\n============\n\nParagraph " + std::to_string(f) +
              "." + std::to_string(k) + " explains the topic at enough length to count as a paragraph of its section here.\n\n";
    files.push_back(join_path(dir, "doc" + std::to_string(f) + ".rst"));
    write_file_atomic(files.back(), text);
  }
  DocsDataOptions o;
  o.heldout_docs = 0.2;
  auto n = write_docs_data(files, dir, join_path(dir, "out"), o);
  EXPECT_EQ(n.train + n.heldout, 90u);
  EXPECT_GE(n.heldout, 2u);
  auto lines = [&](const std::string& f) {
    std::vector<json> v;
    for (auto& j : read_metrics(join_path(dir, "out/" + f))) v.push_back(j);
    return v;
  };
  // The document of a question: "What is Topic F.K?"
  auto doc_of = [](const std::string& text) { return text.substr(0, text.find('.', text.find_first_of("0123456789"))); };
  std::set<std::string> train_docs, held_docs;
  for (auto& j : lines("sft_train.jsonl")) train_docs.insert(doc_of(j["prompt"].get<std::string>()));
  for (auto& j : lines("sft_eval.jsonl")) held_docs.insert(doc_of(j["prompt"].get<std::string>()));
  EXPECT_EQ(lines("sft_train.jsonl").size(), n.train);
  for (auto& d : held_docs) EXPECT_EQ(train_docs.count(d), 0u) << d;
  auto a = lines("dpo_a.jsonl"), b = lines("dpo_b.jsonl"), e = lines("dpo_eval.jsonl");
  EXPECT_EQ(a.size() + b.size(), n.train);
  EXPECT_EQ(e.size(), n.heldout);
  std::set<std::string> seen;
  for (const auto* set : {&a, &b, &e})
    for (auto& j : *set) {
      const std::string prompt = j["prompt"][0]["content"], chosen = j["chosen"][0]["content"],
                        rejected = j["rejected"][0]["content"];
      EXPECT_EQ(j["prompt"][0]["role"], "user");
      EXPECT_EQ(j["chosen"][0]["role"], "assistant");
      // "What is Topic 3.1?" is answered by "Paragraph 3.1 …"; the rejected one is another document's.
      const std::string id = prompt.substr(std::string("What is Topic ").size(), prompt.size() - 15);
      EXPECT_EQ(chosen.rfind("Paragraph " + id + " ", 0), 0u) << prompt << " / " << chosen;
      EXPECT_NE(doc_of(rejected), doc_of(chosen)) << rejected;
      if (set != &e) EXPECT_TRUE(seen.insert(prompt).second) << "in both halves: " << prompt;
    }
  // Too few sections: the corpus is named and the way out given.
  std::string err = solar::testing::error_of([&] { write_docs_data({files[0]}, "CORPUS", join_path(dir, "x"), o); });
  EXPECT_NE(err.find("CORPUS: found"), std::string::npos) << err;
  EXPECT_NE(err.find("--no-align"), std::string::npos) << err;
  std::filesystem::remove_all(dir);
}

TEST(DocsPairs, Gsm8kFinalAnswerIsTheLastLine) {
  EXPECT_EQ(gsm8k_final_answer("She has 3 + 4 = 7 apples.\n#### 7").value_or("none"), "7");
  EXPECT_EQ(gsm8k_final_answer("work\n#### 1,234\n\n").value_or("none"), "1234");
  EXPECT_EQ(gsm8k_final_answer("#### -12.5.").value_or("none"), "-12.5");
  EXPECT_FALSE(gsm8k_final_answer("#### 7\nand then more text"));
  EXPECT_FALSE(gsm8k_final_answer("The answer is 7"));
  EXPECT_FALSE(gsm8k_final_answer("#### seven"));
  EXPECT_FALSE(gsm8k_final_answer(""));
}
