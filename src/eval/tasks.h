// solar/eval/tasks.h — the benchmark tasks, as lm-evaluation-harness defines them.
//
// A Task is its documents (the evaluated split, in file order), an optional
// few-shot pool, and how a document becomes requests. Prompts are built the
// harness's way (docs/eval.md gives each task's source file and commit):
//   context = description + shot₁ + "\n\n" + … + shotₖ + "\n\n" + doc_to_text
//   shot    = doc_to_text(shot) + " " + doc_to_target(shot)
// and each choice is scored as the continuation " " + choice. Winogrande is
// the exception (partial scoring): one context per option, the shared text
// after the blank as continuation.
//
// Two harness versions differ in which items --limit keeps and which shots
// each item gets; Harness selects one:
//   Leaderboard  the Open LLM Leaderboard's pinned commit b281b09 (June 2023):
//                documents shuffled with random.Random(42) before --limit; the
//                same generator then samples every item's shots.
//   Current      lm_eval 0.4.x: file order; shots from random.Random(1234).
// Where no few-shot pool file is found, shots are drawn from the evaluated
// split itself, leaving the item out (the harness's rule for tasks without a
// training split).
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace solar::eval {

enum class Harness { Leaderboard, Current };
const char* harness_name(Harness h);  // "b281b09" / "0.4"
Harness parse_harness(const std::string& s);  // throws UsageError listing both

enum class Scoring {
  MultipleChoice,  // acc, acc_norm over " " + choice
  Partial,         // Winogrande: acc over one context per option
  Mc1,             // TruthfulQA: acc, the true answer is choice 0
  Mc2,             // TruthfulQA: probability mass on the true answers
  Generate,        // GSM8K: greedy generation, answer extraction
};

struct Doc {
  int64_t index = 0;                 // line / row in its file (0-based): the doc_id
  std::string text;                  // doc_to_text (unused by Partial)
  std::vector<std::string> choices;  // continuations; Partial: the per-option contexts
  std::string target;                // Partial: text after the blank; Generate: the answer
  int gold = 0;                      // the right choice; Mc2: how many true choices lead
  bool operator==(const Doc& o) const {
    return text == o.text && choices == o.choices && target == o.target && gold == o.gold;
  }
};

struct Task {
  std::string name;         // "arc_easy", "mmlu_anatomy", …
  std::string group;        // "mmlu" for its subjects, else ""
  Scoring scoring = Scoring::MultipleChoice;
  std::string description;  // before the shots (MMLU's header + "\n\n")
  std::vector<Doc> docs;    // the evaluated split, file order
  std::vector<Doc> pool;    // few-shot pool; empty: drawn from docs
  bool first_n = false;     // shots are pool[0..k) in order (MMLU's dev set)
  bool zero_shot_only = false;  // TruthfulQA
  int leaderboard_shots = 0;    // the Open LLM Leaderboard's count (used under h6)
  std::string source, pool_source;  // files
  int version = 0;                  // the harness's task VERSION
};

// Every name --tasks accepts (the MMLU subjects are mmlu_<subject>; "mmlu"
// is all 57, "h6" the leaderboard's six).
std::vector<std::string> known_tasks();
const std::vector<std::string>& mmlu_subjects();
// The Open LLM Leaderboard's six, in its column order: what "h6" expands to.
const std::vector<std::string>& h6_tasks();

// Files looked for, task by task (in `data_dir`; overrides name → path win):
//   arc_easy        arc_easy.jsonl [+ arc_easy_train.jsonl as the shot pool]
//   arc_challenge   arc_challenge.jsonl [+ arc_challenge_train.jsonl]
//   hellaswag       hellaswag.jsonl | hellaswag_val.jsonl [+ hellaswag_train.jsonl]
//   winogrande      winogrande.jsonl [+ winogrande_train.jsonl]
//   mmlu_<s>        mmlu/test/<s>_test.csv | mmlu/val/<s>_val.csv, shots mmlu/dev/<s>_dev.csv
//   truthfulqa_*    truthfulqa.csv | TruthfulQA.csv | truthfulqa_mini.csv (or .jsonl, HF form)
//   gsm8k           gsm8k_test.jsonl | gsm8k.jsonl, shots gsm8k_train.jsonl | ../instruct/gsm8k_train.jsonl
// Formats (detected per line; an unknown one is an error naming file, line
// and the fields expected): llm-foundry {query, choices, gold} and HF
// ai2_arc {question, choices{text,label}, answerKey}; HellaSwag's own
// {activity_label, ctx_a, ctx_b, endings, label}; llm-foundry
// {context_options, continuation, gold} and HF {sentence, option1, option2,
// answer}; MMLU rows question,A,B,C,D,answer; TruthfulQA's CSV (answers split
// on ';', each closed with '.') or HF {question, mc1_targets, mc2_targets};
// GSM8K {question, answer}.
struct TaskFiles {
  std::string data_dir;
  std::map<std::string, std::string> data;     // task → file (--task-data)
  std::map<std::string, std::string> fewshot;  // task → file (--fewshot-data)
};
// Expands `names` (h6, mmlu) and loads each task. Throws solar::Error naming
// an unknown task (and listing the known ones) or a missing/malformed file.
std::vector<Task> load_tasks(const std::vector<std::string>& names, const TaskFiles& files);

// One document's prompt(s), with the harness's few-shot selection.
struct Prompt {
  std::vector<std::string> contexts;       // one per request
  std::vector<std::string> continuations;  // one per request (Generate: none)
  std::vector<int64_t> shots;              // indices of the shots (pool or docs)
};

// Plans a task's run: which documents (after the harness's ordering and
// `limit`, 0 = all) and each one's prompt, drawing shots exactly as `harness`
// does. Throws solar::Error when k exceeds the pool, or k > 0 for a
// zero-shot-only task.
struct Plan {
  std::vector<int64_t> order;   // indices into task.docs, evaluation order
  std::vector<Prompt> prompts;  // parallel to order
};
Plan plan_task(const Task& t, int num_fewshot, int64_t limit, Harness harness);

// Python's str.capitalize and HellaSwag's preprocess (for tests).
std::string py_capitalize(const std::string& s);
std::string hellaswag_preprocess(const std::string& s);

}  // namespace solar::eval
