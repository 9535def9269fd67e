#include "cli/train_flags.h"

namespace solar::cli {

TrainFlags add_train_flags(Args& a, const train::TrainConfig& d, const char* batch_help) {
  TrainFlags f;
  f.out = &a.str("-o,--output", "DIR", "checkpoints, metrics and the final model");
  f.batch = &a.integer("-b,--batch-size", d.batch_size, batch_help);
  f.accum = &a.integer("--grad-accum", d.grad_accum, "micro-batches per optimizer step");
  f.steps = &a.integer("--steps", d.steps, "optimizer steps");
  f.lr = &a.number("--lr", d.lr, "peak learning rate");
  f.sched = &a.str("--lr-schedule", "KIND", "cosine, linear, constant or wsd", d.lr_schedule);
  f.warmup = &a.integer("--warmup-steps", d.warmup_steps, "linear warmup steps");
  f.min_lr = &a.number("--min-lr-ratio", d.min_lr_ratio, "final lr as a fraction of --lr");
  f.wd = &a.number("--weight-decay", d.weight_decay, "AdamW decoupled weight decay");
  f.clip = &a.number("--grad-clip", d.grad_clip, "max global gradient norm (0: no clipping)");
  f.seed = &a.integer("--seed", int64_t(d.seed), "data order (and initialisation)");
  f.threads = &a.threads();
  f.eval_every = &a.integer("--eval-every", d.eval_every, "steps between evals (0: only at the end)");
  f.eval_batches = &a.integer("--eval-batches", d.eval_batches, "validation batches per eval");
  f.save_every = &a.integer("--save-every", d.save_every, "steps between checkpoints (0: none)");
  f.limit = &a.integer("--save-total-limit", d.save_total_limit, "checkpoints to keep (0: all)");
  f.save_dtype = &a.str("--save-dtype", "TYPE", "f32, bf16 or f16 (resume is exact with f32)", d.save_dtype);
  f.precision = &a.str("--precision", "P",
                       "GEMM precision: bf16, f32, or auto (the faster: bf16 where the CPU has AVX512-BF16/AMX, else f32)",
                       "auto");
  f.resume = &a.flag("--resume", "continue from the newest checkpoint in the output folder");
  f.quiet = &a.flag("-q,--quiet", "no progress bar");
  return f;
}

void apply_train_flags(const TrainFlags& f, train::TrainConfig& c) {
  auto as_int = [](const char* flag, int64_t v) {
    check_range(flag, double(v), -2147483648.0, 2147483647.0);
    return int(v);
  };
  check_range("--seed", double(*f.seed), 0, 9.2e18);
  c.output_dir = *f.out;
  c.batch_size = as_int("--batch-size", *f.batch), c.grad_accum = as_int("--grad-accum", *f.accum);
  c.steps = *f.steps, c.lr = float(*f.lr), c.lr_schedule = *f.sched, c.warmup_steps = *f.warmup;
  c.min_lr_ratio = float(*f.min_lr), c.weight_decay = float(*f.wd), c.grad_clip = float(*f.clip);
  c.seed = uint64_t(*f.seed), c.threads = int(*f.threads);
  c.eval_every = *f.eval_every, c.eval_batches = *f.eval_batches;
  c.save_every = *f.save_every, c.save_total_limit = *f.limit, c.save_dtype = *f.save_dtype;
  c.precision = train::parse_precision(*f.precision);
  c.resume = *f.resume, c.quiet = *f.quiet;
}

}  // namespace solar::cli
