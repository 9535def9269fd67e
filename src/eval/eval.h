// solar/eval/eval.h — `solar eval`: benchmark a model the way
// lm-evaluation-harness does, item for item (tasks.h, scorer.h, metrics.h).
//
// Writes into `out`:
//   results.json          lm-eval's shape: results[task]["acc,none"],
//                         ["acc_stderr,none"], configs, versions, n-shot,
//                         n-samples, config, git_hash, date; plus "solar"
//                         (timing, KV reuse, truncation counts) and "h6"
//   results.md / .html    the table (with the SOLAR paper's numbers beside when
//                         paper_reference)
//   samples_<task>.jsonl  every scored item: doc_id, context(s), choices,
//                         log-likelihoods, is_greedy, prediction, gold, metrics
//   eval_run.json         the settings; a rerun with the same settings resumes
//                         (items already in samples_*.jsonl are not scored
//                         again), different settings are refused unless force
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "engine/session.h"
#include "eval/tasks.h"

namespace solar::eval {

struct EvalConfig {
  std::string model;      // for results.json (the session is opened by the caller)
  std::vector<std::string> tasks;
  int num_fewshot = -1;   // -1: 0, except gsm8k 5 and the six of h6 at the leaderboard's counts
  int64_t limit = 0;      // 0: every item; else the first `limit` (after the harness's ordering)
  TaskFiles files;
  std::string out;
  Harness harness = Harness::Leaderboard;
  int max_length = 0;     // 0: the model's max_position_embeddings
  bool add_bos = false;
  int max_gen_toks = 256;
  bool paper_reference = false;
  bool force = false;     // replace a run in `out` made with other settings
  bool quiet = false;     // no progress bars (tests, the pipeline's own)
  std::string git_hash;
};

struct MetricValue {
  std::string name;    // "acc", "acc_norm", "exact_match", "mc2"
  std::string filter;  // "none", "strict-match", "flexible-extract"
  double value = 0, stderr_ = 0;
};

struct TaskResult {
  std::string name, group;
  int num_fewshot = 0;
  int64_t n_total = 0, n_scored = 0, truncated = 0;
  std::vector<MetricValue> metrics;
  size_t headline = 0;  // the metric the leaderboard reports: acc_norm for ARC/HellaSwag, else the first
  double seconds = 0;
};

struct EvalResults {
  std::vector<TaskResult> tasks;
  std::vector<TaskResult> groups;  // mmlu: the average over its subjects
  double h6 = -1;                  // the leaderboard average (×100) when all six ran
  double seconds = 0;
  int64_t items = 0, tokens_run = 0, tokens_reused = 0;
  // The headline metric of a task or group (TaskResult::headline); NaN if
  // it did not run.
  double headline(const std::string& task) const;
};

EvalResults run_eval(const EvalConfig& cfg, const engine::Session& session);

}  // namespace solar::eval
