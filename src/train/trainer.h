// solar/train/trainer.h — the training loop behind `solar train` (and the pipeline).
//
// run_training() validates everything before any work, then loops: G
// micro-batches of B×(T+1) tokens (data/loader.h, a pure function of seed and
// step), AdamW on the schedule's lr, an eval every N steps (mean val loss over
// a fixed set of val batches, and its perplexity), a checkpoint every M steps.
// Output folder:
//   metrics.jsonl            one line per step {"step","loss","lr","grad_norm",…}
//                            and per eval {"step","val_loss","val_ppl"}
//   loss.svg                 train and val loss, redrawn at each eval
//   checkpoint-STEP/         HF folder + optimizer.bin + trainer_state.json,
//                            built as .checkpoint-STEP.tmp-PID and renamed, so
//                            a folder with this name is always complete; one
//                            is also saved at the last step, so a finished run
//                            is recognised and can be extended exactly
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
#include <string>

#include "kernels/kernels.h"

namespace solar::train {

struct TrainConfig {
  std::string data_dir;    // from `solar tokenize`
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

// Throws solar::Error with one clear line on bad configuration or data, and
// "step N: loss is NaN" (last good checkpoint kept) when training diverges.
void run_training(const TrainConfig& cfg);

// The newest complete checkpoint-STEP folder in dir, or "" if none.
std::string latest_checkpoint(const std::string& dir);

}  // namespace solar::train
