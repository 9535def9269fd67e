"""lm-evaluation-harness (PyPI lm_eval, HF backend) on a solar checkpoint: the
baseline of bench_eval. Same local files as `solar eval` (its own task YAMLs,
dataset pointed at them: tests/conformance/test_eval_lmeval.py builds both),
same items (--limit), same threads; prints one JSON line per task:
{"task": ..., "items": n, "seconds": s, "items_per_s": r, "batch_size": b}.
usage: eval_lmeval.py --model DIR --tasks arc_easy,mmlu_anatomy --limit N --num-fewshot K
                      [--threads 2] [--batch-size 1]
"""
import argparse
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../tests/conformance"))
sys.argv_saved, sys.argv = sys.argv, sys.argv[:1]
import test_eval_lmeval as conf  # noqa: E402  (local_datasets, task_yamls)
sys.argv = sys.argv_saved

import torch  # noqa: E402
import lm_eval  # noqa: E402
from lm_eval.models.huggingface import HFLM  # noqa: E402
from lm_eval.tasks import TaskManager  # noqa: E402
from transformers import AutoTokenizer, LlamaForCausalLM  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--tasks", required=True)
    ap.add_argument("--limit", type=int, required=True)
    ap.add_argument("--num-fewshot", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    tasks = a.tasks.split(",")
    conf.SUBJECTS = [t[len("mmlu_"):] for t in tasks if t.startswith("mmlu_")]
    model = LlamaForCausalLM.from_pretrained(a.model, dtype=torch.float32).eval()
    tok = AutoTokenizer.from_pretrained(a.model)
    lm = HFLM(pretrained=model, tokenizer=tok, batch_size=a.batch_size)
    with tempfile.TemporaryDirectory() as d:
        ydir = conf.task_yamls(d, conf.local_datasets(d))
        tm = TaskManager(include_path=ydir, include_defaults=False)
        for t in tasks:
            name = "local_" + t
            k = a.num_fewshot if not t.startswith("mmlu_") else 5
            lm_eval.simple_evaluate(model=lm, tasks=[name], num_fewshot=k, limit=2, task_manager=tm)  # warm-up
            start = time.perf_counter()
            r = lm_eval.simple_evaluate(model=lm, tasks=[name], num_fewshot=k, limit=a.limit, task_manager=tm)
            s = time.perf_counter() - start
            n = r["n-samples"][name]["effective"]
            print(json.dumps({"task": t, "items": n, "seconds": s, "items_per_s": n / s, "batch_size": a.batch_size}),
                  flush=True)


if __name__ == "__main__":
    main()
