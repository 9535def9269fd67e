// bench_train — training throughput (forward + backward + AdamW) beside the
// GEMM peak of kernels::gemm measured in the same run.
//   FLOPs per token = 6·P + 12·L·T·d   (PaLM appendix B)
//     P = parameters that take part in a matmul (every linear + the output
//         head; not the norms, not an untied embedding lookup); 12·L·T·d is
//         attention scores + values, forward and backward, full T×T (our
//         GEMMs compute the masked half too).
//         Our kernels skip most of the masked half (blocked causal attention),
//         PyTorch's SDPA does too; the same formula serves both.
//   MFU = FLOPs per token · tokens/s / GEMM peak (same precision, threads),
//         the peak measured again just before each row (best of 3). Step
//         times are the fastest of --steps (after a warm-up step), for solar
//         and PyTorch alike: the vCPUs here share their cores with neighbours,
//         and the fastest step is the one least disturbed.
// Both precisions where the CPU has BF16 hardware (--precision auto), else f32.
// When `import torch` works, bench/train_torch.py trains the same shape,
// batch, sequence and threads, eager FP32 and BF16 autocast; the faster of the
// two is its "fastest CPU configuration", and ratio = solar / that.
// usage: bench_train [--presets 10m,50m,110m] [--seqs 256,512,1024]
//          [--threads 1,2] [--tokens 1024] [--steps 3] [--precision auto|bf16|f32] [--no-torch]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "bench.h"
#include "kernels/kernels.h"
#include "train/net.h"
#include "train/optim.h"

using namespace solar;

// tokens/s of train_torch.py, or 0 when it cannot run.
static double torch_tokens_per_s(const std::string& preset, int T, int B, int threads, int steps, bool bf16) {
  std::string script = std::string(SOLAR_BENCH_DIR) + "/train_torch.py";
  std::string cmd = "python3 " + script + " --preset " + preset + " --seq " + std::to_string(T) + " --batch " +
                    std::to_string(B) + " --threads " + std::to_string(threads) + " --steps " + std::to_string(steps) +
                    (bf16 ? " --bf16" : "") + " 2>/dev/null";
  FILE* f = popen(cmd.c_str(), "r");
  if (!f) return 0;
  char line[4096];
  double tps = 0;
  while (fgets(line, sizeof line, f)) {
    const char* k = std::strstr(line, "\"tokens_per_s\":");
    if (k) tps = std::atof(k + 15);
  }
  pclose(f);
  return tps;
}

int main(int argc, char** argv) {
  std::string presets = "10m,50m,110m", seqs = "256,512,1024", threads_s = "1,2", precision = "auto";
  int tokens = 1024, steps = 3;
  bool torch = std::system("python3 -c 'import torch' >/dev/null 2>&1") == 0;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "bench_train: %s needs a value\n", a.c_str());
        std::exit(1);
      }
      return argv[++i];
    };
    if (a == "--presets") presets = next();
    else if (a == "--seqs") seqs = next();
    else if (a == "--threads") threads_s = next();
    else if (a == "--tokens") tokens = std::atoi(next().c_str());
    else if (a == "--steps") steps = std::atoi(next().c_str());
    else if (a == "--precision") precision = next();
    else if (a == "--no-torch") torch = false;
    else {
      std::fprintf(stderr, "usage: bench_train [--presets 10m,50m,110m] [--seqs 256,512,1024] [--threads 1,2] "
                           "[--tokens 1024] [--steps 3] [--precision auto|bf16|f32] [--no-torch]\n");
      return a == "-h" || a == "--help" ? 0 : 1;
    }
  }
  using kernels::Precision;
  // auto: both where the CPU has BF16 hardware (`solar train` picks the faster), else f32 (bf16 is emulated)
  std::vector<Precision> precs;
  if (precision != "bf16") precs.push_back(Precision::F32);
  if (precision == "bf16" || (precision == "auto" && kernels::fastest_precision() == Precision::BF16))
    precs.push_back(Precision::BF16);
  auto name_of = [](Precision p) { return p == Precision::BF16 ? "bf16" : "f32"; };
  std::printf("%s\nFLOPs/token = 6*P_matmul + 12*L*T*d; MFU against the kernels::gemm peak of the row's precision "
              "(1536^3); solar train --precision auto: %s\n",
              kernels::cpu_report().c_str(), name_of(kernels::fastest_precision()));
  for (const auto& ts : bench::split(threads_s)) {
    int t = std::atoi(ts.c_str());
    double pb = bench::gemm_peak_gflops(kernels::Precision::BF16, t), pf = bench::gemm_peak_gflops(kernels::Precision::F32, t);
    std::printf("gemm peak, %d thread(s): BF16 %.1f GFLOP/s, F32 %.1f GFLOP/s\n", t, pb, pf);
  }
  std::printf("%-6s %6s %4s %5s %3s %4s %8s %9s %8s %8s %6s %10s %5s %6s\n", "preset", "params", "seq", "batch",
              "thr", "prec", "step_s", "tok/s", "GFLOP/s", "peak", "MFU", "torch_tok/s", "mode", "ratio");
  for (const auto& name : bench::split(presets)) {
    model::ModelConfig c = model::preset_config(name);
    train::Net m = train::Net::init(c, 1);
    train::AdamW opt(m, {});
    for (const auto& ss : bench::split(seqs)) {
      const int T = std::atoi(ss.c_str()), B = std::max(1, tokens / T);
      std::vector<int32_t> batch(size_t(B) * (T + 1));
      std::mt19937 rng(1);
      for (auto& x : batch) x = int32_t(rng() % c.vocab_size);
      for (const auto& ts : bench::split(threads_s)) {
        const int t = std::atoi(ts.c_str());
        double ttps = 0;
        const char* mode = "-";
        if (torch) {
          double f32 = torch_tokens_per_s(name, T, B, t, steps, false), b16 = torch_tokens_per_s(name, T, B, t, steps, true);
          ttps = std::max(f32, b16);
          mode = ttps <= 0 ? "-" : f32 >= b16 ? "f32" : "bf16";
        }
        for (Precision prec : precs) {
          const double pk = bench::gemm_peak_gflops(prec, t);
          kernels::set_num_threads(t);
          m.set_options({prec, false});
          m.zero_grad();
          m.forward_backward(batch.data(), B, T);  // warm up: arena, oneDNN primitives
          std::vector<double> times;
          for (int s = 0; s < steps; ++s) {
            auto t0 = bench::Clock::now();
            m.zero_grad();
            m.forward_backward(batch.data(), B, T);
            opt.step(1e-4f);
            times.push_back(bench::secs(t0));
          }
          const double step_s = *std::min_element(times.begin(), times.end()), tps = B * T / step_s,
                       gflops = bench::flops_per_token(c, T) * tps / 1e9;
          std::printf("%-6s %5.1fM %4d %5d %3d %4s %8.3f %9.0f %8.1f %8.1f %5.1f%% %10.0f %5s %6s\n", name.c_str(),
                      c.num_parameters() / 1e6, T, B, t, name_of(prec), step_s, tps, gflops, pk, 100 * gflops / pk,
                      ttps, mode, ttps > 0 ? (std::to_string(tps / ttps).substr(0, 4) + "x").c_str() : "-");
          std::fflush(stdout);
        }
      }
    }
  }
  return 0;
}
