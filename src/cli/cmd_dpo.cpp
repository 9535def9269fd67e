// `solar dpo`: preference alignment (DPO) of a model on {prompt, chosen, rejected} pairs.
#include <optional>

#include "chat/chat.h"
#include "cli/cli.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/progress.h"
#include "dpo/dpo.h"
#include "engine/session.h"

namespace {

int run(const std::vector<std::string>& argv) {
  namespace dpo = solar::dpo;
  solar::cli::Args a("dpo",
                     "solar dpo -m MODEL --data PAIRS.jsonl[.gz] -o OUT [options]\n"
                     "  DPO as TRL defines it; the reference model's log-probs are computed once into\n"
                     "  OUT/ref_logps.json; writes OUT/checkpoint-STEP/, OUT/final/, OUT/metrics.jsonl, OUT/loss.svg");
  solar::train::TrainConfig d;
  auto& model = a.str("-m,--model", "MODEL", "the policy's starting point: HF folder, .gguf or llama2.c .bin");
  auto& ref = a.str("--ref-model", "MODEL", "the reference model (default: -m)");
  auto& tok = a.str("--tokenizer", "FILE", "override the model's tokenizer");
  auto& data = a.str("--data", "FILE", "JSONL pairs: {prompt, chosen, rejected} (strings or messages) or HH {chosen, rejected}");
  auto& eval_data = a.str("--eval-data", "FILE", "held-out pairs (default: the last --eval-pairs of --data)");
  auto& eval_pairs = a.integer("--eval-pairs", 0, "pairs of --data held out for evals");
  auto& out = a.str("-o,--output", "DIR", "checkpoints, metrics, the reference cache and the final model");
  auto& tmpl = a.str("--chat-template", "NAME", "template for message lists: solar, llama2, mistral or chatml", "solar");
  auto& loss = a.str("--loss-type", "KIND", "sigmoid, ipo, hinge or robust", "sigmoid");
  auto& beta = a.number("--beta", 0.1, "β: the strength of the reference constraint");
  auto& ls = a.number("--label-smoothing", 0.0, "ε: assumed share of flipped labels (sigmoid, robust)");
  auto& max_len = a.integer("--max-length", 512, "tokens of prompt + completion; longer pairs are skipped");
  auto& batch = a.integer("-b,--batch-size", 4, "pairs per micro-batch");
  auto& accum = a.integer("--grad-accum", d.grad_accum, "micro-batches per optimizer step");
  auto& steps = a.integer("--steps", 100, "optimizer steps (0 with --dump-logps: evaluation only)");
  auto& lr = a.number("--lr", 5e-7, "peak learning rate");
  auto& sched = a.str("--lr-schedule", "KIND", "cosine, linear, constant or wsd", "linear");
  auto& warmup = a.integer("--warmup-steps", d.warmup_steps, "linear warmup steps");
  auto& wd = a.number("--weight-decay", 0.0, "AdamW decoupled weight decay");
  auto& clip = a.number("--grad-clip", d.grad_clip, "max global gradient norm (0: no clipping)");
  auto& seed = a.integer("--seed", int64_t(d.seed), "pair order");
  auto& threads = a.threads();
  auto& eval_every = a.integer("--eval-every", d.eval_every, "steps between evals (0: only at the end)");
  auto& eval_batches = a.integer("--eval-batches", d.eval_batches, "held-out micro-batches per eval");
  auto& save_every = a.integer("--save-every", d.save_every, "steps between checkpoints (0: none)");
  auto& limit = a.integer("--save-total-limit", d.save_total_limit, "checkpoints to keep (0: all)");
  auto& save_dtype = a.str("--save-dtype", "TYPE", "f32, bf16 or f16 (resume is exact with f32)", d.save_dtype);
  auto& precision = a.str("--precision", "P", "GEMM precision: bf16, f32 or auto", "auto");
  auto& dump = a.str("--dump-logps", "FILE", "write per-pair policy/reference log-probs and every loss as JSON, and stop");
  auto& resume = a.flag("--resume", "continue from the newest checkpoint in the output folder");
  auto& quiet = a.flag("-q,--quiet", "no progress bar");
  if (!a.parse(argv)) return a.exit_code();

  if (model.empty()) solar::fail("-m/--model", "", "required");
  if (data.empty()) solar::fail("--data", "", "required");
  if (out.empty()) solar::fail("-o/--output", "", "required");
  solar::cli::check_range("--beta", beta, 1e-9, 1e9);
  solar::cli::check_range("--label-smoothing", ls, 0, 0.4999);
  solar::cli::check_range("--max-length", double(max_len), 2, 1 << 20);
  solar::cli::check_range("--batch-size", double(batch), 1, 1 << 16);
  solar::cli::check_range("--eval-pairs", double(eval_pairs), 0, 1e9);
  solar::cli::check_range("--seed", double(seed), 0, 9.2e18);
  dpo::LossConfig lc{dpo::parse_loss_type(loss), beta, ls};
  const auto prec = solar::train::parse_precision(precision);
  const std::string ref_model = ref.empty() ? model : ref;

  auto mt = solar::engine::open_model_tokenizer(model, tok);
  const auto tpl = solar::chat::parse_chat_template(tmpl);
  auto train_pairs = dpo::read_pairs(data, *mt.tokenizer, tpl, int(max_len), nullptr);
  std::vector<dpo::Pair> val_pairs;
  if (!eval_data.empty()) {
    val_pairs = dpo::read_pairs(eval_data, *mt.tokenizer, tpl, int(max_len), nullptr);
  } else if (eval_pairs > 0) {
    if (size_t(eval_pairs) >= train_pairs.size())
      solar::fail("--eval-pairs", "", "expected fewer than the " + std::to_string(train_pairs.size()) + " usable pairs of " + data);
    val_pairs.assign(std::make_move_iterator(train_pairs.end() - eval_pairs), std::make_move_iterator(train_pairs.end()));
    train_pairs.resize(train_pairs.size() - size_t(eval_pairs));
  }
  auto src = std::make_shared<dpo::PairSource>(std::move(train_pairs), std::move(val_pairs), int(batch),
                                                int(max_len) - 1, mt.vocab_size, mt.tokenizer->eos_id(), uint64_t(seed));
  solar::make_dirs(out);
  auto refl = std::make_shared<const dpo::RefLogps>(
      dpo::load_or_compute_reference(solar::join_path(out, "ref_logps.json"), ref_model, *src, prec));
  if (!dump.empty()) {
    solar::write_file_atomic(dump, dpo::dump_logps(model, *src, *refl, lc, prec));
    return 0;
  }

  solar::train::TrainConfig c;
  c.output_dir = out, c.init_from = model, c.tokenizer = mt.path;
  c.batch_size = 2 * int(batch), c.seq_len = int(max_len) - 1;
  solar::cli::check_range("--grad-accum", double(accum), 1, 1 << 20);
  c.grad_accum = int(accum), c.steps = steps;
  c.lr = float(lr), c.lr_schedule = sched, c.warmup_steps = warmup;
  c.weight_decay = float(wd), c.grad_clip = float(clip), c.seed = uint64_t(seed);
  c.threads = int(threads);
  c.eval_every = eval_every, c.eval_batches = eval_batches;
  c.save_every = save_every, c.save_total_limit = limit, c.save_dtype = save_dtype;
  c.precision = prec, c.resume = resume, c.quiet = quiet;
  solar::train::Trainer t(c, src);
  if (t.finished()) return 0;
  std::optional<solar::Progress> bar;
  if (!quiet) bar.emplace("dpo", c.steps, "tok", stderr, 5);
  t.run(bar ? &*bar : nullptr, dpo::objective(lc, refl));
  return 0;
}

solar::cli::Register reg("dpo", "preference alignment with DPO (TRL's losses; cached reference log-probs)", run);

}  // namespace
