"""solar's block-quantized GGUF reading against gguf-py and llama.cpp.

1. The stories260K llama2.c model, quantized by gguf-py (gguf.quants.quantize)
   to Q8_0 and to Q4_0 (every matrix whose rows are whole 32-element blocks;
   ffn_down's rows of 172 and the norms stay F32, as llama.cpp does), written
   with GGUFWriter. `solar convert --outtype f32` must dequantize every tensor
   bit for bit as gguf.quants.dequantize does; `solar logits` must match
   llama-cpp-python's logits on the same file within LOGIT_TOL (llama.cpp
   also quantizes the activations to Q8_0 in its dot products, solar does
   not, so they differ slightly); `solar generate` must run on it.
2. Every block type solar reads (Q4_0 … Q8_0, Q2_K … Q6_K) on random blocks
   (random bytes, random f16 scales) in a synthetic 256-wide model: `solar
   convert` must dequantize them bit for bit as gguf-py does.
Run: python3 test_gguf_quant.py SOLAR_BIN
Needs numpy, gguf, llama_cpp and the shared data (see common.py).
"""
import os
import subprocess
import sys
import tempfile

import common

common.skip_if_asked()
# Imports numpy, gguf and llama_cpp, failing (not skipping) when one is missing.
from test_gguf_llamacpp import DATA, SOLAR, gguf, llama_cpp, np, write_gguf_py

Q = gguf.GGMLQuantizationType
# Max |solar − llama.cpp| over all positions' logits, relative to the largest |logit|.
LOGIT_TOL = {Q.Q8_0: 0.02, Q.Q4_0: 0.03}  # measured: 0.0085, 0.0113
PROMPT = "Once upon a time, there was a little girl named Lily."


def quantizer(qtype):
    def add(w, name, a):
        if a.ndim == 2 and a.shape[1] % 32 == 0:
            w.add_tensor(name, gguf.quants.quantize(a, qtype), raw_dtype=qtype)
        else:
            w.add_tensor(name, a)
    return add


def dequantized_by_solar(tmp, path):
    """solar's F32 dequantization of every tensor of `path`, read back with gguf-py."""
    out = os.path.join(tmp, os.path.basename(path) + ".f32.gguf")
    subprocess.run([SOLAR, "convert", "-m", path, "-o", out, "--outtype", "f32", "--force"], check=True,
                   capture_output=True)
    return {t.name: np.array(t.data, dtype=np.float32).reshape(tuple(reversed([int(x) for x in t.shape])))
            for t in gguf.GGUFReader(out).tensors}


def compare_bits(label, src_path, got):
    """Each tensor of the GGUF at src_path, dequantized by gguf-py, against solar's `got`; returns failures."""
    failures, types = 0, set()
    for t in gguf.GGUFReader(src_path).tensors:
        want = gguf.quants.dequantize(np.array(t.data), t.tensor_type).astype(np.float32)
        g = got.get(t.name)
        types.add(t.tensor_type.name)
        if g is None or g.shape != want.shape or not np.array_equal(g.view(np.uint32), want.view(np.uint32)):
            diff = "missing" if g is None else f"shape {g.shape} vs {want.shape}" if g.shape != want.shape else \
                f"{int(np.sum(g.view(np.uint32) != want.view(np.uint32)))} values differ"
            print(f"FAIL {label} {t.name} ({t.tensor_type.name}): {diff}")
            failures += 1
    print(f"{'ok  ' if not failures else 'FAIL'} {label}: solar dequantizes {sorted(types)} bit for bit as gguf-py")
    return failures


def check_stories(tmp, src, tok):
    failures = 0
    for qtype in [Q.Q8_0, Q.Q4_0]:
        path = os.path.join(tmp, f"stories260K-{qtype.name}.gguf")
        write_gguf_py(path, src, tok, quantizer(qtype))
        failures += compare_bits(f"stories260K {qtype.name}", path, dequantized_by_solar(tmp, path))

        llm = llama_cpp.Llama(model_path=path, n_ctx=128, n_threads=1, logits_all=True, verbose=False)
        ids = llm.tokenize(PROMPT.encode(), add_bos=True, special=False)
        llm.eval(ids)
        want = np.array(llm.scores[:len(ids)], dtype=np.float64)
        r = subprocess.run([SOLAR, "logits", "-m", path, "--ids", ",".join(map(str, ids)), "--all", "-t", "1"],
                           capture_output=True, check=True)
        got = np.array([[float(x) for x in line.split()] for line in r.stdout.decode().splitlines() if line.strip()])
        if got.shape != want.shape:
            print(f"FAIL {qtype.name} logits: shape {got.shape} vs llama.cpp {want.shape}")
            failures += 1
        else:
            err = float(np.max(np.abs(got - want)) / np.max(np.abs(want)))
            same_top = float(np.mean(np.argmax(got, 1) == np.argmax(want, 1)))
            ok = err < LOGIT_TOL[qtype]
            failures += not ok
            print(f"{'ok  ' if ok else 'FAIL'} {qtype.name} logits vs llama.cpp over {len(ids)} positions: "
                  f"max rel err {err:.4f} (tol {LOGIT_TOL[qtype]}), same argmax {same_top:.0%}")

        r = subprocess.run([SOLAR, "generate", "-m", path, "-p", "Once upon a time", "-n", "32", "--temp", "0",
                            "-t", "1"], capture_output=True)
        ok = r.returncode == 0 and len(r.stdout.strip()) > 0
        failures += not ok
        print(f"{'ok  ' if ok else 'FAIL'} solar generate {qtype.name}: {r.stdout.decode(errors='replace')[:60]!r}"
              + ("" if ok else f" rc {r.returncode} {r.stderr.decode()[-300:]!r}"))
    return failures


# Offsets of the f16 scale fields in each block (gguf-py's layouts); random
# bytes elsewhere are valid quants and sub-scales.
F16_FIELDS = {Q.Q4_0: [0], Q.Q4_1: [0, 2], Q.Q5_0: [0], Q.Q5_1: [0, 2], Q.Q8_0: [0], Q.Q2_K: [80, 82],
              Q.Q3_K: [108], Q.Q4_K: [0, 2], Q.Q5_K: [0, 2], Q.Q6_K: [208]}


def random_blocks(rng, qtype, rows, cols):
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    b = rng.integers(0, 256, size=(rows, cols // block, size), dtype=np.uint8)
    for off in F16_FIELDS[qtype]:
        b[:, :, off:off + 2] = rng.uniform(-2, 2, size=(rows, cols // block)).astype(np.float16) \
            .view(np.uint8).reshape(rows, cols // block, 2)
    return b.reshape(rows, -1)


def check_all_types(tmp):
    d, L = 256, 2
    path = os.path.join(tmp, "synthetic-quant.gguf")
    w = gguf.GGUFWriter(path, "llama")
    for add, v in [(w.add_context_length, 64), (w.add_embedding_length, d), (w.add_block_count, L),
                   (w.add_feed_forward_length, d), (w.add_rope_dimension_count, d // 2), (w.add_head_count, 2),
                   (w.add_head_count_kv, 2), (w.add_vocab_size, d)]:
        add(v)
    w.add_layer_norm_rms_eps(1e-5)
    names = ["token_embd.weight", "output.weight"] + [f"blk.{l}.{n}.weight" for l in range(L) for n in
                                                      ["attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate",
                                                       "ffn_up", "ffn_down"]]
    rng = np.random.default_rng(0)
    types = list(F16_FIELDS)
    for i, name in enumerate(names):
        w.add_tensor(name, random_blocks(rng, types[i % len(types)], d, d), raw_dtype=types[i % len(types)])
    for name in ["output_norm.weight"] + [f"blk.{l}.{n}.weight" for l in range(L) for n in ["attn_norm", "ffn_norm"]]:
        w.add_tensor(name, rng.standard_normal(d).astype(np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return compare_bits("synthetic model, every block type", path, dequantized_by_solar(tmp, path))


def main():
    src, tok = os.path.join(DATA, "stories260K.bin"), os.path.join(DATA, "tok512.bin")
    if not os.path.exists(src):
        common.missing(f"shared data absent: {DATA}")
    with tempfile.TemporaryDirectory() as tmp:
        failures = check_all_types(tmp) + check_stories(tmp, src, tok)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
