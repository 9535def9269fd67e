// bench/bench.h — what the benchmarks share: timing, the memory bandwidth and
// GEMM peaks they are measured against, and the FLOPs a training token costs.
#pragma once
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <sstream>
#include <string>
#include <vector>
#if defined(__x86_64__)
#include <immintrin.h>
#endif
#include <oneapi/dnnl/dnnl.hpp>

#include "kernels/kernels.h"
#include "model/checkpoint.h"
#include "model/config.h"
#include "model/init.h"

namespace solar::bench {

using Clock = std::chrono::steady_clock;
inline double secs(Clock::time_point a) { return std::chrono::duration<double>(Clock::now() - a).count(); }

// Mean and sample standard deviation of repeated measurements.
struct Stats {
  double mean = 0, sd = 0;
};
inline Stats stats(const std::vector<double>& v) {
  Stats s;
  if (v.empty()) return s;
  for (double x : v) s.mean += x / double(v.size());
  for (double x : v) s.sd += (x - s.mean) * (x - s.mean);
  s.sd = v.size() > 1 ? std::sqrt(s.sd / double(v.size() - 1)) : 0;
  return s;
}

// "a,b,c" → {"a", "b", "c"}: the list flags.
inline std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string x; std::getline(ss, x, ',');) out.push_back(x);
  return out;
}

// Random weights (model::init_tensor) of a preset in dtype, with room for at
// least `positions` positions.
// vocab > 0 replaces the preset's vocabulary size.
inline model::Checkpoint random_checkpoint(const std::string& preset, DType dt, int positions, int vocab = 0) {
  model::ModelConfig c = model::preset_config(preset);
  if (vocab > 0) c.vocab_size = vocab;
  c.max_position_embeddings = std::max(c.max_position_embeddings, positions);
  model::Checkpoint ck;
  ck.source = "random " + preset;
  ck.config = c;
  for (const auto& n : model::expected_tensor_names(c)) {
    auto shape = model::expected_shape(c, n);
    int64_t numel = 1;
    for (auto s : shape) numel *= s;
    std::vector<uint8_t> b(tensor_bytes(dt, shape));
    model::init_tensor(c, n, 1, b.data(), dt, size_t(numel));
    ck.tensors[n] = ck.adopt(n, dt, shape, std::move(b));
  }
  return ck;
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

// oneDNN's matmul of n³ on its own preferred weight layout, best of `reps`
// after a warm-up (GOP/s): the raw GEMM peaks the kernels are measured
// against. 0 where oneDNN has no matmul of these types for this CPU.
inline double dnnl_matmul_gops(int64_t n, dnnl::memory::data_type a_dt, dnnl::memory::data_type b_dt,
                               dnnl::memory::data_type c_dt, int reps = 3) try {
  using dnnl::memory;
  dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  dnnl::stream s(eng);
  memory::desc a({n, n}, a_dt, memory::format_tag::ab), c({n, n}, c_dt, memory::format_tag::ab);
  memory::desc b({n, n}, b_dt, memory::format_tag::any);
  dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a, b, c), eng);
  memory ma(a, eng), mb(pd.weights_desc(), eng), mc(c, eng);
  std::fill_n(static_cast<uint8_t*>(ma.get_data_handle()), a.get_size(), uint8_t(0));
  std::fill_n(static_cast<uint8_t*>(mb.get_data_handle()), pd.weights_desc().get_size(), uint8_t(0));
  dnnl::matmul mm(pd);
  auto run = [&] {
    mm.execute(s, {{DNNL_ARG_SRC, ma}, {DNNL_ARG_WEIGHTS, mb}, {DNNL_ARG_DST, mc}});
    s.wait();
  };
  run();  // warm up: the JIT, page faults
  double best = 0;
  for (int rep = 0; rep < reps; ++rep) {
    auto t = Clock::now();
    run();
    best = std::max(best, 2.0 * n * n * n / secs(t) / 1e9);
  }
  return best;
} catch (const dnnl::error&) {
  return 0;
}

// The integer peak that quantized prefill is measured against, as
// kernels::gemm's is for the float formats: oneDNN's int8 matmul (u8 · s8 →
// s32, 1536³) at this thread count. It is a raw int8 GEMM: no block scales,
// and u8·s8 pairs that may saturate (vpmaddubsw), so a block-quantized kernel
// that must stay exact does more per product. On AVX-512 VNNI / AMX machines
// oneDNN uses those.
inline double int8_peak_gops(int threads) {
  using dt = dnnl::memory::data_type;
  kernels::set_num_threads(threads);
  return dnnl_matmul_gops(1536, dt::u8, dt::s8, dt::s32);
}

// Read-only memory bandwidth over a buffer much larger than the last-level
// cache: the roofline of decode, which streams every weight once per token.
// Two probes, both worth printing. simple() is the first one the benchmarks
// had: an OpenMP loop summing 16 floats at a time, one dependent add chain per
// thread, whole passes over the buffer; it leaves bandwidth unused (2 Zen 4
// cores: ~29 GB/s, where llama.cpp's decode reads ~42). wide() is what the
// best kernel can reach: each thread streams one contiguous range with 512-bit
// loads (256-bit without AVX-512, plain loops without AVX2) into 8
// independent accumulators, with and without software prefetch; the best of
// several passes, each timed whole and per slice of kSlice bytes (all threads
// on one slice, the slices in turn, so each comes from DRAM). On a shared
// machine a long pass is always preempted somewhere, and the limit is what
// the memory system gives when it is not; but a busy machine can also delay
// a thread's start at every slice, which whole passes ride out. Each timing
// is bytes really read from DRAM in that time, so the best of them is still
// a measured figure. Fractions "of the limit" use best(). Pages are 4 KiB, as
// the mmapped weights are.
class BandwidthProbe {
 public:
  explicit BandwidthProbe(size_t bytes = size_t(1) << 30)
      : n_(std::max(bytes, kSlice) / kSlice * kSlice / sizeof(float)),
        buf_(static_cast<float*>(std::aligned_alloc(64, n_ * sizeof(float))), std::free) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < int64_t(n_); ++i) buf_.get()[i] = 1.f;
  }
  size_t bytes() const { return n_ * sizeof(float); }
  const char* wide_isa() const { return isa() == 2 ? "avx512" : isa() == 1 ? "avx2" : "portable"; }

  double simple(int threads, int reps = 4) {
    const float* p = buf_.get();
    double best = 0;
    for (int rep = 0; rep < reps; ++rep) {
      auto t = Clock::now();
      float total = 0;
#pragma omp parallel for num_threads(threads) reduction(+ : total) schedule(static)
      for (int64_t i = 0; i < int64_t(n_); i += 16) {
        float s = 0;
        for (int j = 0; j < 16; ++j) s += p[i + j];
        total += s;
      }
      best = std::max(best, bytes() / secs(t) / 1e9);
      sink_ = sink_ + total;
    }
    return best;
  }

  double wide(int threads, int passes = 3) {
    double best = 0;
    const size_t slice = kSlice / sizeof(float);
    for (int pass = 0; pass < passes; ++pass)
      for (int64_t prefetch : {int64_t(0), int64_t(1024)}) {  // floats ahead: 4 KiB, a page
        best = std::max(best, wide_read(threads, buf_.get(), n_, prefetch));
        for (size_t s = 0; s < n_; s += slice) best = std::max(best, wide_read(threads, buf_.get() + s, slice, prefetch));
      }
    return best;
  }

  double best(int threads) { return std::max(simple(threads), wide(threads)); }

 private:
  static constexpr size_t kChunk = 128;           // floats per unrolled step: 8 × 512 bits
  static constexpr size_t kSlice = size_t(16) << 20;  // bytes timed at once: 1/2 of a Zen 4 CCD's L3

  static int isa() {
    const auto& f = kernels::cpu();
    return f.avx512f ? 2 : f.avx2 ? 1 : 0;
  }

  // GB/s of reading p[0, n) once; thread i reads [i·n/T, (i+1)·n/T) in whole chunks.
  double wide_read(int threads, const float* p, size_t n, int64_t prefetch) {
    const int level = isa();
    auto t = Clock::now();
    float total = 0;
#pragma omp parallel num_threads(threads) reduction(+ : total)
    {
      const size_t T = size_t(omp_get_num_threads()), i = size_t(omp_get_thread_num());
      const size_t chunks = n / kChunk, b = chunks * i / T * kChunk, e = chunks * (i + 1) / T * kChunk;
      total += level == 2 ? sum_avx512(p + b, e - b, prefetch)
               : level == 1 ? sum_avx2(p + b, e - b, prefetch)
                            : sum_portable(p + b, e - b);
    }
    const double gbs = n * sizeof(float) / secs(t) / 1e9;
    sink_ = sink_ + total;
    return gbs;
  }

  // Sums of n floats (n a multiple of kChunk) in 8 independent accumulators;
  // prefetch > 0: each step also prefetches the chunk that many floats ahead
  // (past the end is harmless: prefetches do not fault).
#if defined(__x86_64__)
  __attribute__((target("avx512f"))) static float sum_avx512(const float* p, size_t n, int64_t prefetch) {
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
    for (size_t i = 0; i < n; i += kChunk) {
      if (prefetch > 0)
        for (int64_t l = 0; l < int64_t(kChunk); l += 16) _mm_prefetch((const char*)(p + i + prefetch + l), _MM_HINT_T0);
      a0 = _mm512_add_ps(a0, _mm512_load_ps(p + i));
      a1 = _mm512_add_ps(a1, _mm512_load_ps(p + i + 16));
      a2 = _mm512_add_ps(a2, _mm512_load_ps(p + i + 32));
      a3 = _mm512_add_ps(a3, _mm512_load_ps(p + i + 48));
      a4 = _mm512_add_ps(a4, _mm512_load_ps(p + i + 64));
      a5 = _mm512_add_ps(a5, _mm512_load_ps(p + i + 80));
      a6 = _mm512_add_ps(a6, _mm512_load_ps(p + i + 96));
      a7 = _mm512_add_ps(a7, _mm512_load_ps(p + i + 112));
    }
    a0 = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)),
                       _mm512_add_ps(_mm512_add_ps(a4, a5), _mm512_add_ps(a6, a7)));
    alignas(64) float out[16];  // not _mm512_reduce_add_ps: GCC 12 warns inside it
    _mm512_store_ps(out, a0);
    float s = 0;
    for (float x : out) s += x;
    return s;
  }
  __attribute__((target("avx2"))) static float sum_avx2(const float* p, size_t n, int64_t prefetch) {
    __m256 a[8];
    for (auto& x : a) x = _mm256_setzero_ps();
    for (size_t i = 0; i < n; i += kChunk) {
      if (prefetch > 0)
        for (int64_t l = 0; l < int64_t(kChunk); l += 16) _mm_prefetch((const char*)(p + i + prefetch + l), _MM_HINT_T0);
      for (int r = 0; r < 2; ++r)
        for (int k = 0; k < 8; ++k) a[k] = _mm256_add_ps(a[k], _mm256_load_ps(p + i + 64 * r + 8 * k));
    }
    alignas(32) float out[8];
    for (int k = 1; k < 8; ++k) a[0] = _mm256_add_ps(a[0], a[k]);
    _mm256_store_ps(out, a[0]);
    return out[0] + out[1] + out[2] + out[3] + out[4] + out[5] + out[6] + out[7];
  }
#else
  static float sum_avx512(const float* p, size_t n, int64_t) { return sum_portable(p, n); }
  static float sum_avx2(const float* p, size_t n, int64_t) { return sum_portable(p, n); }
#endif
  static float sum_portable(const float* p, size_t n) {
    float a[8] = {};
    for (size_t i = 0; i < n; i += 8)
      for (int k = 0; k < 8; ++k) a[k] += p[i + k];
    return a[0] + a[1] + a[2] + a[3] + a[4] + a[5] + a[6] + a[7];
  }

  size_t n_;
  std::unique_ptr<float, decltype(&std::free)> buf_;
  volatile float sink_ = 0;  // keeps the sums alive
};

// Training FLOPs per token, forward + backward: 6·P_matmul + 12·L·T·d (PaLM
// appendix B); P_matmul leaves out the norms and an untied embedding lookup.
inline double flops_per_token(const model::ModelConfig& c, int T) {
  double P = double(c.num_parameters()) - double(c.hidden_size) * (2 * c.num_hidden_layers + 1);
  if (!c.tie_word_embeddings) P -= double(c.vocab_size) * c.hidden_size;
  return 6 * P + 12.0 * c.num_hidden_layers * T * c.hidden_size;
}

}  // namespace solar::bench
