// AVX-512 versions of the element-wise ops in ops.h (dispatched from ops.cpp).
// They exist because std::exp is a scalar libm call: in training, softmax,
// cross-entropy and SwiGLU spent more time in expf than in their GEMMs.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/kernels_impl.h"

#define SOLAR_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,fma")))
#define SOLAR_INLINE inline __attribute__((always_inline))

namespace solar::kernels::detail {
namespace {

SOLAR_AVX512 SOLAR_INLINE __mmask16 tail(int64_t left) {
  return left >= 16 ? __mmask16(0xffff) : __mmask16((1u << left) - 1);
}

// exp(x) = 2ⁿ · e^r, n = round(x·log2 e), |r| ≤ ln2/2 (Cody–Waite split of
// ln 2), e^r by its degree-6 Taylor polynomial: error < 2 ulp. Inputs are
// clamped to [-104, 89] so that scalef underflows to 0 and overflows to inf
// exactly where expf does; NaN passes through.
SOLAR_AVX512 SOLAR_INLINE __m512 exp16(__m512 x) {
  const __m512 lo = _mm512_set1_ps(-104.f), hi = _mm512_set1_ps(89.f);
  __m512 xc = _mm512_min_ps(_mm512_max_ps(x, lo), hi);
  __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(xc, _mm512_set1_ps(1.44269504088896341f)),
                                  _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), xc);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.428606765330187045e-06f), r);
  __m512 p = _mm512_set1_ps(1.f / 720);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f / 120));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f / 24));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f / 6));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f));
  __m512 y = _mm512_scalef_ps(p, n);
  return _mm512_mask_mov_ps(y, _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), x);
}

// σ(x) = 1 / (1 + e^−x)
SOLAR_AVX512 SOLAR_INLINE __m512 sigmoid16(__m512 x) {
  const __m512 one = _mm512_set1_ps(1.f);
  return _mm512_div_ps(one, _mm512_add_ps(one, exp16(_mm512_sub_ps(_mm512_setzero_ps(), x))));
}

}  // namespace

SOLAR_AVX512 void exp_avx512(float* y, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; i += 16) {
    __mmask16 m = tail(n - i);
    _mm512_mask_storeu_ps(y + i, m, exp16(_mm512_maskz_loadu_ps(m, x + i)));
  }
}

SOLAR_AVX512 float softmax_avx512(float* x, int64_t n) {
  const float ninf = -std::numeric_limits<float>::infinity();
  __m512 mx = _mm512_set1_ps(ninf);
  for (int64_t i = 0; i < n; i += 16) {
    __mmask16 m = tail(n - i);
    mx = _mm512_max_ps(mx, _mm512_mask_loadu_ps(_mm512_set1_ps(ninf), m, x + i));
  }
  const float mxs = _mm512_reduce_max_ps(mx);
  const __m512 shift = _mm512_set1_ps(mxs);
  __m512 sum = _mm512_setzero_ps();
  for (int64_t i = 0; i < n; i += 16) {
    __mmask16 m = tail(n - i);
    __m512 e = exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), shift));
    e = _mm512_maskz_mov_ps(m, e);
    sum = _mm512_add_ps(sum, e);
    _mm512_mask_storeu_ps(x + i, m, e);
  }
  const float s = _mm512_reduce_add_ps(sum);
  const __m512 inv = _mm512_set1_ps(1.f / s);
  for (int64_t i = 0; i < n; i += 16) {
    __mmask16 m = tail(n - i);
    _mm512_mask_storeu_ps(x + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), inv));
  }
  return mxs + std::log(s);
}

SOLAR_AVX512 void softmax_backward_avx512(float* dp, const float* p, int64_t n, float scale) {
  __m512 acc = _mm512_setzero_ps();
  for (int64_t i = 0; i < n; i += 16) {
    __mmask16 m = tail(n - i);
    acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, p + i), _mm512_maskz_loadu_ps(m, dp + i), acc);
  }
  const __m512 dot = _mm512_set1_ps(_mm512_reduce_add_ps(acc)), sc = _mm512_set1_ps(scale);
  for (int64_t i = 0; i < n; i += 16) {
    __mmask16 m = tail(n - i);
    __m512 pv = _mm512_maskz_loadu_ps(m, p + i), d = _mm512_maskz_loadu_ps(m, dp + i);
    _mm512_mask_storeu_ps(dp + i, m, _mm512_mul_ps(_mm512_mul_ps(pv, _mm512_sub_ps(d, dot)), sc));
  }
}

SOLAR_AVX512 void swiglu_avx512(float* h, const float* gate, const float* up, int64_t n) {
  for (int64_t i = 0; i < n; i += 16) {
    __mmask16 m = tail(n - i);
    __m512 g = _mm512_maskz_loadu_ps(m, gate + i), u = _mm512_maskz_loadu_ps(m, up + i);
    _mm512_mask_storeu_ps(h + i, m, _mm512_mul_ps(_mm512_mul_ps(g, sigmoid16(g)), u));
  }
}

// GELU(x) = x/2 · (1 + erf(x/√2)). With u = |x|/√2 and q = erfc(u) =
// t·(a1 + t·(a2 + … + t·a5))·e^(−u²), t = 1/(1 + p·u) (A&S 7.1.26):
// 1 + erf = q for x < 0, 2 − q otherwise.
// Two passes (mean, then the squares about it): no cancellation in the variance.
SOLAR_AVX512 void layernorm_avx512(float* x, const float* w, const float* b, int64_t n, float eps) {
  __m512 s = _mm512_setzero_ps();
  for (int64_t i = 0; i < n; i += 16) s = _mm512_add_ps(s, _mm512_maskz_loadu_ps(tail(n - i), x + i));
  const float mean = _mm512_reduce_add_ps(s) / float(n);
  const __m512 mv = _mm512_set1_ps(mean);
  __m512 q = _mm512_setzero_ps();
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = tail(n - i);
    const __m512 d = _mm512_maskz_sub_ps(m, _mm512_maskz_loadu_ps(m, x + i), mv);
    q = _mm512_fmadd_ps(d, d, q);
  }
  const __m512 inv = _mm512_set1_ps(1.f / std::sqrt(_mm512_reduce_add_ps(q) / float(n) + eps));
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = tail(n - i);
    const __m512 d = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), mv), inv);
    _mm512_mask_storeu_ps(x + i, m, _mm512_fmadd_ps(d, _mm512_maskz_loadu_ps(m, w + i), _mm512_maskz_loadu_ps(m, b + i)));
  }
}

SOLAR_AVX512 void gelu_avx512(float* x, int64_t n) {
  const __m512 one = _mm512_set1_ps(1.f), two = _mm512_set1_ps(2.f), half = _mm512_set1_ps(0.5f);
  for (int64_t i = 0; i < n; i += 16) {
    __mmask16 m = tail(n - i);
    const __m512 v = _mm512_maskz_loadu_ps(m, x + i);
    const __m512 u = _mm512_mul_ps(_mm512_abs_ps(v), _mm512_set1_ps(0.70710678118654752f));
    const __m512 t = _mm512_div_ps(one, _mm512_fmadd_ps(_mm512_set1_ps(0.3275911f), u, one));
    __m512 p = _mm512_set1_ps(1.061405429f);
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-1.453152027f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(1.421413741f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-0.284496736f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.254829592f));
    p = _mm512_mul_ps(p, t);
    const __m512 q = _mm512_mul_ps(p, exp16(_mm512_sub_ps(_mm512_setzero_ps(), _mm512_mul_ps(u, u))));
    const __mmask16 neg = _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_LT_OQ);
    const __m512 one_plus_erf = _mm512_mask_mov_ps(_mm512_sub_ps(two, q), neg, q);
    _mm512_mask_storeu_ps(x + i, m, _mm512_mul_ps(_mm512_mul_ps(half, v), one_plus_erf));
  }
}

// One pass: each lane keeps its largest value and the first index it came
// from (a strict > never takes a NaN or a later tie); the answer is the
// smallest index among the lanes that hold the overall maximum. Lane indices
// are 32-bit, so blocks of 2^30 values, each only taking over from the
// blocks before it with a strictly larger value.
SOLAR_AVX512 int64_t argmax_avx512(const float* x, int64_t n) {
  float bv = x[0];
  int64_t k = 0;
  const __m512i sixteen = _mm512_set1_epi32(16);
  for (int64_t b0 = 0; b0 < n; b0 += int64_t(1) << 30) {
    const int64_t len = std::min<int64_t>(n - b0, int64_t(1) << 30);
    const float* xb = x + b0;
    __m512 best = _mm512_set1_ps(bv);
    __m512i at = _mm512_setzero_si512();
    __m512i idx = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    for (int64_t i = 0; i < len; i += 16) {
      const __mmask16 m = tail(len - i);
      const __m512 v = _mm512_mask_loadu_ps(best, m, xb + i);  // lanes past the end hold their best
      const __mmask16 gt = _mm512_cmp_ps_mask(v, best, _CMP_GT_OQ);
      best = _mm512_mask_mov_ps(best, gt, v);
      at = _mm512_mask_mov_epi32(at, gt, idx);
      idx = _mm512_add_epi32(idx, sixteen);
    }
    const float mx = _mm512_reduce_max_ps(best);
    if (mx > bv) {
      const __mmask16 top = _mm512_cmp_ps_mask(best, _mm512_set1_ps(mx), _CMP_EQ_OQ);
      k = b0 + _mm512_mask_reduce_min_epi32(top, at);
      bv = mx;
    }
  }
  return k;
}

// d silu(g) = σ(g)·(1 + g·(1 − σ(g)))
SOLAR_AVX512 void swiglu_backward_avx512(float* dgate, float* dup, const float* dh, const float* gate,
                                         const float* up, int64_t n) {
  const __m512 one = _mm512_set1_ps(1.f);
  for (int64_t i = 0; i < n; i += 16) {
    __mmask16 m = tail(n - i);
    __m512 g = _mm512_maskz_loadu_ps(m, gate + i), u = _mm512_maskz_loadu_ps(m, up + i);
    __m512 d = _mm512_maskz_loadu_ps(m, dh + i), s = sigmoid16(g);
    __m512 ds = _mm512_mul_ps(s, _mm512_fmadd_ps(g, _mm512_sub_ps(one, s), one));
    _mm512_mask_storeu_ps(dgate + i, m, _mm512_mul_ps(_mm512_mul_ps(d, u), ds));
    _mm512_mask_storeu_ps(dup + i, m, _mm512_mul_ps(_mm512_mul_ps(d, g), s));
  }
}

SOLAR_AVX512 float dot_avx512(const float* a, const float* b, int64_t n) {
  __m512 acc = _mm512_setzero_ps();
  for (int64_t i = 0; i < n; i += 16) {
    __mmask16 m = tail(n - i);
    acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), acc);
  }
  return _mm512_reduce_add_ps(acc);
}

SOLAR_AVX512 void axpy_avx512(float* y, float a, const float* x, int64_t n) {
  const __m512 av = _mm512_set1_ps(a);
  for (int64_t i = 0; i < n; i += 16) {
    __mmask16 m = tail(n - i);
    _mm512_mask_storeu_ps(y + i, m, _mm512_fmadd_ps(av, _mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i)));
  }
}

// Round to nearest even as f32_to_bf16 (core/dtype.h), NaN kept quiet.
SOLAR_AVX512 void to_bf16_avx512(const float* x, int64_t n, uint16_t* out) {
  const __m512i one = _mm512_set1_epi32(1), bias = _mm512_set1_epi32(0x7fff);
  const __m512i abs_mask = _mm512_set1_epi32(0x7fffffff), inf = _mm512_set1_epi32(0x7f800000);
  for (int64_t i = 0; i < n; i += 16) {
    __mmask16 m = tail(n - i);
    __m512i u = _mm512_castps_si512(_mm512_maskz_loadu_ps(m, x + i));
    __m512i r = _mm512_add_epi32(u, _mm512_add_epi32(bias, _mm512_and_si512(_mm512_srli_epi32(u, 16), one)));
    __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, abs_mask), inf);
    r = _mm512_mask_or_epi32(r, nan, u, _mm512_set1_epi32(0x400000));
    _mm256_mask_storeu_epi16(out + i, m, _mm512_cvtepi32_epi16(_mm512_srli_epi32(r, 16)));
  }
}

}  // namespace solar::kernels::detail
