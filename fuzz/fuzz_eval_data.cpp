// libFuzzer target: the benchmark files `solar eval` reads (eval/tasks.h) —
// ARC, Winogrande and HellaSwag JSONL, MMLU and TruthfulQA CSV, TruthfulQA's
// HF JSONL, GSM8K — and the answer matchers (eval/metrics.h) on the same
// bytes: documents and prompts, or a solar::Error naming file, line and
// field; never a crash, a hang or unbounded memory. The first byte picks the
// file; the rest is its content.
#include <algorithm>

#include "core/error.h"
#include "eval/metrics.h"
#include "eval/tasks.h"
#include "fuzz.h"

namespace {

struct Slot {
  const char* task;
  const char* file;
};
const Slot kSlots[] = {
    {"arc_easy", "arc_easy.jsonl"},          {"winogrande", "winogrande.jsonl"},
    {"hellaswag", "hellaswag.jsonl"},        {"truthfulqa_mc2", "truthfulqa.csv"},
    {"truthfulqa_mc1", "truthfulqa_mc.jsonl"}, {"mmlu_anatomy", "mmlu/val/anatomy_val.csv"},
    {"gsm8k", "gsm8k_test.jsonl"},
};
constexpr size_t kN = sizeof kSlots / sizeof kSlots[0];

}  // namespace

namespace solar::fuzz {

void write_seeds(const std::string& dir) {
  auto seed = [&](size_t slot, const std::string& body) { write_text(dir + "/" + std::to_string(slot), char(slot) + body); };
  seed(0, R"({"query": "Question: Why?", "choices": ["a", "b"], "gold": 1})" "\n"
          R"({"question": "How?", "choices": {"text": ["x", "y"], "label": ["A", "B"]}, "answerKey": "B"})" "\n");
  seed(1, R"({"sentence": "Tom gave Ann a gift because _ was kind.", "option1": "Tom", "option2": "Ann", "answer": "1"})" "\n"
          R"({"context_options": ["a b", "a c"], "continuation": "d e.", "gold": 0})" "\n");
  seed(2, R"({"activity_label": "Cooking", "ctx_a": "A man [title] cuts.", "ctx_b": "he", "endings": ["x.", "y [z]."], "label": "1"})" "\n");
  seed(3, "Type,Category,Question,Best Answer,Correct Answers,Incorrect Answers,Source\n"
          "A,B,\"Why, \"\"really\"\"?\",Because,Because; It is so.,No; Never,src\n");
  seed(4, R"({"question": "q", "mc1_targets": {"choices": ["a", "b"], "labels": [1, 0]}, "mc2_targets": {"choices": ["a", "b", "c"], "labels": [1, 1, 0]}})" "\n");
  seed(5, "\"What, here?\",1,2,3,4,C\nQ2,a,\"b\nc\",c,d,A\n");
  seed(6, R"({"question": "2+2?", "answer": "It is 4.\n#### 4"})" "\n" R"({"question": "q", "answer": "#### -1,000.5"})" "\n");
  write_text(deep(dir) + "/nested", std::string(1, char(0)) + "{\"query\": " + nested_json(100000) + "}\n");
  write_text(deep(dir) + "/digits", std::string(1, char(6)) + "{\"question\": \"q\", \"answer\": \"#### " +
                                        std::string(100000, '9') + "\"}\n");
}

}  // namespace solar::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace solar;
  static const std::string dir = [] {
    std::string d = fuzz::scratch() + "/eval";
    std::filesystem::create_directories(d + "/mmlu/val");
    std::filesystem::create_directories(d + "/mmlu/dev");
    fuzz::write_text(d + "/mmlu/dev/anatomy_dev.csv", "Q1,a,b,c,d,A\nQ2,a,b,c,d,B\n");
    return d;
  }();
  if (size == 0) return 0;
  const Slot& s = kSlots[data[0] % kN];
  std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  fuzz::write_text(dir + "/" + s.file, text);
  (void)eval::gsm8k_strict(text), (void)eval::gsm8k_flexible(text), (void)eval::gsm8k_pinned_answer(text);
  (void)eval::gsm8k_exact_match(text, text);
  (void)eval::hellaswag_preprocess(text);
  try {
    eval::TaskFiles f;
    f.data_dir = dir;
    auto tasks = eval::load_tasks({s.task}, f);
    for (auto& t : tasks) {
      int pool = int(t.pool.empty() ? int64_t(t.docs.size()) - 1 : int64_t(t.pool.size()));
      int k = t.zero_shot_only ? 0 : std::clamp(pool, 0, 2);
      for (auto h : {eval::Harness::Leaderboard, eval::Harness::Current}) {
        eval::Plan p = eval::plan_task(t, k, 0, h);
        if (p.prompts.size() != p.order.size()) std::abort();
      }
    }
  } catch (const Error&) {
  }
  for (const char* f : {"arc_easy.jsonl", "winogrande.jsonl", "hellaswag.jsonl", "truthfulqa.csv", "truthfulqa_mc.jsonl",
                        "mmlu/val/anatomy_val.csv", "gsm8k_test.jsonl"})
    std::filesystem::remove(dir + "/" + f);  // only this input's file exists next time
  return 0;
}
