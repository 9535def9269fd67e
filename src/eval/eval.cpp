#include "eval/eval.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>

#include "core/error.h"
#include "core/fs.h"
#include "core/json.h"
#include "core/log.h"
#include "core/progress.h"
#include "eval/metrics.h"
#include "eval/scorer.h"
#include "report/document.h"

namespace solar::eval {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

// Documents scored as one batch (their requests share passes of the model).
static constexpr size_t kWindowDocs = 32;

// The metric names each harness reports for a task.
static std::vector<std::pair<std::string, std::string>> metric_names(const Task& t, Harness h) {
  bool lb = h == Harness::Leaderboard;
  switch (t.scoring) {
    case Scoring::MultipleChoice:  // 0.4's MMLU YAML lists acc alone
      if (!lb && t.group == "mmlu") return {{"acc", "none"}};
      return {{"acc", "none"}, {"acc_norm", "none"}};
    case Scoring::Partial: return {{"acc", "none"}};
    case Scoring::Mc1: return {{lb ? "mc1" : "acc", "none"}};
    case Scoring::Mc2: return {{lb ? "mc2" : "acc", "none"}};
    case Scoring::Generate:
      if (lb) return {{"acc", "none"}};
      return {{"exact_match", "strict-match"}, {"exact_match", "flexible-extract"}};
  }
  return {};
}

static std::string key(const std::string& m, const std::string& f) { return m + "," + f; }

static std::vector<std::string> stop_sequences(Harness h) {
  if (h == Harness::Leaderboard) return {":", "Question:", "Question"};
  return {"Question:", "</s>", "<|im_end|>"};
}

// Generates for one document: its sample record, metrics included.
static json generate_doc(const Doc& d, const Prompt& p, Harness h, Scorer& sc, int max_gen) {
  json rec = {{"doc_id", d.index}, {"shots", p.shots}};
  json m = json::object();
  int64_t before = sc.truncated();
  std::string gen = sc.greedy_until(p.contexts[0], stop_sequences(h), max_gen);
  rec["truncated"] = sc.truncated() > before;
  rec["context"] = p.contexts[0];
  rec["generation"] = gen;
  rec["target"] = d.target;
  if (h == Harness::Leaderboard) {
    std::string a = gsm8k_pinned_answer(gen);
    rec["extracted"] = {{"answer", a}};
    m[key("acc", "none")] = a == gsm8k_pinned_answer(d.target) ? 1.0 : 0.0;
  } else {
    std::string s = gsm8k_strict(gen), f = gsm8k_flexible(gen);
    rec["extracted"] = {{"strict-match", s}, {"flexible-extract", f}};
    m[key("exact_match", "strict-match")] = gsm8k_exact_match(s, d.target) ? 1.0 : 0.0;
    m[key("exact_match", "flexible-extract")] = gsm8k_exact_match(f, d.target) ? 1.0 : 0.0;
  }
  rec["metrics"] = m;
  return rec;
}

// One document's record from its requests' log-likelihoods (r[0..choices)).
static json score_doc(const Task& t, const Doc& d, const Prompt& p, Harness h, const LogLikelihood* r) {
  json rec = {{"doc_id", d.index}, {"shots", p.shots}};
  json m = json::object();
  auto names = metric_names(t, h);
  std::vector<double> lls;
  json greedy = json::array();
  bool truncated = false;
  for (size_t i = 0; i < p.contexts.size(); ++i) {
    lls.push_back(r[i].logprob);
    greedy.push_back(r[i].greedy);
    truncated |= r[i].truncated;
  }
  if (t.scoring == Scoring::Partial) {
    rec["contexts"] = p.contexts;
    rec["continuation"] = p.continuations[0];
  } else {
    rec["context"] = p.contexts[0];
    rec["choices"] = d.choices;
  }
  rec["loglikelihoods"] = lls;
  rec["is_greedy"] = greedy;
  rec["gold"] = d.gold;
  rec["truncated"] = truncated;
  int pred = argmax(lls);
  rec["prediction"] = pred;
  switch (t.scoring) {
    case Scoring::MultipleChoice: {
      int pn = argmax_norm(lls, d.choices);
      rec["prediction_norm"] = pn;
      m[key("acc", "none")] = pred == d.gold ? 1.0 : 0.0;
      m[key("acc_norm", "none")] = pn == d.gold ? 1.0 : 0.0;
      break;
    }
    case Scoring::Partial:
    case Scoring::Mc1: m[key(names[0].first, "none")] = pred == d.gold ? 1.0 : 0.0; break;
    case Scoring::Mc2: m[key(names[0].first, "none")] = mc2(lls, d.gold); break;
    default: break;
  }
  rec["metrics"] = m;
  return rec;
}

// Reads the complete records of an earlier run (a torn last line, from an
// interrupted write, is dropped and the file rewritten without it).
static std::map<int64_t, json> read_samples(const std::string& path) {
  std::map<int64_t, json> out;
  if (!path_exists(path)) return out;
  std::string text = read_file(path, uint64_t(4) << 30);
  size_t end = text.rfind('\n');
  std::string whole = end == std::string::npos ? "" : text.substr(0, end + 1);
  if (whole.size() != text.size()) write_file_atomic(path, whole);
  size_t pos = 0;
  int64_t no = 0;
  while (pos < whole.size()) {
    size_t e = whole.find('\n', pos);
    ++no;
    json r = parse_json(std::string_view(whole).substr(pos, e - pos), path + ":" + std::to_string(no));
    pos = e + 1;
    if (!r.is_object() || !r.contains("doc_id") || !r["doc_id"].is_number_integer() || !r.contains("metrics") ||
        !r["metrics"].is_object())
      fail(path + ":" + std::to_string(no), "doc_id/metrics", "not a sample record of solar eval (remove the file to start over)");
    int64_t id = r["doc_id"].get<int64_t>();  // before the move: `=` evaluates its right side first
    out[id] = std::move(r);
  }
  return out;
}

static std::string fmt(double v, int prec = 4) {
  if (std::isnan(v)) return "N/A";
  char b[32];
  std::snprintf(b, sizeof b, "%.*f", prec, v);
  return b;
}

static json num(double v) { return std::isnan(v) ? json("N/A") : json(v); }

double EvalResults::headline(const std::string& task) const {
  for (const auto* list : {&groups, &tasks})
    for (auto& r : *list)
      if (r.name == task) return r.metrics[r.headline].value;
  return std::nan("");
}

// The SOLAR paper's Table 2 (arXiv:2312.15166), for reference beside a run.
struct PaperRow {
  const char* model;
  double h6, arc, hellaswag, mmlu, truthfulqa, winogrande, gsm8k;
};
static const PaperRow kPaper[] = {
    {"SOLAR 10.7B (base, paper)", 66.04, 61.95, 84.60, 65.48, 45.04, 83.66, 55.50},
    {"SOLAR 10.7B-Instruct (paper)", 74.20, 71.08, 88.16, 66.21, 71.43, 83.58, 64.75},
};

static void write_reports(const EvalConfig& cfg, const EvalResults& res, const json& results_json) {
  write_file_atomic(cfg.out + "/results.json", results_json.dump(2) + "\n");
  report::Document doc("solar eval: " + cfg.model);
  doc.paragraph("Harness definitions of lm-evaluation-harness **" + std::string(harness_name(cfg.harness)) +
                "** (docs/eval.md). " + std::to_string(res.items) + " items in " + Progress::duration(res.seconds) +
                "; the KV cache reused " + std::to_string(res.tokens_reused) + " of " +
                std::to_string(res.tokens_reused + res.tokens_run) + " positions.");
  std::vector<std::vector<std::string>> rows;
  auto add = [&](const TaskResult& t) {
    for (auto& m : t.metrics)
      rows.push_back({t.name, std::to_string(t.num_fewshot), m.filter, m.name, fmt(m.value), "±", fmt(m.stderr_),
                      std::to_string(t.n_scored) + (t.truncated ? " (" + std::to_string(t.truncated) + " truncated)" : "")});
  };
  for (auto& g : res.groups) add(g);
  for (auto& t : res.tasks) add(t);
  doc.table({"Task", "n-shot", "Filter", "Metric", "Value", "", "Stderr", "Items"}, rows);
  bool any_h6 = false;
  for (auto& t : h6_tasks()) any_h6 |= !std::isnan(res.headline(t));
  if (any_h6 || cfg.paper_reference) {
    doc.heading("Leaderboard view (×100)");
    auto cell = [&](const std::string& t) {
      double v = res.headline(t);
      return std::isnan(v) ? std::string("—") : fmt(100 * v, 2);
    };
    std::vector<std::vector<std::string>> lb = {{"this run", res.h6 >= 0 ? fmt(res.h6, 2) : "—", cell("arc_challenge"),
                                                 cell("hellaswag"), cell("mmlu"), cell("truthfulqa_mc2"),
                                                 cell("winogrande"), cell("gsm8k")}};
    if (cfg.paper_reference)
      for (auto& p : kPaper)
        lb.push_back({p.model, fmt(p.h6, 2), fmt(p.arc, 2), fmt(p.hellaswag, 2), fmt(p.mmlu, 2), fmt(p.truthfulqa, 2),
                      fmt(p.winogrande, 2), fmt(p.gsm8k, 2)});
    doc.table({"Model", "H6", "ARC-c", "HellaSwag", "MMLU", "TruthfulQA", "Winogrande", "GSM8K"}, lb);
    doc.paragraph("Headline metrics: ARC and HellaSwag acc_norm, MMLU acc (mean of subjects), TruthfulQA mc2, "
                  "Winogrande acc, GSM8K exact match. A model of a few million parameters scores at chance here "
                  "(25% on four choices, 50% on Winogrande): these benchmarks measure models of billions.");
  }
  write_file_atomic(cfg.out + "/results.md", doc.markdown());
  write_file_atomic(cfg.out + "/results.html", doc.html());
}

EvalResults run_eval(const EvalConfig& cfg, const engine::Session& session) {
  if (cfg.limit < 0) throw UsageError("--limit: expected a positive number of items (0 = all), got " + std::to_string(cfg.limit));
  if (cfg.num_fewshot < -1) throw UsageError("--num-fewshot: expected >= 0, got " + std::to_string(cfg.num_fewshot));
  std::vector<Task> tasks = load_tasks(cfg.tasks, cfg.files);
  if (tasks.empty()) throw UsageError("--tasks: no task given");
  // Shots: --num-fewshot; else the leaderboard's counts for h6's six, and
  // otherwise the harness's defaults (gsm8k.yaml's 5, zero for the rest).
  const bool h6 = std::find(cfg.tasks.begin(), cfg.tasks.end(), "h6") != cfg.tasks.end();
  auto shots_of = [&](const Task& t) {
    if (cfg.num_fewshot >= 0) return cfg.num_fewshot;
    const std::string& base = t.group.empty() ? t.name : t.group;
    if (h6 && std::find(h6_tasks().begin(), h6_tasks().end(), base) != h6_tasks().end()) return t.leaderboard_shots;
    return t.scoring == Scoring::Generate ? 5 : 0;
  };

  Scorer sc(session, cfg.max_length, cfg.add_bos);
  // Plans first: every bad setting is reported before any scoring.
  std::vector<Plan> plans;
  for (auto& t : tasks) {
    int k = shots_of(t);
    plans.push_back(plan_task(t, k, cfg.limit, cfg.harness));
    if (k > 0 && !plans.back().prompts.empty()) {
      size_t n = sc.encode(plan_task(t, 1, 1, cfg.harness).prompts[0].contexts[0]).size();
      if (int64_t(n) >= sc.max_length())
        throw UsageError(t.name + ": the model's context (" + std::to_string(sc.max_length()) +
                         " tokens) cannot hold even one shot and the question (" + std::to_string(n) +
                         " tokens): use --num-fewshot 0");
    }
  }

  make_dirs(cfg.out);
  json settings = {{"model", cfg.model},       {"tasks", cfg.tasks},           {"num_fewshot", cfg.num_fewshot},
                   {"limit", cfg.limit},       {"harness", harness_name(cfg.harness)},
                   {"max_length", sc.max_length()}, {"add_bos", cfg.add_bos}, {"max_gen_toks", cfg.max_gen_toks}};
  json files = json::object();
  for (auto& t : tasks) files[t.name] = {t.source, t.pool_source};
  settings["files"] = files;
  std::string run_path = cfg.out + "/eval_run.json";
  if (path_exists(run_path)) {
    json old = read_json_file(run_path);
    if (old != settings) {
      if (!cfg.force)
        throw UsageError("-o " + cfg.out + ": holds an eval run with other settings (" + run_path +
                         "); use another -o, or --force to start over");
      for (auto& t : tasks) std::remove((cfg.out + "/samples_" + t.name + ".jsonl").c_str());
    }
  }
  write_file_atomic(run_path, settings.dump(2) + "\n");

  EvalResults res;
  auto t0 = Clock::now();
  std::map<std::string, std::vector<double>> group_items;  // mmlu (0.4): every item
  std::map<std::string, std::vector<const TaskResult*>> group_tasks;
  for (size_t ti = 0; ti < tasks.size(); ++ti) {
    const Task& t = tasks[ti];
    const Plan& plan = plans[ti];
    std::string spath = cfg.out + "/samples_" + t.name + ".jsonl";
    std::map<int64_t, json> done = read_samples(spath);
    std::FILE* f = std::fopen(spath.c_str(), "ab");
    if (!f) fail(spath, "", "cannot open for writing");
    auto ts = Clock::now();
    // Documents not yet scored, in evaluation order, a window at a time: one
    // window's requests are one batch for the scorer.
    std::vector<size_t> pending;
    for (size_t i = 0; i < plan.order.size(); ++i)
      if (!done.count(t.docs[size_t(plan.order[i])].index)) pending.push_back(i);
    const int64_t resumed = int64_t(plan.order.size() - pending.size());
    Progress bar(t.name, int64_t(pending.size()), "item", stderr);
    int64_t n_new = 0;
    auto emit = [&](json rec) {
      std::string line = rec.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
      if (std::fwrite(line.data(), 1, line.size(), f) != line.size() || std::fflush(f) != 0) {
        std::fclose(f);
        fail(spath, "", "write failed (disk full?)");
      }
      int64_t id = rec["doc_id"].get<int64_t>();
      done[id] = std::move(rec);
      ++n_new;
    };
    const size_t window = t.scoring == Scoring::Generate ? 1 : kWindowDocs;
    for (size_t w = 0; w < pending.size(); w += window) {
      size_t end = std::min(pending.size(), w + window);
      if (t.scoring == Scoring::Generate) {
        size_t i = pending[w];
        emit(generate_doc(t.docs[size_t(plan.order[i])], plan.prompts[i], cfg.harness, sc, cfg.max_gen_toks));
        if (!cfg.quiet) bar.update(n_new, double(n_new));
        continue;
      }
      std::vector<Scorer::Request> batch;
      for (size_t j = w; j < end; ++j) {
        const Prompt& pr = plan.prompts[pending[j]];
        for (size_t c = 0; c < pr.contexts.size(); ++c) batch.push_back({pr.contexts[c], pr.continuations[c]});
      }
      std::vector<LogLikelihood> lls = sc.loglikelihood(batch);
      size_t at = 0;
      for (size_t j = w; j < end; ++j) {
        size_t i = pending[j];
        emit(score_doc(t, t.docs[size_t(plan.order[i])], plan.prompts[i], cfg.harness, lls.data() + at));
        at += plan.prompts[i].contexts.size();
      }
      if (!cfg.quiet) bar.update(n_new, double(n_new));
    }
    std::vector<json> recs;
    for (int64_t di : plan.order) recs.push_back(done.at(t.docs[size_t(di)].index));
    std::fclose(f);
    if (!cfg.quiet) bar.finish(double(n_new), resumed ? std::to_string(resumed) + " resumed" : "");
    TaskResult r;
    r.name = t.name;
    r.group = t.group;
    r.num_fewshot = shots_of(t);
    r.n_total = int64_t(t.docs.size());
    r.n_scored = int64_t(recs.size());
    for (auto& rec : recs) r.truncated += rec.value("truncated", false) ? 1 : 0;
    r.headline = t.scoring == Scoring::MultipleChoice && t.group.empty() ? 1 : 0;  // acc_norm
    r.seconds = std::chrono::duration<double>(Clock::now() - ts).count();
    for (auto& [m, fl] : metric_names(t, cfg.harness)) {
      std::vector<double> v;
      for (auto& rec : recs) {
        auto it = rec["metrics"].find(key(m, fl));
        if (it == rec["metrics"].end() || !it->is_number())
          fail(spath, "metrics." + key(m, fl), "missing in a resumed record (remove the file to start over)");
        v.push_back(it->get<double>());
      }
      r.metrics.push_back({m, fl, mean(v), mean_stderr(v)});
      if (!t.group.empty() && m == "acc") group_items[t.group].insert(group_items[t.group].end(), v.begin(), v.end());
    }
    res.items += n_new;
    json fields = {{"task", r.name}, {"items", r.n_scored}, {"scored_now", n_new}, {"seconds", r.seconds},
                   {"num_fewshot", r.num_fewshot}, {"truncated", r.truncated}};
    std::string line = r.name + ":";
    for (auto& m : r.metrics) {
      fields[m.name + "," + m.filter] = num(m.value);
      line += " " + m.name + (m.filter == "none" ? "" : "(" + m.filter + ")") + " " + fmt(m.value) + " ± " + fmt(m.stderr_);
    }
    log_info("eval", line, fields);
    res.tasks.push_back(std::move(r));
  }
  for (auto& r : res.tasks)
    if (!r.group.empty()) group_tasks[r.group].push_back(&r);
  for (auto& [g, members] : group_tasks) {
    TaskResult gr;
    gr.name = g;
    gr.num_fewshot = members[0]->num_fewshot;
    double se2 = 0, sum = 0;
    for (auto* m : members) {
      gr.n_total += m->n_total;
      gr.n_scored += m->n_scored;
      gr.truncated += m->truncated;
      sum += m->metrics[0].value;
      se2 += std::isnan(m->metrics[0].stderr_) ? 0 : m->metrics[0].stderr_ * m->metrics[0].stderr_;
    }
    if (cfg.harness == Harness::Leaderboard) {
      // The leaderboard's MMLU: the plain mean of the subjects' accuracies.
      double k = double(members.size());
      gr.metrics.push_back({"acc", "none", sum / k, std::sqrt(se2) / k});
    } else {
      // lm_eval 0.4's group: weighted by subject size, i.e. the mean over items.
      gr.metrics.push_back({"acc", "none", mean(group_items[g]), mean_stderr(group_items[g])});
    }
    res.groups.push_back(std::move(gr));
  }
  res.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  res.tokens_run = sc.tokens_run();
  res.tokens_reused = sc.tokens_reused();
  {
    double s = 0;
    int n = 0;
    for (auto& t : h6_tasks()) {
      double v = res.headline(t);
      if (!std::isnan(v)) s += v, ++n;
    }
    if (n == 6) res.h6 = 100 * s / 6;
  }

  // results.json in lm_eval's shape.
  json results = json::object(), configs = json::object(), versions = json::object(), nshot = json::object(),
       nsamples = json::object(), groups = json::object(), subtasks = json::object();
  auto put = [&](json& dst, const TaskResult& r) {
    json o = {{"alias", r.name}};
    for (auto& m : r.metrics) {
      o[m.name + "," + m.filter] = num(m.value);
      o[m.name + "_stderr," + m.filter] = num(m.stderr_);
    }
    dst[r.name] = o;
  };
  for (auto& g : res.groups) {
    put(results, g);
    put(groups, g);
    subtasks[g.name] = json::array();
  }
  for (size_t i = 0; i < tasks.size(); ++i) {
    const Task& t = tasks[i];
    const TaskResult& r = res.tasks[i];
    put(results, r);
    if (!t.group.empty()) subtasks[t.group].push_back(t.name);
    versions[t.name] = t.version;
    nshot[t.name] = r.num_fewshot;
    nsamples[t.name] = {{"original", r.n_total}, {"effective", r.n_scored}};
    json mlist = json::array();
    for (auto& [m, fl] : metric_names(t, cfg.harness)) mlist.push_back({{"metric", m}, {"filter", fl}});
    configs[t.name] = {{"task", t.name},
                       {"dataset_path", t.source},
                       {"fewshot_path", t.pool_source.empty() ? json(nullptr) : json(t.pool_source)},
                       {"fewshot_from_eval_split", t.pool.empty()},
                       {"num_fewshot", r.num_fewshot},
                       {"description", t.description},
                       {"target_delimiter", " "},
                       {"fewshot_delimiter", "\n\n"},
                       {"metric_list", mlist},
                       {"harness", harness_name(cfg.harness)}};
    if (t.scoring == Scoring::Generate)
      configs[t.name]["generation_kwargs"] = {{"until", stop_sequences(cfg.harness)}, {"do_sample", false},
                                              {"max_gen_toks", cfg.max_gen_toks}};
  }
  json truncated = json::object();
  for (auto& r : res.tasks) truncated[r.name] = r.truncated;
  std::time_t now = std::time(nullptr);
  char date[32];
  std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  json out = {{"results", results},
              {"groups", groups},
              {"group_subtasks", subtasks},
              {"configs", configs},
              {"versions", versions},
              {"n-shot", nshot},
              {"n-samples", nsamples},
              {"config", {{"model", "solar"}, {"model_args", "pretrained=" + cfg.model}, {"limit", cfg.limit},
                          {"max_length", sc.max_length()}, {"add_bos", cfg.add_bos},
                          {"harness", harness_name(cfg.harness)}}},
              {"git_hash", cfg.git_hash},
              {"date", date},
              {"solar", {{"seconds", res.seconds}, {"items_scored", res.items},
                         {"items_per_s", res.seconds > 0 ? res.items / res.seconds : 0.0},
                         {"tokens_run", res.tokens_run}, {"tokens_reused", res.tokens_reused},
                         {"truncated", truncated}}}};
  if (res.h6 >= 0) out["h6"] = res.h6;
  write_reports(cfg, res, out);
  log_info("eval", "done", {{"items", res.items}, {"seconds", res.seconds}, {"out", cfg.out}});
  return res;
}

}  // namespace solar::eval
