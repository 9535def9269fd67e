// `solar dpo`: preference alignment (DPO) of a model on {prompt, chosen, rejected} pairs.
#include <optional>

#include "chat/chat.h"
#include "cli/cli.h"
#include "cli/train_flags.h"
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

  solar::train::TrainConfig c;
  solar::cli::apply_train_flags(tf, c);
  if (model.empty()) solar::fail("-m/--model", "", "required");
  if (data.empty()) solar::fail("--data", "", "required");
  if (c.output_dir.empty()) solar::fail("-o/--output", "", "required");
  solar::cli::check_range("--beta", beta, 1e-9, 1e9);
  solar::cli::check_range("--label-smoothing", ls, 0, 0.4999);
  solar::cli::check_range("--max-length", double(max_len), 2, 1 << 20);
  solar::cli::check_range("--batch-size", double(c.batch_size), 1, 1 << 16);
  solar::cli::check_range("--eval-pairs", double(eval_pairs), 0, 1e9);
  const int pairs_per_batch = c.batch_size;
  // The trainer sees rows: a pair is its chosen and its rejected row.
  c.batch_size = 2 * pairs_per_batch, c.seq_len = int(max_len) - 1;
  c.init_from = model;
  dpo::LossConfig lc{dpo::parse_loss_type(loss), beta, ls};
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
  c.tokenizer = mt.path;
  auto src = std::make_shared<dpo::PairSource>(std::move(train_pairs), std::move(val_pairs), pairs_per_batch,
                                                c.seq_len, mt.vocab_size, mt.tokenizer->eos_id(), c.seed);
  solar::make_dirs(c.output_dir);
  auto refl = std::make_shared<const dpo::RefLogps>(
      dpo::load_or_compute_reference(solar::join_path(c.output_dir, "ref_logps.json"), ref_model, *src, c.precision));
  if (!dump.empty()) {
    solar::write_file_atomic(dump, dpo::dump_logps(model, *src, *refl, lc, c.precision));
    return 0;
  }

  solar::train::Trainer t(c, src);
  if (t.finished()) return 0;
  std::optional<solar::Progress> bar;
  if (!c.quiet) bar.emplace("dpo", c.steps, "tok", stderr, 5);
  t.run(bar ? &*bar : nullptr, dpo::objective(lc, refl));
  return 0;
}

solar::cli::Register reg("dpo", "preference alignment with DPO (TRL's losses; cached reference log-probs)", run);

}  // namespace
