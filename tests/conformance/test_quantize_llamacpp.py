"""`solar quantize` against llama.cpp's own quantizer (llama_model_quantize).

The same input goes through both: `solar quantize -m IN --type T` and
llama-cpp-python's llama_model_quantize (llama_model_quantize_default_params(),
ftype set, 1 thread). Per tensor, read back with gguf-py's GGUFReader:
  - the same names, shapes and types (the mix, the fallbacks);
  - the same bytes. Q8_0, Q4_0 and the fallback types must match exactly;
    Q4_K/Q6_K/Q5_K should too, and if a tensor's bytes differ, the
    dequantized error of solar's against the F32 original may exceed
    llama.cpp's by no more than K_MARGIN (both printed);
  - the metadata: every key and value llama.cpp writes (GGUF inputs: carried
    over; general.file_type, general.quantization_version set).
(Reported, not required: whether the whole files are byte-identical, which
they are when metadata order and alignment padding match too.)
Then llama.cpp must load and run every file solar writes: the logits of a
few tokens within LOGIT_TOL of llama.cpp's on its own file (identical bytes
give identical logits).

Models (solar init, random weights, Llama 2's 512-piece stories260K
tokenizer): "k8" — hidden 256, ffn 768, 8 layers, untied head, so every
K-quant applies and Q4_K_M's use_more_bits picks layers 0, 3, 6, 7 — with
edge rows written in (all zero, constant, tiny, large, one outlier), as F32
and F16 GGUFs and as F32 and BF16 HF folders (solar reads the folder,
llama.cpp the `solar convert` GGUF of it); "tied4" — tied embeddings; and the real
stories260K (dim 64, ffn 172: every K-quant falls back, ffn_down to F16).
Also: requantizing is refused without --allow-requantize and matches
llama.cpp with it; --pure and the overrides match llama.cpp's.
Run: python3 test_quantize_llamacpp.py SOLAR_BIN
Needs numpy, gguf, llama_cpp and the shared data (see common.py).
"""
import json
import os
import subprocess
import sys
import tempfile

import common

common.skip_if_asked()
# Imports numpy, gguf and llama_cpp, failing (not skipping) when one is missing.
from test_gguf_llamacpp import DATA, SOLAR, gguf, llama_cpp, np
FTYPES = {"q8_0": 7, "q4_0": 2, "q4_k_m": 15, "q6_k": 18}
GGML = {"f32": 0, "f16": 1, "q8_0": 8, "q6_k": 14, "q4_k": 12, "q5_0": 6}
K_TYPES = {"Q4_K", "Q5_K", "Q6_K"}
K_MARGIN = 1e-3   # relative: solar's RMS error may exceed llama.cpp's by 0.1% on a tensor whose bytes differ
LOGIT_TOL = 1e-3  # max |logit difference| / max |logit|
PROMPT = "Once upon a time, there was a little girl named Lily."


def run(*args, ok=True):
    r = subprocess.run([SOLAR, *args], capture_output=True, text=True)
    if ok and r.returncode != 0:
        sys.exit(f"solar {' '.join(args)} failed:\n{r.stdout}{r.stderr}")
    return r


def llama_quantize(src, dst, ftype, **params):
    p = llama_cpp.llama_model_quantize_default_params()
    p.ftype = FTYPES[ftype]
    p.nthread = 1
    for k, v in params.items():
        setattr(p, k, v)
    rc = llama_cpp.llama_model_quantize(src.encode(), dst.encode(), p)
    if rc != 0:
        sys.exit(f"llama_model_quantize({src}, {ftype}) failed: {rc}")


def tensors(path):
    return {t.name: t for t in gguf.GGUFReader(path).tensors}


def fields(path):
    """Every metadata key with its value, as comparable Python values."""
    out = {}
    for k, f in gguf.GGUFReader(path).fields.items():
        if k.startswith("GGUF."):
            continue
        out[k] = [bytes(f.parts[i]) for i in f.data]
    return out


def f32_of(t):
    a = np.asarray(t.data)
    if t.tensor_type in (gguf.GGMLQuantizationType.F32, gguf.GGMLQuantizationType.F16):
        return a.astype(np.float32).reshape(-1)
    return gguf.quants.dequantize(a, t.tensor_type).astype(np.float32).reshape(-1)


def compare(label, solar_path, ref_path, original):
    """Per-tensor comparison of solar's file with llama.cpp's; returns the number of failures."""
    failures, identical, close = 0, 0, 0
    got, want = tensors(solar_path), tensors(ref_path)
    if list(got) != list(want):
        print(f"FAIL {label}: tensor names/order differ: solar {list(got)[:6]}… llama.cpp {list(want)[:6]}…")
        return 1
    for name, w in want.items():
        g = got[name]
        if g.tensor_type != w.tensor_type or list(g.shape) != list(w.shape):
            print(f"FAIL {label} {name}: solar {g.tensor_type.name} {list(g.shape)}, "
                  f"llama.cpp {w.tensor_type.name} {list(w.shape)}")
            failures += 1
            continue
        if np.asarray(g.data).tobytes() == np.asarray(w.data).tobytes():
            identical += 1
            continue
        if g.tensor_type.name not in K_TYPES:
            print(f"FAIL {label} {name} ({g.tensor_type.name}): bytes differ")
            failures += 1
            continue
        ref = original[name]
        e_solar = float(np.sqrt(np.mean((f32_of(g) - ref) ** 2)))
        e_llama = float(np.sqrt(np.mean((f32_of(w) - ref) ** 2)))
        ok = e_solar <= e_llama * (1 + K_MARGIN) + 1e-12
        print(f"{'note' if ok else 'FAIL'} {label} {name} ({g.tensor_type.name}): bytes differ; "
              f"RMS error vs F32 solar {e_solar:.6g}, llama.cpp {e_llama:.6g}")
        failures += not ok
        close += ok
    types = sorted({t.tensor_type.name for t in want.values()})
    whole = open(solar_path, "rb").read() == open(ref_path, "rb").read()
    print(f"{'ok  ' if not failures else 'FAIL'} {label}: {identical}/{len(want)} tensors byte-identical"
          + (f", {close} within llama.cpp's error" if close else "") + f" ({', '.join(types)})"
          + ("; the whole files are identical" if whole else ""))
    return failures


def compare_metadata(label, solar_path, ref_path):
    got, want = fields(solar_path), fields(ref_path)
    diff = sorted(k for k in set(got) | set(want) if got.get(k) != want.get(k))
    print(f"{'ok  ' if not diff else 'FAIL'} {label}: metadata"
          + (f" differs in {diff[:8]}" if diff else f" equal ({len(want)} keys)"))
    return int(bool(diff))


def logits(path, ids):
    llm = llama_cpp.Llama(model_path=path, n_ctx=128, n_threads=1, logits_all=True, verbose=False)
    llm.eval(ids)
    return np.array(llm.scores[:len(ids)], dtype=np.float64)


def compare_logits(label, solar_path, ref_path):
    llm = llama_cpp.Llama(model_path=ref_path, n_ctx=128, n_threads=1, vocab_only=True, verbose=False)
    ids = llm.tokenize(PROMPT.encode(), add_bos=True, special=False)[:12]
    want, got = logits(ref_path, ids), logits(solar_path, ids)
    err = float(np.max(np.abs(got - want)) / max(1e-9, np.max(np.abs(want))))
    ok = np.all(np.isfinite(got)) and err <= LOGIT_TOL
    print(f"{'ok  ' if ok else 'FAIL'} {label}: llama.cpp runs solar's file; logits vs its own file: "
          f"max rel diff {err:.2e}")
    return int(not ok)


def originals(path):
    return {t.name: f32_of(t) for t in gguf.GGUFReader(path).tensors}


def write_config(path, hidden, ffn, layers, heads, kv_heads, tied):
    json.dump({"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": hidden,
               "intermediate_size": ffn, "num_hidden_layers": layers, "num_attention_heads": heads,
               "num_key_value_heads": kv_heads, "vocab_size": 512, "max_position_embeddings": 256,
               "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": tied,
               "torch_dtype": "float32"}, open(path, "w"))


def patch_edge_rows(path):
    """Writes edge-case rows into the F32 GGUF at `path` in place."""
    r = gguf.GGUFReader(path, "r+")
    for t in r.tensors:
        if len(t.shape) < 2 or t.tensor_type != gguf.GGMLQuantizationType.F32:
            continue
        a = np.asarray(t.data).reshape(-1, int(t.shape[0]))
        a[0] = 0.0                                       # all zero
        a[1] = 0.0371                                    # constant
        a[2] *= 1e-7                                     # tiny: scales underflow f16
        a[3] *= 1e3                                      # large
        a[4, 5] = 3.0                                    # one outlier
        a[5, ::2] = 0.0                                  # half zero
        a[6] = np.abs(a[6])                              # one sign
    r.data.flush()


def check_model(tmp, name, hf, f32, failures_for):
    """Both quantizers on the F32 and F16 GGUFs and (solar) the HF folder; every ftype."""
    failures = 0
    f16 = os.path.join(tmp, f"{name}-f16.gguf")
    run("convert", "-m", f32, "-o", f16, "--outtype", "f16", "--force")
    for src_label, src in [("F32", f32), ("F16", f16)]:
        orig = originals(src)
        for ft in FTYPES:
            ref = os.path.join(tmp, f"{name}-{src_label}-{ft}-llama.gguf")
            out = os.path.join(tmp, f"{name}-{src_label}-{ft}-solar.gguf")
            llama_quantize(src, ref, ft)
            run("quantize", "-m", src, "-o", out, "--type", ft, "-t", "2", "--force")
            label = f"{name} {src_label} -> {ft}"
            failures += compare(label, out, ref, orig) + compare_metadata(label, out, ref)
            if src_label == "F32":
                failures += compare_logits(label, out, ref)
            if hf and src_label == "F32":
                # The HF folder itself: solar reads it, llama.cpp read its `solar convert` GGUF.
                out_hf = os.path.join(tmp, f"{name}-hf-{ft}-solar.gguf")
                run("quantize", "-m", hf, "-o", out_hf, "--type", ft, "--force")
                failures += compare(f"{name} HF folder -> {ft}", out_hf, ref, orig) + \
                    compare_metadata(f"{name} HF folder -> {ft}", out_hf, ref)
    return failures + failures_for(f32)


def check_options(tmp, name, f32):
    """--pure, the overrides, and requantizing, each against llama.cpp."""
    failures = 0
    orig = originals(f32)
    cases = [("pure q4_k_m", "q4_k_m", ["--pure"], {"pure": True}),
             ("q4_0 output f16, embd q8_0", "q4_0", ["--output-tensor-type", "f16", "--token-embedding-type", "q8_0"],
              {"output_tensor_type": GGML["f16"], "token_embedding_type": GGML["q8_0"]})]
    for label, ft, flags, params in cases:
        ref, out = os.path.join(tmp, f"{name}-opt-llama.gguf"), os.path.join(tmp, f"{name}-opt-solar.gguf")
        llama_quantize(f32, ref, ft, **params)
        run("quantize", "-m", f32, "-o", out, "--type", ft, "--force", *flags)
        failures += compare(f"{name} {label}", out, ref, orig)

    # Requantizing: refused without the flag, as llama.cpp refuses it; with it, the same bytes.
    q4 = os.path.join(tmp, f"{name}-q4_0-llama.gguf")
    llama_quantize(f32, q4, "q4_0")
    out = os.path.join(tmp, f"{name}-requant-solar.gguf")
    r = run("quantize", "-m", q4, "-o", out, "--type", "q4_k_m", "--force", ok=False)
    refused = r.returncode != 0 and "--allow-requantize" in r.stderr and "already quantized (Q4_0)" in r.stderr \
        and not os.path.exists(out)
    print(f"{'ok  ' if refused else 'FAIL'} {name}: requantizing Q4_0 is refused without --allow-requantize"
          + ("" if refused else f": rc {r.returncode} {r.stderr[-300:]!r}"))
    failures += not refused
    ref = os.path.join(tmp, f"{name}-requant-llama.gguf")
    llama_quantize(q4, ref, "q4_k_m", allow_requantize=True)
    run("quantize", "-m", q4, "-o", out, "--type", "q4_k_m", "--allow-requantize", "--force")
    failures += compare(f"{name} Q4_0 -> q4_k_m (--allow-requantize)", out, ref, originals(q4))
    return failures


def check_bf16(tmp, cfg, tok):
    """A BF16 HF folder: solar reads it, llama.cpp its BF16 `solar convert` GGUF (both widen BF16 to f32)."""
    failures = 0
    hf, gg = os.path.join(tmp, "bf16-hf"), os.path.join(tmp, "bf16.gguf")
    run("init", "--config", cfg, "--tokenizer", tok, "-o", hf, "--seed", "9", "--outtype", "bf16")
    run("convert", "-m", hf, "-o", gg)
    orig = originals(gg)
    for ft in ["q4_k_m", "q8_0"]:
        ref, out = os.path.join(tmp, f"bf16-{ft}-llama.gguf"), os.path.join(tmp, f"bf16-{ft}-solar.gguf")
        llama_quantize(gg, ref, ft)
        run("quantize", "-m", hf, "-o", out, "--type", ft, "--force")
        failures += compare(f"k8 BF16 HF folder -> {ft}", out, ref, orig)
    return failures


def main():
    tok = os.path.join(DATA, "tok512.bin")
    if not os.path.exists(tok):
        common.missing(f"shared data absent: {DATA}")
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name, shape in [("k8", (256, 768, 8, 4, 2, False)), ("tied4", (256, 512, 4, 4, 4, True))]:
            cfg, hf, f32 = (os.path.join(tmp, f"{name}{s}") for s in ("-config.json", "-hf", "-f32.gguf"))
            write_config(cfg, *shape)
            run("init", "--config", cfg, "--tokenizer", tok, "-o", hf, "--seed", "7")
            run("convert", "-m", hf, "-o", f32, "--outtype", "f32")
            # The HF check compares against llama.cpp on the unpatched weights; then the edge rows.
            failures += check_model(tmp, name, hf, f32, lambda p: 0)
            patch_edge_rows(f32)
            failures += check_model(tmp, name + "-edge", None, f32,
                                    (lambda p: check_options(tmp, name, p)) if name == "k8" else (lambda p: 0))
            if name == "k8":
                failures += check_bf16(tmp, cfg, tok)
        stories = os.path.join(tmp, "stories260K-f32.gguf")
        run("convert", "-m", os.path.join(DATA, "stories260K.bin"), "--tokenizer", tok, "-o", stories)
        failures += check_model(tmp, "stories260K", None, stories, lambda p: 0)
    print(f"{'PASS' if not failures else 'FAIL'}: {failures} failure(s)")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
