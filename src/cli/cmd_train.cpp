// `solar train`: pretrain or continue pretraining a Llama model on token shards.
#include "cli/cli.h"
#include "core/error.h"
#include "model/config.h"
#include "train/trainer.h"

namespace {

int run(const std::vector<std::string>& argv) {
  solar::cli::Args a("train",
                     "solar train --data DIR -o OUT (--preset NAME | --config config.json | --init-from MODEL) [options]\n"
                     "  trains on the shards of `solar tokenize`; writes OUT/checkpoint-STEP/, OUT/final/,\n"
                     "  OUT/metrics.jsonl and OUT/loss.svg; --resume continues the newest checkpoint exactly");
  solar::train::TrainConfig d;
  auto& data = a.str("--data", "DIR", "token shards from `solar tokenize`");
  auto& out = a.str("-o,--output", "DIR", "checkpoints, metrics and the final model");
  auto& preset = a.str("--preset", "NAME", "train from scratch: " + solar::model::preset_names());
  auto& config = a.str("--config", "FILE", "train from scratch with this HF config.json");
  auto& init = a.str("--init-from", "MODEL", "continue pretraining: HF folder, .gguf or llama2.c .bin");
  auto& vocab = a.integer("--vocab-size", 0, "override the model's vocab (default: the data's, for --preset)");
  auto& batch = a.integer("-b,--batch-size", d.batch_size, "sequences per micro-batch");
  auto& seq = a.integer("--seq-len", d.seq_len, "tokens per sequence");
  auto& accum = a.integer("--grad-accum", d.grad_accum, "micro-batches per optimizer step");
  auto& steps = a.integer("--steps", d.steps, "optimizer steps");
  auto& lr = a.number("--lr", d.lr, "peak learning rate");
  auto& sched = a.str("--lr-schedule", "KIND", "cosine, linear, constant or wsd", d.lr_schedule);
  auto& warmup = a.integer("--warmup-steps", d.warmup_steps, "linear warmup steps");
  auto& min_lr = a.number("--min-lr-ratio", d.min_lr_ratio, "final lr as a fraction of --lr");
  auto& wd = a.number("--weight-decay", d.weight_decay, "AdamW decoupled weight decay");
  auto& clip = a.number("--grad-clip", d.grad_clip, "max global gradient norm (0: no clipping)");
  auto& seed = a.integer("--seed", int64_t(d.seed), "initialisation and data order");
  auto& threads = a.threads();
  auto& eval_every = a.integer("--eval-every", d.eval_every, "steps between evals (0: only at the end)");
  auto& eval_batches = a.integer("--eval-batches", d.eval_batches, "validation batches per eval");
  auto& save_every = a.integer("--save-every", d.save_every, "steps between checkpoints (0: none)");
  auto& limit = a.integer("--save-total-limit", d.save_total_limit, "checkpoints to keep (0: all)");
  auto& save_dtype = a.str("--save-dtype", "TYPE", "f32, bf16 or f16 (resume is exact with f32)", d.save_dtype);
  auto& precision = a.str("--precision", "P",
      "GEMM precision: bf16, f32, or auto (the faster: bf16 where the CPU has AVX512-BF16/AMX, else f32)",
      "auto");
  auto& resume = a.flag("--resume", "continue from the newest checkpoint in the output folder");
  auto& quiet = a.flag("-q,--quiet", "no progress bar");
  if (!a.parse(argv)) return a.exit_code();

  const auto prec = solar::train::parse_precision(precision);
  solar::cli::check_range("--seed", double(seed), 0, 9.2e18);
  solar::train::TrainConfig c;
  c.data_dir = data, c.output_dir = out;
  c.preset = preset, c.config_file = config, c.init_from = init;
  // Range checks live in run_training; clamp only what would overflow an int here.
  auto as_int = [](const char* flag, int64_t v) {
    solar::cli::check_range(flag, double(v), -2147483648.0, 2147483647.0);
    return int(v);
  };
  c.vocab_size = as_int("--vocab-size", vocab);
  c.batch_size = as_int("--batch-size", batch), c.seq_len = as_int("--seq-len", seq);
  c.grad_accum = as_int("--grad-accum", accum), c.steps = steps;
  c.lr = float(lr), c.lr_schedule = sched, c.warmup_steps = warmup, c.min_lr_ratio = float(min_lr);
  c.weight_decay = float(wd), c.grad_clip = float(clip), c.seed = uint64_t(seed);
  c.threads = int(threads);
  c.eval_every = eval_every, c.eval_batches = eval_batches;
  c.save_every = save_every, c.save_total_limit = limit, c.save_dtype = save_dtype;
  c.precision = prec;
  c.resume = resume, c.quiet = quiet;
  solar::train::run_training(c);
  return 0;
}

solar::cli::Register reg("train", "pretrain / continue pretraining on token shards (checkpoints, resume, metrics)",
                         run);

}  // namespace
