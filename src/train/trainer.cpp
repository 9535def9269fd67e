#include "train/trainer.h"

#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "core/error.h"
#include "core/fs.h"
#include "core/progress.h"
#include "data/loader.h"
#include "formats/hf.h"
#include "formats/load.h"
#include "model/checkpoint.h"
#include "report/plot.h"
#include "train/net.h"
#include "train/optim.h"
#include "train/schedule.h"

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace solar::train {

namespace {

// Checks every number before anything is loaded: a typo fails in milliseconds.
void validate(const TrainConfig& c) {
  if (c.data_dir.empty()) fail("--data", "", "expected the folder written by `solar tokenize`");
  if (c.output_dir.empty()) fail("--output", "", "expected a folder for checkpoints and metrics");
  int sources = !c.preset.empty() + !c.config_file.empty() + !c.init_from.empty();
  if (sources != 1)
    fail("--preset/--config/--init-from", "", "expected exactly one model source, got " + std::to_string(sources));
  auto range = [](const char* flag, double v, double lo, double hi) {
    if (!(v >= lo && v <= hi))
      fail(flag, "", "expected a value in [" + json(lo).dump() + ", " + json(hi).dump() + "], got " + json(v).dump());
  };
  range("--batch-size", c.batch_size, 1, 1 << 20);
  range("--seq-len", c.seq_len, 1, 1 << 24);
  range("--grad-accum", c.grad_accum, 1, 1 << 20);
  range("--steps", double(c.steps), 1, 1e12);
  // Adam's step is ~lr per weight whatever the gradient: lr > 1e30 can only be a typo.
  if (!(c.lr > 0 && c.lr <= 1e30f)) fail("--lr", "", "expected 0 < lr <= 1e30, got " + json(c.lr).dump());
  range("--min-lr-ratio", c.min_lr_ratio, 0, 1);
  range("--weight-decay", c.weight_decay, 0, 10);
  range("--grad-clip", c.grad_clip, 0, 1e30);
  range("--warmup-steps", double(c.warmup_steps), 0, double(c.steps));
  range("--eval-every", double(c.eval_every), 0, 1e12);
  range("--eval-batches", double(c.eval_batches), 1, 1e9);
  range("--save-every", double(c.save_every), 0, 1e12);
  range("--save-total-limit", double(c.save_total_limit), 0, 1e9);
  range("--threads", c.threads, 0, 4096);
}

int64_t checkpoint_step(const std::string& name) {
  const std::string p = "checkpoint-";
  if (name.size() <= p.size() || name.compare(0, p.size(), p) != 0) return -1;
  int64_t s = 0;
  for (size_t i = p.size(); i < name.size(); i++) {
    if (!isdigit(static_cast<unsigned char>(name[i]))) return -1;
    s = s * 10 + (name[i] - '0');
  }
  return s;
}

std::vector<std::pair<int64_t, std::string>> checkpoints(const std::string& dir) {
  std::vector<std::pair<int64_t, std::string>> out;
  std::error_code ec;
  for (auto& e : fs::directory_iterator(dir, ec)) {
    int64_t s = checkpoint_step(e.path().filename().string());
    if (s >= 0 && path_exists(join_path(e.path().string(), "trainer_state.json"))) out.emplace_back(s, e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

ModelConfig model_config(const TrainConfig& c, const data::ShardInfo& data, Checkpoint* init) {
  ModelConfig mc;
  std::string source;
  if (!c.preset.empty()) {
    mc = preset_config(c.preset);
    mc.vocab_size = c.vocab_size ? c.vocab_size : int(data.vocab_size);
    source = "--preset " + c.preset;
  } else if (!c.config_file.empty()) {
    auto j = json::parse(read_file(c.config_file), nullptr, false);
    if (j.is_discarded()) fail(c.config_file, "", "expected a JSON config (HF config.json)");
    mc = config_from_json(j, c.config_file);
    if (c.vocab_size) mc.vocab_size = c.vocab_size;
    source = c.config_file;
  } else {
    *init = load_checkpoint(c.init_from);
    mc = init->config;
    source = c.init_from;
  }
  if (c.init_from.empty()) mc.bos_token_id = int(data.bos), mc.eos_token_id = int(data.eos);
  mc.validate(source);
  if (mc.vocab_size != int(data.vocab_size))
    fail(source, "vocab_size",
         "expected the data's vocab_size " + std::to_string(data.vocab_size) + " (tokenizer of " + c.data_dir +
             "), got " + std::to_string(mc.vocab_size));
  if (c.seq_len > mc.max_position_embeddings)
    fail("--seq-len", "", "expected <= max_position_embeddings " + std::to_string(mc.max_position_embeddings) +
                              " of " + source + ", got " + std::to_string(c.seq_len));
  return mc;
}

std::string describe(const Schedule& s) {
  char b[160];
  std::snprintf(b, sizeof b, "%s over %lld steps (warm-up %lld, peak lr %g, min ratio %g)", s.kind.c_str(),
                (long long)s.total, (long long)s.warmup, s.lr, s.min_lr_ratio);
  return b;
}

struct Run {
  const TrainConfig& c;
  data::Loader& loader;
  Net& model;
  AdamW& opt;
  HfWriteOptions hf;
  json train_hist = json::array(), val_hist = json::array();

  void save(int64_t step) {
    std::string name = "checkpoint-" + std::to_string(step);
    std::string tmp = join_path(c.output_dir, "." + name + ".tmp-" + std::to_string(getpid()));
    remove_all(tmp);
    try {
      write_hf(tmp, model.config(), model.views(), hf);
      opt.save(join_path(tmp, "optimizer.bin"));
      json st = {{"global_step", step},
                 {"seed", c.seed},
                 {"batch_size", c.batch_size},
                 {"seq_len", c.seq_len},
                 {"grad_accum", c.grad_accum},
                 {"micro_batches_seen", step * c.grad_accum},  // the data position: the loader needs nothing else
                 {"tokens_seen", step * c.grad_accum * c.batch_size * c.seq_len},
                 {"max_steps", c.steps},
                 {"lr_schedule", c.lr_schedule},
                 {"warmup_steps", c.warmup_steps},
                 {"learning_rate", c.lr},
                 {"min_lr_ratio", c.min_lr_ratio},
                 {"precision", precision_name(c.precision)},
                 {"cpu", kernels::cpu_summary()},
                 {"log_history", train_hist},
                 {"eval_history", val_hist}};
      write_file_atomic(join_path(tmp, "trainer_state.json"), st.dump(1));
      commit_dir(tmp, join_path(c.output_dir, name), true);
    } catch (...) {
      remove_all(tmp);
      throw;
    }
    if (c.save_total_limit > 0) {
      auto all = checkpoints(c.output_dir);
      for (size_t i = 0; i + size_t(c.save_total_limit) < all.size(); i++) remove_all(all[i].second);
    }
  }

  double evaluate() {
    std::vector<int32_t> buf(size_t(c.batch_size) * (c.seq_len + 1));
    double sum = 0;
    for (int64_t i = 0; i < c.eval_batches; i++) {
      loader.val_batch(uint64_t(i), buf.data());
      sum += model.loss(buf.data(), c.batch_size, c.seq_len);
    }
    return sum / double(c.eval_batches);
  }

  void plot() {
    report::Series tr{"train", {}, {}}, va{"val", {}, {}, true};
    for (auto& h : train_hist) tr.x.push_back(h["step"].get<double>()), tr.y.push_back(h["loss"].get<double>());
    for (auto& h : val_hist) va.x.push_back(h["step"].get<double>()), va.y.push_back(h["val_loss"].get<double>());
    report::write_svg_line_plot(join_path(c.output_dir, "loss.svg"), {tr, va},
                                {"Loss — " + base_name(fs::absolute(c.output_dir).lexically_normal().string()),
                                 "step", "cross-entropy (nats/token)"});
  }
};

}  // namespace

kernels::Precision parse_precision(const std::string& s, const std::string& flag) {
  if (s == "f32") return kernels::Precision::F32;
  if (s == "bf16") return kernels::Precision::BF16;
  if (s != "auto") fail(flag, "", "expected bf16, f32 or auto, got '" + s + "'");
  return kernels::fastest_precision();
}

const char* precision_name(kernels::Precision p) { return p == kernels::Precision::F32 ? "f32" : "bf16"; }

std::string latest_checkpoint(const std::string& dir) {
  auto all = checkpoints(dir);
  return all.empty() ? "" : all.back().second;
}

void run_training(const TrainConfig& c) {
  validate(c);
  Schedule sched{c.lr_schedule, c.warmup_steps, c.steps, c.lr, c.min_lr_ratio};
  sched.validate("--lr-schedule");
  DType save_dt = parse_dtype(c.save_dtype == "f32" ? "F32" : c.save_dtype == "bf16" ? "BF16"
                              : c.save_dtype == "f16" ? "F16" : c.save_dtype, "--save-dtype");
  if (!is_float(save_dt)) fail("--save-dtype", "", "expected f32, bf16 or f16, got " + c.save_dtype);
  data::Loader loader(c.data_dir, c.batch_size, c.seq_len, c.seed);
  Checkpoint init;
  ModelConfig mc = model_config(c, loader.info(), &init);
  bool eval_on = loader.has_val();
  if (!eval_on)
    std::fprintf(stderr, "solar train: warning: %s has no validation window of %d tokens; no evals\n",
                 c.data_dir.c_str(), c.seq_len + 1);
  if (c.threads > 0) omp_set_num_threads(c.threads);

  make_dirs(c.output_dir);
  std::string ck = latest_checkpoint(c.output_dir);
  if (!c.resume && !ck.empty())
    fail(c.output_dir, "", "already holds " + base_name(ck) + " (pass --resume to continue it, or another -o/--output)");
  if (c.resume && ck.empty())
    std::fprintf(stderr, "solar train: --resume: no checkpoint in %s yet, starting from step 0\n", c.output_dir.c_str());
  json st;
  if (!ck.empty()) {
    st = json::parse(read_file(join_path(ck, "trainer_state.json")), nullptr, false);
    if (!st.is_object() || !st.contains("global_step") || !st["global_step"].is_number_integer())
      fail(join_path(ck, "trainer_state.json"), "global_step", "expected a trainer state written by solar train");
    int64_t at = st["global_step"].get<int64_t>();
    // Like a finished HF Trainer run: nothing to train, and the outputs stay as they are.
    if (at >= c.steps && path_exists(join_path(c.output_dir, "final/config.json"))) {
      std::fprintf(stderr, "solar train: %s is already finished at step %lld (--steps %lld); nothing to do\n",
                   c.output_dir.c_str(), (long long)at, (long long)c.steps);
      return;
    }
  }
  // Leftovers of a killed run are never complete checkpoints.
  std::error_code ec;
  for (auto& e : fs::directory_iterator(c.output_dir, ec)) {
    std::string n = e.path().filename().string();
    if (n.rfind(".checkpoint-", 0) == 0 && n.find(".tmp-") != std::string::npos) remove_all(e.path().string());
  }

  Net model = !ck.empty()              ? Net::from_checkpoint(read_hf(ck))
                : !c.init_from.empty() ? Net::from_checkpoint(init)
                                       : Net::init(mc, c.seed);
  init = Checkpoint{};  // the copy lives in the model now; drop the mapping
  model.set_options({c.precision});
  AdamW opt(model, {c.lr, 0.9f, 0.95f, 1e-8f, c.weight_decay, c.grad_clip});

  Run run{c, loader, model, opt, {}};
  run.hf.dtype = save_dt;
  run.hf.force = true;
  auto meta = json::parse(path_exists(join_path(c.data_dir, "meta.json")) ? read_file(join_path(c.data_dir, "meta.json"))
                                                                          : "{}", nullptr, false);
  if (meta.is_object() && meta.value("tokenizer", "") != "" && path_exists(meta["tokenizer"].get<std::string>()))
    run.hf.tokenizer_path = meta["tokenizer"];

  int64_t step = 0;
  std::string metrics_path = join_path(c.output_dir, "metrics.jsonl");
  if (!ck.empty()) {
    opt.load(join_path(ck, "optimizer.bin"));
    step = st["global_step"].get<int64_t>();
    run.train_hist = st.value("log_history", json::array());
    run.val_hist = st.value("eval_history", json::array());
    if (st.value("seed", c.seed) != c.seed || st.value("batch_size", c.batch_size) != c.batch_size ||
        st.value("seq_len", c.seq_len) != c.seq_len || st.value("grad_accum", c.grad_accum) != c.grad_accum)
      std::fprintf(stderr, "solar train: warning: seed/batch/seq-len/grad-accum differ from %s; not an exact resume\n",
                   ck.c_str());
    // Lines logged after the checkpoint by the run that died are replayed, so drop them.
    std::string kept;
    for (auto& j : read_metrics(metrics_path))
      if (j.value("step", int64_t(0)) <= step) kept += j.dump() + "\n";
    write_file_atomic(metrics_path, kept);
    std::fprintf(stderr, "solar train: resuming from %s (step %lld)\n", ck.c_str(), (long long)step);
    if (st.contains("max_steps")) {
      Schedule old{st.value("lr_schedule", sched.kind), st.value("warmup_steps", sched.warmup),
                   st.value("max_steps", sched.total), st.value("learning_rate", sched.lr),
                   st.value("min_lr_ratio", sched.min_lr_ratio)};
      if (describe(old) != describe(sched))
        std::fprintf(stderr,
                     "solar train: the learning-rate schedule changes at step %lld: %s was planned as %s, now %s; "
                     "the next step's lr is %.3g (the old plan: %.3g) and follows the new schedule from there\n",
                     (long long)step, base_name(ck).c_str(), describe(old).c_str(), describe(sched).c_str(),
                     sched.at(step), old.at(step));
    }
  }
  if (step >= c.steps)
    std::fprintf(stderr, "solar train: %s is at step %lld of %lld: nothing to train; writing %s\n",
                 base_name(ck).c_str(), (long long)step, (long long)c.steps, join_path(c.output_dir, "final").c_str());
  MetricsLog metrics(metrics_path, !ck.empty());
  const std::string cpu = kernels::cpu_summary();
  const int threads = omp_get_max_threads();
  std::fprintf(stderr, "solar train: precision %s, threads %d, CPU %s\n", precision_name(c.precision), threads,
               cpu.c_str());
  metrics.write({{"event", "start"},
                 {"step", step},
                 {"max_steps", c.steps},
                 {"precision", precision_name(c.precision)},
                 {"threads", threads},
                 {"cpu", cpu},
                 {"resumed_from", ck.empty() ? json(nullptr) : json(base_name(ck))}});

  const int B = c.batch_size, T = c.seq_len;
  std::vector<int32_t> buf(size_t(B) * (T + 1));
  Progress bar("train", c.steps, "tok", stderr, 5);
  int64_t start = step;
  auto eval_now = [&](int64_t s) {
    double vl = run.evaluate();
    json e = {{"step", s}, {"val_loss", vl}, {"val_ppl", std::exp(vl)}};
    metrics.write(e);
    run.val_hist.push_back(e);
    if (!c.quiet) std::fprintf(stderr, "%sstep %lld: val loss %.4f, ppl %.2f\n", bar.tty() ? "\r\033[K" : "",
                               (long long)s, vl, std::exp(vl));
    run.plot();
  };

  for (; step < c.steps; step++) {
    model.zero_grad();
    double loss = 0;
    for (int g = 0; g < c.grad_accum; g++) {
      loader.batch(uint64_t(step) * c.grad_accum + g, buf.data());
      loss += model.forward_backward(buf.data(), B, T, 1.0f / float(c.grad_accum));
    }
    loss /= c.grad_accum;
    int64_t done = step + 1;
    if (!std::isfinite(loss)) {
      metrics.write({{"step", done}, {"loss", nullptr}});
      std::string last = latest_checkpoint(c.output_dir);
      fail("step " + std::to_string(done) + ": loss is " + (std::isnan(loss) ? "NaN" : "Inf") +
           " (training diverged; lower --lr or raise --warmup-steps; last good checkpoint: " +
           (last.empty() ? std::string("none") : last) + ")");
    }
    // Checked before the update, so the weights in memory stay the last good ones too.
    double gnorm = grad_norm(model.params());
    if (!std::isfinite(gnorm)) {
      metrics.write({{"step", done}, {"loss", loss}, {"grad_norm", nullptr}});
      std::string last = latest_checkpoint(c.output_dir);
      fail("step " + std::to_string(done) + ": gradient norm is " + (std::isnan(gnorm) ? "NaN" : "Inf") +
           " (training diverged; lower --lr or raise --warmup-steps; last good checkpoint: " +
           (last.empty() ? std::string("none") : last) + ")");
    }
    float lr = sched.at(step);
    float norm = opt.step(lr);
    double tokens = double(done - start) * c.grad_accum * B * T;
    json m = {{"step", done},      {"loss", loss}, {"lr", lr}, {"grad_norm", norm},
              {"tokens", done * c.grad_accum * B * T}, {"elapsed_s", bar.elapsed_s()}};
    metrics.write(m);
    run.train_hist.push_back({{"step", done}, {"loss", loss}});
    if (!c.quiet) {
      char extra[64];
      std::snprintf(extra, sizeof extra, "loss %.4f | lr %.2e", loss, lr);
      bar.update(done, tokens, extra);
    }
    // The last eval precedes the last save, so a checkpoint always holds every eval before it.
    if (eval_on && ((c.eval_every > 0 && done % c.eval_every == 0) || done == c.steps)) eval_now(done);
    if (c.save_every > 0 && done % c.save_every == 0) run.save(done);
  }
  if (!c.quiet && start < c.steps) bar.finish(double(c.steps - start) * c.grad_accum * B * T);
  if (c.save_every > 0 && start < c.steps && c.steps % c.save_every != 0) run.save(c.steps);
  run.plot();
  write_hf(join_path(c.output_dir, "final"), model.config(), model.views(), run.hf);
}

}  // namespace solar::train
