"""The tokenizer.model solar writes from a GGUF's vocabulary, against the original.

For Meta's Llama 2 and Mistral's v1 tokenizer.model (../shared/data/tokenizers):
1. an HF folder with the original (`solar init --tokenizer`, plus a tokenizer_config.json
   with a chat template) -> `solar convert` to GGUF -> `solar convert` back to HF;
2. a GGUF written by gguf-py (llama.cpp's writer) from the original's pieces, with
   add_bos/add_eos, a padding id and a chat template -> `solar convert` to HF.
Each rebuilt tokenizer.model must equal the original piece by piece (piece, score,
type), be a BPE model with byte fallback and Llama's normalizer, and encode varied
strings (the llama.cpp SPM cases, Korean, emoji, byte fallback, leading spaces)
exactly as the original in Python `sentencepiece`; transformers' LlamaTokenizer and
LlamaTokenizerFast must load the folder and encode and decode as they do from the
original tokenizer.model with the same tokenizer_config.json.
Run: python3 test_gguf_tokenizer.py SOLAR_BIN
Needs sentencepiece, transformers, gguf, numpy and the shared data (see common.py).
"""
import json
import os
import shutil
import sys
import tempfile

import common

common.skip_if_asked()
try:
    import gguf
    import numpy as np
    import sentencepiece as spm
    from sentencepiece import sentencepiece_model_pb2 as pb
    from transformers import AutoTokenizer, LlamaTokenizer, LlamaTokenizerFast
except ImportError as e:
    common.missing(e)

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.normpath(os.path.join(HERE, "..", "..", "..", "shared", "data", "tokenizers"))
TEMPLATE = "{% for m in messages %}[INST] {{ m['content'] }} [/INST]{% endfor %}"
TEXTS = [
    "Hello world", " Hello world", "  two leading spaces", "   ", " ", "", "trailing  ",
    "한국어 문장도 토큰으로 나눕니다.", "emoji 🦙🚀👍🏽 and ZWJ 👨‍👩‍👧", "byte fallback: \x01\x7f \u0b80 \U0001f9ff",
    "tabs\tand\nnew\n\nlines", "Numbers 1234567 3.14159", "<s> not a special token </s>",
    "ÀÉÎõü ñ ß", "中文也可以", "def f(x):\n    return x ** 2\n", "▁ already escaped",
]


def cases():
    """llama.cpp's SPM test inputs (separated by __ggml_vocab_test__ lines)."""
    text = open(os.path.join(DATA, "llama-spm-cases.inp"), encoding="utf-8").read()
    return [c for c in text.split("\n__ggml_vocab_test__\n")[:-1]]


def proto(path):
    m = pb.ModelProto()
    m.ParseFromString(open(path, "rb").read())
    return m


def compare_models(label, orig_path, got_path, pad_id=None):
    """Piece by piece, the specs that decide encoding, and encodings in sentencepiece; returns failures.
    pad_id: the GGUF's padding id, where it names one the original has not."""
    failures = 0
    a, b = proto(orig_path), proto(got_path)
    diff = [i for i, (x, y) in enumerate(zip(a.pieces, b.pieces))
            if (x.piece, x.score, x.type) != (y.piece, y.score, y.type)]
    ok = len(a.pieces) == len(b.pieces) and not diff
    failures += not ok
    print(f"{'ok  ' if ok else 'FAIL'} {label}: {len(b.pieces)} pieces (piece, score, type) as the original"
          + ("" if ok else f": {len(a.pieces)} vs {len(b.pieces)}, first differing id {diff[:1]}"))
    ts, ns = b.trainer_spec, b.normalizer_spec
    spec = (pb.TrainerSpec.ModelType.Name(ts.model_type), ts.byte_fallback, ts.unk_id, ts.bos_id, ts.eos_id,
            ns.name, ns.add_dummy_prefix, ns.remove_extra_whitespaces, ns.escape_whitespaces, ns.precompiled_charsmap)
    want = (pb.TrainerSpec.ModelType.Name(a.trainer_spec.model_type), a.trainer_spec.byte_fallback,
            a.trainer_spec.unk_id, a.trainer_spec.bos_id, a.trainer_spec.eos_id, a.normalizer_spec.name,
            a.normalizer_spec.add_dummy_prefix, a.normalizer_spec.remove_extra_whitespaces,
            a.normalizer_spec.escape_whitespaces, a.normalizer_spec.precompiled_charsmap)
    ok = spec == want and spec[0] == "BPE" and spec[1]
    failures += not ok
    print(f"{'ok  ' if ok else 'FAIL'} {label}: trainer/normalizer spec {spec[:9]}" + ("" if ok else f" vs {want[:9]}"))

    sa, sb = spm.SentencePieceProcessor(model_file=orig_path), spm.SentencePieceProcessor(model_file=got_path)
    texts = TEXTS + cases()
    bad = [t for t in texts if sa.encode(t) != sb.encode(t) or sb.decode(sb.encode(t)) != sa.decode(sa.encode(t))]
    failures += bool(bad)
    print(f"{'ok  ' if not bad else 'FAIL'} {label}: sentencepiece encodes and decodes {len(texts)} strings as the original"
          + ("" if not bad else f": {bad[:3]!r}"))
    ids = (sb.bos_id(), sb.eos_id(), sb.unk_id(), sb.pad_id())
    ok = ids == (sa.bos_id(), sa.eos_id(), sa.unk_id(), sa.pad_id() if pad_id is None else pad_id)
    failures += not ok
    print(f"{'ok  ' if ok else 'FAIL'} {label}: bos/eos/unk/pad ids {ids}")
    return failures


def compare_transformers(label, tmp, orig_path, folder):
    """transformers from solar's folder vs from the original tokenizer.model with the same tokenizer_config.json."""
    failures = 0
    ref = os.path.join(tmp, "ref-" + os.path.basename(folder))
    os.makedirs(ref, exist_ok=True)
    shutil.copy(orig_path, os.path.join(ref, "tokenizer.model"))
    shutil.copy(os.path.join(folder, "tokenizer_config.json"), ref)
    texts = TEXTS + cases()
    for cls in dict.fromkeys([AutoTokenizer, LlamaTokenizer, LlamaTokenizerFast]):  # one class in transformers 5
        got, want = cls.from_pretrained(folder), cls.from_pretrained(ref)
        enc_g, enc_w = [got(t)["input_ids"] for t in texts], [want(t)["input_ids"] for t in texts]
        bad = [t for t, g, w in zip(texts, enc_g, enc_w) if g != w or got.decode(g) != want.decode(w)]
        special = (got.bos_token, got.eos_token, got.unk_token, got.bos_token_id, got.eos_token_id)
        ok = not bad and special == (want.bos_token, want.eos_token, want.unk_token, want.bos_token_id,
                                     want.eos_token_id) and all(e[:1] == [1] for e in enc_g if e)
        failures += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {label}: transformers {cls.__name__} ({type(got).__name__}) loads it and "
              f"encodes {len(texts)} strings as from the original" + ("" if ok else f": {bad[:3]!r} {special}"))
    tc = json.load(open(os.path.join(folder, "tokenizer_config.json")))
    return failures, tc


def solar_roundtrip(tmp, name, orig_path):
    """HF with the original -> GGUF -> HF; returns failures."""
    hf, g, back = (os.path.join(tmp, f"{name}-{s}") for s in ("src", "model.gguf", "back"))
    common.solar("init", "--preset", "tiny", "--layers", "2", "--tokenizer", orig_path, "-o", hf)
    json.dump({"add_bos_token": True, "add_eos_token": False, "chat_template": TEMPLATE},
              open(os.path.join(hf, "tokenizer_config.json"), "w"))
    common.solar("convert", "-m", hf, "-o", g)
    common.solar("convert", "-m", g, "-o", back)
    label = f"{name} HF->GGUF->HF"
    failures = compare_models(label, orig_path, os.path.join(back, "tokenizer.model"))
    f, tc = compare_transformers(label, tmp, orig_path, back)
    ok = tc.get("chat_template") == TEMPLATE and tc.get("add_bos_token") is True and tc.get("add_eos_token") is False
    print(f"{'ok  ' if ok else 'FAIL'} {label}: tokenizer_config.json keeps add_bos/add_eos and the chat template")
    return failures + f + (not ok)


def gguf_py_file(path, orig_path):
    """A tiny random llama GGUF with the original's vocabulary, written by gguf-py alone."""
    m = proto(orig_path)
    d, ff, heads, n = 64, 128, 4, len(m.pieces)
    w = gguf.GGUFWriter(path, "llama")
    for add, v in [(w.add_context_length, 128), (w.add_embedding_length, d), (w.add_block_count, 1),
                   (w.add_feed_forward_length, ff), (w.add_rope_dimension_count, d // heads),
                   (w.add_head_count, heads), (w.add_head_count_kv, heads), (w.add_layer_norm_rms_eps, 1e-5)]:
        add(v)
    w.add_tokenizer_model("llama")
    w.add_token_list([p.piece.encode() for p in m.pieces])
    w.add_token_scores([p.score for p in m.pieces])
    w.add_token_types([p.type for p in m.pieces])  # gguf's TokenType numbers are SentencePiece's
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    w.add_pad_token_id(2)
    w.add_add_bos_token(True)
    w.add_add_eos_token(True)
    w.add_chat_template(TEMPLATE)
    rng = np.random.default_rng(0)
    shapes = {"token_embd.weight": (n, d), "output_norm.weight": (d,), "blk.0.attn_norm.weight": (d,),
              "blk.0.ffn_norm.weight": (d,), "blk.0.attn_q.weight": (d, d), "blk.0.attn_k.weight": (d, d),
              "blk.0.attn_v.weight": (d, d), "blk.0.attn_output.weight": (d, d), "blk.0.ffn_gate.weight": (ff, d),
              "blk.0.ffn_up.weight": (ff, d), "blk.0.ffn_down.weight": (d, ff)}
    for name, shape in shapes.items():
        w.add_tensor(name, (rng.standard_normal(shape) * 0.02).astype(np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def from_gguf_py(tmp, name, orig_path):
    g, out = os.path.join(tmp, f"{name}-gguf-py.gguf"), os.path.join(tmp, f"{name}-from-gguf-py")
    gguf_py_file(g, orig_path)
    common.solar("convert", "-m", g, "-o", out)
    label = f"{name} gguf-py GGUF->HF"
    failures = compare_models(label, orig_path, os.path.join(out, "tokenizer.model"), pad_id=2)
    f, tc = compare_transformers(label, tmp, orig_path, out)
    want = {"add_bos_token": True, "add_eos_token": True, "bos_token": "<s>", "eos_token": "</s>",
            "unk_token": "<unk>", "pad_token": "</s>", "chat_template": TEMPLATE}
    ok = all(tc.get(k) == v for k, v in want.items())
    print(f"{'ok  ' if ok else 'FAIL'} {label}: tokenizer_config.json {dict((k, tc.get(k)) for k in want if k != 'chat_template')}")
    return failures + f + (not ok)


def main():
    if not os.path.exists(os.path.join(DATA, "llama2.model")):
        common.missing(f"shared data absent: {DATA}")
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name in ["llama2", "mistral-v1"]:
            orig = os.path.join(DATA, name + ".model")
            failures += solar_roundtrip(tmp, name, orig) + from_gguf_py(tmp, name, orig)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
