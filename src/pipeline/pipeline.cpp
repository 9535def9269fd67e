#include "pipeline/pipeline.h"

#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "core/fs.h"
#include "data/shard.h"
#include "kernels/kernels.h"
#include "model/checkpoint.h"
#include "model/model.h"
#include "report/plot.h"
#include "train/trainer.h"

namespace solar::pipeline {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

double train_flops_per_token(const ModelConfig& c, int T) {
  return 6.0 * double(c.num_parameters()) + 12.0 * c.num_hidden_layers * double(T) * c.q_dim();
}

// Runs `solar <args…>` as a child; throws if it fails.
static void run_step(const std::string& exe, const std::string& name, const std::vector<std::string>& args) {
  std::fprintf(stderr, "\n== pipeline: %s ==\n$ solar", name.c_str());
  for (auto& a : args) std::fprintf(stderr, " %s", a.c_str());
  std::fprintf(stderr, "\n");
  std::fflush(stderr);
  pid_t pid = fork();
  if (pid < 0) fail("pipeline", name, "cannot start a process");
  if (pid == 0) {
    std::vector<char*> argv{const_cast<char*>(exe.c_str())};
    for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(exe.c_str(), argv.data());
    _exit(127);
  }
  int st = 0;
  waitpid(pid, &st, 0);
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
    fail("pipeline", name, "step failed (see the messages above); rerun `solar pipeline` to resume");
}

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

// Mean next-token loss of a checkpoint on fixed held-out windows, computed
// with the inference engine (independent of the training code).
static double heldout_loss(const std::string& model_dir, const std::string& data_dir, int T, int windows) {
  Checkpoint ck = load_checkpoint(model_dir);
  Model m(ck);
  auto shards = data::list_shards(data_dir, "val");
  if (shards.empty()) fail(data_dir, "val", "no validation shard");
  auto sh = data::Shard::open(shards[0]);
  uint64_t n = std::min<uint64_t>(uint64_t(windows), (sh.size() - 1) / uint64_t(T));
  if (n == 0) fail(shards[0], "", "validation split shorter than one window");
  const int V = ck.config.vocab_size;
  std::vector<int32_t> toks(size_t(T) + 1);
  std::vector<float> logits(size_t(T) * V);
  double total = 0;
  Context ctx(m, T + 1);  // one KV cache, reset per window
  std::vector<int> in(static_cast<size_t>(T));
  for (uint64_t w = 0; w < n; ++w) {
    sh.read(w * uint64_t(T), size_t(T) + 1, toks.data());
    std::copy(toks.begin(), toks.end() - 1, in.begin());
    ctx.truncate(0);
    ctx.eval(in.data(), T, nullptr, logits.data());
    for (int t = 0; t < T; ++t) {
      const float* l = &logits[size_t(t) * V];
      double mx = l[0], s = 0;
      for (int v = 1; v < V; ++v) mx = std::max(mx, double(l[v]));
      for (int v = 0; v < V; ++v) s += std::exp(double(l[v]) - mx);
      total += std::log(s) + mx - l[toks[size_t(t) + 1]];
    }
  }
  return total / double(n * uint64_t(T));
}

struct Curve {
  std::vector<double> step, loss, vstep, vloss;
};
static Curve read_curve(const std::string& metrics) {
  Curve c;
  std::ifstream in(metrics);
  std::string line;
  while (std::getline(in, line)) {
    json j = json::parse(line, nullptr, false);
    if (!j.is_object() || !j.contains("step")) continue;
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
  if (!is_dir(p.corpus))
    fail(p.corpus, "", "corpus folder not found (install it with `apt-get install python3.11-doc`, or pass --corpus DIR)");
  if (p.drop <= 0 || p.drop >= p.layers) fail("--drop", "", "expected 0 < m < n (n = --layers)");
  if (p.force) remove_all(p.output_dir);
  make_dirs(p.output_dir);
  const std::string O = p.output_dir;
  auto path = [&](const std::string& s) { return join_path(O, s); };
  const std::string threads = std::to_string(p.threads);

  // 1. Tokenizer and token shards.
  std::string tok = path("tokenizer.model");
  if (!path_exists(tok))
    run_step(exe, "train a tokenizer", {"tokenizer", "train", "--input", p.corpus, "--vocab-size",
                                        std::to_string(p.vocab_size), "-o", tok, "--input-sentence-size", "200000"});
  std::string data = path("data");
  if (!path_exists(join_path(data, "meta.json")))
    run_step(exe, "tokenize the corpus", {"tokenize", "-m", tok, "-i", p.corpus, "-o", data, "--val-fraction", "0.02",
                                          "--doc-per-file", "--seq-len", std::to_string(p.seq_len), "--force"});

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

  auto train = [&](const std::string& name, const std::string& out, std::vector<std::string> model_args, int64_t steps,
                   int64_t warmup) {
    if (path_exists(join_path(out, "final/config.json"))) return;
    std::vector<std::string> a{"train", "--data", data, "-o", out, "--batch-size", std::to_string(p.batch_size),
                               "--seq-len", std::to_string(p.seq_len), "--steps", std::to_string(steps), "--lr",
                               fmt("%g", p.lr), "--warmup-steps", std::to_string(warmup), "--eval-every",
                               std::to_string(p.eval_every), "--eval-batches", "8", "--save-every",
                               std::to_string(std::max<int64_t>(steps / 4, 1)), "--seed", std::to_string(p.seed),
                               "-t", threads};
    a.insert(a.end(), model_args.begin(), model_args.end());
    if (!train::latest_checkpoint(out).empty()) a.push_back("--resume");
    run_step(exe, name, a);
  };
  const int64_t wA = std::max<int64_t>(p.base_steps / 20, 1), wB = std::max<int64_t>(p.dus_steps / 20, 1);
  train("phase A: pretrain the " + std::to_string(n) + "-layer base", path("base"),
        {"--config", path("base_config.json")}, p.base_steps, wA);
  std::string base = path("base/final");
  std::string dus = path("dus-init");
  if (!path_exists(join_path(dus, "config.json")))
    run_step(exe, "depth up-scale " + std::to_string(n) + " -> " + std::to_string(deep) + " layers",
             {"upscale", "-m", base, "--drop", std::to_string(p.drop), "-o", dus, "--force"});
  train("phase B: continued pretraining of the up-scaled model", path("dus"), {"--init-from", dus}, p.dus_steps, wB);
  train("control: the base trained further (same compute as phase B)", path("base-longer"), {"--init-from", base},
        longer_steps, wB);
  train("control: " + std::to_string(deep) + " layers from scratch (same compute as A + B)", path("deep-scratch"),
        {"--config", path("deep_config.json")}, scratch_steps, std::max<int64_t>(scratch_steps / 20, 1));

  // 3. Held-out comparison with the inference engine, and the report.
  kernels::set_num_threads(p.threads);
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
  std::fprintf(stderr, "\n== pipeline: held-out evaluation (%d windows of %d tokens) ==\n", p.eval_windows, p.seq_len);
  std::vector<std::vector<std::string>> rows;
  json results = json::array();
  std::vector<report::Series> train_series, val_series;
  for (auto& a : arms) {
    double loss = heldout_loss(a.model, data, p.seq_len, p.eval_windows);
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
  po.title = "Validation loss vs compute";
  report::write_svg_line_plot(path("val_loss.svg"), val_series, po);

  double minutes = std::chrono::duration<double>(Clock::now() - t_start).count() / 60;
  std::vector<std::string> header{"arm", "layers", "params", "steps", "train TFLOP", "held-out loss", "ppl", "note"};
  std::ostringstream setup;
  setup << "Corpus: `" << p.corpus << "`; SentencePiece BPE tokenizer with " << p.vocab_size
        << " pieces trained on it; 2% of documents held out. Base: " << n << " layers, d=" << p.hidden
        << ", ff=" << p.intermediate << ", heads " << p.heads << "/" << p.kv_heads << " (GQA), tied embeddings. "
        << "DUS with m=" << p.drop << ": layers [0," << n - p.drop << ") + [" << p.drop << "," << n << ") = " << deep
        << " layers. Batch " << p.batch_size << " x " << p.seq_len << " tokens, AdamW, peak lr " << p.lr
        << ", cosine schedule with 5% warmup in every phase. Compute = 6 x params + 12 x L x T x d FLOPs per token. "
        << "Held-out loss: " << p.eval_windows << " fixed windows of " << p.seq_len
        << " tokens from the held-out split, scored by the inference engine.";
  std::ostringstream md;
  md << "# Tiny Solar: depth up-scaling at small scale\n\n" << setup.str() << "\n\n"
     << report::markdown_table(header, rows) << "\n![train loss](train_loss.svg)\n\n![val loss](val_loss.svg)\n\n"
     << "Wall time: " << fmt("%.1f", minutes) << " min (steps skipped on resume are not counted).\n";
  write_file_atomic(path("report.md"), md.str());
  std::ostringstream html;
  html << "<!doctype html><html><head><meta charset=\"utf-8\"><title>Tiny Solar report</title><style>"
       << "body{font-family:sans-serif;max-width:960px;margin:2em auto;padding:0 1em}table{border-collapse:collapse}"
       << "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}td:first-child,th:first-child{text-align:left}"
       << "</style></head><body><h1>Tiny Solar: depth up-scaling at small scale</h1><p>"
       << report::xml_escape(setup.str()) << "</p>" << report::html_table(header, rows)
       << "<p><img src=\"train_loss.svg\"></p><p><img src=\"val_loss.svg\"></p><p>Wall time: " << fmt("%.1f", minutes)
       << " min.</p></body></html>\n";
  write_file_atomic(path("report.html"), html.str());
  write_file_atomic(path("results.json"), results.dump(2) + "\n");
  std::fprintf(stderr, "\n%s\nreport: %s (and report.html), %.1f min\n",
               report::markdown_table(header, rows).c_str(), path("report.md").c_str(), minutes);
}

}  // namespace solar::pipeline
