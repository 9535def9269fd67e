#include "pipeline/pipeline.h"

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <tuple>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "core/fs.h"
#include "core/json.h"
#include "core/log.h"
#include "core/progress.h"
#include "data/corpus.h"
#include "data/loader.h"
#include "data/shard.h"
#include "formats/load.h"
#include "kernels/kernels.h"
#include "model/checkpoint.h"
#include "pipeline/align.h"
#include "pipeline/benchmarks.h"
#include "report/document.h"
#include "report/plot.h"
#include "tokenizer/spm_train.h"
#include "tokenizer/tokenizer.h"
#include "train/net.h"
#include "train/trainer.h"
#include "upscale/upscale.h"

namespace solar::pipeline {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

double train_flops_per_token(const model::ModelConfig& c, int T) {
  return 6.0 * double(c.num_parameters()) + 12.0 * c.num_hidden_layers * double(T) * c.q_dim();
}

// Every step runs in this process, calling the library: the tiny recipe
// needs no memory returned between stages, and a forked child (without exec)
// could hang in GNU libgomp, which is not fork-safe once the parent has used
// OpenMP (the held-out evaluation and training both do).
static void step(const std::string& name) { log_info("pipeline", "== " + name + " ==", {{"step", name}}); }

// Fails with what is wrong unless `corpus` is a readable text file or a
// folder holding some; returns the files, found as tokenizing finds them.
static std::vector<std::string> corpus_files(const std::string& corpus, bool is_default) {
  namespace fs = std::filesystem;
  if (!path_exists(corpus))
    fail(corpus, "", is_default ? "the default corpus (the Python documentation's sources) is not installed: "
                                  "`apt-get install python3.11-doc`, or pass --corpus FILE_OR_FOLDER"
                                : "no such file or folder (--corpus takes a text file or a folder of them)");
  std::vector<std::string> files = data::corpus_files(corpus);
  uint64_t bytes = 0;
  for (auto& f : files) {
    if (!std::ifstream(f)) fail(f, "", std::string("cannot read the corpus file: ") + std::strerror(errno));
    bytes += fs::file_size(f);
  }
  if (files.empty()) fail(corpus, "", "no text files in this folder (hidden files are skipped)");
  if (bytes == 0) fail(corpus, "", files.size() == 1 ? "the corpus file is empty" : "every corpus file is empty");
  return files;
}

// Seconds since the epoch, as file times are compared.
static double wall_now() {
  return std::chrono::duration<double>(std::filesystem::file_time_type::clock::now().time_since_epoch()).count();
}

// pipeline_state.json: the settings an output folder was made with, and the
// seconds spent in each step over every invocation (for the report's wall time).
struct State {
  std::string path;
  json j;
  double ran = 0;  // seconds of steps run by this invocation
  void save() const { write_file_atomic(path, j.dump(2) + "\n"); }
  void add_seconds(const std::string& key, double s) {
    json& sec = j["seconds"];
    if (!sec.is_object()) sec = json::object();
    sec[key] = sec.value(key, 0.0) + s;
  }
  // Runs f as step `key` and adds its time, also when it fails. Steps run in
  // this process, so Ctrl-C ends it mid-step: "running" records the step and
  // its start, and the next invocation counts it up to the last file the
  // step wrote (see recover()).
  template <class F>
  void timed(const std::string& key, F f) {
    auto t0 = Clock::now();
    j["running"] = {{"step", key}, {"since", wall_now()}};
    save();
    auto add = [&] {
      double s = std::chrono::duration<double>(Clock::now() - t0).count();
      add_seconds(key, s), ran += s;
      j.erase("running");
      save();
    };
    try {
      f();
    } catch (...) {
      add();
      throw;
    }
    add();
  }
};

// A step the last invocation did not finish (killed or interrupted): counts
// its time up to the newest file under `dir`, the last thing it wrote.
static void recover(State& state, const std::string& dir) {
  if (!state.j.contains("running") || !state.j["running"].is_object()) return;
  namespace fs = std::filesystem;
  const std::string key = state.j["running"].value("step", "");
  const double since = state.j["running"].value("since", 0.0);
  double last = since;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    auto t = it->last_write_time(ec);
    if (!ec) last = std::max(last, std::chrono::duration<double>(t.time_since_epoch()).count());
  }
  if (!key.empty()) state.add_seconds(key, last - since);
  state.j.erase("running");
  log_info("pipeline", "resuming: the last invocation stopped during " + key +
                           "; finished steps are kept and training continues from its last checkpoint",
           {{"step", key}});
}

static model::ModelConfig arm_config(const PipelineConfig& p, int layers, int vocab) {
  model::ModelConfig c;
  c.hidden_size = p.hidden;
  c.intermediate_size = p.intermediate;
  c.num_hidden_layers = layers;
  c.num_attention_heads = p.heads;
  c.num_key_value_heads = p.kv_heads;
  c.head_dim = p.hidden / p.heads;
  c.vocab_size = vocab;
  c.max_position_embeddings = p.seq_len * 4;
  c.tie_word_embeddings = true;
  c.rope_theta = 10000;
  c.rms_norm_eps = 1e-5f;
  c.validate("pipeline");
  return c;
}

// Mean next-token loss of a checkpoint on the held-out windows the trainer's
// evals use (`batches` val batches of B rows): train::heldout_loss, the one
// routine the trainer's evals use too.
static double heldout_loss(const std::string& model_dir, const std::string& data_dir, int B, int T, int batches) {
  train::Net net = train::Net::from_checkpoint(formats::load_checkpoint(model_dir));
  net.set_options({kernels::Precision::F32});  // the table is the same on every CPU
  data::Loader loader(data_dir, B, T, 0);
  if (!loader.has_val()) fail(data_dir, "val", "no validation window of " + std::to_string(T + 1) + " tokens");
  return train::heldout_loss(net, loader, B, T, batches);
}

struct Curve {
  std::vector<double> step, loss, vstep, vloss;
  std::vector<std::string> runs;  // "`f32`, threads 2, CPU …" of each start or resume
};
static Curve read_curve(const std::string& metrics) {
  Curve c;
  for (const json& j : read_metrics(metrics)) {
    if (!j.contains("step")) continue;
    if (j.value("event", "") == "start")
      c.runs.push_back("`" + j.value("precision", "?") + "`, threads " + std::to_string(j.value("threads", 0)) +
                       ", CPU " + j.value("cpu", "?"));
    if (j.contains("loss") && j["loss"].is_number()) {
      c.step.push_back(j["step"].get<double>());
      c.loss.push_back(j["loss"].get<double>());
    }
    if (j.contains("val_loss") && j["val_loss"].is_number()) {
      c.vstep.push_back(j["step"].get<double>());
      c.vloss.push_back(j["val_loss"].get<double>());
    }
  }
  return c;
}

static std::string fmt(const char* f, double v) {
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

void run_pipeline(const PipelineConfig& p) {
  auto t_start = Clock::now();
  const std::string precision = train::precision_name(train::parse_precision(p.precision));
  if (p.drop <= 0 || 2 * p.drop >= p.layers)
    fail("--drop", "", "expected 0 < m < n/2 (n = --layers), so that the up-scaled 2(n-m) layers are deeper than n");
  const bool default_corpus = p.corpus == PipelineConfig{}.corpus;
  const auto corpus = std::filesystem::absolute(p.corpus).lexically_normal().string();
  const std::vector<std::string> files = corpus_files(p.corpus, default_corpus);
  const size_t corpus_n = files.size();
  if (p.force) remove_all(p.output_dir);
  make_dirs(p.output_dir);
  const std::string O = p.output_dir;
  auto path = [&](const std::string& s) { return join_path(O, s); };
  kernels::set_num_threads(p.threads);

  // Finished steps are reused only with the settings that made them.
  State state{path("pipeline_state.json"), json::object()};
  if (path_exists(state.path)) state.j = read_json_file(state.path);
  if (!state.j.is_object()) fail(state.path, "", "not a pipeline state (remove it, or pass --force to start over)");
  for (auto [key, flag, now] : {std::tuple{"precision", "--precision", precision}, {"corpus", "--corpus", corpus}})
    if (state.j.contains(key) && state.j[key] != now)
      fail(O, "", std::string("was started with ") + flag + " " + state.j[key].get<std::string>() + "; pass " + flag +
                      " " + state.j[key].get<std::string>() + " to resume it, or --force to start over");
  state.j["precision"] = precision;
  state.j["corpus"] = corpus;
  state.j["invocations"] = state.j.value("invocations", 0) + 1;
  recover(state, O);
  state.save();
  log_info("pipeline",
           "precision " + precision + ", threads " + std::to_string(kernels::num_threads()) + ", CPU " +
               kernels::cpu_summary() + "; output " + O,
           {{"precision", precision}, {"threads", kernels::num_threads()}, {"cpu", kernels::cpu_summary()}});

  const StepTimer timer = [&](const std::string& key, const std::function<void()>& f) { state.timed(key, f); };
  if (p.align) prepare_align_data(p, files, timer);

  // 1. Tokenizer and token shards. A folder's files are documents (as the
  // Python docs' pages are); a single file is split at blank lines.
  std::string tok = path("tokenizer.model");
  if (!path_exists(tok))
    state.timed("tokenizer", [&] {
      step("train a tokenizer");
      tokenizer::TokenizerTrainOptions o;
      o.inputs = {p.corpus};
      o.vocab_size = p.vocab_size;
      o.output = tok;
      o.input_sentence_size = 200000;
      tokenizer::train_tokenizer(o);
    });
  std::string data = path("data");
  if (!path_exists(join_path(data, "meta.json")))
    state.timed("tokenize", [&] {
      step("tokenize the corpus");
      data::CorpusOptions o;
      o.input = p.corpus;
      o.output_dir = data;
      o.tokenizer_path = std::filesystem::absolute(tok).lexically_normal().string();
      o.val_fraction = 0.02;
      o.seq_len = p.seq_len;
      o.doc_per_file = corpus_n > 1;
      o.progress = p.progress;
      data::tokenize_corpus(o, *formats::open_tokenizer(tok));
    });

  // 2. Arms and their compute budgets.
  const int n = p.layers, deep = 2 * (p.layers - p.drop);
  model::ModelConfig base_c = arm_config(p, n, p.vocab_size), deep_c = arm_config(p, deep, p.vocab_size);
  const double tokens_per_step = double(p.batch_size) * p.seq_len;
  const double f_base = train_flops_per_token(base_c, p.seq_len) * tokens_per_step;
  const double f_deep = train_flops_per_token(deep_c, p.seq_len) * tokens_per_step;
  const double budget_A = f_base * double(p.base_steps), budget_B = f_deep * double(p.dus_steps);
  const int64_t longer_steps = std::llround(budget_B / f_base);
  const int64_t scratch_steps = std::llround((budget_A + budget_B) / f_deep);
  write_file_atomic(path("base_config.json"), model::config_to_json(base_c).dump(2));
  write_file_atomic(path("deep_config.json"), model::config_to_json(deep_c).dump(2));
  // The trainer's evals score the same windows as the final table, so each
  // val curve ends where the table's row is (up to the two codes' rounding).
  const int eval_batches = std::max(1, (p.eval_windows + p.batch_size - 1) / p.batch_size);
  const int windows = eval_batches * p.batch_size;

  const train::TrainConfig defaults;
  auto train = [&](const std::string& key, const std::string& name, const std::string& out,
                   const std::string& config_file, const std::string& init_from, int64_t steps, int64_t warmup) {
    if (path_exists(join_path(out, "final/config.json"))) return;
    train::TrainConfig t;
    t.data_dir = data;
    t.output_dir = out;
    t.config_file = config_file;
    t.init_from = init_from;
    t.batch_size = p.batch_size;
    t.seq_len = p.seq_len;
    t.steps = steps;
    t.lr = p.lr;
    t.warmup_steps = warmup;
    t.eval_every = p.eval_every;
    t.eval_batches = eval_batches;
    t.save_every = std::max<int64_t>(steps / 4, 1);
    t.seed = p.seed;
    t.threads = p.threads;
    t.precision = train::parse_precision(precision);
    t.resume = !train::latest_checkpoint(out).empty();
    t.quiet = !p.progress;
    state.timed(key, [&] {
      step(name);
      train::run_training(t);
    });
  };
  const int64_t wA = std::max<int64_t>(p.base_steps / 20, 1), wB = std::max<int64_t>(p.dus_steps / 20, 1);
  train("phase A", "phase A: pretrain the " + std::to_string(n) + "-layer base", path("base"),
        path("base_config.json"), "", p.base_steps, wA);
  std::string base = path("base/final");
  std::string dus = path("dus-init");
  if (!path_exists(join_path(dus, "config.json")))
    state.timed("up-scale", [&] {
      step("depth up-scale " + std::to_string(n) + " -> " + std::to_string(deep) + " layers");
      auto slices = upscale::dus_slices(base, n, p.drop);
      upscale::UpscaleOptions o;
      o.force = true;
      o.recipe_text = upscale::dus_recipe_text(slices);
      upscale::upscale(slices, dus, o, "--drop");
    });
  train("phase B", "phase B: continued pretraining of the up-scaled model", path("dus"), "", dus, p.dus_steps, wB);
  train("base longer", "control: the base trained further (same compute as phase B)", path("base-longer"), "", base,
        longer_steps, wB);
  train("from scratch", "control: " + std::to_string(deep) + " layers from scratch (same compute as A + B)",
        path("deep-scratch"), path("deep_config.json"), "", scratch_steps, std::max<int64_t>(scratch_steps / 20, 1));

  // 3. The second half of the recipe on the DUS model (align.h).
  std::optional<AlignReport> align;
  if (p.align)
    align = run_align(p, path("dus/final"), timer);

  // 4. Held-out comparison (train::heldout_loss in f32), and the report.
  struct Arm {
    std::string name, dir, model, note;
    int layers;
    double flops_before, flops_per_step;
    int64_t steps;
  };
  std::vector<Arm> arms{
      {"base (phase A only)", "base", base, "the starting point", n, 0, f_base, p.base_steps},
      {"up-scaled, before phase B", "", dus, "DUS with no further training", deep, budget_A, f_deep, 0},
      {"DUS + continued pretraining", "dus", path("dus/final"), "the SOLAR recipe", deep, budget_A, f_deep, p.dus_steps},
      {"base trained longer", "base-longer", path("base-longer/final"), "control: same total compute", n, budget_A,
       f_base, longer_steps},
      {std::to_string(deep) + " layers from scratch", "deep-scratch", path("deep-scratch/final"),
       "control: same total compute", deep, 0, f_deep, scratch_steps},
  };
  step("held-out evaluation (" + std::to_string(windows) + " windows of " + std::to_string(p.seq_len) + " tokens)");
  std::vector<std::vector<std::string>> rows;
  json results = json::array();
  std::vector<report::Series> train_series, val_series;
  std::vector<std::string> runs;  // distinct training settings, as the runs recorded them
  double max_gap = 0;             // |last val eval − table| over the arms
  for (auto& a : arms) {
    double loss = heldout_loss(a.model, data, p.batch_size, p.seq_len, eval_batches);
    double flops = a.flops_before + a.flops_per_step * double(a.steps);
    model::ModelConfig mc = a.layers == n ? base_c : deep_c;
    char line[256];
    std::snprintf(line, sizeof line, "  %-30s %2d layers  %8.3g TFLOP  held-out loss %.4f  ppl %.2f", a.name.c_str(),
                  a.layers, flops / 1e12, loss, std::exp(loss));
    log_info("pipeline", line, {{"arm", a.name}, {"heldout_loss", loss}});
    rows.push_back({a.name, std::to_string(a.layers), fmt("%.2fM", mc.num_parameters() / 1e6),
                    std::to_string(a.steps), fmt("%.3g", flops / 1e12), fmt("%.4f", loss), fmt("%.2f", std::exp(loss)),
                    a.note});
    results.push_back({{"arm", a.name}, {"layers", a.layers}, {"params", mc.num_parameters()}, {"steps", a.steps},
                       {"train_tflop", flops / 1e12}, {"heldout_loss", loss}, {"heldout_ppl", std::exp(loss)}});
    if (a.dir.empty()) continue;
    Curve c = read_curve(join_path(path(a.dir), "metrics.jsonl"));
    for (auto& r : c.runs)
      if (std::find(runs.begin(), runs.end(), r) == runs.end()) runs.push_back(r);
    if (!c.vstep.empty() && c.vstep.back() == double(a.steps)) {
      max_gap = std::max(max_gap, std::fabs(c.vloss.back() - loss));
      results.back()["last_val_eval"] = c.vloss.back();
    }
    report::Series tr{a.name, {}, {}}, va{a.name, {}, {}, true};
    double ema = NAN;
    for (size_t i = 0; i < c.step.size(); ++i) {
      ema = std::isnan(ema) ? c.loss[i] : 0.9 * ema + 0.1 * c.loss[i];
      tr.x.push_back((a.flops_before + a.flops_per_step * c.step[i]) / 1e12);
      tr.y.push_back(ema);
    }
    for (size_t i = 0; i < c.vstep.size(); ++i) {
      va.x.push_back((a.flops_before + a.flops_per_step * c.vstep[i]) / 1e12);
      va.y.push_back(c.vloss[i]);
    }
    train_series.push_back(tr);
    val_series.push_back(va);
  }
  // 5. Every stage on the leaderboard's tasks (benchmarks.h).
  std::optional<BenchmarkReport> bench;
  if (!p.eval_tasks.empty()) {
    step("benchmarks: " + p.eval_tasks + " (solar eval)");
    std::vector<std::pair<std::string, std::string>> stages;
    for (auto& a : arms) stages.push_back({a.dir.empty() ? "dus-init" : a.dir, a.model});
    if (align)
      for (const char* s : {"sft", "dpo-a", "dpo-b"}) stages.push_back({s, path(std::string(s) + "/final")});
    if (align)
      for (const char* s : {"merge-avg", "merge-slerp"}) stages.push_back({s, path(s)});
    bench = run_benchmarks(p, stages, timer);
  }

  report::PlotOptions po;
  po.xlabel = "training compute (TFLOP, including phase A for continued arms)";
  po.ylabel = "loss (nats/token)";
  po.title = "Training loss (EMA 0.9) vs compute";
  report::write_svg_line_plot(path("train_loss.svg"), train_series, po);
  po.title = "Validation loss vs compute (trainer's evals)";
  report::write_svg_line_plot(path("val_loss.svg"), val_series, po);

  // Wall time: every step's seconds over all invocations (an interrupted step
  // counts both parts), plus the rest of this invocation (evaluation, report),
  // which replaces the last one's.
  const double this_s = std::chrono::duration<double>(Clock::now() - t_start).count();
  state.j["seconds"]["evaluation and report"] = this_s - state.ran;
  state.save();
  double total_s = 0;
  std::string parts;
  for (auto& [k, v] : state.j["seconds"].items()) total_s += v.get<double>();
  for (const char* k : {"tokenizer", "tokenize", "phase A", "up-scale", "phase B", "base longer", "from scratch",
                        "align data", "sft", "dpo-a", "dpo-b", "merge-avg", "merge-slerp", "benchmarks",
                        "evaluation and report"})
    if (state.j["seconds"].contains(k))
      parts += std::string(parts.empty() ? "" : ", ") + k + " " + Progress::duration(state.j["seconds"][k]);
  const int invocations = state.j["invocations"].get<int>();

  std::vector<std::string> header{"arm", "layers", "params", "steps", "train TFLOP", "held-out loss", "ppl", "note"};
  std::ostringstream setup, measure, hw, wall;
  setup << "Corpus: `" << p.corpus << "` ("
        << (corpus_n == 1 ? std::string("1 file, split at blank lines") : std::to_string(corpus_n) + " files, one document each")
        << "); SentencePiece BPE tokenizer with " << p.vocab_size
        << " pieces trained on it; 2% of documents held out. Base: " << n << " layers, d=" << p.hidden
        << ", ff=" << p.intermediate << ", heads " << p.heads << "/" << p.kv_heads << " (GQA), tied embeddings. "
        << "DUS with m=" << p.drop << ": layers [0," << n - p.drop << ") + [" << p.drop << "," << n << ") = " << deep
        << " layers. Batch " << p.batch_size << " x " << p.seq_len << " tokens, AdamW, peak lr " << p.lr
        << ", cosine schedule with 5% warmup in every phase. Compute = 6 x params + 12 x L x T x d FLOPs per token.";
  measure << "Held-out loss: the final weights scored in f32 by the trainer's eval routine on " << windows
          << " fixed windows of " << p.seq_len << " tokens from the held-out split. The validation curves are the "
          << "trainer's evals during training on the same windows, computed by the same routine in the training "
          << "precision, so each curve's last point is its row's value up to that precision's rounding (largest "
          << "difference here: " << fmt("%.4f", max_gap) << " nats).";
  hw << "Training precision: `" << precision << "` GEMMs (`--precision`; with the default f32 the figures agree "
     << "across CPUs to a few hundredths of a nat, as float sums run in a different order; bf16, which `auto` picks "
     << "on CPUs with AVX512-BF16 or AMX, rounds every GEMM input and ends tenths of a nat away). As recorded by the "
     << "training runs: ";
  for (size_t i = 0; i < runs.size(); i++) hw << (i ? "; " : "") << runs[i];
  if (runs.empty()) hw << "nothing (trained before runs recorded their settings)";
  hw << ". Held-out evaluation: threads " << kernels::num_threads() << ", CPU " << kernels::cpu_summary() << ".";
  wall << "Wall time: " << Progress::duration(total_s);
  if (invocations > 1)
    wall << " over " << invocations << " invocations of `solar pipeline` (this one: " << Progress::duration(this_s)
         << "; a step interrupted and resumed counts both parts; the evaluation is this invocation's)";
  wall << ". By step: " << parts << ".";
  report::Document doc("Tiny Solar: depth up-scaling at small scale");
  doc.paragraph(setup.str());
  doc.table(header, rows);
  doc.paragraph(measure.str());
  doc.image("train loss", "train_loss.svg");
  doc.image("val loss", "val_loss.svg");
  if (align) {
    doc.heading("Alignment: SFT, DPO and merging");
    doc.paragraph(align->setup);
    doc.table(align->header, align->rows);
  }
  if (bench) {
    doc.heading("Benchmarks: the leaderboard's tasks, every stage");
    doc.paragraph(bench->setup);
    if (!bench->rows.empty()) doc.table(bench->header, bench->rows);
  }
  doc.paragraph(hw.str());
  doc.paragraph(wall.str());
  write_file_atomic(path("report.md"), doc.markdown());
  write_file_atomic(path("report.html"), doc.html());
  write_file_atomic(path("results.json"), results.dump(2) + "\n");
  if (align) write_file_atomic(path("align_results.json"), align->results.dump(2) + "\n");
  if (bench && !bench->rows.empty()) write_file_atomic(path("benchmark_results.json"), bench->results.dump(2) + "\n");
  std::string table = report::markdown_table(header, rows);
  if (align) table += "\n" + report::markdown_table(align->header, align->rows);
  if (bench && !bench->rows.empty()) table += "\n" + report::markdown_table(bench->header, bench->rows);
  while (!table.empty() && table.back() == '\n') table.pop_back();
  for (size_t at = 0; at < table.size();) {  // one record per line of the table
    size_t nl = std::min(table.find('\n', at), table.size());
    log_info("pipeline", table.substr(at, nl - at));
    at = nl + 1;
  }
  log_info("pipeline", "report: " + path("report.md") + " (and report.html); wall time " +
                           Progress::duration(total_s) + " in all, " + Progress::duration(this_s) + " this time",
           {{"report", path("report.md")}, {"wall_s", total_s}, {"this_s", this_s}});
}

}  // namespace solar::pipeline
