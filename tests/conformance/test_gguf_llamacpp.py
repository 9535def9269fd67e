"""solar's GGUFs against llama.cpp's own reader, writer and runtime.

With the `gguf` package (llama.cpp's gguf-py): its GGUFReader must see in a
`solar convert` output the llama2.c weights, shapes and metadata; a GGUF that
its GGUFWriter builds straight from the llama2.c file must generate run.c's
expected text in solar. With `llama_cpp` (llama-cpp-python): greedy decoding
of solar's F32 and F16 GGUFs must match `solar generate --temp 0`.
Run: python3 test_gguf_llamacpp.py SOLAR_BIN
Needs numpy, gguf, llama_cpp and the shared data (see common.py).
"""
import os
import subprocess
import struct
import sys
import tempfile

import common

common.skip_if_asked()
try:
    import gguf
    import llama_cpp
    import numpy as np
except ImportError as e:
    common.missing(e)

# llama.cpp's extra CPU buffer types (weights repacked at load: AMX tiles on
# CPUs with AMX-INT8, interleaved Q4_0 rows on AVX2) are off in every test:
# the AMX one segfaults at the first batch of 16 tokens or more on
# stories260K's quantized matrices (llama.cpp issue #20824; llama-cpp-python
# 0.3.36 on a Sapphire Rapids), and the reference is
# llama.cpp's arithmetic, which its plain CPU buffers compute on every CPU.
_default_params = llama_cpp.llama_cpp.llama_model_default_params


def _plain_cpu_buffers():
    p = _default_params()
    p.use_extra_bufts = False
    return p


llama_cpp.llama_cpp.llama_model_default_params = _plain_cpu_buffers
llama_cpp.llama_model_default_params = _plain_cpu_buffers

SOLAR = sys.argv[1] if len(sys.argv) > 1 else "build/solar"
HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.normpath(os.path.join(HERE, "..", "..", "..", "shared", "data", "models", "stories260K"))
PROMPTS = ["", "Once upon a time", "Lily and Tom went to the park.", "The cat"]
N = 48


def llama_cpp_greedy(path, prompt):
    llm = llama_cpp.Llama(model_path=path, n_ctx=256, n_threads=1, logits_all=True, vocab_only=False, verbose=False)
    tokens = llm.tokenize(prompt.encode(), add_bos=True, special=False)
    llm.reset()
    llm.eval(tokens)
    out = []
    for _ in range(N):
        t = int(np.argmax(llm.scores[llm.n_tokens - 1]))
        if t == llm.token_eos():
            break
        out.append(t)
        llm.eval([t])
    return llm.detokenize(out).decode("utf-8", errors="replace")


def solar_greedy(path, prompt):
    r = subprocess.run([SOLAR, "generate", "-m", path, "-p", prompt, "-n", str(N), "--temp", "0", "-t", "1"],
                       capture_output=True, check=True)
    return r.stdout.decode("utf-8", errors="replace")


def llama2c_weights(path):
    """HF-named numpy arrays of a legacy llama2.c file, read independently of solar."""
    raw = open(path, "rb").read()
    d, f, L, H, KV, V, S = struct.unpack("7i", raw[:28])
    kv = d * KV // H
    w = np.frombuffer(raw, dtype=np.float32, offset=28)
    off = 0

    def take(*shape):
        nonlocal off
        n = int(np.prod(shape))
        a = w[off:off + n].reshape(shape)
        off += n
        return a

    t = {"token_embd.weight": take(abs(V), d)}
    for name, shape in [("attn_norm", (d,)), ("attn_q", (d, d)), ("attn_k", (kv, d)), ("attn_v", (kv, d)),
                        ("attn_output", (d, d)), ("ffn_norm", (d,)), ("ffn_gate", (f, d)), ("ffn_down", (d, f)),
                        ("ffn_up", (f, d))]:
        stacked = take(L, *shape)
        for l in range(L):
            t[f"blk.{l}.{name}.weight"] = stacked[l]
    t["output_norm.weight"] = take(d)
    return (d, f, L, H, KV, abs(V), S), t


def llama2c_vocab(path, n):
    raw = open(path, "rb").read()
    off, tokens, scores = 4, [], []
    for _ in range(n):
        score, length = struct.unpack_from("fi", raw, off)
        off += 8
        # llama2.c spells SentencePiece's "\u2581" as a plain space; GGUF keeps the SentencePiece spelling.
        tokens.append(raw[off:off + length].replace(b" ", "\u2581".encode()))
        off += length
        scores.append(score)
    return tokens, scores


def write_gguf_py(path, src, tok, add_tensor=None):
    """Writes the llama2.c model `src` with tokenizer `tok` as a GGUF with gguf-py's GGUFWriter alone.
    add_tensor(writer, name, array), if given, adds each tensor (e.g. quantized); default: as F32."""
    (d, f, L, H, KV, V, S), want = llama2c_weights(src)
    w = gguf.GGUFWriter(path, "llama")
    w.add_context_length(S)
    w.add_embedding_length(d)
    w.add_block_count(L)
    w.add_feed_forward_length(f)
    w.add_rope_dimension_count(d // H)
    w.add_head_count(H)
    w.add_head_count_kv(KV)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_freq_base(10000.0)
    w.add_tokenizer_model("llama")
    tokens, scores = llama2c_vocab(tok, V)
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types([2 if i == 0 else 3 if i < 3 else 6 if t.startswith(b"<0x") else 1 for i, t in enumerate(tokens)])
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    for name, a in want.items():
        if add_tensor:
            add_tensor(w, name, np.ascontiguousarray(a))
        else:
            w.add_tensor(name, np.ascontiguousarray(a))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return want


def check_gguf_py(tmp, src, tok):
    failures = 0
    (d, f, L, H, KV, V, S), want = llama2c_weights(src)
    out = os.path.join(tmp, "solar.gguf")
    subprocess.run([SOLAR, "convert", "-m", src, "--tokenizer", tok, "-o", out], check=True)
    r = gguf.GGUFReader(out)
    got = {t.name: t for t in r.tensors}
    if sorted(got) != sorted(want):
        print(f"FAIL gguf-py tensor names: {sorted(set(got) ^ set(want))}")
        failures += 1
    for name, a in want.items():
        if name in got and not np.array_equal(np.asarray(got[name].data).reshape(a.shape), a):
            print(f"FAIL gguf-py {name}: data differs")
            failures += 1
    def scalar(key):
        fld = r.fields[key]
        return fld.parts[fld.data[0]][0]
    for key, v in [("llama.block_count", L), ("llama.embedding_length", d), ("llama.feed_forward_length", f),
                   ("llama.attention.head_count", H), ("llama.attention.head_count_kv", KV),
                   ("llama.context_length", S), ("llama.rope.dimension_count", d // H)]:
        if scalar(key) != v:
            print(f"FAIL gguf-py {key}: {scalar(key)} != {v}")
            failures += 1
    print(f"{'ok  ' if not failures else 'FAIL'} gguf-py reads solar's GGUF ({len(got)} tensors)")

    # The other direction: a GGUF built by gguf-py from the raw llama2.c arrays.
    ref = os.path.join(tmp, "gguf-py.gguf")
    write_gguf_py(ref, src, tok)
    expected = open(os.path.join(DATA, "expected_greedy_200.txt"), "rb").read()
    r = subprocess.run([SOLAR, "generate", "-m", ref, "-p", "", "-n", "200", "--temp", "0", "-t", "1"],
                       capture_output=True)
    ok = r.returncode == 0 and r.stdout == expected
    print(f"{'ok  ' if ok else 'FAIL'} solar generates run.c's text from gguf-py's GGUF"
          + ("" if ok else f": rc {r.returncode} {r.stderr.decode()[-300:]!r} {r.stdout[:80]!r}"))
    return failures + (not ok)


def check_llama_cpp(tmp, src, tok):
    failures = 0
    for outtype in ["f32", "f16"]:
        path = os.path.join(tmp, f"stories260K-{outtype}.gguf")
        subprocess.run([SOLAR, "convert", "-m", src, "--tokenizer", tok, "-o", path, "--outtype", outtype],
                       check=True)
        for prompt in PROMPTS:
            want, got = llama_cpp_greedy(path, prompt), solar_greedy(path, prompt)
            # Versions differ on the space of the first piece after BOS.
            if not prompt:
                want, got = want.lstrip(" "), got.lstrip(" ")
            ok = want == got
            failures += not ok
            print(f"{'ok  ' if ok else 'FAIL'} llama.cpp {outtype} {prompt!r}: {want[:50]!r} vs solar {got[:50]!r}")
    return failures


def main():
    src, tok = os.path.join(DATA, "stories260K.bin"), os.path.join(DATA, "tok512.bin")
    if not os.path.exists(src):
        common.missing(f"shared data absent: {DATA}")
    with tempfile.TemporaryDirectory() as tmp:
        failures = check_gguf_py(tmp, src, tok) + check_llama_cpp(tmp, src, tok)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
