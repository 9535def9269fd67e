"""solar's logits == Hugging Face transformers' on random checkpoints.

Shapes cover GQA, rope_theta 1e6, tied and untied heads, Mistral sliding
window, sharded safetensors and BF16. Run: python3 test_hf_logits.py SOLAR_BIN
Needs torch and transformers (see common.py).
"""
import subprocess
import sys
import tempfile

import common

common.skip_if_asked()
try:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM
except ImportError as e:
    common.missing(e)

SOLAR = sys.argv[1] if len(sys.argv) > 1 else "build/solar"


def cpu_flags():
    try:
        return set(open("/proc/cpuinfo").read().split())
    except OSError:
        return set()


# Where the CPU has AVX512-BF16 or AMX, solar's prefill (several positions per
# matmul) runs BF16 weights through oneDNN's bf16 matmul, and with AVX512-BF16
# its token-by-token decoding uses vdpbf16ps: activations rounded to bf16, f32
# accumulation, as llama.cpp's CPU backend does for BF16 weights
# (kernels/matmul.cpp, gemv.cpp). Elsewhere both stay f32 throughout.
# bf16 keeps 8 bits of mantissa: rounding the activations moves these logits by
# ~3e-3 of max |logit|; a wrong layout or rope moves them by O(1).
FLAGS = cpu_flags()
BF16_PREFILL_TOL = 1e-2 if "avx512_bf16" in FLAGS or "amx_bf16" in FLAGS else None
BF16_DECODE_TOL = 1e-2 if "avx512_bf16" in FLAGS else None

CASES = [
    # name, arch, kwargs, dtype, max_shard_size, tol (relative to max |logit|)
    ("llama-mha-tied", "llama", dict(hidden_size=64, intermediate_size=160, num_hidden_layers=3,
                                     num_attention_heads=4, num_key_value_heads=4, tie_word_embeddings=True), torch.float32, None, 1e-4),
    ("llama-gqa-theta1e6-untied-sharded", "llama", dict(hidden_size=96, intermediate_size=256, num_hidden_layers=4,
                                                        num_attention_heads=6, num_key_value_heads=2, rope_theta=1e6,
                                                        tie_word_embeddings=False), torch.float32, "200KB", 1e-4),
    ("llama-headdim-bf16", "llama", dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                         num_attention_heads=4, num_key_value_heads=2, head_dim=32,
                                         tie_word_embeddings=False), torch.bfloat16, None, 1e-4),
    ("mistral-window", "mistral", dict(hidden_size=64, intermediate_size=192, num_hidden_layers=2,
                                       num_attention_heads=8, num_key_value_heads=2, sliding_window=7,
                                       tie_word_embeddings=False), torch.float32, None, 1e-4),
]


def main():
    torch.manual_seed(0)
    failures = 0
    ids = [1, 17, 250, 3, 99, 511, 42, 42, 7, 300, 12, 5, 88, 2, 130, 64]
    for name, arch, kw, dtype, shard, tol in CASES:
        common = dict(vocab_size=512, max_position_embeddings=128, rms_norm_eps=1e-5, torch_dtype=dtype)
        if arch == "llama":
            cfg = LlamaConfig(**common, **kw)
            model = LlamaForCausalLM(cfg)
        else:
            cfg = MistralConfig(**common, **kw)
            cfg._attn_implementation = "eager"
            model = MistralForCausalLM(cfg)
        model = model.to(dtype).eval()
        with tempfile.TemporaryDirectory() as d:
            model.save_pretrained(d, safe_serialization=True, **({"max_shard_size": shard} if shard else {}))
            # solar computes in FP32 from the stored (possibly BF16) weights:
            # compare with the same weights upcast, so the tolerance stays tight.
            with torch.no_grad():
                ref = model.float()(torch.tensor([ids])).logits[0]
            for batch in (0, 1):
                out = subprocess.run([SOLAR, "logits", "-m", d, "--ids", ",".join(map(str, ids)), "--all",
                                      "--batch", str(batch)], capture_output=True, text=True)
                if out.returncode != 0:
                    print(f"FAIL {name}: solar exited {out.returncode}: {out.stderr.strip()}")
                    failures += 1
                    continue
                got = torch.tensor([[float(x) for x in line.split()] for line in out.stdout.strip().splitlines()])
                err = (got - ref).abs().max().item()
                scale = ref.abs().max().item()
                rounded = BF16_DECODE_TOL if batch == 1 else BF16_PREFILL_TOL
                t = rounded if dtype == torch.bfloat16 and rounded else tol
                ok = err <= t * max(scale, 1.0)
                print(f"{'ok  ' if ok else 'FAIL'} {name} batch={batch}: max |diff| {err:.3g} (max |logit| {scale:.3g}, tol {t})")
                failures += not ok
    print(f"{len(CASES) * 2 - failures} passed, {failures} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
