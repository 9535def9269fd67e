// GEMV for the decode case: memory-bound, so the goal is to stream W once at
// full bandwidth. Each tile holds R rows of W (converted to f32 in registers)
// against up to 4 rows of x, R·M independent accumulators.
// GCC 12 warns about the deliberately undefined registers in its own AVX-512
// intrinsics once they are inlined.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#include <algorithm>
#include <vector>

#include "kernels/kernels.h"
#include "kernels/kernels_impl.h"

#define SOLAR_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,fma,f16c")))
#define SOLAR_AVX2 __attribute__((target("avx2,fma,f16c")))
#define SOLAR_INLINE inline __attribute__((always_inline))

namespace solar::kernels::detail {
namespace {

template <DType D>
using Elem = std::conditional_t<D == DType::F32, float, uint16_t>;

SOLAR_AVX2 SOLAR_INLINE float hsum256(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// ---- AVX-512: 16 lanes, masked loads cover the K tail.

template <DType D>
SOLAR_AVX512 SOLAR_INLINE __m512 load16(const Elem<D>* p, __mmask16 m) {
  if constexpr (D == DType::F32) {
    return _mm512_maskz_loadu_ps(m, p);
  } else {
    __m256i h = _mm256_maskz_loadu_epi16(m, p);
    if constexpr (D == DType::F16) return _mm512_cvtph_ps(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }
}

template <DType D, int M, int R>
SOLAR_AVX512 SOLAR_INLINE void step512(const float* x, int64_t K, const Elem<D>* const* w, int64_t k, __mmask16 mask,
                                       __m512 (&acc)[M][R]) {
  __m512 wv[R];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) wv[r] = load16<D>(w[r] + k, mask);
#pragma GCC unroll 8
  for (int m = 0; m < M; ++m) {
    __m512 xv = _mm512_maskz_loadu_ps(mask, x + m * K + k);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) acc[m][r] = _mm512_fmadd_ps(xv, wv[r], acc[m][r]);
  }
}

// U accumulators per (x row, W row), each over its own 16 columns of every
// 16·U: more loads in flight than one FMA chain allows (decode streams W at
// ~1.4× the one-accumulator rate on Zen 4). A row's sum depends on M and U
// only, never on R, so every tiling of the rows gives the same bits.
template <DType D, int M, int R, int U>
SOLAR_AVX512 void tile512(const float* x, int64_t K, const void* W, int64_t N, int64_t n, float* y, bool accumulate) {
  const Elem<D>* w[R];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) w[r] = static_cast<const Elem<D>*>(W) + (n + r) * K;
  __m512 acc[U][M][R];
#pragma GCC unroll 8
  for (int u = 0; u < U; ++u)
#pragma GCC unroll 8
    for (int m = 0; m < M; ++m)
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) acc[u][m][r] = _mm512_setzero_ps();
  int64_t k = 0;
  for (; k + 16 * U <= K; k += 16 * U)
#pragma GCC unroll 8
    for (int u = 0; u < U; ++u) step512<D, M, R>(x, K, w, k + 16 * u, 0xffff, acc[u]);
  for (; k + 16 <= K; k += 16) step512<D, M, R>(x, K, w, k, 0xffff, acc[0]);
  if (k < K) step512<D, M, R>(x, K, w, k, __mmask16((1u << (K - k)) - 1), acc[0]);
#pragma GCC unroll 8
  for (int m = 0; m < M; ++m)
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      __m512 a = acc[0][m][r];
#pragma GCC unroll 8
      for (int u = 1; u < U; ++u) a = _mm512_add_ps(a, acc[u][m][r]);
      float s = _mm512_reduce_add_ps(a);
      float& out = y[m * N + n + r];
      out = accumulate ? out + s : s;
    }
}

// BF16 W against x rounded to bf16 (round to nearest even): vdpbf16ps
// multiplies 32 weights by 32 x in one instruction with no conversion, where
// widening W to f32 costs three per 16 and kept decode compute-bound
// (llama.cpp's BF16 dot products round x the same way). xb: M rows of K
// bf16, K padded to 32 with zeros.
#define SOLAR_BF16DOT __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))

SOLAR_BF16DOT void round_x_bf16(const float* x, int64_t M, int64_t K, int64_t Kp, uint16_t* xb) {
  for (int64_t m = 0; m < M; ++m) {
    for (int64_t k = 0; k < Kp; k += 32) {
      const __mmask16 lo = k + 16 <= K ? 0xffff : k < K ? __mmask16((1u << (K - k)) - 1) : 0;
      const __mmask16 hi = k + 32 <= K ? 0xffff : k + 16 < K ? __mmask16((1u << (K - k - 16)) - 1) : 0;
      const __m512 a = _mm512_maskz_loadu_ps(lo, x + m * K + k), b = _mm512_maskz_loadu_ps(hi, x + m * K + k + 16);
      _mm512_storeu_si512(xb + m * Kp + k, (__m512i)_mm512_cvtne2ps_pbh(b, a));
    }
  }
}

template <int M, int R>
SOLAR_BF16DOT void tile_bf16dot(const uint16_t* xb, int64_t K, int64_t Kp, const void* W, int64_t N, int64_t n,
                                float* y, bool accumulate) {
  const uint16_t* w[R];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) w[r] = static_cast<const uint16_t*>(W) + (n + r) * K;
  __m512 acc[M][R];
#pragma GCC unroll 8
  for (int m = 0; m < M; ++m)
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) acc[m][r] = _mm512_setzero_ps();
  for (int64_t k = 0; k < K; k += 32) {
    const __mmask32 mask = k + 32 <= K ? 0xffffffffu : __mmask32((1ull << (K - k)) - 1);
    __m512bh wv[R];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) wv[r] = (__m512bh)_mm512_maskz_loadu_epi16(mask, w[r] + k);
#pragma GCC unroll 8
    for (int m = 0; m < M; ++m) {
      const __m512bh xv = (__m512bh)_mm512_loadu_si512(xb + m * Kp + k);
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) acc[m][r] = _mm512_dpbf16_ps(acc[m][r], wv[r], xv);
    }
  }
#pragma GCC unroll 8
  for (int m = 0; m < M; ++m)
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const float s = _mm512_reduce_add_ps(acc[m][r]);
      float& out = y[m * N + n + r];
      out = accumulate ? out + s : s;
    }
}

void rows_bf16dot(const float* x, int64_t M, int64_t K, const void* W, int64_t N, int64_t n0, int64_t n1, float* y,
                  bool accumulate) {
  const int64_t Kp = (K + 31) / 32 * 32;
  thread_local std::vector<uint16_t> buffer;  // named by reference: this runs inside a parallel region
  std::vector<uint16_t>& xb = buffer;
  xb.resize(size_t(std::min<int64_t>(M, 4) * Kp));
  using Fn = void (*)(const uint16_t*, int64_t, int64_t, const void*, int64_t, int64_t, float*, bool);
  static constexpr Fn f8[4] = {tile_bf16dot<1, 8>, tile_bf16dot<2, 8>, tile_bf16dot<3, 4>, tile_bf16dot<4, 4>};
  static constexpr Fn f1[4] = {tile_bf16dot<1, 1>, tile_bf16dot<2, 1>, tile_bf16dot<3, 1>, tile_bf16dot<4, 1>};
  for (int64_t m0 = 0; m0 < M; m0 += 4) {
    const int64_t mb = std::min<int64_t>(4, M - m0);
    round_x_bf16(x + m0 * K, mb, K, Kp, xb.data());
    const int R = mb <= 2 ? 8 : 4;
    int64_t n = n0;
    for (; n + R <= n1; n += R) f8[mb - 1](xb.data(), K, Kp, W, N, n, y + m0 * N, accumulate);
    for (; n < n1; ++n) f1[mb - 1](xb.data(), K, Kp, W, N, n, y + m0 * N, accumulate);
  }
}

template <DType D>
SOLAR_AVX512 void widen512(const void* W, int64_t K, int64_t n0, int64_t n1, float* out) {
  const Elem<D>* w = static_cast<const Elem<D>*>(W) + n0 * K;
  const int64_t total = (n1 - n0) * K;  // rows are contiguous: widen them as one run
  int64_t i = 0;
  for (; i + 16 <= total; i += 16) _mm512_storeu_ps(out + i, load16<D>(w + i, 0xffff));
  if (i < total) {
    __mmask16 m = __mmask16((1u << (total - i)) - 1);
    _mm512_mask_storeu_ps(out + i, m, load16<D>(w + i, m));
  }
}

// ---- AVX2: 8 lanes, scalar K tail.

template <DType D>
SOLAR_AVX2 SOLAR_INLINE __m256 load8(const Elem<D>* p) {
  if constexpr (D == DType::F32) {
    return _mm256_loadu_ps(p);
  } else {
    __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    if constexpr (D == DType::F16) return _mm256_cvtph_ps(h);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  }
}

template <DType D>
SOLAR_INLINE float scalar_load(const Elem<D>* p) {
  if constexpr (D == DType::F32) return *p;
  else if constexpr (D == DType::BF16) return bf16_to_f32(*p);
  else return f16_to_f32(*p);
}

template <DType D, int M, int R>
SOLAR_AVX2 void tile256(const float* x, int64_t K, const void* W, int64_t N, int64_t n, float* y, bool accumulate) {
  // Every loop over a register array unrolled: rolled, GCC keeps acc on the
  // stack and each FMA waits on a store.
  const Elem<D>* w[R];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) w[r] = static_cast<const Elem<D>*>(W) + (n + r) * K;
  __m256 acc[M][R];
#pragma GCC unroll 8
  for (int m = 0; m < M; ++m)
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) acc[m][r] = _mm256_setzero_ps();
  int64_t k = 0;
  for (; k + 8 <= K; k += 8) {
    __m256 wv[R];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) wv[r] = load8<D>(w[r] + k);
#pragma GCC unroll 8
    for (int m = 0; m < M; ++m) {
      __m256 xv = _mm256_loadu_ps(x + m * K + k);
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) acc[m][r] = _mm256_fmadd_ps(xv, wv[r], acc[m][r]);
    }
  }
#pragma GCC unroll 8
  for (int m = 0; m < M; ++m)
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      float s = hsum256(acc[m][r]);
      for (int64_t kk = k; kk < K; ++kk) s += x[m * K + kk] * scalar_load<D>(w[r] + kk);
      float& out = y[m * N + n + r];
      out = accumulate ? out + s : s;
    }
}

template <DType D>
SOLAR_AVX2 void widen256(const void* W, int64_t K, int64_t n0, int64_t n1, float* out) {
  const Elem<D>* w = static_cast<const Elem<D>*>(W) + n0 * K;
  const int64_t total = (n1 - n0) * K;
  int64_t i = 0;
  for (; i + 8 <= total; i += 8) _mm256_storeu_ps(out + i, load8<D>(w + i));
  for (; i < total; ++i) out[i] = scalar_load<D>(w + i);
}

// ---- Portable fallback.

template <DType D, int M, int R>
void tile_scalar(const float* x, int64_t K, const void* W, int64_t N, int64_t n, float* y, bool accumulate) {
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    const Elem<D>* w = static_cast<const Elem<D>*>(W) + (n + r) * K;
#pragma GCC unroll 8
    for (int m = 0; m < M; ++m) {
      float s = 0;
      for (int64_t k = 0; k < K; ++k) s += x[m * K + k] * scalar_load<D>(w + k);
      float& out = y[m * N + n + r];
      out = accumulate ? out + s : s;
    }
  }
}

template <DType D>
void widen_scalar(const void* W, int64_t K, int64_t n0, int64_t n1, float* out) {
  const Elem<D>* w = static_cast<const Elem<D>*>(W) + n0 * K;
  for (int64_t i = 0, total = (n1 - n0) * K; i < total; ++i) out[i] = scalar_load<D>(w + i);
}

// ---- Dispatch: x rows in groups of <= 4; W rows in tiles of R (8 for one x
// row on AVX-512: 16 accumulators, 8 weight registers), the tail one by one.

using TileFn = void (*)(const float*, int64_t, const void*, int64_t, int64_t, float*, bool);

template <DType D, int R>
TileFn tile_fn(Isa isa, int64_t m) {
  static constexpr TileFn t512[4] = {tile512<D, 1, R, 2>, tile512<D, 2, R, 2>, tile512<D, 3, R, 1>,
                                     tile512<D, 4, R, 1>};
  static constexpr TileFn t256[4] = {tile256<D, 1, R>, tile256<D, 2, R>, tile256<D, 3, R>, tile256<D, 4, R>};
  static constexpr TileFn tsc[4] = {tile_scalar<D, 1, R>, tile_scalar<D, 2, R>, tile_scalar<D, 3, R>,
                                    tile_scalar<D, 4, R>};
  return (isa == Isa::Avx512 ? t512 : isa == Isa::Avx2 ? t256 : tsc)[m - 1];
}

template <DType D>
void rows(Isa isa, const float* x, int64_t M, int64_t K, const void* W, int64_t N, int64_t n0, int64_t n1, float* y,
          bool accumulate) {
  for (int64_t m0 = 0; m0 < M; m0 += 4) {
    const int64_t mb = std::min<int64_t>(4, M - m0);
    const float* xm = x + m0 * K;
    float* ym = y + m0 * N;
    int64_t n = n0;
    if (isa == Isa::Avx512 && mb == 1)
      for (TileFn f = tile_fn<D, 8>(isa, mb); n + 8 <= n1; n += 8) f(xm, K, W, N, n, ym, accumulate);
    for (TileFn f = tile_fn<D, 4>(isa, mb); n + 4 <= n1; n += 4) f(xm, K, W, N, n, ym, accumulate);
    for (TileFn f = tile_fn<D, 1>(isa, mb); n < n1; ++n) f(xm, K, W, N, n, ym, accumulate);
  }
}

}  // namespace

void gemv_rows(Isa isa, const float* x, int64_t M, int64_t K, const void* W, DType wdt, int64_t N, int64_t n0,
               int64_t n1, float* y, bool accumulate) {
  switch (wdt) {
    case DType::F32: return rows<DType::F32>(isa, x, M, K, W, N, n0, n1, y, accumulate);
    case DType::BF16:
      if (isa == Isa::Avx512 && dispatch().bf16_dot && cpu().avx512_bf16)
        return rows_bf16dot(x, M, K, W, N, n0, n1, y, accumulate);
      return rows<DType::BF16>(isa, x, M, K, W, N, n0, n1, y, accumulate);
    case DType::F16: return rows<DType::F16>(isa, x, M, K, W, N, n0, n1, y, accumulate);
    default: break;
  }
}

void widen_rows(Isa isa, const void* W, DType wdt, int64_t K, int64_t n0, int64_t n1, float* out) {
  auto pick = [&](auto f512, auto f256, auto fsc) {
    (isa == Isa::Avx512 ? f512 : isa == Isa::Avx2 ? f256 : fsc)(W, K, n0, n1, out);
  };
  switch (wdt) {
    case DType::F32: return pick(widen512<DType::F32>, widen256<DType::F32>, widen_scalar<DType::F32>);
    case DType::BF16: return pick(widen512<DType::BF16>, widen256<DType::BF16>, widen_scalar<DType::BF16>);
    case DType::F16: return pick(widen512<DType::F16>, widen256<DType::F16>, widen_scalar<DType::F16>);
    default: break;
  }
  if (!is_quantized(wdt)) return;
  const size_t rb = row_bytes(wdt, K);
  for (int64_t n = n0; n < n1; ++n) dequantize_row(static_cast<const uint8_t*>(W) + n * rb, wdt, out + (n - n0) * K, K);
}

}  // namespace solar::kernels::detail
