"""solar merge equals mergekit on the same YAML, tensor by tensor, for every
deterministic method: linear, slerp (mergekit's standard recipe with two
sources per slice and filtered t), task_arithmetic, ties, model_stock.
DARE draws its masks from torch's RNG, so it is checked in merge_test.cpp.

usage: python3 test_merge_mergekit.py <path-to-solar>; needs mergekit, torch and
safetensors (see common.py). Runs offline on random checkpoints from `solar init`.
"""
import glob
import json
import os
import sys
import tempfile

import common
from common import solar

common.skip_if_asked()
os.environ["HF_HUB_OFFLINE"] = "1"
try:
    import torch
    import yaml
    from mergekit.config import MergeConfiguration
    from mergekit.merge import MergeOptions, run_merge
    from safetensors.torch import load_file
except ImportError as e:
    common.missing(e)


def tensors(folder):
    out = {}
    for f in sorted(glob.glob(os.path.join(folder, "*.safetensors"))):
        out.update({k: v.float() for k, v in load_file(f).items()})
    return out


RECIPES = {
    "linear": """
models:
  - model: {a}
    parameters: {{weight: 0.3}}
  - model: {b}
    parameters: {{weight: [1, 0.2]}}
  - model: {c}
    parameters: {{weight: 0.5}}
merge_method: linear
dtype: float32
""",
    "slerp": """
slices:
  - sources:
      - model: {a}
        layer_range: [0, {n}]
      - model: {b}
        layer_range: [0, {n}]
merge_method: slerp
base_model: {a}
parameters:
  t:
    - filter: self_attn
      value: [0, 0.5, 0.3, 0.7, 1]
    - filter: mlp
      value: [1, 0.5, 0.7, 0.3, 0]
    - value: 0.5
dtype: float32
""",
    "task_arithmetic": """
models:
  - model: {b}
    parameters: {{weight: 0.6}}
  - model: {c}
    parameters:
      weight:
        - filter: mlp
          value: [0.2, 0.9]
        - value: 0.4
merge_method: task_arithmetic
base_model: {a}
parameters: {{lambda: 0.8}}
dtype: float32
""",
    "ties": """
models:
  - model: {b}
    parameters: {{weight: 0.7, density: 0.5}}
  - model: {c}
    parameters: {{weight: 0.5, density: [0.3, 0.9]}}
merge_method: ties
base_model: {a}
parameters:
  normalize: true
  int8_mask: true
dtype: float32
""",
    "model_stock": """
models:
  - model: {b}
  - model: {c}
  - model: {d}
merge_method: model_stock
base_model: {a}
dtype: float32
""",
}

failures = 0
with tempfile.TemporaryDirectory() as tmp:
    paths = {}
    for i, name in enumerate("abcd"):
        paths[name] = os.path.join(tmp, name)
        solar("init", "--preset", "tiny", "--outtype", "f32", "--seed", str(100 + i), "-o", paths[name])
    n = int(json.load(open(os.path.join(paths["a"], "config.json")))["num_hidden_layers"])
    for method, template in RECIPES.items():
        text = template.format(n=n, **paths)
        recipe = os.path.join(tmp, method + ".yaml")
        with open(recipe, "w") as f:
            f.write(text)
        ours, theirs = os.path.join(tmp, method + "-solar"), os.path.join(tmp, method + "-mergekit")
        solar("merge", "--recipe", recipe, "-o", ours)
        run_merge(MergeConfiguration.model_validate(yaml.safe_load(text)), theirs,
                  options=MergeOptions(copy_tokenizer=False, lazy_unpickle=False, low_cpu_memory=False))
        x, y = tensors(ours), tensors(theirs)
        if set(x) != set(y):
            print(f"FAIL {method}: tensor names differ: {sorted(set(x) ^ set(y))}")
            failures += 1
            continue
        worst = 0.0
        for k in sorted(x):
            err = ((x[k] - y[k]).abs() / (y[k].abs() + 1e-3)).max().item()
            worst = max(worst, err)
            if not torch.allclose(x[k], y[k], rtol=1e-5, atol=1e-6):
                print(f"FAIL {method}: {k}: max |diff| {(x[k] - y[k]).abs().max().item():.3g}")
                failures += 1
        print(f"{method}: {len(x)} tensors, max relative difference {worst:.2e}")
sys.exit(1 if failures else 0)
