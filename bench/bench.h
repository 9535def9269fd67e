// bench/bench.h — what the benchmarks share: timing, the GEMM peak they are
// measured against, and the FLOPs a training token costs.
#pragma once
#include <algorithm>
#include <chrono>
#include <sstream>
#include <string>
#include <vector>

#include "kernels/kernels.h"
#include "model/config.h"

namespace solar::bench {

using Clock = std::chrono::steady_clock;
inline double secs(Clock::time_point a) { return std::chrono::duration<double>(Clock::now() - a).count(); }

// "a,b,c" → {"a", "b", "c"}: the list flags.
inline std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string x; std::getline(ss, x, ',');) out.push_back(x);
  return out;
}

// kernels::gemm on 1536³ at this precision and thread count, best of 3 (GFLOP/s).
inline double gemm_peak_gflops(kernels::Precision p, int threads) {
  const int64_t n = 1536;
  std::vector<float> a(n * n, 0.5f), b(n * n, 0.25f), c(n * n);
  kernels::set_num_threads(threads);
  kernels::gemm(false, true, n, n, n, 1, a.data(), n, b.data(), n, 0, c.data(), n, p);  // warm up
  double best = 0;
  for (int rep = 0; rep < 3; ++rep) {
    auto t = Clock::now();
    kernels::gemm(false, true, n, n, n, 1, a.data(), n, b.data(), n, 0, c.data(), n, p);
    best = std::max(best, 2.0 * n * n * n / secs(t) / 1e9);
  }
  return best;
}

// Training FLOPs per token, forward + backward: 6·P_matmul + 12·L·T·d (PaLM
// appendix B); P_matmul leaves out the norms and an untied embedding lookup.
inline double flops_per_token(const model::ModelConfig& c, int T) {
  double P = double(c.num_parameters()) - double(c.hidden_size) * (2 * c.num_hidden_layers + 1);
  if (!c.tie_word_embeddings) P -= double(c.vocab_size) * c.hidden_size;
  return 6 * P + 12.0 * c.num_hidden_layers * T * c.hidden_size;
}

}  // namespace solar::bench
