"""solar upscale / solar merge outputs load in transformers and equal the same
operations done by hand in PyTorch (stacked layers, weighted average, slerp).

usage: python3 test_upscale_hf.py <path-to-solar>; needs torch and transformers (see common.py).
"""
import os
import subprocess
import sys
import tempfile

import common

common.skip_if_asked()
try:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM
except ImportError as e:
    common.missing(e)

SOLAR = sys.argv[1]


def solar(*args):
    r = subprocess.run([SOLAR, *args], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"solar {' '.join(args)} failed:\n{r.stdout}{r.stderr}")


def load(path):
    return LlamaForCausalLM.from_pretrained(path, torch_dtype=torch.float32).eval()


def build(config_dir, state, layers=None):
    cfg = LlamaConfig.from_pretrained(config_dir)
    if layers is not None:
        cfg.num_hidden_layers = layers
    m = LlamaForCausalLM(cfg).eval()
    if cfg.tie_word_embeddings:  # the head is the embedding; loading both would overwrite it
        state = {k: v for k, v in state.items() if k != "lm_head.weight"}
    missing, unexpected = m.load_state_dict(state, strict=False)
    assert not unexpected and all("lm_head" in k for k in missing), (missing, unexpected)
    m.tie_weights()
    return m


def logits(m, ids):
    with torch.no_grad():
        return m(ids).logits


def slerp(t, v0, v1):
    # mergekit: angle from the normalised tensors, weights applied to the originals.
    a, b = v0.double().flatten(), v1.double().flatten()
    na, nb = a.norm(), b.norm()
    dot = (a / (na if na > 1e-8 else 1)) @ (b / (nb if nb > 1e-8 else 1))
    if abs(dot) > 0.9995:
        return ((1 - t) * v0.double() + t * v1.double()).float()
    th = torch.arccos(dot)
    s0, s1 = torch.sin(th * (1 - t)) / torch.sin(th), torch.sin(th * t) / torch.sin(th)
    return (s0 * v0.double() + s1 * v1.double()).float()


def main():
    torch.manual_seed(0)
    ids = torch.randint(0, 512, (2, 24))
    with tempfile.TemporaryDirectory() as d:
        a, b = os.path.join(d, "a"), os.path.join(d, "b")
        solar("init", "--preset", "tiny", "--layers", "6", "--outtype", "f32", "-s", "1", "-o", a)
        solar("init", "--preset", "tiny", "--layers", "6", "--outtype", "f32", "-s", "2", "-o", b)
        A, B = load(a), load(b)
        sa, sb = A.state_dict(), B.state_dict()

        # Depth up-scaling, drop 2: layers [0, 4) then [2, 6) -> 8 layers.
        up = os.path.join(d, "up")
        solar("upscale", "-m", a, "--drop", "2", "-o", up)
        U = load(up)
        assert U.config.num_hidden_layers == 8
        src = [0, 1, 2, 3, 2, 3, 4, 5]
        state = {}
        for k, v in sa.items():
            if k.startswith("model.layers."):
                parts = k.split(".")
                i = int(parts[2])
                for j, s in enumerate(src):
                    if s == i:
                        state[".".join(parts[:2] + [str(j)] + parts[3:])] = v
            else:
                state[k] = v
        ref = build(a, state, layers=8)
        for k, v in ref.state_dict().items():
            assert torch.equal(v, U.state_dict()[k]), k
        lu, lr = logits(U, ids), logits(ref, ids)
        assert torch.equal(lu, lr), (lu - lr).abs().max()
        print(f"upscale: 8 layers, logits identical to stacked reference ({lu.shape})")

        # Linear merge, weights 1 and 3 (normalised to 0.25 / 0.75).
        lin = os.path.join(d, "lin")
        solar("merge", "--method", "linear", "-m", a, "-m", b, "--weight", "1", "--weight", "3", "-o", lin)
        L = load(lin)
        ref = build(a, {k: (sa[k].double() + 3 * sb[k].double()).div(4).float() for k in sa})
        err = (logits(L, ids) - logits(ref, ids)).abs().max().item()
        assert err < 1e-5, err
        print(f"linear: max |logit diff| vs manual average {err:.2e}")

        # Slerp with a gradient over layers, as mergekit evaluates it.
        sl = os.path.join(d, "slerp")
        solar("merge", "--method", "slerp", "-m", a, "-m", b, "--t", "0,0.5,1", "-o", sl)
        S = load(sl)
        n = 6
        state = {}
        for k in sa:
            if k.startswith("model.layers."):
                x = int(k.split(".")[2]) / (n - 1)
            else:
                x = 0.0 if "embed_tokens" in k else 1.0
            g = [0, 0.5, 1]
            sc = x * (len(g) - 1)
            i0 = int(sc)
            i1 = min(len(g) - 1, i0 + 1)
            t = (1 - (sc - i0)) * g[i0] + (sc - i0) * g[i1]
            state[k] = slerp(t, sa[k], sb[k])
        ref = build(a, state)
        for k, v in ref.state_dict().items():
            assert torch.allclose(v, S.state_dict()[k], atol=1e-6, rtol=1e-5), (k, (v - S.state_dict()[k]).abs().max())
        err = (logits(S, ids) - logits(ref, ids)).abs().max().item()
        assert err < 1e-5, err
        print(f"slerp: max |logit diff| vs manual slerp {err:.2e}")
    print("ok")


if __name__ == "__main__":
    main()
