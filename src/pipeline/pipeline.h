// solar/pipeline/pipeline.h — the tiny Solar recipe, end to end.
//
// On real text a fresh Debian machine installs (python3.11-doc's Sphinx
// sources): train a tokenizer, tokenize, pretrain an n-layer base, depth
// up-scale it to 2(n−m) layers, continue pretraining, and compare on held-out
// text against two controls given the same total training compute:
//   dus          base (phase A) → up-scale → continued pretraining (phase B)
//   base-longer  base (phase A) → the base trained further, B's compute
//   deep-scratch 2(n−m) layers from scratch with A + B's compute
// Compute is counted as training FLOPs: 6·params + attention per token.
// Every step writes its outputs atomically and is skipped when they exist,
// so an interrupted pipeline resumes where it stopped (training steps resume
// from their last checkpoint); OUT/pipeline_state.json keeps the precision
// and corpus (a resume with others is refused) and each step's time over all
// invocations (a step ended by a signal is counted up to the last file it
// wrote, on the next invocation). Every step runs in this process. The result: OUT/report.md and report.html with loss curves
// and a table of held-out loss and perplexity per arm, with the precision,
// CPU and total wall time.
#pragma once
#include <cstdint>
#include <string>

#include "model/config.h"

namespace solar::pipeline {

struct PipelineConfig {
  std::string corpus = "/usr/share/doc/python3.11/html/_sources";  // a folder or one text file
  std::string output_dir = "runs/tiny-solar";
  // Sized so the whole recipe (five training runs of ~2 TFLOP-minutes each)
  // finishes within 15 minutes on 2 cores without BF16 hardware.
  int vocab_size = 2048;
  int layers = 8, drop = 2;  // n, m
  int hidden = 128, intermediate = 352, heads = 4, kv_heads = 2;
  int seq_len = 128, batch_size = 16;
  int64_t base_steps = 350;  // phase A
  int64_t dus_steps = 240;   // phase B, for the up-scaled model
  float lr = 2e-3f;
  int64_t eval_every = 50;
  int eval_windows = 64;  // held-out windows for the final comparison
  int threads = 0;
  // f32 by default, unlike `solar train`'s auto: the recipe's figures are then
  // the same on every CPU, with or without bf16 hardware.
  std::string precision = "f32";  // f32, bf16 or auto
  uint64_t seed = 1234;
  bool force = false;
  // The second half (align.h): SFT → two DPO runs → merges, on data built
  // from the corpus (docs_pairs.h) unless files are named.
  bool align = true;
  std::string sft_data, dpo_data;  // JSONL as `solar sft` / `solar dpo` read them; "" = from the corpus
  int64_t sft_steps = 120, dpo_steps = 40;
  int sft_batch = 8, dpo_batch = 4;  // rows / pairs per step
  float sft_lr = 1e-3f, dpo_lr = 5e-5f, beta = 0.1f;
  int align_max_length = 192;  // tokens per example (at most 4 × seq_len, the model's context)
  int heldout_examples = 100;  // held-out instructions and pairs scored per model
  int gsm8k_problems = 20;     // generated answers scored when --sft-data is GSM8K-shaped
  // Benchmarks of every stage (benchmarks.h): `solar eval` on these tasks.
  std::string eval_tasks = "arc_easy,winogrande,truthfulqa_mc2";  // "" = none
  std::string eval_data = "../shared/data/eval";
  int64_t eval_limit = 200;  // items per task
  bool progress = false;  // progress bars of tokenizing and training on stderr (the CLI's choice)
};

// Training FLOPs per token for a model at sequence length T (forward +
// backward: 6 per parameter-token plus 12·L·T·d for attention scores).
double train_flops_per_token(const model::ModelConfig& c, int seq_len);

// Runs (or resumes) the recipe in this process, calling the library for each
// step; messages go to the log sink (core/log.h), source "pipeline". Throws
// solar::Error on failure.
void run_pipeline(const PipelineConfig& cfg);

}  // namespace solar::pipeline
