// solar/train/trainer.h — the training loop behind `solar train` (and the pipeline).
//
// run_training() validates everything before any work, then loops: G
// micro-batches (train/batch.h: from a BatchSource, by default the token
// shards of data/loader.h; a pure function of seed and step), AdamW on the
// schedule's lr, an eval every N steps (mean val loss over a fixed set of val
// batches, and its perplexity), a checkpoint every M steps.
// Output folder:
//   metrics.jsonl            one line per step {"step","loss","lr","grad_norm",…}
//                            and per eval {"step","val_loss","val_ppl"}, plus
//                            the objective's Metrics (evals: "eval_" + name)
//   loss.svg                 train and val loss, redrawn at each eval
//   checkpoint-STEP/         HF folder + optimizer.bin + trainer_state.json,
//                            built as .checkpoint-STEP.tmp-PID and renamed, so
//                            a folder with this name is always complete (old
//                            ones are renamed aside before deletion, and
//                            incomplete ones never resumed: train/checkpoints.h);
//                            one is also saved at the last step, so a finished
//                            run is recognised and can be extended exactly
//   final/                   HF folder of the last weights
// metrics.jsonl also gets {"event":"start",…} with the precision, CPU and
// threads each time a run starts or resumes: results depend on them.
// Resume reloads the newest checkpoint (weights, AdamW moments, step) and,
// because batches depend only on (seed, step), continues bit for bit as if
// never stopped — with f32 checkpoints (--save-dtype f32, the default).
// A --steps (or other schedule setting) unlike the checkpoint's is followed
// from the resume point on, and said so; resuming a run that has reached
// --steps and written final/ does nothing and says so.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "kernels/kernels.h"
#include "train/batch.h"

namespace solar {
class Progress;
namespace data {
class Loader;
}
}  // namespace solar

namespace solar::train {

class Net;

struct TrainConfig {
  std::string data_dir;    // from `solar tokenize`; unused (may be empty) with a BatchSource
  std::string tokenizer;   // copied into checkpoints; "" = the one data_dir's meta.json names
  std::string output_dir;  // required
  // Model: exactly one of preset / config_file / init_from.
  std::string preset, config_file, init_from;
  int vocab_size = 0;  // override for preset/config; 0: the data's vocab (preset only)
  int batch_size = 8, seq_len = 256, grad_accum = 1;
  int64_t steps = 1000;
  float lr = 3e-4f, min_lr_ratio = 0.1f, weight_decay = 0.1f, grad_clip = 1.0f;
  std::string lr_schedule = "cosine";
  int64_t warmup_steps = 0;
  uint64_t seed = 1337;
  int threads = 0;  // 0: OpenMP's default
  int64_t eval_every = 100, eval_batches = 20;  // eval_every 0: only at the end
  int64_t save_every = 500, save_total_limit = 2;  // save_every 0: no checkpoints; limit 0: keep all
  std::string save_dtype = "f32";
  kernels::Precision precision = kernels::fastest_precision();
  bool resume = false;
  bool quiet = false;  // no progress bar
};

// "bf16", "f32" or "auto": bf16 where the CPU has AVX512-BF16 or AMX (native
// bf16 GEMMs), else f32 (emulated bf16 is slower than f32).
kernels::Precision parse_precision(const std::string& s, const std::string& flag = "--precision");
const char* precision_name(kernels::Precision p);

// The one per-token loss routine for held-out data: mean next-token
// cross-entropy of `model` (forward only) over val batches 0..batches-1 of
// B rows × (T+1) tokens. The trainer's evals and the pipeline's held-out
// table both use it.
double heldout_loss(Net& model, const data::Loader& loader, int B, int T, int64_t batches);

struct StepResult {
  double loss;      // mean over the grad_accum micro-batches
  float lr;         // the schedule's lr for this step
  float grad_norm;  // before clipping
};

// The training run in parts. The constructor opens (validates the config,
// builds or loads the model, the batch source, the optimizer) and resumes
// from the newest checkpoint when there is one (cfg.resume). source ==
// nullptr: the token shards of cfg.data_dir (data::Loader, val batches =
// cfg.eval_batches windows of its val split). A source's vocab_size must
// match the model's; a preset model takes it. Nothing here draws to
// the terminal: messages go through core/log.h; run() updates a Progress only
// when handed one.
class Trainer {
 public:
  explicit Trainer(const TrainConfig& cfg, std::shared_ptr<const BatchSource> source = nullptr);
  ~Trainer();
  Trainer(const Trainer&) = delete;
  Trainer& operator=(const Trainer&) = delete;

  // The output folder already holds a finished run (final/ at --steps): nothing to do.
  bool finished() const;
  bool done() const;  // finished() or global_step() reached --steps
  int64_t global_step() const;
  const TrainConfig& config() const;
  Net& model();

  // One optimizer step over grad_accum micro-batches (appends to metrics.jsonl).
  // Throws "step N: loss is NaN" (last good checkpoint kept) on divergence.
  StepResult step(const Objective& objective = next_token_loss);
  // Mean loss (grad_scale 0) over the source's val batches, at most
  // eval_batches of them; appended to metrics and loss.svg. The default
  // objective on the default source is heldout_loss.
  double evaluate(const Objective& objective = next_token_loss);
  void save();        // checkpoint-STEP (atomic), pruning to save_total_limit
  void finish();      // the closing checkpoint if due, loss.svg and final/
  // The loop: step, eval every eval_every (and at the end), save every
  // save_every, then finish().
  void run(Progress* bar = nullptr, const Objective& objective = next_token_loss);

 private:
  void open(const TrainConfig& cfg, std::shared_ptr<const BatchSource> source);
  void resume();
  void plot();
  struct State;
  std::unique_ptr<State> s_;
};

// The one-call wrapper (`solar train`, the pipeline): Trainer + run(), with a
// progress bar on stderr unless cfg.quiet. Throws solar::Error with one clear
// line on bad configuration or data, and "step N: loss is NaN" (last good
// checkpoint kept) when training diverges.
void run_training(const TrainConfig& cfg);

// The newest complete checkpoint-STEP folder in dir, or "" if none.
std::string latest_checkpoint(const std::string& dir);

}  // namespace solar::train
