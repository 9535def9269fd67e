// solar/pipeline/benchmarks.h — the recipe's models on the leaderboard's
// tasks (`solar eval`, lm-evaluation-harness definitions), as SOLAR's paper
// scores each stage.
//
// At this scale they score at chance (25% on four choices, 50% on
// Winogrande) and the report says so: the table shows that the yardstick runs
// on every stage, not that a stage helped. Zero-shot, the first `eval_limit`
// items of each task (lm_eval 0.4's order); each model's outputs in
// OUT/eval/<stage>/ (results.json, samples_*.jsonl), resumable.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "pipeline/align.h"

namespace solar::pipeline {

struct BenchmarkReport {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
  nlohmann::json results = nlohmann::json::array();
  std::string setup;  // tasks, items, the chance line
};

// models: (stage name, model folder). Empty report (setup says why) when the
// task data is not found in p.eval_data.
BenchmarkReport run_benchmarks(const PipelineConfig& p, const std::vector<std::pair<std::string, std::string>>& models,
                               const StepTimer& timed);

}  // namespace solar::pipeline
