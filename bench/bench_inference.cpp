// bench_inference — decode and prefill speed of a model, beside the machine's
// limits measured in the same run:
//   decode  : tokens/s vs memory-bandwidth limit (bandwidth / weight bytes per token)
//   prefill : tokens/s and GFLOP/s vs the BF16 / F32 GEMM peak of kernels::gemm,
//             or for block-quantized matrices oneDNN's int8 matmul (bench::int8_peak_gops)
// The model is a file solar loads (-m: HF folder, GGUF incl. block-quantized
// types, llama2.c) or random weights of a preset. Each pass is llama-bench's:
// the prompt as one batch (prefill), then --gen single-token steps after it
// (decode); one warm-up pass first, then --reps passes, mean ± sd.
//
// --sync is for bench/vs_llamacpp.py, which interleaves these passes with
// llama.cpp's: after the setup line (limits, kernel check) the process waits
// on stdin; each line "run" runs one pass and prints its JSON line, "quit" or
// end of input exits. The first "run" is the caller's warm-up.
#include <omp.h>

#include <cstdio>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bench.h"
#include "core/error.h"
#include "engine/engine.h"
#include "formats/load.h"
#include "kernels/kernels.h"
#include "model/init.h"

using namespace solar;
using bench::Clock;
using bench::secs;
using nlohmann::json;

namespace {

const char* kUsage =
    "usage: bench_inference [-m MODEL | --preset 1b --dtype bf16|f16|f32] [--prompt 512] [--gen 32]\n"
    "                       [--threads 1,2] [--reps 1] [--json] [--sync]\n";

struct Options {
  std::string model, preset = "1b", dtype = "bf16";
  int prompt = 512, gen = 32, reps = 1;
  std::vector<int> threads{1, 2};
  bool json = false, sync = false;
};

model::Checkpoint random_checkpoint(const Options& o) {
  return bench::random_checkpoint(o.preset, parse_dtype(o.dtype), o.prompt + o.gen + 1);
}

// The matrices a decoded token reads, as Model::weight_bytes_per_token counts
// them: every layer matrix, the output head and one embedding row.
std::vector<const TensorView*> token_matrices(const model::Checkpoint& ck) {
  std::vector<const TensorView*> out;
  const TensorView& head = ck.lm_head();
  for (const auto& [name, t] : ck.tensors)
    if (t.shape.size() == 2 && &t != &head && name != "model.embed_tokens.weight") out.push_back(&t);
  out.push_back(&head);
  return out;
}

// Bytes read per decoded token by weight type ("Q4_K": 5.1e8, …).
std::map<std::string, double> bytes_by_type(const model::Checkpoint& ck) {
  std::map<std::string, double> by;
  for (const TensorView* t : token_matrices(ck)) by[dtype_name(t->dtype)] += double(t->nbytes);
  const TensorView& e = ck.get("model.embed_tokens.weight");
  by[dtype_name(e.dtype)] += double(e.row_nbytes());
  return by;
}

// FLOPs of one prefill of T tokens: the layer matrices for every token, the
// head for the last one only (as Context::eval), attention's QKᵀ and AV over
// the causal half (2·2·T²/2·q_dim per layer).
double prefill_flops(const model::ModelConfig& c, int T) {
  const double d = c.hidden_size, per_layer = 2 * d * c.q_dim() + 2 * d * c.kv_dim() + 3 * d * c.intermediate_size;
  return 2 * per_layer * c.num_hidden_layers * T + 2.0 * c.vocab_size * d +
         2.0 * 2.0 * double(T) * T / 2 * c.q_dim() * c.num_hidden_layers;
}

// Which linear() path each weight type takes, by speed: the smallest matrix
// of each type at M = 1 (GEMV) and M = 32 (GEMM), on one thread (a busy
// machine stalls a team of threads far more than one), best of 5. The
// reference path (dequantize a row, dot in double: one dependent add per
// element) runs at 1–1.5 GFLOP/s on a Zen 4 core, ~2.5 at 5 GHz; a real kernel
// at 20 (GEMV) and 70 (GEMM) or more. A busy machine only slows a run, so the
// best of 5 cannot lift the reference path over the floors. "reference" when
// either is under its floor.
constexpr double kGemvFloor = 5, kGemmFloor = 10;  // GFLOP/s on one thread

double linear_gflops(const TensorView& t, int64_t M) {
  const int64_t N = t.shape[0], K = t.shape[1];
  std::vector<float> x(size_t(M * K), 0.01f), y(size_t(M * N));
  kernels::linear(x.data(), M, K, t.data, t.dtype, N, y.data());  // warm-up
  double best = 1e30;
  for (int rep = 0; rep < 5; ++rep) {
    auto t0 = Clock::now();
    kernels::linear(x.data(), M, K, t.data, t.dtype, N, y.data());
    best = std::min(best, secs(t0));
  }
  return 2.0 * M * N * K / best / 1e9;
}

json kernel_check(const model::Checkpoint& ck) {
  std::map<DType, const TensorView*> smallest;
  for (const TensorView* t : token_matrices(ck)) {
    auto& s = smallest[t->dtype];
    if (!s || t->nbytes < s->nbytes) s = t;
  }
  const int threads = kernels::num_threads();
  kernels::set_num_threads(1);
  json out = json::object();
  for (const auto& [dt, t] : smallest) {
    const double gemv = linear_gflops(*t, 1), gemm = linear_gflops(*t, 32);
    out[dtype_name(dt)] = {{"matrix", t->name}, {"gemv_gflops_1t", gemv}, {"gemm32_gflops_1t", gemm},
                           {"path", gemv < kGemvFloor || gemm < kGemmFloor ? "reference" : "fast"}};
  }
  kernels::set_num_threads(threads);
  return out;
}

struct Pass {
  double prefill_s = 0, decode_s = 0;
};

// One llama-bench pass on a fresh cache: prompt tokens as one batch, then gen single steps.
Pass run_pass(const std::shared_ptr<const engine::Model>& m, const Options& o) {
  const auto& c = m->config();
  std::vector<int> toks(size_t(o.prompt + o.gen));
  for (size_t i = 0; i < toks.size(); ++i) toks[i] = int((i * 7919 + 1) % size_t(c.vocab_size));
  std::vector<float> logits(size_t(c.vocab_size));
  engine::Context ctx(m, o.prompt + o.gen + 1);
  Pass p;
  auto t = Clock::now();
  if (o.prompt > 0) ctx.eval(toks.data(), o.prompt, logits.data());
  p.prefill_s = secs(t);
  t = Clock::now();
  for (int i = 0; i < o.gen; ++i) ctx.eval(&toks[size_t(o.prompt + i)], 1, logits.data());
  p.decode_s = secs(t);
  return p;
}

std::vector<int> parse_ints(const std::string& s) {
  std::vector<int> v;
  for (const auto& x : bench::split(s)) v.push_back(std::stoi(x));
  return v;
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() {
      if (i + 1 >= argc) throw std::invalid_argument(a + " needs a value");
      return std::string(argv[++i]);
    };
    if (a == "-m" || a == "--model") o.model = next();
    else if (a == "--preset") o.preset = next();
    else if (a == "--dtype") o.dtype = next();
    else if (a == "--prompt") o.prompt = std::stoi(next());
    else if (a == "--gen") o.gen = std::stoi(next());
    else if (a == "--reps") o.reps = std::stoi(next());
    else if (a == "--threads") o.threads = parse_ints(next());
    else if (a == "--json") o.json = true;
    else if (a == "--sync") o.sync = true;
    else throw std::invalid_argument("unknown flag " + a);
  }
  if (o.prompt < 0 || o.gen < 0 || o.prompt + o.gen == 0) throw std::invalid_argument("--prompt and --gen: >= 0, not both 0");
  if (o.reps < 1) throw std::invalid_argument("--reps: at least 1");
  if (o.threads.empty()) throw std::invalid_argument("--threads: give at least one count");
  for (int t : o.threads)
    if (t < 1) throw std::invalid_argument("--threads: counts >= 1");
  if (o.sync && o.threads.size() != 1) throw std::invalid_argument("--sync takes one --threads count");
  return o;
}

int run(const Options& o) {
  auto t0 = Clock::now();
  formats::LoadOptions lo;
  lo.check_tensors = false;  // not part of what is measured
  model::Checkpoint ck = o.model.empty() ? random_checkpoint(o) : formats::load_checkpoint(o.model, lo);
  const model::ModelConfig c = ck.config;
  if (o.prompt + o.gen + 1 > c.max_position_embeddings)
    fail(ck.source, "max_position_embeddings",
         "at least --prompt + --gen + 1 = " + std::to_string(o.prompt + o.gen + 1) + ", got " +
             std::to_string(c.max_position_embeddings));
  const auto by_type = bytes_by_type(ck);
  bool quantized = false;  // prefill then multiplies int8: its peak is the int8 one
  for (const TensorView* t : token_matrices(ck)) quantized = quantized || !is_float(t->dtype);
  auto m = std::make_shared<const engine::Model>(std::move(ck));
  const double load_s = secs(t0), wbytes = double(m->weight_bytes_per_token());
  const std::string label = o.model.empty() ? "random " + o.preset + " " + o.dtype : o.model;
  std::string types;
  for (const auto& [t, b] : by_type) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%s%s %.3f GB", types.empty() ? "" : ", ", t.c_str(), b / 1e9);
    types += buf;
  }
  std::printf("%s\n# bench_inference: %s (%.3fB params, d=%d, ff=%d, L=%d, heads %d/%d, vocab %d); %.3f GB read per "
              "decoded token (%s); load %.1f s; prompt %d, gen %d, %d rep(s) after a warm-up\n",
              kernels::cpu_report().c_str(), label.c_str(), c.num_parameters() / 1e9, c.hidden_size,
              c.intermediate_size, c.num_hidden_layers, c.num_attention_heads, c.num_key_value_heads, c.vocab_size,
              wbytes / 1e9, types.c_str(), load_s, o.prompt, o.gen, o.reps);
  if (!o.sync) {
    if (quantized) std::printf("# block-quantized matrices: prefill's \"of pk\" is of the int8 peak (oneDNN u8*s8 matmul)\n");
    std::printf("%-7s %8s %8s %14s %8s %8s | %16s %8s %8s %8s %8s %8s\n", "threads", "bw simp", "bw wide",
                "decode tok/s", "limit", "of lim", "prefill tok/s", "GFLOP/s", "bf16 pk", "f32 pk",
                quantized ? "int8 pk" : "", "of pk");
  }
  std::fflush(stdout);

  bench::BandwidthProbe probe;
  const double flops = prefill_flops(c, o.prompt);
  for (int th : o.threads) {
    const double bw_simple = probe.simple(th), bw_wide = probe.wide(th), bw = std::max(bw_simple, bw_wide);
    const double bf16_peak = bench::gemm_peak_gflops(kernels::Precision::BF16, th);
    const double f32_peak = bench::gemm_peak_gflops(kernels::Precision::F32, th);
    const double int8_peak = quantized ? bench::int8_peak_gops(th) : 0;
    const double peak = int8_peak > 0 ? int8_peak : std::max(bf16_peak, f32_peak), limit_tps = bw * 1e9 / wbytes;
    kernels::set_num_threads(th);
    const json check = kernel_check(m->checkpoint());
    json base = {{"bench", "inference"}, {"model", label}, {"preset", o.model.empty() ? o.preset : ""},
                 {"dtype", o.model.empty() ? o.dtype : ""}, {"threads", th},
                 {"weight_bytes_per_token", wbytes}, {"weight_bytes_by_type", by_type},
                 {"mem_gbs_simple", bw_simple}, {"mem_gbs_wide", bw_wide}, {"mem_gbs", bw},
                 {"wide_probe_isa", probe.wide_isa()}, {"decode_limit_tps", limit_tps},
                 {"gemm_bf16_gflops", bf16_peak}, {"gemm_f32_gflops", f32_peak}, {"gemm_int8_gops", int8_peak},
                 {"prefill_tokens", o.prompt},
                 {"gen_tokens", o.gen}, {"prefill_flops", flops}, {"kernel_check", check},
                 {"cpu_report", kernels::cpu_report()}};
    auto pass_json = [&](const Pass& p) {
      json r = base;
      r["bench"] = "inference_pass";
      r["prefill_tps"] = o.prompt > 0 ? o.prompt / p.prefill_s : 0.0;
      r["prefill_gflops"] = o.prompt > 0 ? flops / p.prefill_s / 1e9 : 0.0;
      r["decode_tps"] = o.gen > 0 ? o.gen / p.decode_s : 0.0;
      r.erase("kernel_check");
      r.erase("cpu_report");
      r.erase("weight_bytes_by_type");
      return r;
    };
    if (o.sync) {
      base["bench"] = "inference_setup";
      std::printf("%s\n", base.dump().c_str());
      std::fflush(stdout);
      for (std::string line; std::getline(std::cin, line) && line != "quit";) {
        if (line != "run") throw std::invalid_argument("--sync: expected 'run' or 'quit' on stdin, got '" + line + "'");
        std::printf("%s\n", pass_json(run_pass(m, o)).dump().c_str());
        std::fflush(stdout);
      }
      return 0;
    }
    run_pass(m, o);  // warm-up: page faults, oneDNN primitives, the KV cache's first touch
    std::vector<double> pre, dec;
    for (int r = 0; r < o.reps; ++r) {
      Pass p = run_pass(m, o);
      if (o.prompt > 0) pre.push_back(o.prompt / p.prefill_s);
      if (o.gen > 0) dec.push_back(o.gen / p.decode_s);
      if (o.json) std::printf("%s\n", pass_json(p).dump().c_str());
    }
    const bench::Stats ps = bench::stats(pre), ds = bench::stats(dec);
    const double pf_gflops = flops * ps.mean / std::max(o.prompt, 1) / 1e9;
    std::printf("%-7d %8.1f %8.1f %8.2f ±%5.2f %8.2f %7.0f%% | %9.1f ±%5.1f %8.1f %8.1f %8.1f %8s %7.0f%%\n", th,
                bw_simple, bw_wide, ds.mean, ds.sd, limit_tps, 100 * ds.mean / limit_tps, ps.mean, ps.sd, pf_gflops,
                bf16_peak, f32_peak, int8_peak > 0 ? std::to_string(int(int8_peak + 0.5)).c_str() : "",
                100 * pf_gflops / peak);
    for (const auto& [t, r] : check.items())
      if (r["path"] == "reference")
        std::printf("#   %s weights: reference path (%s on 1 thread: GEMV %.2f, M=32 GEMM %.2f GFLOP/s)\n",
                    t.c_str(), r["matrix"].get<std::string>().c_str(), r["gemv_gflops_1t"].get<double>(),
                    r["gemm32_gflops_1t"].get<double>());
    if (o.json) {
      json s = base;
      s.update({{"reps", o.reps}, {"decode_tps", ds.mean}, {"decode_tps_sd", ds.sd}, {"prefill_tps", ps.mean},
                {"prefill_tps_sd", ps.sd}, {"prefill_gflops", pf_gflops}});
      std::printf("%s\n", s.dump().c_str());
    }
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  try {
    o = parse(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_inference: %s\n%s", e.what(), kUsage);
    return 2;
  }
  try {
    return run(o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_inference: %s\n", e.what());
    return 1;
  }
}
