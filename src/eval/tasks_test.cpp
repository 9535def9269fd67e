// eval's pure parts against Python: random.Random, the harness's string
// handling, task files (formats and their errors), few-shot plans, metrics.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include "core/fs.h"
#include "eval/metrics.h"
#include "eval/pyrandom.h"
#include "eval/tasks.h"
#include "testing/testing.h"

namespace solar::eval {
namespace {

const std::string kEval = std::string(SOLAR_SHARED_DATA) + "/eval";

// Values printed by CPython 3.11 (random.Random(seed)).
TEST(PyRandom, MatchesCPython) {
  PyRandom r42(42);
  std::vector<int64_t> x = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  r42.shuffle(x);
  EXPECT_EQ(x, (std::vector<int64_t>{7, 3, 2, 8, 5, 6, 9, 4, 0, 1}));
  PyRandom r(1234);
  EXPECT_EQ(r.sample(100, 5), (std::vector<int64_t>{99, 56, 14, 0, 11}));  // the set-based branch
  EXPECT_EQ(r.sample(10, 3), (std::vector<int64_t>{9, 0, 1}));             // the pool branch
  auto s = r.sample(2376, 26);
  EXPECT_EQ(std::vector<int64_t>(s.begin(), s.begin() + 5), (std::vector<int64_t>{403, 1452, 969, 71, 126}));
  EXPECT_EQ(r.getrandbits32(), 3540692299u);
  PyRandom r0(0);
  EXPECT_EQ(r0.getrandbits32(), 3626764237u);
  EXPECT_EQ(r0.getrandbits32(), 1654615998u);
  EXPECT_EQ(r0.getrandbits32(), 3255389356u);
  EXPECT_EQ(PyRandom((uint64_t(1) << 40) + 5).getrandbits32(), 2166296868u);  // a two-word seed
  EXPECT_THROW(PyRandom(1).sample(3, 4), Error);
}

TEST(PyRandom, SampleIsDistinctAndInRange) {
  PyRandom r(7);
  for (int64_t n : {1, 5, 21, 22, 100, 5000})
    for (int64_t k : {int64_t(0), int64_t(1), std::min<int64_t>(n, 6), n}) {
      auto s = r.sample(n, k);
      ASSERT_EQ(int64_t(s.size()), k);
      std::vector<int64_t> sorted = s;
      std::sort(sorted.begin(), sorted.end());
      EXPECT_EQ(std::unique(sorted.begin(), sorted.end()), sorted.end());
      for (auto v : s) EXPECT_TRUE(v >= 0 && v < n);
    }
}

TEST(Strings, HellaSwagPreprocessAsPython) {
  EXPECT_EQ(py_capitalize("the MAN sits"), "The man sits");
  EXPECT_EQ(hellaswag_preprocess("  A man [title] is seen [header] talking.  "), "A man. is seen talking.");
  EXPECT_EQ(hellaswag_preprocess("x [a] [b]  y"), "x  y");  // four spaces left; one "  " → " " pass halves them
  EXPECT_EQ(hellaswag_preprocess("open [bracket"), "open [bracket");
}

static std::string write(const std::string& dir, const std::string& name, const std::string& text) {
  make_dirs(dir);
  std::string p = dir + "/" + name;
  std::ofstream(p) << text;
  return p;
}

TEST(Tasks, FormatsGiveTheHarnessPrompts) {
  std::string d = testing::temp_dir("eval_tasks");
  write(d, "arc_easy.jsonl",
        R"({"query": "Question: Why?", "choices": ["a", "b"], "gold": 1})" "\n"
        R"({"question": "How?", "choices": {"text": ["x", "y", "z"], "label": ["1", "2", "3"]}, "answerKey": "3"})" "\n");
  write(d, "winogrande.jsonl",
        R"({"sentence": "Tom gave Ann a gift because _ was kind.", "option1": "Tom", "option2": "Ann", "answer": "1"})" "\n");
  write(d, "hellaswag.jsonl",
        R"({"activity_label": "Cooking", "ctx_a": "A man cuts.", "ctx_b": "he THEN", "endings": ["stirs [x] it.", "eats."], "label": 1})" "\n");
  write(d, "truthfulqa.csv",
        "Type,Category,Question,Best Answer,Correct Answers,Incorrect Answers,Source\n"
        "A,B,\"Why, really?\",Because,Because; It is so.,No; \"Never\",src\n");
  make_dirs(d + "/mmlu/val");
  make_dirs(d + "/mmlu/dev");
  write(d + "/mmlu/val", "anatomy_val.csv", "\"What, here?\",1,2,3,4,C\n");
  write(d + "/mmlu/dev", "anatomy_dev.csv", "Q1,a,b,c,d,A\nQ2,a,b,c,d,B\n");
  TaskFiles f;
  f.data_dir = d;
  auto ts = load_tasks({"arc_easy", "winogrande", "hellaswag", "truthfulqa_mc1", "truthfulqa_mc2", "mmlu_anatomy"}, f);
  ASSERT_EQ(ts.size(), 6u);
  EXPECT_EQ(ts[0].docs[0].text, "Question: Why?\nAnswer:");
  EXPECT_EQ(ts[0].docs[1].gold, 2);
  EXPECT_EQ(ts[1].docs[0].choices, (std::vector<std::string>{"Tom gave Ann a gift because Tom", "Tom gave Ann a gift because Ann"}));
  EXPECT_EQ(ts[1].docs[0].target, "was kind.");
  EXPECT_EQ(ts[2].docs[0].text, "Cooking: A man cuts. He then");
  EXPECT_EQ(ts[2].docs[0].choices[0], "stirs it.");
  EXPECT_EQ(ts[3].docs[0].choices, (std::vector<std::string>{"Because.", "No.", "\"Never\"."}));
  EXPECT_EQ(ts[4].docs[0].choices, (std::vector<std::string>{"Because.", "It is so.", "No.", "\"Never\"."}));
  EXPECT_EQ(ts[4].docs[0].gold, 2);  // two true answers lead
  EXPECT_NE(ts[4].docs[0].text.find("\n\nQ: Why, really?\nA:"), std::string::npos);
  EXPECT_EQ(ts[5].docs[0].text, "What, here?\nA. 1\nB. 2\nC. 3\nD. 4\nAnswer:");

  // MMLU: the subject header, then the first k dev questions in order.
  Plan p = plan_task(ts[5], 2, 0, Harness::Current);
  ASSERT_EQ(p.prompts.size(), 1u);
  EXPECT_EQ(p.prompts[0].contexts[0],
            "The following are multiple choice questions (with answers) about anatomy.\n\n"
            "Q1\nA. a\nB. b\nC. c\nD. d\nAnswer: A\n\nQ2\nA. a\nB. b\nC. c\nD. d\nAnswer: B\n\n"
            "What, here?\nA. 1\nB. 2\nC. 3\nD. 4\nAnswer:");
  EXPECT_EQ(p.prompts[0].continuations, (std::vector<std::string>{" A", " B", " C", " D"}));
  // Winogrande: one context per option, the shared rest as continuation.
  Plan w = plan_task(ts[1], 0, 0, Harness::Leaderboard);
  EXPECT_EQ(w.prompts[0].continuations, (std::vector<std::string>{" was kind.", " was kind."}));
  // Errors: k beyond the pool, shots for a zero-shot task.
  EXPECT_NE(testing::error_of([&] { plan_task(ts[5], 3, 0, Harness::Current); }).find("holds 2"), std::string::npos);
  EXPECT_NE(testing::error_of([&] { plan_task(ts[0], 2, 0, Harness::Current); }).find("less the item itself"),
            std::string::npos);
  EXPECT_NE(testing::error_of([&] { plan_task(ts[4], 1, 0, Harness::Current); }).find("zero-shot"), std::string::npos);
}

TEST(Tasks, BadFilesAreNamedWithLineAndField) {
  std::string d = testing::temp_dir("eval_bad");
  TaskFiles f;
  f.data_dir = d;
  auto err = [&](const std::string& task, const std::string& file, const std::string& text) {
    write(d, file, text);
    return testing::error_of([&] { load_tasks({task}, f); });
  };
  EXPECT_NE(err("arc_easy", "arc_easy.jsonl", "{\"query\": \"q\", \"choices\": [\"a\"], \"gold\": 0}\n{\"text\": 1}\n")
                .find("arc_easy.jsonl:2: unknown document format"),
            std::string::npos);
  EXPECT_NE(err("arc_easy", "arc_easy.jsonl", "{\"query\": \"q\", \"choices\": [\"a\"], \"gold\": 3}\n").find("gold"),
            std::string::npos);
  // More labels than texts: the key's label has no text (the fuzzer found a shot read past the choices).
  EXPECT_NE(err("arc_easy", "arc_easy.jsonl",
                R"({"question": "q", "choices": {"text": ["x"], "label": ["A", "B"]}, "answerKey": "B"})" "\n")
                .find("arc_easy.jsonl:1: choices.label: expected one label per choice (1), got 2"),
            std::string::npos);
  EXPECT_NE(err("arc_easy", "arc_easy.jsonl", "{\"query\": \"q\",\n").find("arc_easy.jsonl:1"), std::string::npos);
  EXPECT_NE(err("arc_easy", "arc_easy.jsonl", "\n\n").find("no documents"), std::string::npos);
  EXPECT_NE(err("winogrande", "winogrande.jsonl", "{\"sentence\": \"no blank\", \"option1\": \"a\", \"option2\": \"b\", \"answer\": \"1\"}\n")
                .find("sentence: expected a '_' blank"),
            std::string::npos);
  EXPECT_NE(err("gsm8k", "gsm8k_test.jsonl", "{\"question\": \"q\", \"answer\": \"42\"}\n").find("#### N"), std::string::npos);
  make_dirs(d + "/mmlu/val");
  make_dirs(d + "/mmlu/dev");
  write(d + "/mmlu/dev", "anatomy_dev.csv", "Q,a,b,c,d,A\n");
  EXPECT_NE(err("mmlu_anatomy", "mmlu/val/anatomy_val.csv", "Q,a,b,c,d,E\n").find("anatomy_val.csv:1: answer"),
            std::string::npos);
  EXPECT_NE(err("mmlu_anatomy", "mmlu/val/anatomy_val.csv", "Q,a,b\n").find("expected 6 columns"), std::string::npos);
  EXPECT_NE(err("truthfulqa_mc2", "truthfulqa.csv", "Question,Answer\nq,a\n").find("Best Answer"), std::string::npos);
  // Unknown tasks list the known ones; missing files say where they were looked for.
  std::string u = testing::error_of([&] { load_tasks({"arc_hard"}, f); });
  EXPECT_NE(u.find("unknown task 'arc_hard'"), std::string::npos);
  EXPECT_NE(u.find("arc_easy, arc_challenge, hellaswag, mmlu"), std::string::npos);
  EXPECT_NE(testing::error_of([&] { load_tasks({"hellaswag"}, f); }).find("--task-data hellaswag=FILE"), std::string::npos);
}

TEST(Tasks, SharedDataLoads) {
  if (!path_exists(kEval + "/arc_easy.jsonl")) GTEST_SKIP() << kEval << " is absent";
  TaskFiles f;
  f.data_dir = kEval;
  auto ts = load_tasks({"arc_easy", "winogrande", "mmlu", "truthfulqa_mc2", "gsm8k"}, f);
  ASSERT_EQ(ts.size(), 4u + 57u);
  EXPECT_EQ(ts[0].docs.size(), 2376u);
  EXPECT_EQ(ts[1].docs.size(), 1267u);
  EXPECT_EQ(ts.back().name, "gsm8k");
  EXPECT_FALSE(ts.back().pool.empty());  // ../instruct/gsm8k_train.jsonl
  for (auto& t : ts)
    for (auto& d : t.docs) ASSERT_TRUE(t.scoring == Scoring::Generate || d.gold < int(d.choices.size())) << t.name;
}

TEST(Plan, LeaderboardShufflesThenSamplesCurrentKeepsOrder) {
  Task t;
  t.name = "x";
  for (int i = 0; i < 30; ++i) t.docs.push_back({i, "q" + std::to_string(i), {"a", "b"}, "", i % 2});
  Plan lb = plan_task(t, 2, 5, Harness::Leaderboard);
  // random.Random(42).shuffle(range(30))[:5], then rnd.sample(range(30), 3) per item minus itself.
  PyRandom r(42);
  std::vector<int64_t> order(30);
  for (int i = 0; i < 30; ++i) order[size_t(i)] = i;
  r.shuffle(order);
  order.resize(5);
  EXPECT_EQ(lb.order, order);
  for (size_t i = 0; i < 5; ++i) {
    std::vector<int64_t> want;
    for (auto j : r.sample(30, 3))
      if (j != order[i] && want.size() < 2) want.push_back(j);
    EXPECT_EQ(lb.prompts[i].shots, want);
  }
  Plan cur = plan_task(t, 0, 3, Harness::Current);
  EXPECT_EQ(cur.order, (std::vector<int64_t>{0, 1, 2}));
}

TEST(Metrics, AsTheHarness) {
  EXPECT_EQ(argmax({-3, -1, -1}), 1);  // first maximum
  EXPECT_EQ(argmax_norm({-10, -6}, {"abcde", "ab"}), 0);  // -2 > -3
  EXPECT_EQ(py_len("héllo"), 5u);
  EXPECT_NEAR(mc2({std::log(0.2), std::log(0.2), std::log(0.6)}, 2), 0.4, 1e-12);
  EXPECT_NEAR(mean_stderr({1, 0, 1, 1}), std::sqrt(0.25) / 2, 1e-12);
  EXPECT_TRUE(std::isnan(mean_stderr({1})));
  EXPECT_EQ(gsm8k_strict("so #### 1,234 and #### 5"), "1,234");
  EXPECT_EQ(gsm8k_pinned_answer("so #### 1,234"), "1234");
  EXPECT_EQ(gsm8k_flexible("I had $3 then 12.5 and 7"), "7");
  EXPECT_EQ(gsm8k_flexible("costs $18."), "$18.");
  EXPECT_EQ(gsm8k_flexible("none"), "[invalid]");
  EXPECT_TRUE(gsm8k_exact_match("$18.", "She makes 9 * 2 = $18\n#### 18"));
  EXPECT_TRUE(gsm8k_exact_match("1,234", "#### 1234"));
  EXPECT_FALSE(gsm8k_exact_match("[invalid]", "#### 18"));
}


// Python's re.findall on the harness's two patterns, against the hand-written
// matchers (generated by CPython 3.11 from random strings over "0-9.,$- #ab\n").
TEST(Metrics, Gsm8kExtractionMatchesPythonRe) {
  struct Case {
    const char *text, *strict, *flexible;
  } cases[] = {
      {"\n283", "[invalid]", "283"},
      {"#$63#0$-0 87\n3", "[invalid]", "3"},
      {"#### ", "[invalid]", "[invalid]"},
      {"b0$6-0a7 #b7,77 90-b", "[invalid]", "90"},
      {"593", "[invalid]", "593"},
      {"#### a-a699\n#a$\n1#7$-5,b,2 a", "[invalid]", ",2"},
      {"a$,#0", "[invalid]", "0"},
      {",\nb6a-#,-,0bb. ", "[invalid]", "-,0"},
      {"", "[invalid]", "[invalid]"},
      {"#### -6838a6-07", "-6838", "-07"},
      {"7a 7a0$\n.-1946192", "[invalid]", "-1946192"},
      {"#### \n 5a1$", "[invalid]", "1$"},
      {"83$b,b", "[invalid]", "83$"},
      {"#### 7212455b68.a8,..3", "7212455", "8,..3"},
      {"#### #4\nb3.1-2$44.3\n$2\nb", "[invalid]", "$2"},
      {"#### b3 8319002-3167\n-5", "[invalid]", "-5"},
      {"#### 9b8#.36.1009. $.$", "9", "$.$"},
      {"#### 7,282 ", "7,282", "7,282"},
      {"#### .7$91.5.\n97.3b\n277", ".7", "277"},
      {"#### 544.9", "544.9", "544.9"},
      {" -", "[invalid]", "[invalid]"},
      {"88$\n", "[invalid]", "88$"},
      {"#### 1a2838242 7$-$5. ", "1", "-$5."},
      {"95 a6,a0$\n-$.\n2#790-4$8", "[invalid]", "-4$8"},
      {"#### 20,8-b94 8#5 a18a3\n-2,2 ", "20,8", "-2,2"},
      {"#### 5\n \n48 a544 ,9$73692", "5", ",9$73692"},
      {"#### b6.#30,81b 937a887-4", "[invalid]", "-4"},
      {"\n", "[invalid]", "[invalid]"},
      {"4265-6$b", "[invalid]", "-6$"},
      {"#### . b2#8b3\n4-24$", ".", "-24$"},
  };
  for (auto& c : cases) {
    EXPECT_EQ(gsm8k_strict(c.text), c.strict) << c.text;
    EXPECT_EQ(gsm8k_flexible(c.text), c.flexible) << c.text;
  }
  // A data file's megabyte of digits: matched in a loop, no recursion.
  std::string big = "#### " + std::string(1 << 20, '7');
  EXPECT_EQ(gsm8k_strict(big).size(), size_t(1) << 20);
  EXPECT_EQ(gsm8k_flexible(big).size(), size_t(1) << 20);
}

}  // namespace
}  // namespace solar::eval
