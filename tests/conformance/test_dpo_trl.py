"""solar dpo against TRL's DPOTrainer: per-pair completion log-probs and each loss type.

A random tiny checkpoint written by `solar init` (policy) and another (reference),
a handful of pairs; `solar dpo --dump-logps` writes solar's tokens, log-probs and
losses; TRL's own DPOTrainer._compute_loss (the concatenated forward with its
fused LM head) computes the same from those tokens. Agreement within 1e-5.

usage: python3 test_dpo_trl.py <path-to-solar>; needs torch, transformers, trl (see common.py)
and ../shared/data/models/stories260K/tok512.bin.
"""
import collections
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import types

import common

common.skip_if_asked()
try:
    import torch
    from transformers import LlamaForCausalLM
    from trl import DPOTrainer
    from trl.trainer.utils import add_fused_lm_head
except ImportError as e:
    common.missing(e)

SOLAR = sys.argv[1]
TOK = os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../../shared/data/models/stories260K/tok512.bin")
if not os.path.exists(TOK):
    common.missing(TOK)


def solar(*args):
    r = subprocess.run([SOLAR, *args], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"solar {' '.join(args)} failed:\n{r.stdout}{r.stderr}")


def load(path, outputs=("log_probs",)):
    m = LlamaForCausalLM.from_pretrained(path, torch_dtype=torch.float64).eval()
    add_fused_lm_head(m, outputs=outputs)  # as DPOTrainer.__init__ does for the policy and the reference
    return m


def trl_self(loss_type, beta, eps, model, ref):
    """The attributes DPOTrainer._compute_loss reads, as DPOTrainer.__init__ sets them."""
    return types.SimpleNamespace(
        model=model, ref_model=ref, accelerator=types.SimpleNamespace(
            device=torch.device("cpu"), gather_for_metrics=lambda x: x, gather=lambda x: x,
            autocast=contextlib.nullcontext, unwrap_model=lambda m: m),
        args=types.SimpleNamespace(gradient_checkpointing_kwargs=None, use_liger_kernel=False),
        aux_loss_enabled=False, ld_alpha=None, precompute_ref_logps=False, loss_types=[loss_type],
        loss_weights=[1.0], beta=beta, label_smoothing=eps, f_divergence_type="reverse_kl",
        f_alpha_divergence_coef=1.0, use_weighting=False, router_aux_loss_coef=0.0,
        _metrics={"train": collections.defaultdict(list), "eval": collections.defaultdict(list)},
        _total_train_tokens=0, _tp_size=1)


def main():
    with tempfile.TemporaryDirectory() as d:
        solar("init", "--preset", "tiny", "--outtype", "f32", "--tokenizer", TOK, "-o", f"{d}/policy")
        solar("init", "--preset", "tiny", "--outtype", "f32", "--tokenizer", TOK, "-s", "77", "-o", f"{d}/ref")
        pairs = [
            {"prompt": "Once upon a time, there was a", "chosen": " little girl named Lily.", "rejected": " big dog."},
            {"prompt": "Tom liked to", "chosen": " play in the park with his friends.", "rejected": " sleep."},
            {"chosen": "\n\nHuman: Where is the ball?\n\nAssistant: Under the bed.",
             "rejected": "\n\nHuman: Where is the ball?\n\nAssistant: I do not know, sorry."},
            {"prompt": "The sun was", "chosen": " warm", "rejected": " cold and the sky was grey"},
        ]
        with open(f"{d}/pairs.jsonl", "w") as f:
            for p in pairs:
                f.write(json.dumps(p) + "\n")
        beta, eps = 0.2, 0.15
        solar("dpo", "-m", f"{d}/policy", "--ref-model", f"{d}/ref", "--data", f"{d}/pairs.jsonl", "-o", f"{d}/run",
              "--precision", "f32", "--beta", str(beta), "--label-smoothing", str(eps), "--max-length", "64",
              "--dump-logps", f"{d}/dump.json")
        dump = json.load(open(f"{d}/dump.json"))["pairs"]
        assert len(dump) == len(pairs), len(dump)
        policy = load(f"{d}/policy", ("log_probs", "entropy", "mean_logits", "is_top1"))
        ref = load(f"{d}/ref")

        # TRL's batch layout: [chosen rows; rejected rows], right-padded, completion_mask on completions.
        rows = [p["prompt_ids"] + p["chosen_ids"] for p in dump] + [p["prompt_ids"] + p["rejected_ids"] for p in dump]
        comp = [[0] * len(p["prompt_ids"]) + [1] * len(p["chosen_ids"]) for p in dump] + \
               [[0] * len(p["prompt_ids"]) + [1] * len(p["rejected_ids"]) for p in dump]
        T = max(map(len, rows))
        ids = torch.tensor([r + [0] * (T - len(r)) for r in rows])
        att = torch.tensor([[1] * len(r) + [0] * (T - len(r)) for r in rows])
        cm = torch.tensor([c + [0] * (T - len(c)) for c in comp])
        inputs = {"input_ids": ids, "attention_mask": att, "completion_mask": cm}

        worst = 0.0
        n = len(dump)
        with torch.no_grad():
            for name, model, key in (("policy", policy, "policy"), ("ref", ref, "reference")):
                lc, lr = DPOTrainer.compute_ref_log_probs(trl_self("sigmoid", beta, eps, policy, ref), model, inputs)
                for i, p in enumerate(dump):
                    for got, want in ((p[f"{key}_chosen_logps"], lc[i]), (p[f"{key}_rejected_logps"], lr[i])):
                        err = abs(got - float(want))
                        worst = max(worst, err)
                        assert err < 1e-5, f"{name} log-prob of pair {i}: solar {got}, TRL {float(want)}"
            for lt in ("sigmoid", "ipo", "hinge", "robust"):
                loss = DPOTrainer._compute_loss(trl_self(lt, beta, eps, policy, ref), policy, inputs, False)
                ours = sum(p["losses"][lt] for p in dump) / n
                err = abs(ours - float(loss))
                worst = max(worst, err)
                assert err < 1e-5, f"{lt}: solar {ours}, TRL {float(loss)}"
                print(f"{lt}: solar {ours:.8f} TRL {float(loss):.8f}")
        print(f"OK: {n} pairs, log-probs and 4 loss types within 1e-5 of TRL (worst {worst:.2e})")


main()
