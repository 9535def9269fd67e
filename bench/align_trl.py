#!/usr/bin/env python3
"""TRL baseline for bench_align: SFTTrainer and DPOTrainer on a randomly
initialised LlamaForCausalLM of a solar preset's shape, with the same rows,
sequence length, batch and threads as bench_align's own runs; prints one JSON
line of tokens/s (the fastest step after a warm-up one, as bench_align times).

Data: random token ids written as words "w<id>" of a word-level tokenizer, so
TRL's own tokenization gives back exactly those ids.
  SFT: rows of --seq tokens, prompt/completion halves, loss on the completion.
  DPO: --rows/2 pairs a step (2 rows each: chosen and rejected) of a --seq/4
       prompt and completions filling the row; the reference log-probs either
       precomputed before training (precompute_ref_log_probs=True, as solar
       caches them) or run every step (TRL's default).

usage: align_trl.py --preset 10m --seq 256 --rows 8 --threads 2 --steps 4
Exits 77 when trl, transformers or torch is not importable.
"""
import argparse
import copy
import json
import os
import random
import sys
import tempfile
import time

try:
    import torch
    from datasets import Dataset
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import WhitespaceSplit
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast, TrainerCallback
    from trl import DPOConfig, DPOTrainer, SFTConfig, SFTTrainer
except ImportError:
    sys.exit(77)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from train_torch import PRESETS  # noqa: E402  (the preset shapes, as src/model/config.cpp)


class StepTimes(TrainerCallback):
    def __init__(self):
        self.times, self.t0 = [], 0.0

    def on_step_begin(self, args, state, control, **kw):
        self.t0 = time.perf_counter()

    def on_step_end(self, args, state, control, **kw):
        self.times.append(time.perf_counter() - self.t0)


def model_and_tokenizer(preset):
    d, ff, L, h, kv, vocab, tied = PRESETS[preset]
    cfg = LlamaConfig(hidden_size=d, intermediate_size=ff, num_hidden_layers=L, num_attention_heads=h,
                      num_key_value_heads=kv, vocab_size=vocab, tie_word_embeddings=tied, rms_norm_eps=1e-5,
                      max_position_embeddings=4096, rope_theta=10000.0, bos_token_id=1, eos_token_id=2,
                      pad_token_id=0)
    torch.manual_seed(0)
    model = LlamaForCausalLM(cfg)
    wl = Tokenizer(WordLevel({f"w{i}": i for i in range(vocab)}, unk_token="w3"))
    wl.pre_tokenizer = WhitespaceSplit()
    tok = PreTrainedTokenizerFast(tokenizer_object=wl, pad_token="w0", eos_token="w2", unk_token="w3")
    return model, tok, vocab


def words(rng, n, vocab):
    return " ".join(f"w{rng.randrange(4, vocab)}" for _ in range(n))


def common(a, out):
    return dict(output_dir=out, per_device_train_batch_size=a.rows, max_steps=a.steps + 1, learning_rate=1e-5,
                logging_strategy="no", save_strategy="no", report_to=[], use_cpu=True, dataloader_num_workers=0,
                disable_tqdm=True, seed=0, bf16=a.bf16)


def best(cb):
    return min(cb.times[1:]) if len(cb.times) > 1 else float("nan")


def sft(a, out):
    model, tok, vocab = model_and_tokenizer(a.preset)
    rng = random.Random(1)
    half = a.seq // 2
    n = a.rows * (a.steps + 1)
    # A row is the prompt, the completion and TRL's EOS: --seq tokens.
    ds = Dataset.from_dict({"prompt": [words(rng, half, vocab) for _ in range(n)],
                            "completion": [words(rng, a.seq - half - 1, vocab) for _ in range(n)]})
    cfg = SFTConfig(**common(a, out), max_length=a.seq, packing=False, completion_only_loss=True)
    cb = StepTimes()
    SFTTrainer(model=model, args=cfg, train_dataset=ds, processing_class=tok, callbacks=[cb]).train()
    return a.rows * a.seq / best(cb)


def dpo(a, out, precompute):
    model, tok, vocab = model_and_tokenizer(a.preset)
    rng = random.Random(2)
    pairs = max(1, a.rows // 2)
    p = a.seq // 4
    n = pairs * (a.steps + 1)
    ds = Dataset.from_dict({"prompt": [words(rng, p, vocab) for _ in range(n)],
                            "chosen": [words(rng, a.seq - p - 1, vocab) for _ in range(n)],
                            "rejected": [words(rng, a.seq - p - 1, vocab) for _ in range(n)]})
    c = common(a, out)
    c["per_device_train_batch_size"] = pairs
    cfg = DPOConfig(**c, max_length=a.seq, precompute_ref_log_probs=precompute)
    cb = StepTimes()
    # A separate reference of the same weights (TRL loads one from the policy's path otherwise).
    DPOTrainer(model=model, ref_model=copy.deepcopy(model), args=cfg, train_dataset=ds, processing_class=tok,
               callbacks=[cb]).train()
    return 2 * pairs * a.seq / best(cb)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="10m", choices=sorted(PRESETS))
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--rows", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--bf16", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    with tempfile.TemporaryDirectory() as out:
        r = {"sft_tokens_per_s": sft(a, out), "dpo_tokens_per_s": dpo(a, out, True),
             "dpo_ref_each_step_tokens_per_s": dpo(a, out, False)}
    print(json.dumps(r))


if __name__ == "__main__":
    main()
