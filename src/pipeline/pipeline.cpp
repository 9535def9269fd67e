#include "pipeline/pipeline.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <tuple>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "core/fs.h"
#include "core/progress.h"
#include "data/loader.h"
#include "data/shard.h"
#include "engine/engine.h"
#include "formats/load.h"
#include "kernels/kernels.h"
#include "model/checkpoint.h"
#include "report/document.h"
#include "report/plot.h"
#include "train/net.h"
#include "train/trainer.h"

namespace solar::pipeline {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

double train_flops_per_token(const ModelConfig& c, int T) {
  return 6.0 * double(c.num_parameters()) + 12.0 * c.num_hidden_layers * double(T) * c.q_dim();
}

// Runs `solar <args…>` as a child; throws if it fails. Ctrl-C stops the child
// (same process group) while this process lives on to record the time spent.
static void run_step(const std::string& exe, const std::string& name, const std::vector<std::string>& args) {
  std::fprintf(stderr, "\n== pipeline: %s ==\n$ solar", name.c_str());
  for (auto& a : args) std::fprintf(stderr, " %s", a.c_str());
  std::fprintf(stderr, "\n");
  std::fflush(stderr);
  struct sigaction ignore {}, old {};
  ignore.sa_handler = SIG_IGN;
  sigaction(SIGINT, &ignore, &old);
  pid_t pid = fork();
  if (pid == 0) {
    signal(SIGINT, SIG_DFL);
    std::vector<char*> argv{const_cast<char*>(exe.c_str())};
    for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(exe.c_str(), argv.data());
    _exit(127);
  }
  int st = 0;
  while (pid > 0 && waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  sigaction(SIGINT, &old, nullptr);
  if (pid < 0) fail("pipeline", name, "cannot start a process");
  if (WIFSIGNALED(st))
    fail("pipeline", name,
         std::string("interrupted (") + strsignal(WTERMSIG(st)) +
             "); the same command resumes it: finished steps are kept and training continues from its last "
             "checkpoint");
  std::string cmd = args[0] == "tokenizer" ? "tokenizer " + args[1] : args[0];
  if (WEXITSTATUS(st) != 0)
    fail("pipeline", name, "`solar " + cmd + "` failed with exit code " + std::to_string(WEXITSTATUS(st)) +
                               " (its error is above)");
}

// Fails with what is wrong unless `corpus` is a readable text file or a
// folder holding some; returns the files, found as `solar tokenize` finds them.
static std::vector<std::string> corpus_files(const std::string& corpus, bool is_default) {
  namespace fs = std::filesystem;
  if (!path_exists(corpus))
    fail(corpus, "", is_default ? "the default corpus (the Python documentation's sources) is not installed: "
                                  "`apt-get install python3.11-doc`, or pass --corpus FILE_OR_FOLDER"
                                : "no such file or folder (--corpus takes a text file or a folder of them)");
  std::vector<std::string> files;
  if (!is_dir(corpus)) files.push_back(corpus);
  else
    for (auto& e : fs::recursive_directory_iterator(corpus, fs::directory_options::follow_directory_symlink))
      if (e.is_regular_file() && e.path().filename().string()[0] != '.') files.push_back(e.path().string());
  uint64_t bytes = 0;
  for (auto& f : files) {
    if (!std::ifstream(f)) fail(f, "", std::string("cannot read the corpus file: ") + std::strerror(errno));
    bytes += fs::file_size(f);
  }
  if (files.empty()) fail(corpus, "", "no text files in this folder (hidden files are skipped)");
  if (bytes == 0) fail(corpus, "", files.size() == 1 ? "the corpus file is empty" : "every corpus file is empty");
  return files;
}

// pipeline_state.json: the settings an output folder was made with, and the
// seconds spent in each step over every invocation (for the report's wall time).
struct State {
  std::string path;
  json j;
  double ran = 0;  // seconds of steps run by this invocation
  void save() const { write_file_atomic(path, j.dump(2) + "\n"); }
  // Runs f as step `key` and adds its time, also when it fails or is interrupted.
  template <class F>
  void timed(const std::string& key, F f) {
    auto t0 = Clock::now();
    auto add = [&] {
      json& sec = j["seconds"];
      if (!sec.is_object()) sec = json::object();
      double s = std::chrono::duration<double>(Clock::now() - t0).count();
      sec[key] = sec.value(key, 0.0) + s, ran += s;
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

static ModelConfig arm_config(const PipelineConfig& p, int layers, int vocab) {
  ModelConfig c;
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
  train::Net net = train::Net::from_checkpoint(load_checkpoint(model_dir));
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
  std::ifstream in(metrics);
  std::string line;
  while (std::getline(in, line)) {
    json j = json::parse(line, nullptr, false);
    if (!j.is_object() || !j.contains("step")) continue;
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

void run_pipeline(const PipelineConfig& p, const std::string& exe) {
  auto t_start = Clock::now();
  const std::string precision = train::precision_name(train::parse_precision(p.precision));
  if (p.drop <= 0 || 2 * p.drop >= p.layers)
    fail("--drop", "", "expected 0 < m < n/2 (n = --layers), so that the up-scaled 2(n-m) layers are deeper than n");
  const bool default_corpus = p.corpus == PipelineConfig{}.corpus;
  const auto corpus = std::filesystem::absolute(p.corpus).lexically_normal().string();
  const size_t corpus_n = corpus_files(p.corpus, default_corpus).size();
  if (p.force) remove_all(p.output_dir);
  make_dirs(p.output_dir);
  const std::string O = p.output_dir;
  auto path = [&](const std::string& s) { return join_path(O, s); };
  kernels::set_num_threads(p.threads);
  const std::string threads = std::to_string(p.threads);

  // Finished steps are reused only with the settings that made them.
  State state{path("pipeline_state.json"), json::object()};
  if (path_exists(state.path)) state.j = json::parse(read_file(state.path), nullptr, false);
  if (!state.j.is_object()) fail(state.path, "", "not a pipeline state (remove it, or pass --force to start over)");
  for (auto [key, flag, now] : {std::tuple{"precision", "--precision", precision}, {"corpus", "--corpus", corpus}})
    if (state.j.contains(key) && state.j[key] != now)
      fail(O, "", std::string("was started with ") + flag + " " + state.j[key].get<std::string>() + "; pass " + flag +
                      " " + state.j[key].get<std::string>() + " to resume it, or --force to start over");
  state.j["precision"] = precision;
  state.j["corpus"] = corpus;
  state.j["invocations"] = state.j.value("invocations", 0) + 1;
  state.save();
  std::fprintf(stderr, "solar pipeline: precision %s, threads %d, CPU %s; output %s\n", precision.c_str(),
               kernels::num_threads(), kernels::cpu_summary().c_str(), O.c_str());

  // 1. Tokenizer and token shards. A folder's files are documents (as the
  // Python docs' pages are); a single file is split at blank lines.
  std::string tok = path("tokenizer.model");
  if (!path_exists(tok))
    state.timed("tokenizer", [&] {
      run_step(exe, "train a tokenizer", {"tokenizer", "train", "--input", p.corpus, "--vocab-size",
                                          std::to_string(p.vocab_size), "-o", tok, "--input-sentence-size", "200000"});
    });
  std::string data = path("data");
  if (!path_exists(join_path(data, "meta.json")))
    state.timed("tokenize", [&] {
      std::vector<std::string> a{"tokenize", "-m", tok, "-i", p.corpus, "-o", data, "--val-fraction", "0.02",
                                 "--seq-len", std::to_string(p.seq_len), "--force"};
      if (corpus_n > 1) a.push_back("--doc-per-file");
      run_step(exe, "tokenize the corpus", a);
    });

  // 2. Arms and their compute budgets.
  const int n = p.layers, deep = 2 * (p.layers - p.drop);
  ModelConfig base_c = arm_config(p, n, p.vocab_size), deep_c = arm_config(p, deep, p.vocab_size);
  const double tokens_per_step = double(p.batch_size) * p.seq_len;
  const double f_base = train_flops_per_token(base_c, p.seq_len) * tokens_per_step;
  const double f_deep = train_flops_per_token(deep_c, p.seq_len) * tokens_per_step;
  const double budget_A = f_base * double(p.base_steps), budget_B = f_deep * double(p.dus_steps);
  const int64_t longer_steps = std::llround(budget_B / f_base);
  const int64_t scratch_steps = std::llround((budget_A + budget_B) / f_deep);
  write_file_atomic(path("base_config.json"), config_to_json(base_c).dump(2));
  write_file_atomic(path("deep_config.json"), config_to_json(deep_c).dump(2));
  // The trainer's evals score the same windows as the final table, so each
  // val curve ends where the table's row is (up to the two codes' rounding).
  const int eval_batches = std::max(1, (p.eval_windows + p.batch_size - 1) / p.batch_size);
  const int windows = eval_batches * p.batch_size;

  auto train = [&](const std::string& key, const std::string& name, const std::string& out,
                   std::vector<std::string> model_args, int64_t steps, int64_t warmup) {
    if (path_exists(join_path(out, "final/config.json"))) return;
    std::vector<std::string> a{"train", "--data", data, "-o", out, "--batch-size", std::to_string(p.batch_size),
                               "--seq-len", std::to_string(p.seq_len), "--steps", std::to_string(steps), "--lr",
                               fmt("%g", p.lr), "--warmup-steps", std::to_string(warmup), "--eval-every",
                               std::to_string(p.eval_every), "--eval-batches", std::to_string(eval_batches),
                               "--save-every", std::to_string(std::max<int64_t>(steps / 4, 1)), "--seed",
                               std::to_string(p.seed), "-t", threads, "--precision", precision};
    a.insert(a.end(), model_args.begin(), model_args.end());
    if (!train::latest_checkpoint(out).empty()) a.push_back("--resume");
    state.timed(key, [&] { run_step(exe, name, a); });
  };
  const int64_t wA = std::max<int64_t>(p.base_steps / 20, 1), wB = std::max<int64_t>(p.dus_steps / 20, 1);
  train("phase A", "phase A: pretrain the " + std::to_string(n) + "-layer base", path("base"),
        {"--config", path("base_config.json")}, p.base_steps, wA);
  std::string base = path("base/final");
  std::string dus = path("dus-init");
  if (!path_exists(join_path(dus, "config.json")))
    state.timed("up-scale", [&] {
      run_step(exe, "depth up-scale " + std::to_string(n) + " -> " + std::to_string(deep) + " layers",
               {"upscale", "-m", base, "--drop", std::to_string(p.drop), "-o", dus, "--force"});
    });
  train("phase B", "phase B: continued pretraining of the up-scaled model", path("dus"), {"--init-from", dus},
        p.dus_steps, wB);
  train("base longer", "control: the base trained further (same compute as phase B)", path("base-longer"),
        {"--init-from", base}, longer_steps, wB);
  train("from scratch", "control: " + std::to_string(deep) + " layers from scratch (same compute as A + B)",
        path("deep-scratch"), {"--config", path("deep_config.json")}, scratch_steps,
        std::max<int64_t>(scratch_steps / 20, 1));

  // 3. Held-out comparison with the inference engine, and the report.
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
  std::fprintf(stderr, "\n== pipeline: held-out evaluation (%d windows of %d tokens) ==\n", windows, p.seq_len);
  std::vector<std::vector<std::string>> rows;
  json results = json::array();
  std::vector<report::Series> train_series, val_series;
  std::vector<std::string> runs;  // distinct training settings, as the runs recorded them
  double max_gap = 0;             // |last val eval − table| over the arms
  for (auto& a : arms) {
    double loss = heldout_loss(a.model, data, p.batch_size, p.seq_len, eval_batches);
    double flops = a.flops_before + a.flops_per_step * double(a.steps);
    ModelConfig mc = a.layers == n ? base_c : deep_c;
    std::fprintf(stderr, "  %-30s %2d layers  %8.3g TFLOP  held-out loss %.4f  ppl %.2f\n", a.name.c_str(), a.layers,
                 flops / 1e12, loss, std::exp(loss));
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
  measure << "Held-out loss: the final weights scored by the inference engine (f32) on " << windows
          << " fixed windows of " << p.seq_len << " tokens from the held-out split. The validation curves are the "
          << "trainer's evals during training on the same windows, computed by the training code in the training "
          << "precision, so each curve's last point is its row's value up to the two codes' rounding (largest "
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
  doc.paragraph(hw.str());
  doc.paragraph(wall.str());
  write_file_atomic(path("report.md"), doc.markdown());
  write_file_atomic(path("report.html"), doc.html());
  write_file_atomic(path("results.json"), results.dump(2) + "\n");
  std::fprintf(stderr, "\n%s\nreport: %s (and report.html); wall time %s in all, %s this time\n",
               report::markdown_table(header, rows).c_str(), path("report.md").c_str(),
               Progress::duration(total_s).c_str(), Progress::duration(this_s).c_str());
}

}  // namespace solar::pipeline
