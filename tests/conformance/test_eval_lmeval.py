"""solar eval == lm-evaluation-harness (PyPI lm_eval, HF backend), item for item.

One random Llama checkpoint (the Llama-2 tokenizer, weights large enough that
choices are far from ties), the same local files on both sides:
  - lm_eval 0.4: its own task YAMLs (arc_easy, mmlu, winogrande, truthfulqa_mc2,
    gsm8k) copied from the installed package, with only the dataset pointed at
    JSON files converted from ../shared/data/eval; `solar eval --harness 0.4`.
    Every request's context and continuation strings, every log-likelihood
    (within 1e-4), every prediction, every greedy generation and every
    per-item metric must agree; so must the aggregated metrics and stderrs.
  - the leaderboard's pinned commit b281b09 is not on PyPI: its document
    shuffle and shot sampling (random.Random(42), evaluator.py and
    base.py there) are re-done here with Python's random module and compared
    with `solar eval --harness b281b09` (which items, which shots, in which order).
Run: python3 test_eval_lmeval.py SOLAR_BIN
"""
import json
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile

import common

common.skip_if_asked()
try:
    import torch
    import yaml
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM
    import lm_eval
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager
except ImportError as e:
    common.missing(e)

SOLAR = sys.argv[1] if len(sys.argv) > 1 else "build/solar"
HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "../../../shared/data")
EVAL = os.path.join(DATA, "eval")
TOK = os.path.join(DATA, "tokenizers/llama2.model")
TASKS = os.path.join(os.path.dirname(lm_eval.__file__), "tasks")
LL_TOL = 1e-4
N = 12          # items per task
SUBJECTS = ["anatomy", "college_physics"]


def run(*args):
    r = subprocess.run([SOLAR, *args], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"solar {' '.join(args)} failed:\n{r.stdout}{r.stderr}")
    return r.stdout


def make_model(d):
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=32000, hidden_size=64, intermediate_size=160, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=640,
                      rms_norm_eps=1e-5, tie_word_embeddings=False, bos_token_id=1, eos_token_id=2)
    m = LlamaForCausalLM(cfg).float().eval()
    with torch.no_grad():  # std 0.02 gives near-uniform next-token distributions: near-ties everywhere
        for name, p in m.named_parameters():
            if p.dim() == 2:
                p.normal_(0, 0.15 if "embed" in name or "lm_head" in name else 0.08)
    m.save_pretrained(d, safe_serialization=True)
    shutil.copy(TOK, os.path.join(d, "tokenizer.model"))
    return m


def jsonl(path, rows):
    with open(path, "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")


def read_jsonl(path):
    with open(path) as f:
        return [json.loads(l) for l in f if l.strip()]


def csv_rows(path):
    import csv
    with open(path, newline="") as f:
        return list(csv.reader(f))


def split_multi_answer(ans):
    """TruthfulQA's utilities.split_multi_answer(sep=';', close=True)."""
    out = []
    for a in ans.strip().split(";"):
        a = a.strip()
        if a:
            out.append(a if a[-1] == "." else a + ".")
    return out


def local_datasets(d):
    """The shared files in the HF datasets' own layouts (what the official YAMLs read)."""
    files = {}
    arc = []
    for r in read_jsonl(os.path.join(EVAL, "arc_easy.jsonl")):
        q = r["query"][len("Question: "):] if r["query"].startswith("Question: ") else r["query"]
        labels = "ABCDE"[:len(r["choices"])]
        arc.append({"question": q, "choices": {"text": r["choices"], "label": list(labels)},
                    "answerKey": labels[r["gold"]]})
    files["arc"] = os.path.join(d, "arc.jsonl")
    jsonl(files["arc"], arc)
    wino = []
    for r in read_jsonl(os.path.join(EVAL, "winogrande.jsonl")):
        # llm-foundry keeps the two filled-in prefixes; rebuild the blank sentence.
        a, b = r["context_options"]
        i = 0
        while i < min(len(a), len(b)) and a[i] == b[i]:
            i += 1
        wino.append({"sentence": a[:i] + "_ " + r["continuation"], "option1": a[i:], "option2": b[i:],
                     "answer": str(r["gold"] + 1)})
    files["winogrande"] = os.path.join(d, "winogrande.jsonl")
    jsonl(files["winogrande"], wino)
    for s in SUBJECTS:
        for split, sub in (("test", "val"), ("dev", "dev")):
            rows = [{"question": r[0], "subject": s, "choices": r[1:5], "answer": "ABCD".index(r[5].strip())}
                    for r in csv_rows(os.path.join(EVAL, f"mmlu/{sub}/{s}_{sub}.csv"))]
            files[f"mmlu_{s}_{split}"] = os.path.join(d, f"mmlu_{s}_{split}.jsonl")
            jsonl(files[f"mmlu_{s}_{split}"], rows)
    rows = csv_rows(os.path.join(EVAL, "truthfulqa_mini.csv"))
    h = rows[0]
    tqa = []
    for r in rows[1:]:
        c = dict(zip(h, r))
        best = split_multi_answer(c["Best Answer"])
        true, false = split_multi_answer(c["Correct Answers"]), split_multi_answer(c["Incorrect Answers"])
        tqa.append({"question": c["Question"],
                    "mc1_targets": {"choices": best + false, "labels": [1] + [0] * len(false)},
                    "mc2_targets": {"choices": true + false, "labels": [1] * len(true) + [0] * len(false)}})
    files["truthfulqa"] = os.path.join(d, "truthfulqa.jsonl")
    jsonl(files["truthfulqa"], tqa)
    files["gsm8k_test"] = os.path.join(EVAL, "gsm8k_test.jsonl")
    files["gsm8k_train"] = os.path.join(DATA, "instruct/gsm8k_train.jsonl")
    return files


def task_yamls(d, files):
    """lm_eval's own task definitions, with the dataset pointed at local JSON."""
    y = os.path.join(d, "tasks")
    os.makedirs(y)
    for sub, names in (("arc", ["arc_easy.yaml"]), ("winogrande", ["default.yaml", "preprocess_winogrande.py"]),
                       ("truthfulqa", ["truthfulqa_mc1.yaml", "truthfulqa_mc2.yaml", "utils.py"]),
                       ("gsm8k", ["gsm8k.yaml"]), ("mmlu/default", ["_default_template_yaml"])):
        for n in names:
            shutil.copy(os.path.join(TASKS, sub, n), os.path.join(y, n))

    def local(name, base, data_files, **extra):
        cfg = {"include": base, "task": name, "dataset_path": "json", "dataset_name": None,
               "dataset_kwargs": {"data_files": data_files}, "tag": []}
        cfg.update(extra)
        with open(os.path.join(y, name + ".yaml"), "w") as f:
            yaml.safe_dump(cfg, f)

    local("local_arc_easy", "arc_easy.yaml", {"test": files["arc"]}, training_split=None, validation_split=None)
    # Shots drawn from the evaluated split itself, leaving the item out (fewshot_split == test_split).
    local("local_arc_easy_3shot", "arc_easy.yaml", {"test": files["arc"]}, training_split=None,
          validation_split=None, fewshot_split="test")
    local("local_winogrande", "default.yaml", {"validation": files["winogrande"]}, training_split=None)
    local("local_truthfulqa_mc2", "truthfulqa_mc2.yaml", {"validation": files["truthfulqa"]})
    local("local_gsm8k", "gsm8k.yaml", {"test": files["gsm8k_test"], "train": files["gsm8k_train"]},
          generation_kwargs={"until": ["Question:", "</s>", "<|im_end|>"], "do_sample": False,
                             "temperature": 0.0, "max_gen_toks": 24})
    for s in SUBJECTS:
        local(f"local_mmlu_{s}", "_default_template_yaml",
              {"test": files[f"mmlu_{s}_test"], "dev": files[f"mmlu_{s}_dev"]},
              description=f"The following are multiple choice questions (with answers) about {s.replace('_', ' ')}.\n\n")
    return y


def lm_eval_run(lm, yaml_dir, tasks, num_fewshot, limit):
    r = lm_eval.simple_evaluate(model=lm, tasks=tasks, num_fewshot=num_fewshot, limit=limit, log_samples=True,
                                task_manager=TaskManager(include_path=yaml_dir, include_defaults=False))
    return r


def compare_ll(name, ours, theirs, res_ours, res_theirs, metrics):
    """ours: solar's sample records (file order of doc_id); theirs: lm_eval's samples."""
    worst, margin = 0.0, float("inf")
    by_id = {s["doc_id"]: s for s in theirs}
    assert len(ours) == len(theirs), f"{name}: solar scored {len(ours)} items, lm_eval {len(theirs)}"
    for o in ours:
        t = by_id[o["doc_id"]]
        args = [a for a in t["arguments"]]
        ctxs = o["contexts"] if "contexts" in o else [o["context"]] * len(o["loglikelihoods"])
        conts = [o["continuation"]] * len(ctxs) if "contexts" in o else [" " + c for c in o["choices"]]
        for i, (c, k) in enumerate(args):
            assert c == ctxs[i], f"{name} doc {o['doc_id']} request {i}: context differs\nsolar:  {ctxs[i]!r}\nlm_eval: {c!r}"
            assert k == conts[i], f"{name} doc {o['doc_id']} request {i}: continuation {conts[i]!r} vs {k!r}"
        lls = [float(r[0][0]) if isinstance(r[0], (list, tuple)) else float(r[0]) for r in t["resps"]]
        greedy = [bool(r[0][1]) for r in t["resps"]]
        for i, (a, b) in enumerate(zip(o["loglikelihoods"], lls)):
            err = abs(a - b)
            worst = max(worst, err)
            assert err < LL_TOL, f"{name} doc {o['doc_id']} choice {i}: solar {a}, lm_eval {b}"
        assert o["is_greedy"] == greedy, f"{name} doc {o['doc_id']}: is_greedy {o['is_greedy']} vs {greedy}"
        s = sorted(lls, reverse=True)
        if len(s) > 1:
            margin = min(margin, s[0] - s[1])
        for m in metrics:
            a, b = o["metrics"][m + ",none"], float(t[m])
            assert abs(a - b) < 1e-6, f"{name} doc {o['doc_id']}: {m} solar {a}, lm_eval {b}"
    for m in metrics:
        a, b = res_ours[m + ",none"], res_theirs[m + ",none"]
        assert abs(a - b) < 1e-6, f"{name}: {m} solar {a}, lm_eval {b}"
        sa, sb = res_ours[m + "_stderr,none"], res_theirs[m + "_stderr,none"]
        assert sa == sb == "N/A" or abs(float(sa) - float(sb)) < 1e-6, f"{name}: {m} stderr solar {sa}, lm_eval {sb}"
    print(f"  {name}: {len(ours)} items, {sum(len(o['loglikelihoods']) for o in ours)} log-likelihoods, "
          f"max |diff| {worst:.2e}, smallest top-2 gap {margin:.3f}")
    return worst


def pinned_plan(n_docs, docs_equal, k, limit):
    """b281b09's evaluator.evaluate + Task.fewshot_context for a task without a
    training split: shuffle with Random(42), keep `limit`, then per document
    sample k+1 from the split in file order and drop the document itself."""
    rnd = random.Random()
    rnd.seed(42)
    order = list(range(n_docs))
    rnd.shuffle(order)
    order = order[:limit]
    plan = []
    for i in order:
        shots = [j for j in rnd.sample(range(n_docs), k + 1) if not docs_equal(i, j)][:k] if k else []
        plan.append((i, shots))
    return plan


def main():
    with tempfile.TemporaryDirectory() as d:
        hf = make_model(f"{d}/model")
        tok = AutoTokenizer.from_pretrained(f"{d}/model")
        files = local_datasets(d)
        ydir = task_yamls(d, files)
        lm = HFLM(pretrained=hf, tokenizer=tok, batch_size=1, max_length=640)
        common_args = ["-m", f"{d}/model", "--harness", "0.4", "--data", EVAL, "-t", "2"]

        # Zero-shot multiple choice, partial scoring, mc2 and MMLU's first-n shots.
        worst = 0.0
        cases = [("arc_easy", "local_arc_easy", 0, ["acc", "acc_norm"], []),
                 ("arc_easy", "local_arc_easy_3shot", 3, ["acc", "acc_norm"], []),
                 ("winogrande", "local_winogrande", 0, ["acc"], []),
                 ("truthfulqa_mc2", "local_truthfulqa_mc2", 0, ["acc"], [])]
        cases += [(f"mmlu_{s}", f"local_mmlu_{s}", 5, ["acc"], []) for s in SUBJECTS]
        for ours_name, theirs_name, k, metrics, _ in cases:
            out = f"{d}/solar-{theirs_name}"
            run("eval", *common_args, "--tasks", ours_name, "--num-fewshot", str(k), "--limit", str(N), "-o", out)
            ours = read_jsonl(f"{out}/samples_{ours_name}.jsonl")
            res_ours = json.load(open(f"{out}/results.json"))["results"][ours_name]
            r = lm_eval_run(lm, ydir, [theirs_name], k, N)
            worst = max(worst, compare_ll(f"{ours_name} ({k}-shot)", ours, r["samples"][theirs_name], res_ours,
                                          r["results"][theirs_name], metrics))

        # GSM8K: 5 shots from the train file, greedy until a stop sequence.
        out = f"{d}/solar-gsm8k"
        run("eval", *common_args, "--tasks", "gsm8k", "--limit", "3", "--max-gen-toks", "24", "-o", out)
        ours = read_jsonl(f"{out}/samples_gsm8k.jsonl")
        r = lm_eval_run(lm, ydir, ["local_gsm8k"], 5, 3)
        theirs = {(s["doc_id"], s["filter"]): s for s in r["samples"]["local_gsm8k"]}
        assert len(theirs) == 2 * len(ours), f"gsm8k: lm_eval has {len(theirs)} samples for {len(ours)} items"
        for o in ours:
            for f in ("strict-match", "flexible-extract"):
                t = theirs[(o["doc_id"], f)]
                assert o["context"] == t["arguments"][0][0], f"gsm8k doc {o['doc_id']}: prompt differs"
                assert o["generation"] == t["resps"][0][0], \
                    f"gsm8k doc {o['doc_id']}: generation differs\nsolar:  {o['generation']!r}\nlm_eval: {t['resps'][0][0]!r}"
                assert o["extracted"][f] == t["filtered_resps"][0], \
                    f"gsm8k doc {o['doc_id']} {f}: solar extracted {o['extracted'][f]!r}, lm_eval {t['filtered_resps'][0]!r}"
                assert o["metrics"][f"exact_match,{f}"] == float(t["exact_match"]), f"gsm8k doc {o['doc_id']} {f}"
            print(f"  gsm8k doc {o['doc_id']}: identical {len(o['generation'])}-character generation and extractions")
        res = json.load(open(f"{out}/results.json"))["results"]["gsm8k"]
        for f in ("strict-match", "flexible-extract"):
            a, b = res[f"exact_match,{f}"], r["results"]["local_gsm8k"][f"exact_match,{f}"]
            assert abs(a - b) < 1e-9, f"gsm8k exact_match,{f}: solar {a}, lm_eval {b}"

        # The leaderboard's pinned harness: which items and which shots.
        out = f"{d}/solar-pinned"
        run("eval", "-m", f"{d}/model", "--harness", "b281b09", "--data", EVAL, "--tasks", "arc_easy",
            "--num-fewshot", "3", "--limit", "15", "-o", out)
        ours = read_jsonl(f"{out}/samples_arc_easy.jsonl")
        docs = read_jsonl(os.path.join(EVAL, "arc_easy.jsonl"))
        want = pinned_plan(len(docs), lambda i, j: docs[i] == docs[j], 3, 15)
        got = [(o["doc_id"], o["shots"]) for o in ours]
        assert got == [(i, s) for i, s in want], f"pinned plan differs:\nsolar:  {got[:4]}\nharness: {want[:4]}"
        for o, (i, shots) in zip(ours, want):
            q = lambda j: "Question: " + docs[j]["query"][len("Question: "):] + "\nAnswer:"
            ctx = "".join(q(j) + " " + docs[j]["choices"][docs[j]["gold"]] + "\n\n" for j in shots) + q(i)
            assert o["context"] == ctx, f"pinned doc {i}: context differs"
        print(f"  b281b09 arc_easy 3-shot: the same 15 items and 45 shots as random.Random(42) gives")
        print(f"PASS: solar eval matches lm_eval {lm_eval.__version__} (max |log-likelihood diff| {worst:.2e})")


if __name__ == "__main__":
    main()
