// bench_batch — what continuous batching buys: B sequences decoding together
// in one Context::eval_batch per step (the weights read once per step) against
// the same B sequences each running its own eval (the weights read B times),
// in one run, on random weights of a preset.
//   bench_batch [--preset 50m] [--dtype f32|bf16|f16] [--batch 1,4,16,64] [--prompt 32] [--gen 16] [--threads 1]
//               [--vocab N]  (the preset's vocabulary otherwise; 32000 = Llama 2's, as a served model has)
// Prints the CPU, then per B: aggregate decode tokens/s both ways and the ratio.
// The machine may be shared: compare the ratios, which are measured side by side.
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "bench.h"
#include "core/error.h"
#include "engine/engine.h"

using namespace solar;
using bench::Clock;
using bench::secs;

int main(int argc, char** argv) {
  std::string preset = "50m", dtype = "f32", batches = "1,4,16,64";
  int prompt = 32, gen = 16, threads = 1, vocab = 0;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s: missing value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--preset") preset = next();
    else if (a == "--dtype") dtype = next();
    else if (a == "--batch") batches = next();
    else if (a == "--prompt") prompt = std::stoi(next());
    else if (a == "--gen") gen = std::stoi(next());
    else if (a == "--threads") threads = std::stoi(next());
    else if (a == "--vocab") vocab = std::stoi(next());
    else {
      std::fprintf(stderr, "usage: bench_batch [--preset 50m] [--dtype f32] [--batch 1,4,16,64] [--prompt 32] [--gen 16] [--threads 1] [--vocab N]\n");
      return 2;
    }
  }
  try {
    kernels::set_num_threads(threads);
    auto m = std::make_shared<const engine::Model>(bench::random_checkpoint(preset, parse_dtype(dtype), prompt + gen + 1, vocab));
    const int V = m->config().vocab_size;
    std::printf("%s\nrandom %s %s, vocab %d, %d threads, prompt %d, %d decode steps (the machine may be shared: compare ratios)\n",
                kernels::cpu_report().c_str(), preset.c_str(), dtype.c_str(), V, kernels::num_threads(), prompt, gen);
    for (const std::string& bs : bench::split(batches)) {
      const int B = std::stoi(bs);
      double tps[2];
      for (int batched = 0; batched < 2; ++batched) {
        std::vector<engine::Context> ctx;
        for (int b = 0; b < B; ++b) ctx.emplace_back(m, prompt + gen + 1);
        std::vector<int> toks(static_cast<size_t>(prompt));
        std::vector<float> logits(size_t(B) * V);
        for (int b = 0; b < B; ++b) {
          for (int i = 0; i < prompt; ++i) toks[size_t(i)] = (b * 31 + i * 7) % V;
          ctx[size_t(b)].eval(toks.data(), prompt, nullptr);
        }
        std::vector<int> next(static_cast<size_t>(B), 1);
        std::vector<engine::BatchItem> items;
        for (int b = 0; b < B; ++b) items.push_back({&ctx[size_t(b)], &next[size_t(b)], 1, &logits[size_t(b) * V]});
        auto t = Clock::now();
        for (int s = 0; s < gen; ++s) {
          if (batched)
            engine::Context::eval_batch(items.data(), B);
          else
            for (int b = 0; b < B; ++b) ctx[size_t(b)].eval(&next[size_t(b)], 1, &logits[size_t(b) * V]);
          for (int b = 0; b < B; ++b) next[size_t(b)] = (next[size_t(b)] * 17 + s) % V;
        }
        tps[batched] = double(B) * gen / secs(t);
      }
      std::printf("B=%3d: separate %8.1f tok/s, batched %8.1f tok/s, batched/separate %.2fx\n", B, tps[0], tps[1],
                  tps[1] / tps[0]);
      std::fflush(stdout);
    }
  } catch (const Error& e) {
    std::fprintf(stderr, "bench_batch: %s\n", e.what());
    return 1;
  }
  return 0;
}
