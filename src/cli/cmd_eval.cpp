// solar eval — the leaderboard benchmarks, exact to lm-evaluation-harness
// (src/eval, docs/eval.md).
#include <cmath>
#include <cstdio>
#include <sstream>

#include "cli/common.h"
#include "core/error.h"
#include "core/fs.h"
#include "eval/eval.h"
#include "kernels/kernels.h"

namespace solar::cli {

static std::map<std::string, std::string> task_files(const std::vector<std::string>& v, const char* flag) {
  std::map<std::string, std::string> m;
  for (auto& s : v) {
    size_t eq = s.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == s.size())
      usage_error(std::string(flag) + ": expected TASK=FILE, got '" + s + "'");
    m[s.substr(0, eq)] = s.substr(eq + 1);
  }
  return m;
}

static int run_eval(const std::vector<std::string>& argv) {
  Args a("eval", "solar eval -m MODEL --tasks LIST [--num-fewshot N] [--limit N] [--data DIR] [-o OUT]");
  auto& model = a.str("-m,--model", "PATH", "HF folder, .gguf file or llama2.c .bin");
  auto& tokenizer = a.str("--tokenizer", "PATH", "tokenizer (default: beside the model)");
  auto& tasks_s = a.str("--tasks", "LIST",
                        "comma-separated: arc_easy, arc_challenge, hellaswag, mmlu, mmlu_<subject>, truthfulqa_mc1, "
                        "truthfulqa_mc2, winogrande, gsm8k, h6 (the leaderboard's six at its shot counts)");
  auto& shots = a.integer("--num-fewshot", -1, "shots per item; default 0 (gsm8k 5; h6: 25/10/5/0/5/5)", -1, 1000);
  auto& limit = a.integer("--limit", "items per task (after the harness's ordering); default all");
  auto& data = a.str("--data", "DIR", "folder of the task files (default ../shared/data/eval)", "../shared/data/eval");
  auto& task_data = a.list("--task-data", "TASK=FILE", "a task's data file in place of the one in --data");
  auto& fewshot_data = a.list("--fewshot-data", "TASK=FILE", "a task's few-shot pool (e.g. ARC's train split)");
  auto& out = a.str("-o,--output", "DIR", "output folder", "eval-out");
  auto& harness = a.str("--harness", "VERSION",
                        "b281b09 (the Open LLM Leaderboard's pinned commit) or 0.4 (lm_eval 0.4.x)", "b281b09");
  auto& max_length = a.integer("--max-length", 0, "context tokens; 0 = the model's max_position_embeddings", 0, 1 << 24);
  auto& add_bos = a.flag("--add-bos", "prepend BOS to every request (the harness does not for causal models)");
  auto& max_gen = a.integer("--max-gen-toks", 256, "gsm8k: tokens generated at most", 1, 1 << 20);
  auto& paper = a.flag("--paper-reference", "put the SOLAR paper's per-stage numbers beside the results");
  auto& force = a.flag("--force", "start over when OUT holds a run with other settings");
  auto& threads = a.threads();
  if (!a.parse(argv)) return a.exit_code();
  if (model.empty()) usage_error("-m/--model is required");
  if (tasks_s.empty()) usage_error("--tasks is required (e.g. --tasks arc_easy,winogrande; h6 for the leaderboard)");
  if (a.given("--limit") && limit <= 0)
    usage_error("--limit: expected a positive number of items, got " + std::to_string(limit));
  kernels::set_num_threads(int(threads));
  eval::EvalConfig cfg;
  cfg.model = model;
  std::stringstream ss(tasks_s);
  for (std::string t; std::getline(ss, t, ',');)
    if (!t.empty()) cfg.tasks.push_back(t);
  cfg.num_fewshot = int(shots);
  cfg.limit = a.given("--limit") ? limit : 0;
  cfg.files.data_dir = data;
  cfg.files.data = task_files(task_data, "--task-data");
  cfg.files.fewshot = task_files(fewshot_data, "--fewshot-data");
  cfg.out = out;
  cfg.harness = eval::parse_harness(harness);
  cfg.max_length = int(max_length);
  cfg.add_bos = add_bos;
  cfg.max_gen_toks = int(max_gen);
  cfg.paper_reference = paper;
  cfg.force = force;
  cfg.git_hash = SOLAR_GIT_COMMIT;
  check_output_apart(out, {model});
  engine::Session lm = load_model(model, tokenizer);
  eval::EvalResults r = eval::run_eval(cfg, lm);
  std::fputs(read_file(out + "/results.md").c_str(), stdout);
  return 0;
}

static Register reg("eval", "benchmarks as lm-evaluation-harness scores them (ARC, MMLU, H6, …)", run_eval);

}  // namespace solar::cli
