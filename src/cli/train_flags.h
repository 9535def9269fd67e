// solar/cli/train_flags.h — the trainer's flags (schedule, batches, evals,
// checkpoints, precision), as `solar train` names them, for the commands that
// run train::Trainer on their own data (sft, dpo).
#pragma once
#include <cstdint>
#include <string>

#include "cli/cli.h"
#include "train/trainer.h"

namespace solar::cli {

struct TrainFlags {
  std::string *out, *sched, *save_dtype, *precision;
  int64_t *batch, *accum, *steps, *warmup, *seed, *threads, *eval_every, *eval_batches, *save_every, *limit;
  double *lr, *min_lr, *wd, *clip;
  bool *resume, *quiet;
};
// Declares them with `d`'s values as defaults (-o/--output has none);
// `batch_help` says what -b counts (dpo: pairs).
TrainFlags add_train_flags(Args& a, const train::TrainConfig& d, const char* batch_help = "sequences per micro-batch");
// Copies the parsed values into c (output, schedule, batches, evals, saving,
// precision, resume, quiet); checks what would overflow an int.
void apply_train_flags(const TrainFlags& f, train::TrainConfig& c);

}  // namespace solar::cli
