#include "train/trainer.h"

#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <optional>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "core/error.h"
#include "core/fs.h"
#include "core/json.h"
#include "core/log.h"
#include "core/progress.h"
#include "data/loader.h"
#include "formats/hf.h"
#include "formats/load.h"
#include "model/checkpoint.h"
#include "report/plot.h"
#include "train/checkpoints.h"
#include "train/net.h"
#include "train/optim.h"
#include "train/schedule.h"

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace solar::train {

namespace {

// Checks every number before anything is loaded: a typo fails in milliseconds.
void validate(const TrainConfig& c, bool own_source) {
  if (c.data_dir.empty() && !own_source) fail("--data", "", "expected the folder written by `solar tokenize`");
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

// data: the token shards' info, or nullptr for a BatchSource of vocab `vocab`.
model::ModelConfig model_config(const TrainConfig& c, int vocab, const data::ShardInfo* data, model::Checkpoint* init) {
  model::ModelConfig mc;
  std::string source;
  if (!c.preset.empty()) {
    mc = model::preset_config(c.preset);
    mc.vocab_size = c.vocab_size ? c.vocab_size : vocab;
    source = "--preset " + c.preset;
  } else if (!c.config_file.empty()) {
    mc = model::config_from_json(read_json_file(c.config_file), c.config_file);
    if (c.vocab_size) mc.vocab_size = c.vocab_size;
    source = c.config_file;
  } else {
    *init = formats::load_checkpoint(c.init_from);
    mc = init->config;
    source = c.init_from;
  }
  if (c.init_from.empty() && data) mc.bos_token_id = int(data->bos), mc.eos_token_id = int(data->eos);
  mc.validate(source);
  if (mc.vocab_size != vocab)
    fail(source, "vocab_size",
         "expected the data's vocab_size " + std::to_string(vocab) + " (" +
             (data ? "tokenizer of " + c.data_dir : std::string("the batch source")) + "), got " +
             std::to_string(mc.vocab_size));
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

// The token shards of `solar tokenize` as a BatchSource: plain windows, val
// batches = eval_batches windows of the val split (none without one).
class ShardSource : public BatchSource {
 public:
  explicit ShardSource(const TrainConfig& c)
      : loader(c.data_dir, c.batch_size, c.seq_len, c.seed), B_(c.batch_size), T_(c.seq_len),
        val_(loader.has_val() ? uint64_t(c.eval_batches) : 0) {}
  int vocab_size() const override { return int(loader.info().vocab_size); }
  void train_batch(uint64_t index, Batch& out) const override { loader.batch(index, shape(out)); }
  uint64_t val_batches() const override { return val_; }
  void val_batch(uint64_t i, Batch& out) const override { loader.val_batch(i, shape(out)); }
  const data::Loader loader;

 private:
  int32_t* shape(Batch& out) const {
    out.B = B_, out.T = T_;
    out.tokens.resize(size_t(B_) * (T_ + 1));
    out.weight.clear(), out.pos.clear(), out.seg.clear(), out.ids.clear();
    return out.tokens.data();
  }
  int B_, T_;
  uint64_t val_;
};

// Σ over micro-batches, then the mean into a metrics line (prefix + name).
void add_metrics(Metrics& sum, const Metrics& m) {
  for (const auto& [k, v] : m) sum[k] += v;
}
void put_metrics(json& line, const Metrics& sum, double n, const std::string& prefix) {
  for (const auto& [k, v] : sum) line[prefix + k] = v / n;
}

}  // namespace

kernels::Precision parse_precision(const std::string& s, const std::string& flag) {
  if (s == "f32") return kernels::Precision::F32;
  if (s == "bf16") return kernels::Precision::BF16;
  if (s != "auto") fail(flag, "", "expected bf16, f32 or auto, got '" + s + "'");
  return kernels::fastest_precision();
}

const char* precision_name(kernels::Precision p) { return p == kernels::Precision::F32 ? "f32" : "bf16"; }

std::string latest_checkpoint(const std::string& dir) {
  auto all = complete_checkpoints(dir);
  return all.empty() ? "" : all.back().path;
}

double heldout_loss(Net& model, const data::Loader& loader, int B, int T, int64_t batches) {
  if (batches <= 0) fail("heldout_loss", "batches", "expected > 0, got " + std::to_string(batches));
  std::vector<int32_t> buf(size_t(B) * (T + 1));
  double sum = 0;
  for (int64_t i = 0; i < batches; i++) {
    loader.val_batch(uint64_t(i), buf.data());
    sum += model.loss(buf.data(), B, T);
  }
  return sum / double(batches);
}

struct Trainer::State {
  TrainConfig c;
  Schedule sched;
  std::shared_ptr<const BatchSource> source;
  std::optional<Net> model;
  std::optional<AdamW> opt;
  formats::HfWriteOptions hf;
  bool eval_on = false, finished = false;
  std::string ck;  // checkpoint resumed from, or ""
  json st;         // its trainer_state.json
  int64_t step = 0, start = 0;
  int64_t tokens = 0, start_tokens = 0;  // input tokens of the train micro-batches so far (B*T each)
  json train_hist = json::array(), val_hist = json::array();
  std::optional<MetricsLog> metrics;
  std::chrono::steady_clock::time_point t0 = std::chrono::steady_clock::now();
  Batch buf;

  State(const TrainConfig& cfg, Schedule s, std::shared_ptr<const BatchSource> src)
      : c(cfg), sched(std::move(s)), source(std::move(src)) {}
  std::string metrics_path() const { return join_path(c.output_dir, "metrics.jsonl"); }
};

Trainer::Trainer(const TrainConfig& c, std::shared_ptr<const BatchSource> source) {
  open(c, std::move(source));
  if (!s_->finished) resume();
}
Trainer::~Trainer() = default;

void Trainer::open(const TrainConfig& c, std::shared_ptr<const BatchSource> source) {
  validate(c, source != nullptr);
  Schedule sched{c.lr_schedule, c.warmup_steps, c.steps, c.lr, c.min_lr_ratio};
  sched.validate("--lr-schedule");
  DType save_dt = parse_dtype(c.save_dtype == "f32" ? "F32" : c.save_dtype == "bf16" ? "BF16"
                              : c.save_dtype == "f16" ? "F16" : c.save_dtype, "--save-dtype");
  if (!is_float(save_dt)) fail("--save-dtype", "", "expected f32, bf16 or f16, got " + c.save_dtype);
  std::shared_ptr<const ShardSource> shards;
  if (!source) source = shards = std::make_shared<const ShardSource>(c);
  s_ = std::make_unique<State>(c, sched, source);
  State& S = *s_;
  model::Checkpoint init;
  model::ModelConfig mc = model_config(c, source->vocab_size(), shards ? &shards->loader.info() : nullptr, &init);
  S.eval_on = source->val_batches() > 0;
  if (!S.eval_on && shards)
    log_warn("train", c.data_dir + " has no validation window of " + std::to_string(c.seq_len + 1) + " tokens; no evals",
             {{"data", c.data_dir}});
  if (c.threads > 0) omp_set_num_threads(c.threads);

  // The tokenizer copied into every checkpoint: checked before anything is
  // written, so a moved or damaged one fails now, not at the first save.
  std::string tokenizer_to_copy = c.tokenizer;
  if (tokenizer_to_copy.empty() && !c.data_dir.empty() && path_exists(join_path(c.data_dir, "meta.json"))) {
    const std::string mpath = join_path(c.data_dir, "meta.json");
    auto meta = read_json_file(mpath);
    // Written by `solar tokenize`, but a hand-edited one must fail naming the field.
    if (!meta.is_object()) fail(mpath, "", "expected a JSON object, got " + json_brief(meta));
    if (meta.contains("tokenizer") && !meta["tokenizer"].is_null() && !meta["tokenizer"].is_string())
      fail(mpath, "tokenizer", "expected a path string, got " + json_brief(meta["tokenizer"]));
    const std::string tok = meta.contains("tokenizer") && meta["tokenizer"].is_string() ? meta["tokenizer"].get<std::string>() : "";
    if (!tok.empty()) {
      if (!path_exists(tok)) fail(mpath, "tokenizer", "expected an existing tokenizer file, got " + tok + " (not found)");
      if (is_dir(tok)) fail(mpath, "tokenizer", "expected a tokenizer file (it is copied into each checkpoint), got the folder " + tok);
      std::unique_ptr<tokenizer::Tokenizer> t;
      try {
        t = formats::open_tokenizer(tok, source->vocab_size());
      } catch (const Error& e) {
        fail(mpath, "tokenizer", "expected a loadable tokenizer, got " + tok + " (" + e.what() + ")");
      }
      if (t->vocab_size() != source->vocab_size())
        fail(mpath, "tokenizer", "expected a tokenizer of the data's vocab_size " + std::to_string(source->vocab_size()) +
                                     ", got " + tok + " with " + std::to_string(t->vocab_size()) + " tokens");
      tokenizer_to_copy = tok;
    }
  }

  make_dirs(c.output_dir);
  const std::vector<CheckpointFolder> cks = complete_checkpoints(c.output_dir);
  S.ck = cks.empty() ? "" : cks.back().path;
  if (!c.resume && !S.ck.empty())
    fail(c.output_dir, "", "already holds " + base_name(S.ck) + " (pass --resume to continue it, or another -o/--output)");
  if (c.resume && S.ck.empty())
    log_info("train", "--resume: no checkpoint in " + c.output_dir + " yet, starting from step 0");
  if (!S.ck.empty()) {
    S.st = read_trainer_state(cks.back());  // before anything is written
    int64_t at = S.st["global_step"].get<int64_t>();
    // Like a finished HF Trainer run: nothing to train, and the outputs stay as they are.
    if (at >= c.steps && path_exists(join_path(c.output_dir, "final/config.json"))) {
      log_info("train", c.output_dir + " is already finished at step " + std::to_string(at) + " (--steps " +
                            std::to_string(c.steps) + "); nothing to do");
      S.finished = true;
      return;
    }
  }
  clean_checkpoint_folder(c.output_dir);  // what killed runs left; incomplete checkpoints reported

  S.model.emplace(!S.ck.empty()          ? Net::from_checkpoint(formats::read_hf(S.ck))
                  : !c.init_from.empty() ? Net::from_checkpoint(init)
                                         : Net::init(mc, c.seed));
  init = model::Checkpoint{};  // the copy lives in the model now; drop the mapping
  S.model->set_options({c.precision});
  S.opt.emplace(*S.model, AdamWConfig{c.lr, 0.9f, 0.95f, 1e-8f, c.weight_decay, c.grad_clip});
  S.hf.dtype = save_dt;
  S.hf.force = true;
  S.hf.tokenizer_path = tokenizer_to_copy;
}

void Trainer::resume() {
  State& S = *s_;
  const TrainConfig& c = S.c;
  const std::string& ck = S.ck;
  const json& st = S.st;
  if (!ck.empty()) {
    S.opt->load(join_path(ck, "optimizer.bin"));
    S.step = st["global_step"].get<int64_t>();
    S.tokens = st.value("tokens_seen", S.step * c.grad_accum * c.batch_size * c.seq_len);
    S.train_hist = st.value("log_history", json::array());
    S.val_hist = st.value("eval_history", json::array());
    if (st.value("seed", c.seed) != c.seed || st.value("batch_size", c.batch_size) != c.batch_size ||
        st.value("seq_len", c.seq_len) != c.seq_len || st.value("grad_accum", c.grad_accum) != c.grad_accum)
      log_warn("train", "seed/batch/seq-len/grad-accum differ from " + ck + "; not an exact resume");
    // Lines logged after the checkpoint by the run that died are replayed, so drop them.
    std::string kept;
    for (auto& j : read_metrics(S.metrics_path()))
      if (j.value("step", int64_t(0)) <= S.step) kept += j.dump() + "\n";
    write_file_atomic(S.metrics_path(), kept);
    log_info("train", "resuming from " + ck + " (step " + std::to_string(S.step) + ")",
             {{"checkpoint", ck}, {"step", S.step}});
    if (st.contains("max_steps")) {
      const Schedule& sched = S.sched;
      Schedule old{st.value("lr_schedule", sched.kind), st.value("warmup_steps", sched.warmup),
                   st.value("max_steps", sched.total), st.value("learning_rate", sched.lr),
                   st.value("min_lr_ratio", sched.min_lr_ratio)};
      if (describe(old) != describe(sched)) {
        char b[96];
        std::snprintf(b, sizeof b, "the next step's lr is %.3g (the old plan: %.3g)", sched.at(S.step), old.at(S.step));
        log_info("train", "the learning-rate schedule changes at step " + std::to_string(S.step) + ": " +
                              base_name(ck) + " was planned as " + describe(old) + ", now " + describe(sched) + "; " +
                              b + " and follows the new schedule from there");
      }
    }
  }
  if (S.step >= c.steps)
    log_info("train", base_name(ck) + " is at step " + std::to_string(S.step) + " of " + std::to_string(c.steps) +
                          ": nothing to train; writing " + join_path(c.output_dir, "final"));
  S.start = S.step, S.start_tokens = S.tokens;
  S.metrics.emplace(S.metrics_path(), !ck.empty());
  const std::string cpu = kernels::cpu_summary();
  const int threads = omp_get_max_threads();
  log_info("train", std::string("precision ") + precision_name(c.precision) + ", threads " + std::to_string(threads) +
                        ", CPU " + cpu);
  S.metrics->write({{"event", "start"},
                    {"step", S.step},
                    {"max_steps", c.steps},
                    {"precision", precision_name(c.precision)},
                    {"threads", threads},
                    {"cpu", cpu},
                    {"resumed_from", ck.empty() ? json(nullptr) : json(base_name(ck))}});
  S.t0 = std::chrono::steady_clock::now();
}

bool Trainer::finished() const { return s_->finished; }
bool Trainer::done() const { return s_->finished || s_->step >= s_->c.steps; }
int64_t Trainer::global_step() const { return s_->step; }
const TrainConfig& Trainer::config() const { return s_->c; }
Net& Trainer::model() { return *s_->model; }

StepResult Trainer::step(const Objective& objective) {
  State& S = *s_;
  const TrainConfig& c = S.c;
  Net& model = *S.model;
  model.zero_grad();
  double loss = 0;
  Metrics sum;
  for (int g = 0; g < c.grad_accum; g++) {
    S.source->train_batch(uint64_t(S.step) * c.grad_accum + g, S.buf);
    S.tokens += int64_t(S.buf.B) * S.buf.T;
    Metrics m;
    loss += objective(model, S.buf, 1.0f / float(c.grad_accum), &m);
    add_metrics(sum, m);
  }
  loss /= c.grad_accum;
  int64_t done = S.step + 1;
  if (!std::isfinite(loss)) {
    S.metrics->write({{"step", done}, {"loss", nullptr}});
    std::string last = latest_checkpoint(c.output_dir);
    fail("step " + std::to_string(done) + ": loss is " + (std::isnan(loss) ? "NaN" : "Inf") +
         " (training diverged; lower --lr or raise --warmup-steps; last good checkpoint: " +
         (last.empty() ? std::string("none") : last) + ")");
  }
  // Checked before the update, so the weights in memory stay the last good ones too.
  double gnorm = grad_norm(model.params());
  if (!std::isfinite(gnorm)) {
    S.metrics->write({{"step", done}, {"loss", loss}, {"grad_norm", nullptr}});
    std::string last = latest_checkpoint(c.output_dir);
    fail("step " + std::to_string(done) + ": gradient norm is " + (std::isnan(gnorm) ? "NaN" : "Inf") +
         " (training diverged; lower --lr or raise --warmup-steps; last good checkpoint: " +
         (last.empty() ? std::string("none") : last) + ")");
  }
  float lr = S.sched.at(S.step);
  float norm = S.opt->step(lr);
  S.step = done;
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - S.t0).count();
  json m = {{"step", done},      {"loss", loss}, {"lr", lr}, {"grad_norm", norm},
            {"tokens", S.tokens}, {"elapsed_s", elapsed}};
  put_metrics(m, sum, c.grad_accum, "");
  S.metrics->write(m);
  S.train_hist.push_back({{"step", done}, {"loss", loss}});
  return {loss, lr, norm};
}

double Trainer::evaluate(const Objective& objective) {
  State& S = *s_;
  const uint64_t n = std::min<uint64_t>(S.source->val_batches(), uint64_t(S.c.eval_batches));
  if (n == 0) fail(S.c.output_dir, "evaluate", "expected validation batches, the data has none");
  double vl = 0;
  Metrics sum;
  for (uint64_t i = 0; i < n; i++) {
    S.source->val_batch(i, S.buf);
    Metrics m;
    vl += objective(*S.model, S.buf, 0.0f, &m);
    add_metrics(sum, m);
  }
  vl /= double(n);
  json e = {{"step", S.step}, {"val_loss", vl}, {"val_ppl", std::exp(vl)}};
  put_metrics(e, sum, double(n), "eval_");
  S.metrics->write(e);
  S.val_hist.push_back(e);
  plot();
  return vl;
}

void Trainer::plot() {
  State& S = *s_;
  report::Series tr{"train", {}, {}}, va{"val", {}, {}, true};
  for (auto& h : S.train_hist) tr.x.push_back(h["step"].get<double>()), tr.y.push_back(h["loss"].get<double>());
  for (auto& h : S.val_hist) va.x.push_back(h["step"].get<double>()), va.y.push_back(h["val_loss"].get<double>());
  report::write_svg_line_plot(join_path(S.c.output_dir, "loss.svg"), {tr, va},
                              {"Loss — " + base_name(fs::absolute(S.c.output_dir).lexically_normal().string()),
                               "step", "cross-entropy (nats/token)"});
}

void Trainer::save() {
  State& S = *s_;
  const TrainConfig& c = S.c;
  const int64_t step = S.step;
  std::string name = "checkpoint-" + std::to_string(step);
  std::string tmp = join_path(c.output_dir, "." + name + ".tmp-" + std::to_string(getpid()));
  remove_all(tmp);
  try {
    formats::write_hf(tmp, S.model->config(), S.model->views(), S.hf);
    S.opt->save(join_path(tmp, "optimizer.bin"));
    json st = {{"global_step", step},
               {"seed", c.seed},
               {"batch_size", c.batch_size},
               {"seq_len", c.seq_len},
               {"grad_accum", c.grad_accum},
               {"micro_batches_seen", step * c.grad_accum},  // the data position: the loader needs nothing else
               {"tokens_seen", S.tokens},
               {"max_steps", c.steps},
               {"lr_schedule", c.lr_schedule},
               {"warmup_steps", c.warmup_steps},
               {"learning_rate", c.lr},
               {"min_lr_ratio", c.min_lr_ratio},
               {"precision", precision_name(c.precision)},
               {"cpu", kernels::cpu_summary()},
               {"log_history", S.train_hist},
               {"eval_history", S.val_hist}};
    write_file_atomic(join_path(tmp, "trainer_state.json"), st.dump(1));
    commit_dir(tmp, join_path(c.output_dir, name), true);
  } catch (...) {
    remove_all(tmp);
    throw;
  }
  prune_checkpoints(c.output_dir, c.save_total_limit);
}

void Trainer::finish() {
  State& S = *s_;
  const TrainConfig& c = S.c;
  if (c.save_every > 0 && S.start < c.steps && c.steps % c.save_every != 0) save();
  plot();
  formats::write_hf(join_path(c.output_dir, "final"), S.model->config(), S.model->views(), S.hf);
}

void Trainer::run(Progress* bar, const Objective& objective) {
  if (finished()) return;
  State& S = *s_;
  const TrainConfig& c = S.c;
  while (S.step < c.steps) {
    StepResult r = step(objective);
    const int64_t done = S.step;
    if (bar) {
      char extra[64];
      std::snprintf(extra, sizeof extra, "loss %.4f | lr %.2e", r.loss, r.lr);
      bar->update(done, double(S.tokens - S.start_tokens), extra);
    }
    // The last eval precedes the last save, so a checkpoint always holds every eval before it.
    if (S.eval_on && ((c.eval_every > 0 && done % c.eval_every == 0) || done == c.steps)) {
      double vl = evaluate(objective);
      if (bar) {
        char b[96];
        std::snprintf(b, sizeof b, "step %lld: val loss %.4f, ppl %.2f", (long long)done, vl, std::exp(vl));
        log_info("train", b, {{"step", done}, {"val_loss", vl}});
      }
    }
    if (c.save_every > 0 && done % c.save_every == 0) save();
  }
  if (bar && S.start < c.steps) bar->finish(double(S.tokens - S.start_tokens));
  finish();
}

void run_training(const TrainConfig& c) {
  Trainer t(c);
  if (t.finished()) return;
  std::optional<Progress> bar;
  if (!c.quiet) bar.emplace("train", c.steps, "tok", stderr, 5);
  t.run(bar ? &*bar : nullptr);
}

}  // namespace solar::train
