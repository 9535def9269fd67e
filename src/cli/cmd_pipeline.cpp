// solar pipeline — the tiny Solar recipe end to end (see pipeline/pipeline.h).
#include "cli/cli.h"
#include "core/error.h"
#include "pipeline/pipeline.h"

namespace solar::cli {

static int run_pipeline_cmd(const std::vector<std::string>& argv) {
  pipeline::PipelineConfig d;
  Args a("pipeline", "solar pipeline [-o runs/tiny-solar] [options]");
  auto& corpus = a.str("--corpus", "PATH", "text corpus: a folder (one document per file) or a file", d.corpus);
  auto& out = a.str("-o,--output", "DIR", "where everything goes", d.output_dir);
  auto& vocab = a.integer("--vocab-size", d.vocab_size, "tokenizer pieces", 260, 1 << 20);
  auto& layers = a.integer("--layers", d.layers, "n: layers of the base model", 1, 1 << 12);
  auto& drop = a.integer("--drop", d.drop, "m: layers dropped from each copy when up-scaling", 1, 1 << 12);
  auto& hidden = a.integer("--hidden-size", d.hidden, "model width", 1, 1 << 20);
  auto& ff = a.integer("--intermediate-size", d.intermediate, "MLP width", 1, 1 << 20);
  auto& heads = a.integer("--heads", d.heads, "attention heads", 1, 1 << 12);
  auto& kv = a.integer("--kv-heads", d.kv_heads, "key/value heads", 1, 1 << 12);
  auto& seq = a.integer("--seq-len", d.seq_len, "training sequence length", 1, 1 << 20);
  auto& batch = a.integer("-b,--batch-size", d.batch_size, "sequences per step", 1, 1 << 20);
  auto& base_steps = a.integer("--base-steps", d.base_steps, "phase A steps (base pretraining)", 1, 1'000'000'000);
  auto& dus_steps = a.integer("--dus-steps", d.dus_steps, "phase B steps (continued pretraining of the up-scaled model)", 1, 1'000'000'000);
  auto& lr = a.number("--lr", d.lr, "peak learning rate");
  auto& eval_every = a.integer("--eval-every", d.eval_every, "steps between validation evals (0: only at the end)", 0, 1'000'000'000);
  auto& windows = a.integer("--eval-windows", d.eval_windows, "held-out windows for the final comparison", 1, 1 << 24);
  auto& threads = a.threads();
  auto& precision = a.str("--precision", "P", "training GEMMs: f32 (the same result on every CPU), bf16, or auto "
                          "(bf16 where the CPU has AVX512-BF16/AMX)", d.precision);
  auto& force = a.flag("--force", "start over instead of resuming");
  auto& no_align = a.flag("--no-align", "stop after continued pretraining (no SFT, DPO, merges)");
  auto& sft_data = a.str("--sft-data", "FILE", "instructions as `solar sft` reads them (default: built from the corpus)");
  auto& dpo_data = a.str("--dpo-data", "FILE", "preference pairs as `solar dpo` reads them (default: built from the corpus)");
  auto& sft_steps = a.integer("--sft-steps", d.sft_steps, "SFT steps", 1, 1'000'000'000);
  auto& dpo_steps = a.integer("--dpo-steps", d.dpo_steps, "steps of each DPO run", 1, 1'000'000'000);
  auto& sft_lr = a.number("--sft-lr", d.sft_lr, "SFT peak learning rate");
  auto& dpo_lr = a.number("--dpo-lr", d.dpo_lr, "DPO peak learning rate");
  auto& beta = a.number("--beta", d.beta, "DPO's β");
  auto& max_len = a.integer("--align-max-length", d.align_max_length, "tokens per SFT example / DPO pair", 8, 1 << 20);
  auto& heldout = a.integer("--heldout-examples", d.heldout_examples, "held-out instructions and pairs scored", 1, 1 << 20);
  auto& gsm = a.integer("--gsm8k-problems", d.gsm8k_problems, "held-out GSM8K problems answered (GSM8K-shaped --sft-data)", 0, 1 << 20);
  auto& eval_tasks = a.str("--eval-tasks", "LIST", "benchmark every stage on these `solar eval` tasks", d.eval_tasks);
  auto& eval_limit = a.integer("--eval-limit", d.eval_limit, "items per benchmark task", 1, 1'000'000'000);
  auto& eval_data = a.str("--eval-data", "DIR", "the benchmark task files (as `solar eval --data`)", d.eval_data);
  auto& no_eval = a.flag("--no-eval", "no benchmarks of the stages");
  if (!a.parse(argv)) return a.exit_code();
  pipeline::PipelineConfig c;
  c.corpus = corpus;
  c.output_dir = out;
  c.vocab_size = int(vocab);
  c.layers = int(layers);
  c.drop = int(drop);
  c.hidden = int(hidden);
  c.intermediate = int(ff);
  c.heads = int(heads);
  c.kv_heads = int(kv);
  c.seq_len = int(seq);
  c.batch_size = int(batch);
  c.base_steps = base_steps;
  c.dus_steps = dus_steps;
  c.lr = float(lr);
  c.eval_every = eval_every;
  c.eval_windows = int(windows);
  c.threads = int(threads);
  c.precision = precision;
  c.force = force;
  c.align = !no_align;
  c.sft_data = sft_data, c.dpo_data = dpo_data;
  c.sft_steps = sft_steps, c.dpo_steps = dpo_steps;
  check_range("--sft-lr", sft_lr, 1e-12, 10);
  check_range("--dpo-lr", dpo_lr, 1e-12, 10);
  check_range("--beta", beta, 1e-6, 1e6);
  c.sft_lr = float(sft_lr), c.dpo_lr = float(dpo_lr), c.beta = float(beta);
  c.align_max_length = int(max_len), c.heldout_examples = int(heldout), c.gsm8k_problems = int(gsm);
  c.eval_tasks = no_eval ? "" : eval_tasks;
  c.eval_limit = eval_limit;
  c.eval_data = eval_data;
  c.progress = true;  // drawn on a terminal, as `solar train` does
  pipeline::run_pipeline(c);
  return 0;
}

static Register reg("pipeline", "the tiny Solar recipe end to end: tokenizer, base, DUS, controls, report",
                    run_pipeline_cmd);

}  // namespace solar::cli
