// AVX2 versions of the element-wise ops in ops.h (dispatched from ops.cpp),
// for CPUs without AVX-512 (Zen 2/3, most desktops). The portable loops call
// libm's expf once per element and sum in one scalar chain: on a Zen 3 they
// made softmax, SwiGLU and cross-entropy the slowest part of training, and
// their float sums over a vocabulary lost ~1e-6 relative (a test caught it).
// Same algorithms as ops_avx512.cpp, eight lanes, masked loads for the tails.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/kernels_impl.h"
#include "kernels/simd_avx2.h"

#define SOLAR_AVX2 __attribute__((target("avx2,fma")))
#define SOLAR_INLINE inline __attribute__((always_inline))

namespace solar::kernels::detail {
namespace {

// `left` elements from p: whole vectors plain, only a tail masked (a masked
// store is microcoded on AMD: Zen 3's softmax ran at a third of the speed).
SOLAR_AVX2 SOLAR_INLINE __m256 load(const float* p, int64_t left) {
  return left >= 8 ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, avx2_tail(left));
}
SOLAR_AVX2 SOLAR_INLINE void store(float* p, int64_t left, __m256 v) {
  if (left >= 8)
    _mm256_storeu_ps(p, v);
  else
    _mm256_maskstore_ps(p, avx2_tail(left), v);
}

SOLAR_AVX2 SOLAR_INLINE float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}
SOLAR_AVX2 SOLAR_INLINE float hmax(__m256 v) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_max_ss(s, _mm_movehdup_ps(s)));
}

// 2^n for integral n in [−150, 128] as two normal factors 2^⌊n/2⌋ · 2^⌈n/2⌉:
// one exponent field cannot hold n < −126 (subnormal results) or n = 128
// (the overflow to inf), and the product rounds once, where expf would.
SOLAR_AVX2 SOLAR_INLINE __m256 pow2_split(__m256 n, __m256* second) {
  const __m256i ni = _mm256_cvtps_epi32(n), half = _mm256_srai_epi32(ni, 1);
  const __m256i bias = _mm256_set1_epi32(127);
  *second = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(_mm256_sub_epi32(ni, half), bias), 23));
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(half, bias), 23));
}

// exp(x) = 2ⁿ · e^r as exp16 in ops_avx512.cpp (Cody–Waite, degree-6
// Taylor, < 2 ulp); inputs clamped to [−104, 89], NaN passes through.
SOLAR_AVX2 SOLAR_INLINE __m256 exp8(__m256 x) {
  const __m256 xc = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-104.f)), _mm256_set1_ps(89.f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(xc, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693145751953125f), xc);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.428606765330187045e-06f), r);
  __m256 p = _mm256_set1_ps(1.f / 720);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.f / 120));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.f / 24));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.f / 6));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.f));
  __m256 s2;
  const __m256 s1 = pow2_split(n, &s2);
  const __m256 y = _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
  return _mm256_blendv_ps(y, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
}

SOLAR_AVX2 SOLAR_INLINE __m256 sigmoid8(__m256 x) {
  const __m256 one = _mm256_set1_ps(1.f);
  return _mm256_div_ps(one, _mm256_add_ps(one, exp8(_mm256_sub_ps(_mm256_setzero_ps(), x))));
}

}  // namespace

SOLAR_AVX2 void exp_avx2(float* y, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; i += 8) {
    store(y + i, n - i, exp8(load(x + i, n - i)));
  }
}

SOLAR_AVX2 float softmax_avx2(float* x, int64_t n) {
  const __m256 ninf = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
  __m256 mx = ninf;
  for (int64_t i = 0; i < n; i += 8) {
    const __m256i m = avx2_tail(n - i);
    mx = _mm256_max_ps(mx, _mm256_blendv_ps(ninf, load(x + i, n - i), _mm256_castsi256_ps(m)));
  }
  const float mxs = hmax(mx);
  const __m256 shift = _mm256_set1_ps(mxs);
  // The sum in double: 8 float lanes over a 32,000-word vocabulary drift by
  // ~1e-6 relative (cross-entropy's gradient is this softmax); the exps cost
  // far more than the two conversions.
  __m256d sum_lo = _mm256_setzero_pd(), sum_hi = _mm256_setzero_pd();
  for (int64_t i = 0; i < n; i += 8) {
    const __m256i m = avx2_tail(n - i);
    const __m256 e = _mm256_and_ps(exp8(_mm256_sub_ps(load(x + i, n - i), shift)), _mm256_castsi256_ps(m));
    sum_lo = _mm256_add_pd(sum_lo, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
    sum_hi = _mm256_add_pd(sum_hi, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
    store(x + i, n - i, e);
  }
  alignas(32) double lanes[4];
  _mm256_store_pd(lanes, _mm256_add_pd(sum_lo, sum_hi));
  const double s = (lanes[0] + lanes[2]) + (lanes[1] + lanes[3]);
  const __m256 inv = _mm256_set1_ps(float(1.0 / s));
  for (int64_t i = 0; i < n; i += 8) {
    store(x + i, n - i, _mm256_mul_ps(load(x + i, n - i), inv));
  }
  return mxs + float(std::log(s));
}

SOLAR_AVX2 void softmax_backward_avx2(float* dp, const float* p, int64_t n, float scale) {
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n; i += 8) {
    acc = _mm256_fmadd_ps(load(p + i, n - i), load(dp + i, n - i), acc);
  }
  const __m256 dot = _mm256_set1_ps(hsum(acc)), sc = _mm256_set1_ps(scale);
  for (int64_t i = 0; i < n; i += 8) {
    store(dp + i, n - i, _mm256_mul_ps(_mm256_mul_ps(load(p + i, n - i), _mm256_sub_ps(load(dp + i, n - i), dot)), sc));
  }
}

SOLAR_AVX2 void swiglu_avx2(float* h, const float* gate, const float* up, int64_t n) {
  for (int64_t i = 0; i < n; i += 8) {
    const __m256 g = load(gate + i, n - i);
    store(h + i, n - i, _mm256_mul_ps(_mm256_mul_ps(g, sigmoid8(g)), load(up + i, n - i)));
  }
}

SOLAR_AVX2 void swiglu_backward_avx2(float* dgate, float* dup, const float* dh, const float* gate, const float* up,
                                     int64_t n) {
  const __m256 one = _mm256_set1_ps(1.f);
  for (int64_t i = 0; i < n; i += 8) {
    const __m256 g = load(gate + i, n - i), u = load(up + i, n - i), d = load(dh + i, n - i), s = sigmoid8(g);
    const __m256 ds = _mm256_mul_ps(s, _mm256_fmadd_ps(g, _mm256_sub_ps(one, s), one));
    store(dgate + i, n - i, _mm256_mul_ps(_mm256_mul_ps(d, u), ds));
    store(dup + i, n - i, _mm256_mul_ps(_mm256_mul_ps(d, g), s));
  }
}

// GELU by A&S 7.1.26 as gelu_avx512 (1 + erf = erfc(|x|/√2) for x < 0).
SOLAR_AVX2 void gelu_avx2(float* x, int64_t n) {
  const __m256 one = _mm256_set1_ps(1.f), two = _mm256_set1_ps(2.f), half = _mm256_set1_ps(0.5f);
  const __m256 sign = _mm256_set1_ps(-0.f);
  for (int64_t i = 0; i < n; i += 8) {
    const __m256 v = load(x + i, n - i);
    const __m256 u = _mm256_mul_ps(_mm256_andnot_ps(sign, v), _mm256_set1_ps(0.70710678118654752f));
    const __m256 t = _mm256_div_ps(one, _mm256_fmadd_ps(_mm256_set1_ps(0.3275911f), u, one));
    __m256 p = _mm256_set1_ps(1.061405429f);
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-1.453152027f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(1.421413741f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-0.284496736f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.254829592f));
    p = _mm256_mul_ps(p, t);
    const __m256 q = _mm256_mul_ps(p, exp8(_mm256_sub_ps(_mm256_setzero_ps(), _mm256_mul_ps(u, u))));
    const __m256 neg = _mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_LT_OQ);
    const __m256 one_plus_erf = _mm256_blendv_ps(_mm256_sub_ps(two, q), q, neg);
    store(x + i, n - i, _mm256_mul_ps(_mm256_mul_ps(half, v), one_plus_erf));
  }
}

// Two passes (mean, then the squares about it): no cancellation in the variance.
SOLAR_AVX2 void layernorm_avx2(float* x, const float* w, const float* b, int64_t n, float eps) {
  __m256 s = _mm256_setzero_ps();
  for (int64_t i = 0; i < n; i += 8) s = _mm256_add_ps(s, load(x + i, n - i));
  const float mean = hsum(s) / float(n);
  const __m256 mv = _mm256_set1_ps(mean);
  __m256 q = _mm256_setzero_ps();
  for (int64_t i = 0; i < n; i += 8) {
    const __m256i m = avx2_tail(n - i);
    const __m256 d = _mm256_and_ps(_mm256_sub_ps(load(x + i, n - i), mv), _mm256_castsi256_ps(m));
    q = _mm256_fmadd_ps(d, d, q);
  }
  const __m256 inv = _mm256_set1_ps(1.f / std::sqrt(hsum(q) / float(n) + eps));
  for (int64_t i = 0; i < n; i += 8) {
    const __m256 d = _mm256_mul_ps(_mm256_sub_ps(load(x + i, n - i), mv), inv);
    store(x + i, n - i, _mm256_fmadd_ps(d, load(w + i, n - i), load(b + i, n - i)));
  }
}

// As argmax_avx512: per lane the largest value and the first index it came
// from (strict >: no NaN, no later tie), then the smallest index among the
// lanes holding the maximum; blocks of 2^30 keep lane indices in 32 bits.
SOLAR_AVX2 int64_t argmax_avx2(const float* x, int64_t n) {
  float bv = x[0];
  int64_t k = 0;
  const __m256i eight = _mm256_set1_epi32(8);
  for (int64_t b0 = 0; b0 < n; b0 += int64_t(1) << 30) {
    const int64_t len = std::min<int64_t>(n - b0, int64_t(1) << 30);
    const float* xb = x + b0;
    __m256 best = _mm256_set1_ps(bv);
    __m256i at = _mm256_setzero_si256(), idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    for (int64_t i = 0; i < len; i += 8) {
      const __m256i m = avx2_tail(len - i);
      const __m256 v = _mm256_blendv_ps(best, load(xb + i, len - i), _mm256_castsi256_ps(m));  // past the end: keep
      const __m256 gt = _mm256_cmp_ps(v, best, _CMP_GT_OQ);
      best = _mm256_blendv_ps(best, v, gt);
      at = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(at), _mm256_castsi256_ps(idx), gt));
      idx = _mm256_add_epi32(idx, eight);
    }
    alignas(32) float bl[8];
    alignas(32) int32_t al[8];
    _mm256_store_ps(bl, best);
    _mm256_store_si256(reinterpret_cast<__m256i*>(al), at);
    const float mx = hmax(best);
    if (mx > bv) {
      int32_t first = std::numeric_limits<int32_t>::max();
      for (int l = 0; l < 8; ++l)
        if (bl[l] == mx) first = std::min(first, al[l]);
      k = b0 + first;
      bv = mx;
    }
  }
  return k;
}

SOLAR_AVX2 float dot_avx2(const float* a, const float* b, int64_t n) {
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n; i += 8) {
    acc = _mm256_fmadd_ps(load(a + i, n - i), load(b + i, n - i), acc);
  }
  return hsum(acc);
}

SOLAR_AVX2 void axpy_avx2(float* y, float a, const float* x, int64_t n) {
  const __m256 av = _mm256_set1_ps(a);
  for (int64_t i = 0; i < n; i += 8) {
    store(y + i, n - i, _mm256_fmadd_ps(av, load(x + i, n - i), load(y + i, n - i)));
  }
}

}  // namespace solar::kernels::detail
