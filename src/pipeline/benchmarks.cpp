#include "pipeline/benchmarks.h"

#include <cmath>
#include <cstdio>
#include <sstream>

#include "core/error.h"
#include "core/fs.h"
#include "core/log.h"
#include "engine/session.h"
#include "eval/eval.h"

namespace solar::pipeline {

using nlohmann::json;

static std::string pct(double v) {
  if (std::isnan(v)) return "—";
  char b[32];
  std::snprintf(b, sizeof b, "%.1f", 100 * v);
  return b;
}

// What a model guessing uniformly scores on a task's headline metric, over
// the first `limit` documents (lm_eval 0.4's order).
static double chance(const eval::Task& t, int64_t limit) {
  const size_t n = limit > 0 ? std::min(t.docs.size(), size_t(limit)) : t.docs.size();
  double s = 0;
  for (size_t i = 0; i < n; ++i) {
    const eval::Doc& d = t.docs[i];
    s += (t.scoring == eval::Scoring::Mc2 ? double(d.gold) : 1.0) / double(d.choices.size());
  }
  return n ? s / double(n) : NAN;
}

BenchmarkReport run_benchmarks(const PipelineConfig& p, const std::vector<std::pair<std::string, std::string>>& models,
                               const StepTimer& timed) {
  BenchmarkReport rep;
  std::vector<std::string> tasks;
  std::stringstream ss(p.eval_tasks);
  for (std::string t; std::getline(ss, t, ',');)
    if (!t.empty()) tasks.push_back(t);
  eval::TaskFiles files;
  files.data_dir = p.eval_data;
  std::vector<eval::Task> loaded;
  try {
    loaded = eval::load_tasks(tasks, files);
  } catch (const Error& e) {
    rep.setup = std::string("Benchmarks skipped: ") + e.what() + " (`--eval-data DIR` names the task files).";
    log_warn("pipeline", rep.setup);
    return rep;
  }
  rep.header = {"stage"};
  std::vector<std::string> names;  // the groups' and tasks' names, in the table's order
  for (auto& t : loaded) {
    std::string n = t.group.empty() ? t.name : t.group;
    if (std::find(names.begin(), names.end(), n) == names.end()) names.push_back(n);
  }
  for (auto& n : names) rep.header.push_back(n);
  rep.header.push_back("mean");
  timed("benchmarks", [&] {
    for (auto& [stage, dir] : models) {
      eval::EvalConfig cfg;
      cfg.model = dir;
      cfg.tasks = tasks;
      cfg.num_fewshot = 0;
      cfg.limit = p.eval_limit;
      cfg.files = files;
      cfg.out = join_path(join_path(p.output_dir, "eval"), stage);
      cfg.harness = eval::Harness::Current;
      cfg.quiet = !p.progress;
      engine::Session s = engine::open_session(dir);
      eval::EvalResults r = eval::run_eval(cfg, s);
      std::vector<std::string> row{stage};
      json j = {{"stage", stage}, {"model", dir}};
      double sum = 0;
      for (auto& n : names) {
        double v = r.headline(n);
        row.push_back(pct(v));
        j[n] = v;
        sum += v;
      }
      row.push_back(pct(sum / double(names.size())));
      rep.rows.push_back(row);
      rep.results.push_back(j);
      log_info("pipeline", "benchmarks: " + stage, j);
    }
  });
  // The chance row: uniform guessing, on the items scored.
  std::vector<std::string> row{"chance (uniform guess)"};
  double sum = 0;
  for (auto& n : names) {
    double s = 0;
    int k = 0;
    for (auto& t : loaded)
      if ((t.group.empty() ? t.name : t.group) == n) s += chance(t, p.eval_limit), ++k;
    row.push_back(pct(s / k));
    sum += s / k;
  }
  row.push_back(pct(sum / double(names.size())));
  rep.rows.push_back(row);
  std::ostringstream o;
  o << "Each stage on " << p.eval_tasks << " with `solar eval` (lm-evaluation-harness 0.4's definitions, zero-shot, "
    << "the first " << p.eval_limit << " items of each task from `" << p.eval_data << "`; headline metric ×100: "
    << "acc_norm for ARC, acc for Winogrande and MMLU, mc2 for TruthfulQA). Models of a few million parameters "
    << "trained for minutes score at chance on these — the row of uniform guessing is beside them — so the "
    << "differences here are noise; the same command reproduces the SOLAR paper's table on a real checkpoint. "
    << "Outputs per stage: `eval/<stage>/`.";
  rep.setup = o.str();
  return rep;
}

}  // namespace solar::pipeline
