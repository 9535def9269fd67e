// `solar dpo`: preference alignment (DPO) of a model on {prompt, chosen, rejected} pairs.
#include <algorithm>

#include "cli/cli.h"
#include "cli/train_flags.h"
#include "dpo/dpo.h"

namespace {

int run(const std::vector<std::string>& argv) {
  namespace dpo = solar::dpo;
  solar::cli::Args a("dpo",
                     "solar dpo -m MODEL --data PAIRS.jsonl[.gz] -o OUT [options]\n"
                     "  DPO as TRL defines it; the reference model's log-probs are computed once into\n"
                     "  OUT/ref_logps.json; writes OUT/checkpoint-STEP/, OUT/final/, OUT/metrics.jsonl, OUT/loss.svg");
  // TRL's DPOConfig defaults: lr 5e-7, linear decay to 0, no weight decay.
  solar::train::TrainConfig d;
  d.batch_size = 4, d.steps = 100, d.lr = 5e-7f, d.lr_schedule = "linear", d.min_lr_ratio = 0.f, d.weight_decay = 0.f;
  auto& model = a.str("-m,--model", "MODEL", "the policy's starting point: HF folder, .gguf or llama2.c .bin");
  auto& ref = a.str("--ref-model", "MODEL", "the reference model (default: -m)");
  auto& tok = a.str("--tokenizer", "FILE", "override the model's tokenizer");
  auto& data = a.str("--data", "FILE", "JSONL pairs: {prompt, chosen, rejected} (strings or messages) or HH {chosen, rejected}");
  auto& eval_data = a.str("--eval-data", "FILE", "held-out pairs (default: the last --eval-pairs of --data)");
  auto& eval_pairs = a.integer("--eval-pairs", 0, "pairs of --data held out for evals");
  auto& tmpl = a.str("--chat-template", "NAME", "template for message lists: solar, llama2, mistral or chatml", "solar");
  auto& loss = a.str("--loss-type", "KIND", "sigmoid, ipo, hinge or robust", "sigmoid");
  auto& beta = a.number("--beta", 0.1, "β: the strength of the reference constraint");
  auto& ls = a.number("--label-smoothing", 0.0, "ε: assumed share of flipped labels (sigmoid, robust)");
  auto& max_len = a.integer("--max-length", 512, "tokens of prompt + completion; longer pairs are skipped");
  auto tf = solar::cli::add_train_flags(a, d, "pairs per micro-batch");
  auto& dump = a.str("--dump-logps", "FILE", "write per-pair policy/reference log-probs and every loss as JSON, and stop");
  if (!a.parse(argv)) return a.exit_code();

  dpo::DpoConfig c;
  solar::cli::apply_train_flags(tf, c.train);
  c.train.init_from = model;
  c.data = data, c.eval_data = eval_data, c.eval_pairs = eval_pairs;
  c.ref_model = ref, c.tokenizer = tok, c.chat_template = tmpl;
  c.loss = {dpo::parse_loss_type(loss), beta, ls};
  c.max_length = int(std::clamp<int64_t>(max_len, 0, 1 << 21));
  c.dump_logps = dump;
  dpo::run_dpo(c);
  return 0;
}

solar::cli::Register reg("dpo", "preference alignment with DPO (TRL's losses; cached reference log-probs)", run);

}  // namespace
