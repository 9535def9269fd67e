"""solar and llama.cpp side by side: the same GGUF files, prompt, generation
length and threads, per format, in one run.

  python bench/vs_llamacpp.py BUILD_DIR [--preset 1b] [--prompt 512] [--gen 32] [--threads 2] [--reps 3]
      [--formats f32,f16,bf16,q8_0,q4_0,q4_k_m] [--workdir DIR] [--tokenizer llama2.model]
      [--solar-quant auto|slow] [--make-only] [--json OUT]

The model: `solar init --preset P` (random weights, f32, the tokenizer's
vocabulary) → `solar convert` to GGUF F32, F16 and BF16; Q8_0, Q4_0 and Q4_K_M
quantized from the F32 file by `solar quantize` when the binary has it, else by
llama.cpp's quantizer (llama_model_quantize); which one is printed. The files
stay in --workdir (default BUILD_DIR/vs_llamacpp) for the next run.

Per format, one llama-bench pass is: a fresh cache, the prompt as one batch
(prefill tok/s), then --gen single-token steps after it (decode tok/s).
solar's passes run in `bench_inference -m FILE --sync`, a process that waits
on stdin between passes; llama.cpp's run here through llama-cpp-python's
low-level API (llama_decode on llama_batch_get_one, as llama-bench does),
timed around each call, with llama_perf_context's own t_p_eval / t_eval as a
cross-check. After one warm-up pass each, the --reps passes alternate solar
and llama.cpp (the order flipping every rep), so both see the same machine.

Needs the conformance environment (llama-cpp-python, numpy not required);
run it with scripts/pyenv.sh's python.
"""
import argparse
import ctypes
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time

import llama_cpp as L

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLOAT_FORMATS = ["f32", "f16", "bf16"]
QUANT_FTYPES = {"q8_0": "LLAMA_FTYPE_MOSTLY_Q8_0", "q4_0": "LLAMA_FTYPE_MOSTLY_Q4_0",
                "q4_k_m": "LLAMA_FTYPE_MOSTLY_Q4_K_M", "q4_k_s": "LLAMA_FTYPE_MOSTLY_Q4_K_S",
                "q5_k_m": "LLAMA_FTYPE_MOSTLY_Q5_K_M", "q6_k": "LLAMA_FTYPE_MOSTLY_Q6_K",
                "q4_1": "LLAMA_FTYPE_MOSTLY_Q4_1", "q5_0": "LLAMA_FTYPE_MOSTLY_Q5_0"}
# Issue 13's targets: solar/llama.cpp speed ratio per format (None: no target).
DECODE_TARGET = 1.2
PREFILL_TARGET = {"bf16": 1.5, "q8_0": 2.0, "q4_0": 2.0, "q4_k_m": 2.0}
NOISY_CV = 0.10  # sd/mean above this: say the figure is noisy


def log(msg):
    print(msg, flush=True)


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"failed ({r.returncode}): {' '.join(cmd)}\n{r.stdout}{r.stderr}")
    return r


# ---------------------------------------------------------------- the models

class Models:
    """The GGUF files of one preset in the work folder, made once and reused.

    Each file has a sidecar FILE.json saying how it was made; a file whose
    sidecar does not match the request (other preset, tokenizer) is remade."""

    def __init__(self, args, solar):
        self.args, self.solar = args, solar
        os.makedirs(args.workdir, exist_ok=True)
        self.quantizer = solar_quantizer(solar)

    def path(self, fmt):
        return os.path.join(self.args.workdir, f"{self.args.preset}-{fmt}.gguf")

    def recipe(self, fmt, made_by):
        return {"preset": self.args.preset, "format": fmt, "tokenizer": os.path.abspath(self.args.tokenizer),
                "seed": 1234, "made_by": made_by}

    def cached(self, fmt):
        p = self.path(fmt)
        try:
            with open(p + ".json") as f:
                meta = json.load(f)
        except (OSError, ValueError):
            return None
        # A quantized file counts only if the quantizer of this run made it.
        made_by = meta.get("made_by") if fmt in FLOAT_FORMATS else self.quantizer_name()
        return meta if os.path.exists(p) and meta == self.recipe(fmt, made_by) else None

    def quantizer_name(self):
        return "solar quantize" if self.quantizer else "llama.cpp llama_model_quantize"

    def record(self, fmt, made_by):
        meta = self.recipe(fmt, made_by)
        tmp = self.path(fmt) + ".json.tmp"
        with open(tmp, "w") as f:
            json.dump(meta, f)
        os.replace(tmp, self.path(fmt) + ".json")
        return meta

    def get(self, fmt, quiet=False):
        """Path of the format's file and how it was made, making it if needed."""
        meta = self.cached(fmt)
        if meta:
            if not quiet:
                log(f"  {fmt}: cached {self.path(fmt)} (made by {meta['made_by']})")
            return self.path(fmt), meta["made_by"]
        t = time.time()
        if fmt == "f32":
            made_by = self.make_f32()
        elif fmt in FLOAT_FORMATS:
            src, _ = self.get("f32", quiet=True)
            run([self.solar, "convert", "-m", src, "-o", self.path(fmt), "--outtype", fmt, "--force"])
            made_by = "solar convert"
        else:
            made_by = self.quantize(fmt)
        self.record(fmt, made_by)
        log(f"  {fmt}: made {self.path(fmt)} with {made_by} ({time.time() - t:.0f} s, "
            f"{os.path.getsize(self.path(fmt)) / 1e9:.2f} GB)")
        return self.path(fmt), made_by

    def make_f32(self):
        hf = os.path.join(self.args.workdir, f"{self.args.preset}-hf")
        run([self.solar, "init", "--preset", self.args.preset, "--outtype", "f32", "--tokenizer",
             self.args.tokenizer, "-o", hf, "--force"])
        try:
            run([self.solar, "convert", "-m", hf, "-o", self.path("f32"), "--outtype", "f32", "--force"])
        finally:
            shutil.rmtree(hf, ignore_errors=True)
        return "solar init + solar convert"

    def quantize(self, fmt):
        src, _ = self.get("f32", quiet=True)
        out = self.path(fmt)
        tmp = out + ".tmp"
        if self.quantizer:
            flag, help_text = self.quantizer
            qtype = fmt.upper() if fmt not in help_text and fmt.upper() in help_text else fmt
            cmd = [self.solar, "quantize", "-m", src, "-o", tmp, flag, qtype] if flag else \
                [self.solar, "quantize", src, tmp, qtype]
            run(cmd)
        else:
            if fmt not in QUANT_FTYPES:
                sys.exit(f"--formats: unknown format {fmt!r} (know {', '.join(FLOAT_FORMATS + list(QUANT_FTYPES))})")
            qp = L.llama_model_quantize_default_params()
            qp.ftype = getattr(L, QUANT_FTYPES[fmt])
            qp.nthread = self.args.threads
            rc = L.llama_model_quantize(src.encode(), tmp.encode(), ctypes.byref(qp))
            if rc != 0:
                sys.exit(f"llama_model_quantize {src} -> {fmt} failed ({rc})")
        os.replace(tmp, out)
        return self.quantizer_name()


def solar_quantizer(solar):
    """(type flag or None for positional, its --help text) when `solar quantize` exists, else None."""
    r = subprocess.run([solar, "quantize", "--help"], capture_output=True, text=True)
    text = r.stdout + r.stderr
    if r.returncode != 0 or "unknown command" in text:
        return None
    flag = next((f for f in ("--type", "--outtype", "--qtype", "--ftype", "-q") if f in text), None)
    return flag, text


# ------------------------------------------------------------------ solar

class SolarBench:
    """bench_inference --sync on one file: its setup line, then one pass per run()."""

    def __init__(self, bench, path, args):
        cmd = [bench, "-m", path, "--prompt", str(args.prompt), "--gen", str(args.gen), "--threads",
               str(args.threads), "--sync"]
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        self.header = []
        self.setup = None
        for line in self.p.stdout:
            if line.startswith("{"):
                self.setup = json.loads(line)
                break
            self.header.append(line.rstrip("\n"))
        if self.setup is None:
            self.p.wait()
            sys.exit(f"bench_inference failed on {path} ({self.p.returncode}):\n" + "\n".join(self.header))

    def run(self):
        self.p.stdin.write("run\n")
        self.p.stdin.flush()
        line = self.p.stdout.readline()
        if not line:
            self.p.wait()
            sys.exit(f"bench_inference stopped ({self.p.returncode})")
        r = json.loads(line)
        return r["prefill_tps"], r["decode_tps"]

    def close(self):
        try:
            self.p.stdin.write("quit\n")
            self.p.stdin.close()
        except BrokenPipeError:
            pass
        self.p.wait()


# -------------------------------------------------------------- llama.cpp

@L.llama_log_callback
def _quiet(level, text, user_data):
    pass


# One prefill of n tokens with llama.cpp's default model parameters, in a
# child process: on some Sapphire Rapids machines its AMX buffer type (weights
# repacked for AMX-INT8 at load) segfaults in ggml_backend_amx_mul_mat
# (llama.cpp issue #20824, unfixed), and it would take this process with it.
_PROBE = """
import sys, llama_cpp as L
quiet = L.llama_log_callback(lambda *a: None)
L.llama_log_set(quiet, None)
m = L.llama_model_load_from_file(sys.argv[1].encode(), L.llama_model_default_params())
cp = L.llama_context_default_params()
n = int(sys.argv[2]); cp.n_ctx = n + 1; cp.n_batch = cp.n_ubatch = n; cp.n_threads = cp.n_threads_batch = int(sys.argv[3])
ctx = L.llama_init_from_model(m, cp)
toks = (L.llama_token * n)(*[1] * n)
sys.exit(L.llama_decode(ctx, L.llama_batch_get_one(toks, n)))
"""


def extra_bufts_work(path, args):
    """Whether llama.cpp's default extra buffer types (AMX, CPU_REPACK) run a
    prefill of this file; if not, it runs with plain CPU buffers, as a user
    would have to (llama-cli --no-repack)."""
    r = subprocess.run([sys.executable, "-c", _PROBE, path, str(max(args.prompt, 16)), str(args.threads)],
                       capture_output=True, text=True)
    if r.returncode == 0:
        return True, ""
    why = f"signal {-r.returncode}" if r.returncode < 0 else f"exit {r.returncode}"
    return False, (f"llama.cpp's extra buffer types (AMX / CPU_REPACK) crashed at prefill ({why}; "
                   f"llama.cpp issue #20824): llama.cpp runs with use_extra_bufts = false")


class LlamaBench:
    """llama.cpp on one file, as llama-bench runs it: n_batch = n_ubatch = prompt,
    n_threads = n_threads_batch = threads, otherwise the library's defaults
    (but extra_bufts, see extra_bufts_work)."""

    def __init__(self, path, args, extra_bufts=True):
        self.P, self.N = args.prompt, args.gen
        mp = L.llama_model_default_params()
        mp.use_extra_bufts = extra_bufts
        self.model = L.llama_model_load_from_file(path.encode(), mp)
        if not self.model:
            sys.exit(f"llama.cpp could not load {path}")
        cp = L.llama_context_default_params()
        cp.n_ctx = self.P + self.N + 1
        cp.n_batch = cp.n_ubatch = max(self.P, 1)
        cp.n_threads = cp.n_threads_batch = args.threads
        cp.no_perf = False
        self.flash_attn = {L.LLAMA_FLASH_ATTN_TYPE_AUTO: "auto", L.LLAMA_FLASH_ATTN_TYPE_ENABLED: "on",
                           L.LLAMA_FLASH_ATTN_TYPE_DISABLED: "off"}.get(cp.flash_attn_type, str(cp.flash_attn_type))
        self.ctx = L.llama_init_from_model(self.model, cp)
        if not self.ctx:
            sys.exit(f"llama.cpp could not make a context for {path}")
        vocab = L.llama_vocab_n_tokens(L.llama_model_get_vocab(self.model))
        toks = [(i * 7919 + 1) % vocab for i in range(self.P + self.N)]  # as bench_inference
        self.prompt = (L.llama_token * max(self.P, 1))(*toks[:self.P])
        self.steps = [(L.llama_token * 1)(t) for t in toks[self.P:]]

    def decode(self, arr, n):
        rc = L.llama_decode(self.ctx, L.llama_batch_get_one(arr, n))
        L.llama_synchronize(self.ctx)
        if rc != 0:
            sys.exit(f"llama_decode failed ({rc})")

    def run(self):
        """(prefill tok/s, decode tok/s, llama.cpp's own figures) of one pass."""
        L.llama_memory_clear(L.llama_get_memory(self.ctx), True)
        L.llama_perf_context_reset(self.ctx)
        t_p = 0.0
        if self.P:
            t = time.perf_counter()
            self.decode(self.prompt, self.P)
            t_p = time.perf_counter() - t
        t_g = 0.0
        for s in self.steps:
            t = time.perf_counter()
            self.decode(s, 1)
            t_g += time.perf_counter() - t
        perf = L.llama_perf_context(self.ctx)
        own = {"prefill_tps": perf.n_p_eval / perf.t_p_eval_ms * 1e3 if perf.t_p_eval_ms > 0 else 0.0,
               "decode_tps": perf.n_eval / perf.t_eval_ms * 1e3 if perf.t_eval_ms > 0 else 0.0}
        return (self.P / t_p if self.P else 0.0), (self.N / t_g if self.N else 0.0), own

    def close(self):
        L.llama_free(self.ctx)
        L.llama_model_free(self.model)


# ------------------------------------------------------------------ report

def mean_sd(v):
    if not v:
        return {"mean": 0.0, "sd": 0.0, "max": 0.0, "n": 0}
    return {"mean": statistics.fmean(v), "sd": statistics.stdev(v) if len(v) > 1 else 0.0, "max": max(v),
            "n": len(v)}


def fmt_ms(s):
    if not s or s["n"] == 0:
        return "—"
    flag = "~" if s["mean"] > 0 and s["sd"] / s["mean"] > NOISY_CV else ""
    return f"{s['mean']:.2f} ± {s['sd']:.2f}{flag}"


def verdict(ratio, target):
    if target is None:
        return "—"
    if ratio is None:
        return f"≥ {target}×: not measured"
    return f"≥ {target}×: {'met' if ratio >= target else 'not met'}"


def ratio(a, b, key="mean"):
    return a[key] / b[key] if a and a["n"] and b["n"] and b[key] > 0 else None


def bench_format(fmt, path, made_by, args, bench):
    res = {"format": fmt, "file": path, "made_by": made_by, "solar": None, "solar_skipped": None}
    solar = SolarBench(bench, path, args)
    setup = solar.setup
    res["setup"] = {k: setup[k] for k in ("weight_bytes_per_token", "weight_bytes_by_type", "mem_gbs_simple",
                                          "mem_gbs_wide", "mem_gbs", "wide_probe_isa", "gemm_bf16_gflops",
                                          "gemm_f32_gflops", "gemm_int8_gops", "prefill_flops", "prefill_tokens", "kernel_check",
                                          "cpu_report")}
    res["solar_header"] = solar.header
    slow = [t for t, r in setup["kernel_check"].items() if r["path"] == "reference"]
    if slow and args.solar_quant != "slow":
        res["solar_skipped"] = (f"solar: reference path for {', '.join(slow)} weights, skipped "
                                f"(--solar-quant=slow to force)")
        solar.close()
        solar = None
    extra, why = extra_bufts_work(path, args)
    if why:
        log(f"    {why}")
    res["llama_extra_bufts"] = extra
    res["llama_note"] = why
    llama = LlamaBench(path, args, extra)
    # Decode alone still runs on the extra buffers (llama.cpp's default, and
    # its faster decode): a second context that decodes from an empty cache,
    # since the prefill that would fill it crashes.
    dec_only = None
    if not extra:
        a0 = argparse.Namespace(**vars(args))
        a0.prompt = 0
        dec_only = LlamaBench(path, a0, True)
        dec_only.run()
        res["llama_note"] += ("; its decode figures come from the extra buffers, decoding from an empty cache "
                              "(solar's after the prompt)")
    res["llama_flash_attn"] = llama.flash_attn
    res["llama_system_info"] = L.llama_print_system_info().decode().strip()
    # Warm-up: page faults, thread pools, oneDNN primitives / llama.cpp's graph.
    if solar:
        solar.run()
    llama.run()
    s_pre, s_dec, l_pre, l_dec, own_pre, own_dec = [], [], [], [], [], []
    for r in range(args.reps):
        order = ["solar", "llama"] if r % 2 == 0 else ["llama", "solar"]
        for who in order:
            time.sleep(0.2)  # let the other's spinning OpenMP threads go to sleep
            if who == "solar" and solar:
                p, d = solar.run()
                s_pre.append(p)
                s_dec.append(d)
            elif who == "llama":
                p, d, own = llama.run()
                if dec_only:
                    _, d, own_d = dec_only.run()
                    own["decode_tps"] = own_d["decode_tps"]
                l_pre.append(p)
                l_dec.append(d)
                own_pre.append(own["prefill_tps"])
                own_dec.append(own["decode_tps"])
        log(f"    rep {r + 1}/{args.reps}: " +
            (f"solar prefill {s_pre[-1]:.1f} decode {s_dec[-1]:.2f} tok/s; " if solar else "") +
            f"llama.cpp prefill {l_pre[-1]:.1f} decode {l_dec[-1]:.2f} tok/s")
    if solar:
        solar.close()
    llama.close()
    if dec_only:
        dec_only.close()
    res["llama"] = {"prefill_tps": mean_sd(l_pre), "decode_tps": mean_sd(l_dec),
                    "perf_context": {"prefill_tps": mean_sd(own_pre), "decode_tps": mean_sd(own_dec)}}
    if solar:
        res["solar"] = {"prefill_tps": mean_sd(s_pre), "decode_tps": mean_sd(s_dec)}
    res["decode_ratio"] = ratio(res["solar"] and res["solar"]["decode_tps"], res["llama"]["decode_tps"])
    res["prefill_ratio"] = ratio(res["solar"] and res["solar"]["prefill_tps"], res["llama"]["prefill_tps"])
    res["decode_ratio_best"] = ratio(res["solar"] and res["solar"]["decode_tps"], res["llama"]["decode_tps"], "max")
    res["prefill_ratio_best"] = ratio(res["solar"] and res["solar"]["prefill_tps"], res["llama"]["prefill_tps"], "max")
    res["decode_target"] = DECODE_TARGET
    res["prefill_target"] = PREFILL_TARGET.get(fmt)
    return res


def machine_limits(results):
    """The machine's limits: the best of what every format's bench_inference
    measured (each is bytes or FLOPs really done in the time, so the highest is
    the least disturbed), and each engine's fraction of them."""
    setups = [r["setup"] for r in results]
    m = {"mem_gbs": max(S["mem_gbs"] for S in setups),
         "mem_gbs_simple": max(S["mem_gbs_simple"] for S in setups),
         "mem_gbs_wide": max(S["mem_gbs_wide"] for S in setups),
         "wide_probe_isa": setups[0]["wide_probe_isa"],
         "gemm_bf16_gflops": max(S["gemm_bf16_gflops"] for S in setups),
         "gemm_f32_gflops": max(S["gemm_f32_gflops"] for S in setups),
         "gemm_int8_gops": max(S.get("gemm_int8_gops", 0) for S in setups)}
    m["gemm_peak_gflops"] = max(m["gemm_bf16_gflops"], m["gemm_f32_gflops"])
    for r in results:
        S = r["setup"]
        limit = m["mem_gbs"] * 1e9 / S["weight_bytes_per_token"]
        r["decode_limit_tps"] = limit
        for who in ("solar", "llama"):
            if r[who]:
                r[f"{who}_decode_of_limit"] = r[who]["decode_tps"]["mean"] / limit
                # Quantized formats multiply int8 (both engines): oneDNN's int8 matmul is their peak.
                peak = m["gemm_int8_gops"] if S.get("gemm_int8_gops", 0) > 0 else m["gemm_peak_gflops"]
                r[f"{who}_prefill_of_peak"] = (r[who]["prefill_tps"]["mean"] * S["prefill_flops"] /
                                               max(S["prefill_tokens"], 1) / 1e9 / peak)
    return m


def pct(x):
    return "—" if x is None else f"{100 * x:.0f}%"


def rx(x, best=None):
    return "—" if x is None else f"{x:.2f}×" + (f" (best {best:.2f}×)" if best is not None else "")


def print_report(results, m, args):
    log("")
    log(f"## solar vs llama.cpp: preset {args.preset}, prompt {args.prompt}, gen {args.gen}, "
        f"{args.threads} thread(s), {args.reps} rep(s) each after a warm-up (mean ± sd; ~ marks sd > "
        f"{100 * NOISY_CV:.0f}% of the mean)")
    log("")
    for line in results[0]["setup"]["cpu_report"].splitlines():
        log(f"solar {line}")
    log(f"llama.cpp: {results[0]['llama_system_info']}; flash attention {results[0]['llama_flash_attn']}")
    for r in results:
        if r.get("llama_note"):
            log(f"{r['format']}: {r['llama_note']}")
    log("")
    def table(title, kind, of):
        """One row per format: solar, llama.cpp, ratio, target, each one's fraction of the limit."""
        log(title)
        log("")
        head = ["format"] + [h for h, _ in extra_heads[kind]] + \
            ["solar", "llama.cpp", "ratio", "target", f"solar of {of}", f"llama.cpp of {of}"]
        log("| " + " | ".join(head) + " |")
        log("|" + " --- |" * len(head))
        for r in results:
            s = r["solar"]
            cells = [r["format"]] + [f(r) for _, f in extra_heads[kind]] + [
                fmt_ms(s[f"{kind}_tps"]) if s else "skipped", fmt_ms(r["llama"][f"{kind}_tps"]),
                rx(r[f"{kind}_ratio"], r[f"{kind}_ratio_best"]), verdict(r[f"{kind}_ratio"], r[f"{kind}_target"]),
                pct(r.get(f"solar_{kind}_of_{'limit' if kind == 'decode' else 'peak'}")),
                pct(r.get(f"llama_{kind}_of_{'limit' if kind == 'decode' else 'peak'}"))]
            log("| " + " | ".join(cells) + " |")
        log("")

    extra_heads = {"decode": [("made by", lambda r: r["made_by"]),
                              ("GB/token", lambda r: f"{r['setup']['weight_bytes_per_token'] / 1e9:.3f}")],
                   "prefill": []}
    table("Decode (tok/s; limit: the measured bandwidth over the bytes a token reads)", "decode", "limit")
    table(f"Prefill of {args.prompt} tokens as one batch (tok/s; peak: the faster of kernels::gemm BF16 and F32, "
          "for the quantized formats oneDNN's u8·s8 int8 matmul)",
          "prefill", "GEMM peak")
    for r in results:
        if r["solar_skipped"]:
            log(f"{r['format']}: {r['solar_skipped']}")
    log(f"bandwidth limit {m['mem_gbs']:.1f} GB/s: the best of the simple probe ({m['mem_gbs_simple']:.1f}) and the "
        f"wide {m['wide_probe_isa']} probe ({m['mem_gbs_wide']:.1f}); GEMM peak {m['gemm_peak_gflops']:.0f} GFLOP/s "
        f"(BF16 {m['gemm_bf16_gflops']:.0f}, F32 {m['gemm_f32_gflops']:.0f}), int8 peak {m['gemm_int8_gops']:.0f} GOP/s; "
        f"{args.threads} thread(s), the best of "
        f"what bench_inference measured before each format (each format's own figures are in --json)")
    cross = []
    for r in results:
        own, ours = r["llama"]["perf_context"], r["llama"]
        for k in ("prefill_tps", "decode_tps"):
            if ours[k]["mean"] > 0 and own[k]["mean"] > 0:
                cross.append(abs(own[k]["mean"] / ours[k]["mean"] - 1))
    if cross:
        log(f"llama.cpp timed around llama_decode vs its own llama_perf_context: within "
            f"{100 * max(cross):.1f}% on every figure")
    noisy = [r["format"] for r in results
             for who in ("solar", "llama") if r[who]
             for k in ("prefill_tps", "decode_tps") if r[who][k]["n"] and r[who][k]["mean"] > 0
             and r[who][k]["sd"] / r[who][k]["mean"] > NOISY_CV]
    if noisy:
        log(f"NOISY: sd above {100 * NOISY_CV:.0f}% of the mean in {', '.join(sorted(set(noisy)))}: the machine "
            f"is shared; rerun with more --reps or on a quiet machine before reading ratios")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("build", help="solar's build folder (has solar and bench_inference)")
    ap.add_argument("--preset", default="1b")
    ap.add_argument("--prompt", type=int, default=512)
    ap.add_argument("--gen", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--formats", default="f32,f16,bf16,q8_0,q4_0,q4_k_m")
    ap.add_argument("--workdir", help="where the GGUF files are kept between runs (default BUILD/vs_llamacpp)")
    ap.add_argument("--tokenizer", default=os.path.join(ROOT, "..", "shared", "data", "tokenizers", "llama2.model"),
                    help="SentencePiece model written into the files (llama.cpp loads no GGUF without one)")
    ap.add_argument("--solar-quant", choices=["auto", "slow"], default="auto",
                    help="auto: skip solar on weight types its kernels still run through the reference "
                         "(dequantize-a-row) path; slow: run them anyway")
    ap.add_argument("--make-only", action="store_true", help="make (or find) the GGUF files, then stop")
    ap.add_argument("--json", help="write every figure here")
    ap.add_argument("--gguf", action="append", default=[], metavar="FORMAT=PATH",
                    help="time this existing file as FORMAT instead of making one (repeatable; e.g. "
                         "q4_k_m=solar-10.7b-q4_k_m.gguf for a model too large to make in F32 first)")
    args = ap.parse_args()
    if args.prompt < 0 or args.gen < 0 or args.prompt + args.gen == 0 or args.reps < 1 or args.threads < 1:
        ap.error("--prompt, --gen >= 0 (not both 0), --reps >= 1, --threads >= 1")
    solar = os.path.join(args.build, "solar")
    bench = os.path.join(args.build, "bench_inference")
    for b in (solar, bench):
        if not os.access(b, os.X_OK):
            ap.error(f"{b}: not found (build the solar and bench_inference targets)")
    if not os.path.exists(args.tokenizer):
        ap.error(f"--tokenizer {args.tokenizer}: not found (llama.cpp loads no GGUF without a vocabulary; "
                 f"give a SentencePiece tokenizer.model)")
    args.workdir = args.workdir or os.path.join(args.build, "vs_llamacpp")
    given = {}
    for g in args.gguf:
        fmt, _, path = g.partition("=")
        if not path or not os.path.exists(path):
            ap.error(f"--gguf {g}: expected FORMAT=PATH of an existing file")
        given[fmt.strip().lower()] = path
    formats = [f.strip().lower() for f in args.formats.split(",") if f.strip()] if not given or args.formats != \
        ap.get_default("formats") else list(given)
    for f in formats:
        if f not in FLOAT_FORMATS and f not in QUANT_FTYPES and f not in given:
            ap.error(f"--formats: unknown {f!r} (known: {', '.join(FLOAT_FORMATS + list(QUANT_FTYPES))})")

    L.llama_log_set(_quiet, None)
    L.llama_backend_init()
    models = Models(args, solar)
    log(f"# quantizer: {models.quantizer_name()}" + ("" if models.quantizer else " (solar has no quantize command)"))
    log(f"# models in {args.workdir}:")
    files = {f: (given[f], "given (--gguf)") if f in given else models.get(f) for f in formats}
    if args.make_only:
        return

    sysinfo = L.llama_print_system_info().decode().strip()
    log(f"# llama.cpp (llama-cpp-python {L.__version__}) system info: {sysinfo}")
    results = []
    for f in formats:
        path, made_by = files[f]
        log(f"# {f}: {path}")
        r = bench_format(f, path, made_by, args, bench)
        results.append(r)
    limits = machine_limits(results)
    print_report(results, limits, args)
    if args.json:
        out = {"settings": {k: v for k, v in vars(args).items()}, "platform": platform.platform(),
               "llama_cpp_python": L.__version__, "llama_system_info": sysinfo,
               "solar_cpu_report": results[0]["setup"]["cpu_report"], "machine_limits": limits,
               "formats": results}
        tmp = args.json + ".tmp"
        with open(tmp, "w") as fh:
            json.dump(out, fh, indent=1)
        os.replace(tmp, args.json)
        log(f"wrote {args.json}")


if __name__ == "__main__":
    main()
