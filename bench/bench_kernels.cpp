// bench_kernels — memory bandwidth (bench.h's two probes), GEMV (decode) and
// GEMM (prefill) speed of kernels/, against oneDNN's raw matmul peaks (f32,
// bf16; int8 for the quantized types) and a naive loop, at 1 and 2 threads;
// then training's element-wise kernels against their portable loops. Prints
// an aligned table, then one JSON line per measurement.
//
//   bench_kernels [--quick] [--packed]   (--packed: only the packed-weight rows, for kernel work)
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <oneapi/dnnl/dnnl.hpp>
#include <string>
#include <vector>

#include "bench.h"
#include "core/quantize.h"
#include "kernels/kernels.h"
#include "kernels/kernels_impl.h"
#include "kernels/ops.h"

using namespace solar;
using namespace solar::kernels;

namespace {

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

// Best time of repeated runs (the machine is shared: the minimum is the least
// disturbed one), running for at least `budget` seconds.
template <class F>
double best_time(F&& f, double budget) {
  f();  // warm-up: page faults, JIT, primitive cache
  double best = 1e30, start = now();
  int runs = 0;
  while (runs < 3 || (now() - start < budget && runs < 1000)) {
    double t0 = now();
    f();
    best = std::min(best, now() - t0);
    ++runs;
  }
  return best;
}

struct Row {
  std::string bench, name;
  int threads;
  double value;
  const char* unit;
  double ratio;  // fraction of bandwidth / of oneDNN peak / speed-up over naive; < 0: none
  const char* ratio_of;
  double of_peak = -1;  // quantized prefill: fraction of oneDNN's int8 matmul (bench::int8_peak_gops); < 0: none
};
std::vector<Row> rows;

void report(Row r) {
  std::printf("%-6s %-40s %2d %10.2f %-8s", r.bench.c_str(), r.name.c_str(), r.threads, r.value, r.unit);
  if (r.ratio >= 0) std::printf(" %8.3f  %s", r.ratio, r.ratio_of);
  if (r.of_peak >= 0) std::printf("; %.0f%% of int8 peak", 100 * r.of_peak);
  std::printf("\n");
  std::fflush(stdout);
  rows.push_back(r);
}

// Enough copies of W that the set does not fit in L3: DRAM, as in decode.
struct Weights {
  std::vector<std::vector<uint8_t>> copies;
  size_t next = 0;
  Weights(int64_t N, int64_t K, DType t) {
    const size_t bytes = size_t(N) * row_bytes(t, K);
    const size_t n = std::max<size_t>(2, (size_t(256) << 20) / bytes + 1);
    std::vector<float> f(size_t(N * K));
    for (size_t i = 0; i < f.size(); ++i) f[i] = float(int(i * 2654435761u % 2001) - 1000) / 1000.f;
    // core's quantizer (llama.cpp's bytes) writes every type, float ones by conversion; once, then copied.
    std::vector<uint8_t> w(bytes);
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < N; ++r) quantize_row(&f[size_t(r * K)], t, &w[size_t(r) * row_bytes(t, K)], K);
    copies.assign(n, w);
  }
  const void* get() { return copies[next++ % copies.size()].data(); }
};

// The placeholder the kernels replaced: convert a W row, scalar dot products.
void naive_linear(const float* x, int64_t M, int64_t K, const void* W, DType t, int64_t N, float* y) {
#pragma omp parallel
  {
    std::vector<float> row(static_cast<size_t>(K));
#pragma omp for schedule(static)
    for (int64_t n = 0; n < N; ++n) {
      convert(static_cast<const uint8_t*>(W) + size_t(n) * row_bytes(t, K), t, row.data(), DType::F32, size_t(K));
      for (int64_t m = 0; m < M; ++m) {
        float s = 0;
        for (int64_t k = 0; k < K; ++k) s += x[m * K + k] * row[k];
        y[m * N + n] = s;
      }
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false, packed_only = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--quick") == 0) quick = true;
    else if (std::strcmp(argv[i], "--packed") == 0) packed_only = true;
    else return std::fprintf(stderr, "bench_kernels: unknown option %s (expected --quick, --packed)\n", argv[i]), 2;
  }
  const double budget = quick ? 0.2 : 1.0;
  std::printf("%s\n", cpu_report().c_str());
  std::printf("%-6s %-40s %2s %10s %-8s %8s\n", "bench", "case", "t", "value", "unit", "ratio");

  bench::BandwidthProbe probe(size_t(quick ? 256 : 1024) << 20);

  struct Shape { int64_t N, K; DType t; };
  const Shape gemv_shapes[] = {{2048, 5632, DType::BF16}, {5632, 2048, DType::BF16}, {32000, 2048, DType::BF16},
                               {5632, 2048, DType::F16},  {5632, 2048, DType::F32},  {5632, 2048, DType::Q8_0},
                               {5632, 2048, DType::Q4_0}, {5632, 2048, DType::Q4_K}, {2048, 5632, DType::Q4_K},
                               {5632, 2048, DType::Q6_K}, {32000, 2048, DType::Q6_K}};
  const Shape gemm_shapes[] = {{5632, 2048, DType::F32},  {5632, 2048, DType::BF16}, {2048, 5632, DType::BF16},
                               {2048, 2048, DType::BF16}, {5632, 2048, DType::F16}};
  const int64_t prefill_m = 512;

  for (int threads : {1, 2}) {
    set_num_threads(threads);
    const std::string mib = std::to_string(probe.bytes() >> 20) + " MiB";
    const double bw_simple = probe.simple(threads), bw_wide = probe.wide(threads), bw = std::max(bw_simple, bw_wide);
    report({"bw", "read-only sum, simple loop, " + mib, threads, bw_simple, "GB/s", -1, ""});
    report({"bw", std::string("read-only sum, wide ") + probe.wide_isa() + ", " + mib, threads, bw_wide, "GB/s",
            bw_wide / bw_simple, "x simple"});

    for (const Shape& s : gemv_shapes) {
      if (packed_only) break;
      Weights w(s.N, s.K, s.t);
      std::vector<float> x(size_t(s.K), 0.01f), y(size_t(s.N));
      double t = best_time([&] { linear(x.data(), 1, s.K, w.get(), s.t, s.N, y.data()); }, budget);
      double gbs = double(s.N) * double(row_bytes(s.t, s.K)) / t / 1e9;
      char name[64];
      std::snprintf(name, sizeof name, "linear M=1 %s W[%lld,%lld]", dtype_name(s.t), (long long)s.N,
                    (long long)s.K);
      report({"gemv", name, threads, gbs, "GB/s", gbs / bw, "of bw"});
      if (s.t == DType::BF16 && detail::dispatch().bf16_dot) {  // the same, W widened to f32 instead
        detail::dispatch().bf16_dot = false;
        const double tw = best_time([&] { linear(x.data(), 1, s.K, w.get(), s.t, s.N, y.data()); }, budget);
        detail::dispatch().bf16_dot = true;
        std::snprintf(name, sizeof name, "  (W widened to f32) BF16 W[%lld,%lld]", (long long)s.N, (long long)s.K);
        report({"gemv", name, threads, double(s.N) * double(row_bytes(s.t, s.K)) / tw / 1e9, "GB/s", tw / t,
                "x slower than bf16dot"});
      }
    }
    if (!packed_only) {  // GEMV vs naive, and where GEMV stops beating oneDNN as M grows.
      Weights w(5632, 2048, DType::BF16);
      std::vector<float> x(size_t(16 * 2048), 0.01f), y(size_t(16 * 5632));
      const double bytes = 5632.0 * 2048 * 2;
      double tn = best_time([&] { naive_linear(x.data(), 1, 2048, w.get(), DType::BF16, 5632, y.data()); }, budget);
      double tg = best_time([&] { linear(x.data(), 1, 2048, w.get(), DType::BF16, 5632, y.data()); }, budget);
      report({"gemv", "naive loop M=1 BF16 W[5632,2048]", threads, bytes / tn / 1e9, "GB/s", tn / tg,
              "x slower than linear"});
      detail::Dispatch saved = detail::dispatch();
      for (int64_t M : {2, 4, 8, 16}) {
        detail::dispatch().gemv_max_m = 1 << 30;
        double a = best_time([&] { linear(x.data(), M, 2048, w.get(), DType::BF16, 5632, y.data()); }, budget);
        detail::dispatch().gemv_max_m = 0;
        double b = best_time([&] { linear(x.data(), M, 2048, w.get(), DType::BF16, 5632, y.data()); }, budget);
        report({"gemv", "gemv M=" + std::to_string(M) + " BF16 W[5632,2048]", threads, 2.0 * M * 5632 * 2048 / a / 1e9,
                "GFLOP/s", b / a, "x oneDNN path"});
      }
      detail::dispatch() = saved;
    }

    const double peak8 = bench::int8_peak_gops(threads);
    if (peak8 > 0) report({"peak", "oneDNN matmul u8s8s32 1536^3", threads, peak8, "GOP/s", -1, ""});

    // Packed weights (kernels::PackedWeight, on the best path the dispatch
    // allows: gemv's ISA above): decode against the row-by-row kernels and
    // prefill against oneDNN (F32: its f32 matmul; BF16: its bf16 matmul
    // where the CPU has it; else widened / dequantized to f32), in this run.
    for (DType t : {DType::F32, DType::BF16, DType::F16, DType::Q8_0, DType::Q4_0, DType::Q4_K, DType::Q6_K}) {
      if (!can_pack(t)) continue;
      const int64_t N = 5632, K = 2048, M = prefill_m;
      Weights w(N, K, t);
      std::vector<PackedWeight> packed;
      for (const auto& c : w.copies) packed.push_back(pack_weight(c.data(), t, N, K));
      std::vector<float> x(size_t(M * K), 0.01f), y(size_t(M * N));
      char name[64];
      {
        size_t i = 0;
        const double tp = best_time([&] { linear(x.data(), 1, packed[i++ % packed.size()], y.data()); }, budget);
        const double tr = best_time([&] { linear(x.data(), 1, K, w.get(), t, N, y.data()); }, budget);
        std::snprintf(name, sizeof name, "packed M=1 %s W[%lld,%lld]", dtype_name(t), (long long)N, (long long)K);
        report({"gemv", name, threads, double(packed[0].bytes.size()) / tp / 1e9, "GB/s", tr / tp, "x row by row"});
        std::snprintf(name, sizeof name, "  (row by row) M=1 %s W[%lld,%lld]", dtype_name(t), (long long)N, (long long)K);
        report({"gemv", name, threads, double(N) * double(row_bytes(t, K)) / tr / 1e9, "GB/s", -1, ""});
      }
      const double tg = best_time([&] { linear(x.data(), M, packed[0], y.data()); }, budget);
      const double td = best_time([&] { detail::linear_dnnl(x.data(), M, K, w.get(), t, N, y.data(), false); }, budget);
      std::snprintf(name, sizeof name, "packed M=%lld %s W[%lld,%lld]", (long long)M, dtype_name(t), (long long)N,
                    (long long)K);
      const double gops = 2.0 * M * N * K / tg / 1e9;
      report({"gemm", name, threads, gops, "GOP/s", td / tg,
              t == DType::F32                                       ? "x oneDNN f32"
              : t == DType::BF16 && detail::dispatch().dnnl_bf16 ? "x oneDNN bf16"
              : is_float(t)                                         ? "x widen+oneDNN f32"
                                                                    : "x dequant+oneDNN f32",
              is_float(t) || peak8 <= 0 ? -1 : gops / peak8});
      if (detail::dispatch().amx_int8 && detail::amx_packable(t)) {  // the same on the VNNI kernel
        detail::dispatch().amx_int8 = false;
        const double tv = best_time([&] { linear(x.data(), M, packed[0], y.data()); }, budget);
        detail::dispatch().amx_int8 = true;
        std::snprintf(name, sizeof name, "  (VNNI, no AMX) M=%lld %s", (long long)M, dtype_name(t));
        report({"gemm", name, threads, 2.0 * M * N * K / tv / 1e9, "GOP/s", tv / tg, "x slower than AMX",
                peak8 <= 0 ? -1 : 2.0 * M * N * K / tv / 1e9 / peak8});
      }
    }

    if (packed_only) continue;
    using dt = dnnl::memory::data_type;
    const int peak_reps = quick ? 3 : 10;
    const double peak32 = bench::dnnl_matmul_gops(2048, dt::f32, dt::f32, dt::f32, peak_reps);
    report({"peak", "oneDNN matmul f32 2048^3", threads, peak32, "GFLOP/s", -1, ""});
    if (detail::dnnl_isas().size() > 1) {  // oneDNN 2.6 has no bf16 matmul for an AVX2-only CPU
      const double peak16 = bench::dnnl_matmul_gops(2048, dt::bf16, dt::bf16, dt::f32, peak_reps);
      report({"peak", "oneDNN matmul bf16 2048^3", threads, peak16, "GFLOP/s", peak16 / peak32, "of f32 peak"});
    }

    for (const Shape& s : gemm_shapes) {
      std::vector<uint8_t> w(size_t(s.N) * row_bytes(s.t, s.K));
      std::vector<float> x(size_t(prefill_m * s.K), 0.01f), y(size_t(prefill_m * s.N));
      convert(std::vector<float>(size_t(s.N * s.K), 0.02f).data(), DType::F32, w.data(), s.t, size_t(s.N * s.K));
      double t = best_time([&] { linear(x.data(), prefill_m, s.K, w.data(), s.t, s.N, y.data()); }, budget);
      double gf = 2.0 * prefill_m * s.N * s.K / t / 1e9;
      char name[64];
      std::snprintf(name, sizeof name, "linear M=%lld %s W[%lld,%lld]", (long long)prefill_m, dtype_name(s.t),
                    (long long)s.N, (long long)s.K);
      report({"gemm", name, threads, gf, "GFLOP/s", gf / peak32, "of f32 peak"});
    }
    {  // naive loop on a smaller prefill (the full one takes minutes)
      const int64_t M = 64, K = 2048, N = 2048;
      std::vector<uint8_t> w(size_t(N * K) * 2, 0);
      std::vector<float> x(size_t(M * K), 0.01f), y(size_t(M * N));
      double tn = best_time([&] { naive_linear(x.data(), M, K, w.data(), DType::BF16, N, y.data()); }, budget);
      double tl = best_time([&] { linear(x.data(), M, K, w.data(), DType::BF16, N, y.data()); }, budget);
      report({"gemm", "naive loop M=64 BF16 W[2048,2048]", threads, 2.0 * M * N * K / tn / 1e9, "GFLOP/s", tn / tl,
              "x slower than linear"});
    }
    for (Precision p : {Precision::F32, Precision::BF16}) {  // training shapes: dW = dYᵀ·X
      const int64_t M = 2048, N = 2048, K = 512;
      std::vector<float> A(size_t(K * M), 0.01f), B(size_t(K * N), 0.01f), C(size_t(M * N));
      double t = best_time(
          [&] { gemm(true, false, M, N, K, 1.f, A.data(), M, B.data(), N, 0.f, C.data(), N, p); }, budget);
      double gf = 2.0 * M * N * K / t / 1e9;
      report({"gemm", std::string("gemm TN 2048x2048x512 ") + (p == Precision::F32 ? "F32" : "BF16"), threads, gf,
              "GFLOP/s", gf / peak32, "of f32 peak"});
    }
  }

  if (!packed_only) {  // element-wise kernels (ops.h), single-threaded: the dispatched path (AVX-512 or AVX2) vs the portable loops
    set_num_threads(1);
    const size_t n = 1 << 20;  // 4 MiB per array: L2/L3-resident, like a block of attention rows
    std::vector<float> a(n), b(n), c(n), d(n);
    for (size_t i = 0; i < n; ++i) a[i] = float(i % 977) * 0.01f - 4.f, b[i] = 0.5f;
    std::vector<uint16_t> h(n);
    struct Op { const char* name; double bytes_per_elem; std::function<void()> f; };
    const Op ops[] = {
        {"softmax rows of 1024 (exp)", 8, [&] { for (size_t i = 0; i < n; i += 1024) softmax(&c[i], 1024); }},
        {"swiglu", 12, [&] { swiglu(c.data(), a.data(), b.data(), n); }},
        {"swiglu_backward", 20, [&] { swiglu_backward(c.data(), d.data(), b.data(), a.data(), b.data(), n); }},
        // Decode's attention: one query row over 4096 cached keys and values
        // of head size 128 (K and V 2 MiB each, the n floats of a): 4 bytes an element.
        {"attention_rows, 1 query x 4096 keys, hd 128", 4, [&] {
           const int lo = 0, hi = 4095;
           attention_rows(b.data(), 128, a.data(), a.data() + n / 2, 128, &lo, &hi, 1, 128, 0.088f, d.data(), 128);
         }},
    };
    detail::Dispatch saved = detail::dispatch();
    for (const Op& op : ops) {
      std::copy(a.begin(), a.end(), c.begin());
      double tv = best_time(op.f, budget);
      detail::dispatch().isa = detail::Isa::Scalar;
      double ts = best_time(op.f, budget);
      detail::dispatch() = saved;
      report({"elem", op.name, 1, op.bytes_per_elem * n / tv / 1e9, "GB/s", ts / tv, "x portable loop"});
    }
    {  // A prompt's attention: 512 causal rows of one head, hd 64, K/V rows 4 heads wide (GQA).
      const int rows = 512, hd = 64;
      const int64_t ldq = 2048, ldkv = 256;
      std::vector<float> q(size_t(rows) * ldq), kv(size_t(rows) * ldkv * 2), o(size_t(rows) * ldq);
      for (size_t i = 0; i < q.size(); ++i) q[i] = float(int(i % 2001) - 1000) * 1e-3f;
      for (size_t i = 0; i < kv.size(); ++i) kv[i] = float(int(i * 7 % 2001) - 1000) * 1e-3f;
      std::vector<int> lo(rows, 0), hi(rows);
      for (int i = 0; i < rows; ++i) hi[size_t(i)] = i;
      const auto f = [&] {
        attention_rows(q.data(), ldq, kv.data(), kv.data() + size_t(rows) * ldkv, ldkv, lo.data(), hi.data(), rows, hd,
                       0.125f, o.data(), ldq);
      };
      const double flops = 4.0 * hd * rows * (rows + 1) / 2;  // q·k and p·v, 2 FLOPs a multiply-add
      double tv = best_time(f, budget);
      detail::dispatch().isa = detail::Isa::Scalar;
      double ts = best_time(f, budget);
      detail::dispatch() = saved;
      report({"elem", "attention_rows, causal prefill of 512 rows, hd 64", 1, flops / tv / 1e9, "GFLOP/s", ts / tv,
              "x portable loop"});
    }
    if (detail::dispatch().isa == detail::Isa::Avx512) {
      double tv = best_time([&] { detail::to_bf16_avx512(a.data(), n, h.data()); }, budget);
      double ts = best_time([&] { for (size_t i = 0; i < n; ++i) h[i] = f32_to_bf16(a[i]); }, budget);
      report({"elem", "f32 -> bf16 (bf16 GEMM inputs)", 1, 6.0 * n / tv / 1e9, "GB/s", ts / tv, "x portable loop"});
    }
  }

  for (const Row& r : rows) {
    std::printf("{\"bench\":\"%s\",\"case\":\"%s\",\"threads\":%d,\"value\":%.3f,\"unit\":\"%s\"", r.bench.c_str(),
                r.name.c_str(), r.threads, r.value, r.unit);
    if (r.ratio >= 0) std::printf(",\"ratio\":%.4f,\"ratio_of\":\"%s\"", r.ratio, r.ratio_of);
    if (r.of_peak >= 0) std::printf(",\"of_int8_peak\":%.4f", r.of_peak);
    std::printf("}\n");
  }
}
