// bench_inference — decode and prefill speed on a real model shape, beside
// the machine's limits measured in the same run:
//   decode  : tokens/s vs memory-bandwidth limit (bandwidth / weight bytes per token)
//   prefill : tokens/s and GFLOP/s vs the BF16 / F32 GEMM peak of kernels::gemm
// usage: bench_inference [--preset 1b] [--dtype bf16] [--prompt 512] [--gen 32] [--threads 1,2] [--json]
#include <omp.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "kernels/kernels.h"
#include "model/init.h"
#include "engine/engine.h"

using namespace solar;
using Clock = std::chrono::steady_clock;

static double secs(Clock::time_point a) { return std::chrono::duration<double>(Clock::now() - a).count(); }

// Read-only streaming bandwidth over a buffer much larger than the caches.
static double bandwidth_gbs(int threads) {
  static std::vector<float> buf;
  if (buf.empty()) buf.assign(size_t(1) << 28, 1.0f);  // 1 GiB
  kernels::set_num_threads(threads);
  double best = 0;
  for (int rep = 0; rep < 4; ++rep) {
    auto t = Clock::now();
    float total = 0;
#pragma omp parallel for reduction(+ : total) schedule(static)
    for (size_t i = 0; i < buf.size(); i += 16) {
      float s = 0;
      for (int j = 0; j < 16; ++j) s += buf[i + j];
      total += s;
    }
    double s = secs(t);
    if (total < 0) std::puts("");
    best = std::max(best, buf.size() * 4.0 / s / 1e9);
  }
  return best;
}

static double gemm_gflops(int threads, kernels::Precision p, int n) {
  kernels::set_num_threads(threads);
  std::vector<float> A(size_t(n) * n, 0.5f), B(size_t(n) * n, 0.25f), C(size_t(n) * n);
  kernels::gemm(false, true, n, n, n, 1.f, A.data(), n, B.data(), n, 0.f, C.data(), n, p);  // warm up
  double best = 1e30;
  for (int rep = 0; rep < 3; ++rep) {
    auto t = Clock::now();
    kernels::gemm(false, true, n, n, n, 1.f, A.data(), n, B.data(), n, 0.f, C.data(), n, p);
    best = std::min(best, secs(t));
  }
  return 2.0 * n * n * double(n) / best / 1e9;
}

int main(int argc, char** argv) {
  std::string preset = "1b", dts = "bf16";
  int prompt = 512, gen = 32;
  std::vector<int> threads{1, 2};
  bool json = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() { return i + 1 < argc ? std::string(argv[++i]) : std::string(); };
    if (a == "--preset") preset = next();
    else if (a == "--dtype") dts = next();
    else if (a == "--prompt") prompt = std::stoi(next());
    else if (a == "--gen") gen = std::stoi(next());
    else if (a == "--json") json = true;
    else if (a == "--threads") {
      threads.clear();
      std::string s = next();
      for (size_t p = 0; p < s.size();) {
        size_t q = s.find(',', p);
        threads.push_back(std::stoi(s.substr(p, q - p)));
        p = q == std::string::npos ? s.size() : q + 1;
      }
    } else {
      std::fprintf(stderr, "usage: bench_inference [--preset 1b] [--dtype bf16|f16|f32] [--prompt 512] [--gen 32] [--threads 1,2] [--json]\n");
      return 2;
    }
  }
  model::ModelConfig c = model::preset_config(preset);
  c.max_position_embeddings = std::max(c.max_position_embeddings, prompt + gen + 1);
  DType dt = parse_dtype(dts);
  model::Checkpoint ck;
  ck.source = "random " + preset;
  ck.config = c;
  auto t0 = Clock::now();
  for (const auto& n : model::expected_tensor_names(c)) {
    auto shape = model::expected_shape(c, n);
    int64_t numel = 1;
    for (auto s : shape) numel *= s;
    std::vector<uint8_t> b(tensor_bytes(dt, shape));
    model::init_tensor(c, n, 1, b.data(), dt, size_t(numel));
    ck.tensors[n] = ck.adopt(n, dt, shape, std::move(b));
  }
  auto m = std::make_shared<const engine::Model>(std::move(ck));
  const double params = double(c.num_parameters()), wbytes = double(m->weight_bytes_per_token());
  std::printf("%s\n# bench_inference: preset %s (%.3fB params, d=%d, ff=%d, L=%d, heads %d/%d, vocab %d), %s weights, "
              "%.2f GB read per decoded token; init %.1f s\n",
              kernels::cpu_report().c_str(), preset.c_str(), params / 1e9, c.hidden_size, c.intermediate_size,
              c.num_hidden_layers, c.num_attention_heads, c.num_key_value_heads, c.vocab_size, dts.c_str(),
              wbytes / 1e9, secs(t0));
  std::printf("%-8s %10s %12s %12s %10s | %12s %12s %10s %10s %10s\n", "threads", "mem GB/s", "decode tok/s",
              "limit tok/s", "of limit", "prefill t/s", "GFLOP/s", "bf16 peak", "f32 peak", "of peak");
  for (int th : threads) {
    double bw = bandwidth_gbs(th);
    kernels::set_num_threads(th);
    std::vector<int> toks(size_t(prompt + gen));
    for (size_t i = 0; i < toks.size(); ++i) toks[i] = int((i * 7919 + 1) % c.vocab_size);
    std::vector<float> logits(size_t(c.vocab_size));
    // Prefill: the whole prompt as one batch.
    engine::Context ctx(m, prompt + gen + 1);
    auto tp = Clock::now();
    ctx.eval(toks.data(), prompt, logits.data());
    double prefill_s = secs(tp);
    // Decode: gen single-token steps after the prompt.
    auto td = Clock::now();
    for (int i = 0; i < gen; ++i) ctx.eval(&toks[size_t(prompt + i)], 1, logits.data());
    double decode_s = secs(td);
    double dec_tps = gen / decode_s, limit_tps = bw * 1e9 / wbytes;
    // Prefill FLOPs: 2·(matmul params)·tokens + attention (QKᵀ and AV: 2·2·T²/2·q_dim per layer).
    double attn = 2.0 * 2.0 * double(prompt) * prompt / 2 * c.q_dim() * c.num_hidden_layers;
    double flops = 2.0 * (params - double(c.vocab_size) * c.hidden_size * (c.tie_word_embeddings ? 0 : 1)) * prompt +
                   2.0 * c.vocab_size * c.hidden_size + attn;
    double pf_gflops = flops / prefill_s / 1e9;
    double bf16_peak = gemm_gflops(th, kernels::Precision::BF16, 2048);
    double f32_peak = gemm_gflops(th, kernels::Precision::F32, 2048);
    double peak = std::max(bf16_peak, f32_peak);
    std::printf("%-8d %10.1f %12.2f %12.2f %9.0f%% | %12.1f %12.1f %10.1f %10.1f %9.0f%%\n", th, bw, dec_tps,
                limit_tps, 100 * dec_tps / limit_tps, prompt / prefill_s, pf_gflops, bf16_peak, f32_peak,
                100 * pf_gflops / peak);
    if (json)
      std::printf("{\"bench\":\"inference\",\"preset\":\"%s\",\"dtype\":\"%s\",\"threads\":%d,\"mem_gbs\":%.2f,"
                  "\"decode_tps\":%.3f,\"decode_limit_tps\":%.3f,\"prefill_tokens\":%d,\"prefill_tps\":%.2f,"
                  "\"prefill_gflops\":%.1f,\"gemm_bf16_gflops\":%.1f,\"gemm_f32_gflops\":%.1f}\n",
                  preset.c_str(), dts.c_str(), th, bw, dec_tps, limit_tps, prompt, prompt / prefill_s, pf_gflops,
                  bf16_peak, f32_peak);
  }
  return 0;
}
