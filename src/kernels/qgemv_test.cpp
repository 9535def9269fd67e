// Quantized GEMV (qgemv.cpp) and the packed int8 kernels (qpanel.cpp) against two references: the dequantized
// weights (core's dequantizer, bit-exact with ggml) dotted in double with x
// rounded to 8 bits per block by an independent quantizer here, and the
// exact f32 product, within the provable bound of that rounding.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "core/error.h"
#include "kernels/kernels.h"
#include "kernels/kernels_impl.h"
#include "testing/testing.h"

namespace solar::kernels {
namespace {

using detail::Isa;

const DType kTypes[] = {DType::Q4_0, DType::Q8_0, DType::Q4_K, DType::Q6_K};

int64_t xblock(DType t) { return t == DType::Q4_K || t == DType::Q6_K ? 256 : 32; }

// N random rows of K elements: random quants and sub-scales, every f16 scale
// field a sane value (random bytes there would make Inf/NaN scales).
std::vector<uint8_t> random_rows(DType t, int64_t N, int64_t K, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> w(size_t(N) * row_bytes(t, K));
  for (auto& b : w) b = uint8_t(rng());
  const size_t bb = dtype_block_bytes(t);
  const size_t d_at = t == DType::Q6_K ? 208 : 0, d_n = t == DType::Q4_K ? 2 : 1;
  for (size_t b = 0; b < w.size(); b += bb)
    for (size_t f = 0; f < d_n; ++f) {
      uint16_t h = f32_to_f16(float(int(rng() % 200) - 100) / 256);
      w[b + d_at + 2 * f] = uint8_t(h), w[b + d_at + 2 * f + 1] = uint8_t(h >> 8);
    }
  return w;
}

std::vector<float> dequantized(const std::vector<uint8_t>& w, DType t, int64_t N, int64_t K) {
  std::vector<float> f(size_t(N * K));
  for (int64_t n = 0; n < N; ++n) dequantize_row(w.data() + n * row_bytes(t, K), t, &f[n * K], K);
  return f;
}

std::vector<float> randx(int64_t n, uint32_t seed) { return testing::gaussian(n, seed); }

// x rounded as the kernels' contract says: blocks of B, round(x·127/amax) to
// nearest even, times the scale amax/127.
std::vector<float> round_x(const std::vector<float>& x, int64_t B) {
  std::vector<float> r(x.size());
  for (size_t b = 0; b < x.size(); b += size_t(B)) {
    float amax = 0;
    for (int64_t j = 0; j < B; ++j) amax = std::max(amax, std::fabs(x[b + j]));
    const float d = amax / 127.f;
    for (int64_t j = 0; j < B; ++j) r[b + j] = amax > 0 ? std::nearbyint(x[b + j] * (127.f / amax)) * double(d) : 0.f;
  }
  return r;
}

// |x − round(x)| per element: half a step of amax/127.
double rounding_step_bound(double amax) { return amax / 254; }

struct Case {
  DType t;
  int64_t M, N, K;
};

std::vector<Case> cases() {
  std::vector<Case> v;
  for (DType t : kTypes)
    for (int64_t M : {1, 2, 3, 4, 5, 8}) {
      // Odd block counts reach the single-block tail of Q4_0/Q8_0's pairs.
      for (int64_t K : xblock(t) == 32 ? std::vector<int64_t>{32, 96, 512} : std::vector<int64_t>{256, 768})
        v.push_back({t, M, 37, K});
    }
  return v;
}

struct DispatchGuard {
  detail::Dispatch saved = detail::dispatch();
  ~DispatchGuard() { detail::dispatch() = saved; }
};

// Every path this CPU runs: scalar, AVX2, and AVX-512 with and without VNNI.
std::vector<std::pair<Isa, bool>> paths() {
  std::vector<std::pair<Isa, bool>> v{{Isa::Scalar, false}};
  if (cpu().avx2 && cpu().fma && cpu().f16c) v.push_back({Isa::Avx2, false});
  if (detail::dispatch().isa == Isa::Avx512 && cpu().avx512_vbmi) {
    v.push_back({Isa::Avx512, false});
    if (cpu().avx512_vnni) v.push_back({Isa::Avx512, true});
  }
  return v;
}

// Each path equals Σ dequant(W)·round(x) in double, to f32 rounding of the
// per-block partial sums (relative to Σ|ŵ·x̂|).
TEST(QGemv, EveryPathEqualsDequantizedWeightsOnRoundedX) {
  for (const Case& c : cases()) {
    SCOPED_TRACE(std::string(dtype_name(c.t)) + " M=" + std::to_string(c.M) + " K=" + std::to_string(c.K));
    const auto w = random_rows(c.t, c.N, c.K, uint32_t(c.K + c.M));
    const auto wf = dequantized(w, c.t, c.N, c.K);
    const auto x = randx(c.M * c.K, uint32_t(c.M));
    const auto xr = round_x(x, xblock(c.t));
    detail::QActs a;
    detail::quantize_acts(x.data(), c.M, c.K, c.t, a);
    for (auto [isa, vnni] : paths()) {
      SCOPED_TRACE(std::string(detail::isa_name(isa)) + (vnni ? " vnni" : ""));
      std::vector<float> y(size_t(c.M * c.N), 2.f);
      // Two ranges of rows, the second accumulating: both entry points.
      detail::qgemv_rows(isa, vnni, a, w.data(), c.N, 0, 20, y.data(), false);
      detail::qgemv_rows(isa, vnni, a, w.data(), c.N, 20, c.N, y.data(), true);
      int bad = 0;
      for (int64_t m = 0; m < c.M; ++m)
        for (int64_t n = 0; n < c.N && bad < 5; ++n) {
          double want = 0, mag = 0;
          for (int64_t k = 0; k < c.K; ++k) {
            want += double(wf[n * c.K + k]) * xr[m * c.K + k];
            mag += std::fabs(double(wf[n * c.K + k]) * xr[m * c.K + k]);
          }
          if (n >= 20) want += 2;
          const double got = y[m * c.N + n];
          if (!(std::fabs(got - want) <= 2e-6 * mag + 1e-6)) {
            ADD_FAILURE() << "m=" << m << " n=" << n << ": got " << got << " want " << want << " (Σ|ŵx̂|=" << mag << ")";
            ++bad;
          }
        }
    }
  }
}

// linear() at decode (qgemv) and prefill (dequantize + f32 oneDNN) against
// the exact product on dequantized W: decode within the bound of rounding x,
// Σ_b rounding_step_bound(amax_b)·Σ_{k∈b}|w_k|; prefill within f32 rounding.
TEST(QGemv, LinearWithinTheRoundingBoundOfX) {
  DispatchGuard guard;
  for (const Case& c : cases()) {
    SCOPED_TRACE(std::string(dtype_name(c.t)) + " M=" + std::to_string(c.M) + " K=" + std::to_string(c.K));
    const int64_t B = xblock(c.t);
    const auto w = random_rows(c.t, c.N, c.K, uint32_t(c.K * 3 + c.M));
    const auto wf = dequantized(w, c.t, c.N, c.K);
    const auto x = randx(c.M * c.K, uint32_t(c.M + 7));
    std::vector<float> want(size_t(c.M * c.N));
    linear_ref(x.data(), c.M, c.K, wf.data(), DType::F32, c.N, want.data());
    for (int64_t gemv_max_m : {int64_t(8), int64_t(0)}) {
      detail::dispatch().gemv_max_m = gemv_max_m;
      const bool decode = c.M <= gemv_max_m;
      std::vector<float> y(size_t(c.M * c.N));
      linear(x.data(), c.M, c.K, w.data(), c.t, c.N, y.data());
      for (int64_t m = 0; m < c.M; ++m)
        for (int64_t n = 0; n < c.N; ++n) {
          double bound = 0, mag = 0;
          for (int64_t b = 0; b < c.K; b += B) {
            double amax = 0, sw = 0;
            for (int64_t j = b; j < b + B; ++j) {
              amax = std::max(amax, double(std::fabs(x[m * c.K + j])));
              sw += std::fabs(wf[n * c.K + j]);
              mag += std::fabs(double(wf[n * c.K + j]) * x[m * c.K + j]);
            }
            bound += rounding_step_bound(amax) * sw;
          }
          const double tol = (decode ? bound * 1.001 : 0) + 1e-5 * mag + 1e-6;
          ASSERT_LE(std::fabs(y[m * c.N + n] - want[m * c.N + n]), tol)
              << (decode ? "decode" : "prefill") << " m=" << m << " n=" << n;
        }
    }
  }
}

// Rows split over threads or not: the same bits (each row's sum never
// depends on the range it falls in).
TEST(QGemv, ThreadsDoNotChangeResults) {
  for (DType t : kTypes) {
    const int64_t N = 300, K = 512, M = 1;
    const auto w = random_rows(t, N, K, 3);
    const auto x = randx(M * K, 4);
    std::vector<float> one(static_cast<size_t>(N)), two(one);
    set_num_threads(1);
    linear(x.data(), M, K, w.data(), t, N, one.data());
    set_num_threads(2);
    linear(x.data(), M, K, w.data(), t, N, two.data());
    set_num_threads(0);
    EXPECT_EQ(one, two) << dtype_name(t);
  }
}

// The extremes of each format: quants at their limits (Q8_0's −128, which
// its quantizer never writes but a file may hold) against x at full scale.
TEST(QGemv, ExtremeQuantsAndZeroX) {
  for (DType t : kTypes) {
    SCOPED_TRACE(dtype_name(t));
    const int64_t K = 512, N = 3;
    auto w = random_rows(t, N, K, 9);
    if (t == DType::Q8_0)
      for (size_t b = 0; b < w.size(); b += 34) std::fill(w.begin() + long(b) + 2, w.begin() + long(b) + 34, 0x80);
    else if (t == DType::Q4_0)
      for (size_t b = 0; b < w.size(); b += 18) std::fill(w.begin() + long(b) + 2, w.begin() + long(b) + 18, 0xFF);
    const auto wf = dequantized(w, t, N, K);
    for (float xv : {0.f, 1.f, -3.5f}) {
      std::vector<float> x(static_cast<size_t>(K), xv), y(static_cast<size_t>(N), 9.f), want(y);
      linear_ref(x.data(), 1, K, wf.data(), DType::F32, N, want.data());
      linear(x.data(), 1, K, w.data(), t, N, y.data());
      for (int64_t n = 0; n < N; ++n) {
        double mag = 0;
        for (int64_t k = 0; k < K; ++k) mag += std::fabs(double(wf[n * K + k]) * xv);
        EXPECT_NEAR(y[n], want[n], 2e-6 * mag + 1e-6) << "x=" << xv << " n=" << n;  // constant x rounds exactly
      }
    }
  }
}

// ---- Packed weights (qpanel.cpp).

const DType kPackTypes[] = {DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q8_0,
                            DType::Q2_K, DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K};

// Every type's scale fields set to sane f16 values (random bytes would give
// Inf/NaN scales): d (and m/dmin) where each format keeps them.
std::vector<uint8_t> random_blocks(DType t, int64_t N, int64_t K, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> w(size_t(N) * row_bytes(t, K));
  for (auto& b : w) b = uint8_t(rng());
  std::vector<size_t> at;  // f16 fields in a block
  switch (t) {
    case DType::Q4_0: case DType::Q5_0: case DType::Q8_0: at = {0}; break;
    case DType::Q4_1: case DType::Q5_1: case DType::Q4_K: case DType::Q5_K: at = {0, 2}; break;
    case DType::Q2_K: at = {80, 82}; break;
    case DType::Q3_K: at = {108}; break;
    default: at = {208}; break;  // Q6_K
  }
  const size_t bb = dtype_block_bytes(t);
  for (size_t b = 0; b < w.size(); b += bb)
    for (size_t f : at) {
      uint16_t h = f32_to_f16(float(int(rng() % 200) - 100) / 256);
      w[b + f] = uint8_t(h), w[b + f + 1] = uint8_t(h >> 8);
    }
  return w;
}

// The panels hold each weight as ggml's dequantizer computes it.
TEST(QPacked, UnpackedWeightsAreTheDequantizersBits) {
  for (DType t : kPackTypes) {
    SCOPED_TRACE(dtype_name(t));
    const int64_t K = 512, N = 3;
    const auto w = random_blocks(t, N, K, 31);
    const auto wf = dequantized(w, t, N, K);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t b = 0; b < K / 32; ++b) {
        float got[32];
        detail::packed_weights_of(t, w.data() + n * row_bytes(t, K), b, got);
        ASSERT_EQ(std::memcmp(got, &wf[size_t(n * K + b * 32)], sizeof got), 0) << "row " << n << " block " << b;
      }
  }
}

// Scalar, AVX2 (maddubs) and AVX-512 VNNI, as this CPU allows.
std::vector<Isa> packed_paths() {
  std::vector<Isa> v{Isa::Scalar};
  if (cpu().avx2 && cpu().fma && cpu().f16c) v.push_back(Isa::Avx2);
  if (detail::dispatch().isa == Isa::Avx512 && cpu().avx512_vnni) v.push_back(Isa::Avx512);
  return v;
}

// Every path and M (tiles of 6 rows of x and their tails, decode and
// prefill sizes) equals Σ dequant(W)·round(x per 32) in double; N not a
// multiple of 16 reaches a panel's zero rows, two panel ranges the
// accumulating entry.
TEST(QPacked, EveryPathEqualsDequantizedWeightsOnRoundedX) {
  for (DType t : kPackTypes)
    for (int64_t M : {1, 2, 6, 7, 13})
      for (int64_t K : dtype_block_elems(t) == 256 ? std::vector<int64_t>{256, 768} : std::vector<int64_t>{32, 96, 512}) {
        const int64_t N = 37;
        SCOPED_TRACE(std::string(dtype_name(t)) + " M=" + std::to_string(M) + " K=" + std::to_string(K));
        const auto w = random_blocks(t, N, K, uint32_t(K + M + 100));
        const auto wf = dequantized(w, t, N, K);
        const auto x = randx(M * K, uint32_t(M + 50));
        const auto xr = round_x(x, 32);
        const PackedWeight pw = pack_weight(w.data(), t, N, K);
        detail::XQ32 xq;
        detail::quantize_x32(x.data(), M, K, xq);
        for (Isa isa : packed_paths()) {
          SCOPED_TRACE(detail::isa_name(isa));
          std::vector<float> y(size_t(M * N), 2.f);
          detail::packed_rows(isa, pw, xq, 0, 1, y.data(), false);
          detail::packed_rows(isa, pw, xq, 1, 3, y.data(), true);
          int bad = 0;
          for (int64_t m = 0; m < M; ++m)
            for (int64_t n = 0; n < N && bad < 5; ++n) {
              double want = n >= 16 ? 2 : 0, mag = 0;
              for (int64_t k = 0; k < K; ++k) {
                want += double(wf[n * K + k]) * xr[m * K + k];
                mag += std::fabs(double(wf[n * K + k]) * xr[m * K + k]);
              }
              const double got = y[m * N + n];
              if (!(std::fabs(got - want) <= 2e-6 * mag + 1e-6)) {
                ADD_FAILURE() << "m=" << m << " n=" << n << ": got " << got << " want " << want << " (Σ|ŵx̂|=" << mag << ")";
                ++bad;
              }
            }
        }
      }
}

// linear() on packed W against the exact product, within the bound of
// rounding x per 32; neither the thread count nor the batch changes a bit
// (a row alone is the same bits as in the batch: serve relies on it).
TEST(QPacked, LinearWithinTheRoundingBoundOfX) {
  for (DType t : kPackTypes)
    for (int64_t M : {1, 9})
    // 4 panels, the last partial; 5; 15 (one row of x: 8 at once, then 4, 2, 1)
    for (int64_t N : {61, 70, 237}) {
      const int64_t K = dtype_block_elems(t) == 256 ? 512 : 320;
      SCOPED_TRACE(std::string(dtype_name(t)) + " M=" + std::to_string(M) + " N=" + std::to_string(N));
      const int64_t B = 32;
      const auto w = random_blocks(t, N, K, 77);
      const auto wf = dequantized(w, t, N, K);
      const auto x = randx(M * K, 78);
      std::vector<float> want(size_t(M * N)), y(want.size()), y1(want.size());
      linear_ref(x.data(), M, K, wf.data(), DType::F32, N, want.data());
      const PackedWeight pw = pack_weight(w.data(), t, N, K);
      linear(x.data(), M, pw, y.data());
      for (int64_t m = 0; m < M; ++m)
        for (int64_t n = 0; n < N; ++n) {
          double bound = 0, mag = 0;
          for (int64_t b = 0; b < K; b += B) {
            double amax = 0, sw = 0;
            for (int64_t j = b; j < b + B; ++j) {
              amax = std::max(amax, double(std::fabs(x[m * K + j])));
              sw += std::fabs(wf[n * K + j]);
              mag += std::fabs(double(wf[n * K + j]) * x[m * K + j]);
            }
            bound += rounding_step_bound(amax) * sw;
          }
          ASSERT_LE(std::fabs(y[m * N + n] - want[m * N + n]), bound * 1.001 + 1e-5 * mag + 1e-6)
              << "m=" << m << " n=" << n;
        }
      set_num_threads(1);
      linear(x.data(), M, pw, y1.data());
      set_num_threads(0);
      EXPECT_EQ(y, y1);
      for (int64_t m = 0; m < M; ++m) {
        linear(&x[size_t(m * K)], 1, pw, y1.data());
        for (int64_t n = 0; n < N; ++n) ASSERT_EQ(y1[size_t(n)], y[size_t(m * N + n)]) << "row " << m << " alone, n=" << n;
      }
    }
}

// Quants at their limits against x at ±127 steps, on every path: Q8_0's
// −128 and 127 (u = 0 and 255: maddubs on u would saturate), all-15 4-bit
// and all-63 Q6_K quants (int16 sums of more pairs than the kernels add
// would wrap), their zeros, and zero x.
TEST(QPacked, ExtremeQuantsAndZeroX) {
  struct Fill {
    DType t;
    size_t from, to;  // the quants' bytes in a block
    uint8_t byte;
  };
  const Fill fills[] = {{DType::Q8_0, 2, 34, 0x80},  {DType::Q8_0, 2, 34, 0x7F}, {DType::Q4_0, 2, 18, 0xFF},
                        {DType::Q4_0, 2, 18, 0x00},  {DType::Q4_K, 4, 144, 0xFF}, {DType::Q4_K, 16, 144, 0x00},
                        {DType::Q6_K, 0, 192, 0xFF}, {DType::Q6_K, 0, 192, 0x00}};
  DispatchGuard guard;
  for (const Fill& f : fills) {
    SCOPED_TRACE(std::string(dtype_name(f.t)) + " quant bytes " + std::to_string(f.byte));
    const int64_t K = 512, N = 19;
    auto w = random_blocks(f.t, N, K, 9);
    const size_t bb = dtype_block_bytes(f.t);
    for (size_t b = 0; b < w.size(); b += bb) std::fill(w.begin() + long(b + f.from), w.begin() + long(b + f.to), f.byte);
    const auto wf = dequantized(w, f.t, N, K);
    const PackedWeight pw = pack_weight(w.data(), f.t, N, K);
    for (int xs : {0, 1, -1, 2}) {  // 2: alternating signs
      std::vector<float> x(static_cast<size_t>(K)), y(static_cast<size_t>(N), 9.f), want(y);
      for (int64_t k = 0; k < K; ++k) x[size_t(k)] = xs == 2 ? (k % 2 ? -3.5f : 3.5f) : 3.5f * float(xs);
      linear_ref(x.data(), 1, K, wf.data(), DType::F32, N, want.data());
      for (Isa isa : packed_paths()) {
        SCOPED_TRACE(detail::isa_name(isa));
        detail::dispatch().isa = isa;
        linear(x.data(), 1, pw, y.data());
        for (int64_t n = 0; n < N; ++n) {
          double mag = 0;
          for (int64_t k = 0; k < K; ++k) mag += std::fabs(double(wf[n * K + k]) * x[size_t(k)]);
          EXPECT_NEAR(y[n], want[n], 2e-6 * mag + 1e-6) << "x=" << xs << " n=" << n;
        }
      }
    }
  }
}

// Each SIMD path on its own: a row of y is the same bits alone, in a batch
// of a few rows and of many (tiles of x and L2 groups of panels, several of
// each and their tails), on 1 thread and 2.
TEST(QPacked, RowSameBitsForEveryBatchAndThreadCount) {
  DispatchGuard guard;
  for (DType t : kPackTypes) {
    const int64_t K = 2048, N = 237, M = 41;  // Q8_0: 7 panels an L2 group, 3 groups
    const auto w = random_blocks(t, N, K, 3);
    const auto x = randx(M * K, 4);
    const PackedWeight pw = pack_weight(w.data(), t, N, K);
    for (Isa isa : packed_paths()) {
      if (isa == Isa::Scalar) continue;
      SCOPED_TRACE(std::string(dtype_name(t)) + " " + detail::isa_name(isa));
      detail::dispatch().isa = isa;
      std::vector<float> all(static_cast<size_t>(M * N)), one(static_cast<size_t>(N)), few(static_cast<size_t>(3 * N));
      linear(x.data(), M, pw, all.data());
      for (int threads : {1, 2}) {
        set_num_threads(threads);
        for (int64_t m = 0; m < M; m += 5) {
          linear(&x[size_t(m * K)], 1, pw, one.data());
          ASSERT_EQ(std::memcmp(one.data(), &all[size_t(m * N)], N * sizeof(float)), 0) << "row " << m << " alone, " << threads << " threads";
        }
        linear(&x[size_t(7 * K)], 3, pw, few.data());
        ASSERT_EQ(std::memcmp(few.data(), &all[size_t(7 * N)], few.size() * sizeof(float)), 0) << "rows 7-9, " << threads << " threads";
        std::vector<float> again(all.size());
        linear(x.data(), M, pw, again.data());
        ASSERT_EQ(std::memcmp(again.data(), all.data(), all.size() * sizeof(float)), 0) << threads << " threads";
      }
      set_num_threads(0);
    }
  }
}

// Several weights over one x (a layer's q, k, v): the same bits as one call
// each, whether x is shared (block types of one K, mixed Q4_K and Q6_K as in
// Q4_K_M; one float type) or not (a float and a block type, different K),
// on 1 thread and 2, for decode and prefill row counts.
TEST(QPacked, SharedXEqualsOneCallEach) {
  DispatchGuard guard;
  const int64_t K = 512;
  auto pack_float = [](DType t, int64_t N, int64_t k, uint32_t seed) {
    const std::vector<float> f = testing::gaussian(N * k, seed);
    std::vector<uint8_t> b(size_t(N * k) * dtype_size(t));
    convert(f.data(), DType::F32, b.data(), t, size_t(N * k));
    return pack_weight(b.data(), t, N, k);
  };
  auto pack_blocks = [](DType t, int64_t N, int64_t k, uint32_t seed) {
    return pack_weight(random_blocks(t, N, k, seed).data(), t, N, k);
  };
  struct Case {
    std::string name;
    std::vector<PackedWeight> w;
  };
  std::vector<Case> cases;
  cases.push_back({"q4_k+q6_k+q4_k", {}});
  cases.back().w.push_back(pack_blocks(DType::Q4_K, 300, K, 1));
  cases.back().w.push_back(pack_blocks(DType::Q6_K, 37, K, 2));
  cases.back().w.push_back(pack_blocks(DType::Q4_K, 64, K, 3));
  cases.push_back({"q8_0+q4_0", {}});
  cases.back().w.push_back(pack_blocks(DType::Q8_0, 100, K, 4));
  cases.back().w.push_back(pack_blocks(DType::Q4_0, 133, K, 5));
  for (DType t : {DType::F32, DType::F16, DType::BF16}) {
    cases.push_back({std::string(dtype_name(t)) + " x2", {}});
    cases.back().w.push_back(pack_float(t, 200, K, 6));
    cases.back().w.push_back(pack_float(t, 45, K, 7));
  }
  cases.push_back({"bf16+q8_0 (not shared)", {}});
  cases.back().w.push_back(pack_float(DType::BF16, 50, K, 8));
  cases.back().w.push_back(pack_blocks(DType::Q8_0, 70, K, 9));
  cases.push_back({"f32, two K (not shared)", {}});
  cases.back().w.push_back(pack_float(DType::F32, 50, K, 10));
  cases.back().w.push_back(pack_float(DType::F32, 50, 2 * K, 11));
  for (const Case& c : cases)
    for (Isa isa : packed_paths()) {
      detail::dispatch().isa = isa;
      for (int threads : {1, 2})
        for (int64_t M : {1, 2, 13}) {
          SCOPED_TRACE(c.name + " " + detail::isa_name(isa) + " M=" + std::to_string(M) + " threads " + std::to_string(threads));
          set_num_threads(threads);
          const auto x = randx(M * 2 * K, uint32_t(M));
          std::vector<std::vector<float>> one, many;
          std::vector<PackedOut> outs;
          for (const PackedWeight& w : c.w) {
            one.emplace_back(size_t(M * w.N), 1.f);
            many.emplace_back(size_t(M * w.N), 1.f);
          }
          for (size_t i = 0; i < c.w.size(); ++i) {
            linear(x.data(), M, c.w[i], one[i].data(), /*accumulate=*/true);
            outs.push_back({&c.w[i], many[i].data()});
          }
          linear(x.data(), M, outs, /*accumulate=*/true);
          for (size_t i = 0; i < c.w.size(); ++i)
            ASSERT_EQ(std::memcmp(one[i].data(), many[i].data(), one[i].size() * sizeof(float)), 0) << "weight " << i;
        }
      set_num_threads(0);
    }
}

// AMX-INT8 (whole tiles of 16 rows of x) gives the VNNI kernel's bits for
// every element: one, two and three tiles with tails of rows, odd block
// counts (Q4_0/Q8_0's single last block), several k-quant super-blocks,
// panel ranges that start past 0 and end in a partial panel, accumulating,
// and quants at their limits (Q8_0's −128 and 127, all-15 nibbles, Q6_K's
// 0 and 63).
TEST(QPacked, AmxEqualsVnniBitForBit) {
  if (!cpu().amx_int8 || detail::dispatch().isa != Isa::Avx512 || !cpu().avx512_vnni)
    GTEST_SKIP() << "no AMX-INT8 on this CPU (" << cpu_summary() << ")";
  DispatchGuard guard;
  for (DType t : kTypes)
    for (int64_t K : xblock(t) == 32 ? std::vector<int64_t>{96, 1024} : std::vector<int64_t>{256, 1536})
      for (int fill : {-1, 0x00, 0xFF, 0x80, 0x7F}) {
        if (fill >= 0 && t != DType::Q8_0 && fill != 0xFF && fill != 0x00) continue;
        const int64_t N = 45;
        auto w = random_blocks(t, N, K, uint32_t(K + fill));
        if (fill >= 0) {  // every quant byte (not the scales) set to fill
          const size_t bb = dtype_block_bytes(t);
          const size_t from = t == DType::Q8_0 ? 2 : t == DType::Q4_0 ? 2 : t == DType::Q4_K ? 16 : 0;
          const size_t to = t == DType::Q8_0 ? 34 : t == DType::Q4_0 ? 18 : t == DType::Q4_K ? 144 : 192;
          for (size_t b = 0; b < w.size(); b += bb) std::fill(w.begin() + long(b + from), w.begin() + long(b + to), uint8_t(fill));
        }
        const PackedWeight pw = pack_weight(w.data(), t, N, K);
        for (int64_t M : {16, 21, 48}) {
          SCOPED_TRACE(std::string(dtype_name(t)) + " K=" + std::to_string(K) + " M=" + std::to_string(M) +
                       " fill=" + std::to_string(fill));
          auto x = randx(M * K, uint32_t(M + K));
          if (fill == 0x7F) std::fill(x.begin(), x.end(), 3.5f);  // x at +127 steps against the largest quants
          detail::XQ32 xq;
          detail::quantize_x32(x.data(), M, K, xq);
          std::vector<float> want(size_t(M * N), 0.5f), got(want);
          for (bool amx : {false, true}) {
            detail::dispatch().amx_int8 = amx;
            std::vector<float>& y = amx ? got : want;
            detail::packed_rows(Isa::Avx512, pw, xq, 0, 1, y.data(), false);
            detail::packed_rows(Isa::Avx512, pw, xq, 1, 3, y.data(), true);
          }
          for (int64_t i = 0; i < M * N; ++i)
            ASSERT_EQ(std::memcmp(&got[size_t(i)], &want[size_t(i)], 4), 0)
                << "row " << i / N << " col " << i % N << ": amx " << got[size_t(i)] << " vnni " << want[size_t(i)];
        }
      }
}

// x's rounding: the AVX2 and AVX-512 paths give the scalar definition's
// bits, NaN, infinities, zeros and ties (k + 0.5 steps) included.
TEST(QPacked, QuantizedXSameOnEveryPath) {
  const int64_t M = 3, K = 32 * 40;
  auto x = randx(M * K, 5);
  for (int j = 0; j < 32; ++j) x[size_t(32 + j)] = 0.f;                      // block 1: zeros
  x[70] = NAN, x[100] = INFINITY, x[140] = -INFINITY;                       // blocks 2, 3, 4
  for (int j = 0; j < 32; ++j) x[size_t(32 * 5 + j)] = float(j - 16) + 0.5f;  // block 5: amax 15.5
  for (int j = 0; j < 32; ++j) x[size_t(32 * 6 + j)] = float(2 * j - 31) * 127.f / 62;  // steps of 127/31
  DispatchGuard guard;
  detail::XQ32 want;
  detail::dispatch().isa = Isa::Scalar;
  detail::quantize_x32(x.data(), M, K, want);
  EXPECT_EQ(want.q[70], 0) << "NaN";
  for (int j = 0; j < 32; ++j) EXPECT_EQ(want.q[size_t(96 + j)], 0) << "a block with an infinity";
  for (Isa isa : packed_paths()) {
    SCOPED_TRACE(detail::isa_name(isa));
    detail::XQ32 got;
    detail::dispatch().isa = isa;
    detail::quantize_x32(x.data(), M, K, got);
    EXPECT_EQ(got.q, want.q);
    EXPECT_EQ(got.sq, want.sq);
    EXPECT_EQ(got.sq16, want.sq16);
    ASSERT_EQ(got.d.size(), want.d.size());
    for (size_t i = 0; i < got.d.size(); ++i) EXPECT_EQ(std::memcmp(&got.d[i], &want.d[i], 4), 0) << i;
  }
}

TEST(QPacked, RefusesOtherTypesAndPartialBlocks) {
  std::vector<uint8_t> w(1024);
  EXPECT_THROW(pack_weight(w.data(), DType::I8, 1, 32), Error);
  EXPECT_THROW(pack_weight(w.data(), DType::Q8_0, 1, 48), Error);
  EXPECT_THROW(pack_weight(w.data(), DType::Q4_K, 1, 384), Error);
}

TEST(QGemv, RejectsPartialBlocks) {
  std::vector<float> x(48), y(1);
  std::vector<uint8_t> w(64);
  EXPECT_THROW(linear(x.data(), 1, 48, w.data(), DType::Q8_0, 1, y.data()), Error);  // 48: not whole blocks
  std::vector<float> x2(384);
  std::vector<uint8_t> w2(512);
  EXPECT_THROW(linear(x2.data(), 1, 384, w2.data(), DType::Q4_K, 1, y.data()), Error);
}

}  // namespace
}  // namespace solar::kernels
