// Attention of one head: attention_full (an encoder's, every row over every
// key; below) and causal attention of query rows over contiguous key ranges
// (ops.h, attention_rows): one definition for every row count, so that a row's
// output is the same bits whether it comes alone (decode), in a prompt of
// 512, or in a chunk of 16 of that prompt (serve's chunked prefill and
// continuous batching give each sequence the text it gets alone).
//
// Per row i and key j in [lo_i, hi_i]:
//   s_j = scale · q_i·k_j   (AVX-512: 16-lane partial sums over the head
//                            dimension, reduced by one fixed tree; 16 keys
//                            are reduced together by a transpose, so a key's
//                            sum does not depend on its neighbours; AVX2
//                            the same with 8 lanes and 8 keys, and for
//                            several rows the same sums as GEMM tiles)
//   p = softmax(s)          (kernels::softmax over the row's own scores)
//   out_i = Σ_j p_j · v_j   (ascending j from 0, one FMA per element and key)
// Scores exist for a block of rows at a time ([rows, keys], one thread's):
// never the [n, past + n] matrix of a whole prompt.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#include <algorithm>
#include <climits>
#include <cmath>
#include <vector>

#include "kernels/kernels.h"
#include "kernels/kernels_impl.h"
#include "kernels/ops.h"
#include "kernels/simd_avx2.h"

#define SOLAR_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,fma")))
#define SOLAR_INLINE inline __attribute__((always_inline))

namespace solar::kernels {
namespace {

// s[j - j0] = scale · q·k_j for keys [j0, j1), in order over the head dimension.
void scores_scalar(const float* q, const float* k, int64_t ldkv, int j0, int j1, int hd, float scale, float* s) {
  for (int j = j0; j < j1; ++j) {
    float a = 0;
    for (int d = 0; d < hd; ++d) a += q[d] * k[int64_t(j) * ldkv + d];
    s[j - j0] = a * scale;
  }
}

// out[d] = Σ_j p[j - lo] · v_j[d] over [lo, hi], ascending j.
void pv_scalar(const float* p, const float* v, int64_t ldkv, int lo, int hi, int hd, float* out) {
  for (int d = 0; d < hd; ++d) out[d] = 0;
  for (int j = lo; j <= hi; ++j)
    for (int d = 0; d < hd; ++d) out[d] += p[j - lo] * v[int64_t(j) * ldkv + d];
}

SOLAR_AVX512 SOLAR_INLINE __mmask16 tail(int64_t left) {
  return left >= 16 ? __mmask16(0xffff) : left <= 0 ? __mmask16(0) : __mmask16((1u << left) - 1);
}

// Lane c of the result = the sum of a[c]'s 16 lanes, every key by the same
// tree: 128-bit chunks (0+2), (1+3), then their sum; lanes (0+2), (1+3),
// then their sum. Four shuffle-and-add stages for 16 keys.
SOLAR_AVX512 SOLAR_INLINE __m512 reduce16(const __m512* a) {
  __m512 t1[8], t2[4], t3[2];
#pragma GCC unroll 8
  for (int i = 0; i < 8; ++i)  // keys 2i, 2i+1: [x.c0+x.c2, x.c1+x.c3] each
    t1[i] = _mm512_add_ps(_mm512_shuffle_f32x4(a[2 * i], a[2 * i + 1], 0x44),
                          _mm512_shuffle_f32x4(a[2 * i], a[2 * i + 1], 0xEE));
#pragma GCC unroll 4
  for (int i = 0; i < 4; ++i)  // chunk c = key 4i + c, 4 lanes each
    t2[i] = _mm512_add_ps(_mm512_shuffle_f32x4(t1[2 * i], t1[2 * i + 1], 0x88),
                          _mm512_shuffle_f32x4(t1[2 * i], t1[2 * i + 1], 0xDD));
#pragma GCC unroll 2
  for (int i = 0; i < 2; ++i)  // chunk c: lanes (0+2), (1+3) of keys 8i + c, 8i + 4 + c
    t3[i] = _mm512_add_ps(_mm512_shuffle_ps(t2[2 * i], t2[2 * i + 1], 0x44),
                          _mm512_shuffle_ps(t2[2 * i], t2[2 * i + 1], 0xEE));
  // chunk c, lane m: key 4m + c; back to key order.
  const __m512 o = _mm512_add_ps(_mm512_shuffle_ps(t3[0], t3[1], 0x88), _mm512_shuffle_ps(t3[0], t3[1], 0xDD));
  const __m512i idx = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  return _mm512_permutexvar_ps(idx, o);
}

SOLAR_AVX512 void scores_avx512(const float* q, const float* k, int64_t ldkv, int j0, int j1, int hd, float scale,
                                float* s) {
  const __m512 sc = _mm512_set1_ps(scale);
  for (int j = j0; j < j1; j += 16) {
    const int cnt = std::min(16, j1 - j);
    const float* kr[16];
#pragma GCC unroll 16
    for (int c = 0; c < 16; ++c) kr[c] = k + int64_t(j + std::min(c, cnt - 1)) * ldkv;  // lanes past the range repeat a key
    __m512 acc[16];
#pragma GCC unroll 16
    for (int c = 0; c < 16; ++c) acc[c] = _mm512_setzero_ps();
    for (int d = 0; d < hd; d += 16) {
      const __mmask16 m = tail(hd - d);
      const __m512 qv = _mm512_maskz_loadu_ps(m, q + d);
#pragma GCC unroll 16
      for (int c = 0; c < 16; ++c) acc[c] = _mm512_fmadd_ps(qv, _mm512_maskz_loadu_ps(m, kr[c] + d), acc[c]);
    }
    _mm512_mask_storeu_ps(s + (j - j0), tail(cnt), _mm512_mul_ps(reduce16(acc), sc));
  }
}

// R rows at once (each value row is loaded once for all of them), 64
// elements of the head dimension at a time; row r adds key j only inside
// its own range, so what it sums does not depend on the other rows.
template <int R>
SOLAR_AVX512 void pv_avx512(const float* const* p, const float* v, int64_t ldkv, const int* lo, const int* hi, int hd,
                            float* const* out) {
  int first = lo[0], last = hi[0];
  for (int r = 1; r < R; ++r) first = std::min(first, lo[r]), last = std::max(last, hi[r]);
  for (int d0 = 0; d0 < hd; d0 += 64) {
    __mmask16 m[4];
#pragma GCC unroll 4
    for (int t = 0; t < 4; ++t) m[t] = tail(hd - d0 - 16 * t);
    __m512 acc[R][4];
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
      for (int t = 0; t < 4; ++t) acc[r][t] = _mm512_setzero_ps();
    for (int j = first; j <= last; ++j) {
      const float* vr = v + int64_t(j) * ldkv + d0;
      __m512 vv[4];
#pragma GCC unroll 4
      for (int t = 0; t < 4; ++t) vv[t] = _mm512_maskz_loadu_ps(m[t], vr + 16 * t);
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) {
        if (j < lo[r] || j > hi[r]) continue;
        const __m512 pj = _mm512_set1_ps(p[r][j - lo[r]]);
#pragma GCC unroll 4
        for (int t = 0; t < 4; ++t) acc[r][t] = _mm512_fmadd_ps(pj, vv[t], acc[r][t]);
      }
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
      for (int t = 0; t < 4; ++t) _mm512_mask_storeu_ps(out[r] + d0 + 16 * t, m[t], acc[r][t]);
  }
}

using PvFn = void (*)(const float* const*, const float*, int64_t, const int*, const int*, int, float* const*);
constexpr int kPvRows = 4;
constexpr PvFn kPv[kPvRows] = {pv_avx512<1>, pv_avx512<2>, pv_avx512<3>, pv_avx512<4>};

// ---- AVX2 (CPUs without AVX-512): 8 keys per score step, 32 elements of
// the head dimension per value step; the same sums in the same order per
// row whatever rows come beside it.
#define SOLAR_AVX2 __attribute__((target("avx2,fma")))

// Lane c = the sum of a[c]'s 8 lanes, every key by the same tree (pairs,
// then quads, then the two 128-bit halves).
SOLAR_AVX2 SOLAR_INLINE __m256 reduce8(const __m256* a) {
  const __m256 t0 = _mm256_hadd_ps(a[0], a[1]), t1 = _mm256_hadd_ps(a[2], a[3]);
  const __m256 t2 = _mm256_hadd_ps(a[4], a[5]), t3 = _mm256_hadd_ps(a[6], a[7]);
  const __m256 u0 = _mm256_hadd_ps(t0, t1), u1 = _mm256_hadd_ps(t2, t3);  // [k0..3 lo | k0..3 hi], [k4..7 …]
  return _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20), _mm256_permute2f128_ps(u0, u1, 0x31));
}

// Loads of a row's 8 elements from d: plain where all 8 are there (Full),
// masked at a tail. Every loop over a register array below is unrolled: left
// rolled, GCC keeps the arrays on the stack and each FMA waits on a store
// (Zen 3, 512-row causal prefill, hd 64: 13.7 GFLOP/s that way).
template <bool Full>
SOLAR_AVX2 SOLAR_INLINE __m256 load8(const float* p, __m256i m) {
  if constexpr (Full) return _mm256_loadu_ps(p);
  return _mm256_maskload_ps(p, m);
}

template <bool Full>
SOLAR_AVX2 SOLAR_INLINE void scores8(const float* q, const float* const* kr, int hd, __m256 sc, float* s, int cnt) {
  __m256 acc[8];
#pragma GCC unroll 8
  for (int c = 0; c < 8; ++c) acc[c] = _mm256_setzero_ps();
  for (int d = 0; d < hd; d += 8) {
    const __m256i m = Full ? __m256i{} : detail::avx2_tail(hd - d);
    const __m256 qv = load8<Full>(q + d, m);
#pragma GCC unroll 8
    for (int c = 0; c < 8; ++c) acc[c] = _mm256_fmadd_ps(qv, load8<Full>(kr[c] + d, m), acc[c]);
  }
  const __m256 r = _mm256_mul_ps(reduce8(acc), sc);
  if (cnt == 8)
    _mm256_storeu_ps(s, r);
  else
    _mm256_maskstore_ps(s, detail::avx2_tail(cnt), r);
}

SOLAR_AVX2 void scores_avx2(const float* q, const float* k, int64_t ldkv, int j0, int j1, int hd, float scale,
                            float* s) {
  const __m256 sc = _mm256_set1_ps(scale);
  for (int j = j0; j < j1; j += 8) {
    const int cnt = std::min(8, j1 - j);
    const float* kr[8];
#pragma GCC unroll 8
    for (int c = 0; c < 8; ++c) kr[c] = k + int64_t(j + std::min(c, cnt - 1)) * ldkv;  // lanes past the range repeat a key
    if (hd % 8 == 0)
      scores8<true>(q, kr, hd, sc, s + (j - j0), cnt);
    else
      scores8<false>(q, kr, hd, sc, s + (j - j0), cnt);
  }
}

// Prefill's scores as GEMM tiles, the bits of scores8. Lane l of scores8's
// accumulator for key j is an FMA chain over d = l, l + 8, … (ascending) of
// q[d]·k_j[d]; the score is ((P0+P1)+(P2+P3))+((P4+P5)+(P6+P7)) of the 8
// lane sums (reduce8's tree), times scale. With K copied lane-major (per 8
// keys, per lane l and step i: the 8 keys' element l + 8i side by side),
// each lane sum is a chain over i of a broadcast q[l + 8i] times a vector
// of 8 keys: tiles of R rows × 16 keys, 2R accumulators, 2 loads and R
// broadcasts a step, as in a GEMM. The lane sums wait in L1 for the tree.
// Same multiplies and adds in the same order per key, so a row's scores are
// the same bits as scores8's (decode keeps scores8: one row needs no copy).
// Zen 3, one thread, a causal head (with pv_keys' rebased pointers, below):
// scores 27 → 74 GFLOP/s; the whole head 0.96 → 0.68 ms for 512 rows, 18.9
// → 12.0 ms for 2048 (hd 128: 31.4 → 20.8 ms); 16 rows over 1,000 cached
// keys (serve's chunked prefill) 0.16 → 0.12 ms; 2048 rows in the engine's
// calls of 16 (each copies its keys) 17.2 → 13.7 ms.
constexpr int kTileRows = 6;
// Fewer rows: scores8 over L1-sized key chunks, which reads K from memory once
// for all of them too. (Zen 3, one thread: 4 to 8 rows over 300 to 4,000 keys
// 0.85–1.0× with tiles, the copy of K eating the gain; 12 rows over 1,000
// keys 1.2×; a 16-row chunk over 1,000 keys 1.3×.)
constexpr int kTileMin = 12;

// kt ← K rows [j0, j1) lane-major: vector v (keys j0 + 8v …) holds, for
// lane l and step i, at kt[(v·8 + l)·steps·8 + 8i + c] element l + 8i of
// key j0 + 8v + c (0 past hd; the last vector's keys past j1 repeat j1 − 1).
SOLAR_AVX2 void lane_major(const float* k, int64_t ldkv, int j0, int j1, int hd, float* kt) {
  const int steps = (hd + 7) / 8;
  for (int j = j0; j < j1; j += 8, kt += 64 * steps) {
    const float* kr[8];
#pragma GCC unroll 8
    for (int c = 0; c < 8; ++c) kr[c] = k + int64_t(std::min(j + c, j1 - 1)) * ldkv;
    for (int i = 0; i < steps; ++i) {
      const bool full = 8 * i + 8 <= hd;
      const __m256i m = full ? __m256i{} : detail::avx2_tail(hd - 8 * i);
      __m256 r[8], t[8];
#pragma GCC unroll 8
      for (int c = 0; c < 8; ++c) r[c] = full ? _mm256_loadu_ps(kr[c] + 8 * i) : _mm256_maskload_ps(kr[c] + 8 * i, m);
      // 8×8 transpose: t[l] lane c = r[c] lane l.
#pragma GCC unroll 4
      for (int c = 0; c < 8; c += 2) t[c] = _mm256_unpacklo_ps(r[c], r[c + 1]), t[c + 1] = _mm256_unpackhi_ps(r[c], r[c + 1]);
#pragma GCC unroll 2
      for (int c = 0; c < 8; c += 4) {
        r[c] = _mm256_shuffle_ps(t[c], t[c + 2], 0x44), r[c + 1] = _mm256_shuffle_ps(t[c], t[c + 2], 0xEE);
        r[c + 2] = _mm256_shuffle_ps(t[c + 1], t[c + 3], 0x44), r[c + 3] = _mm256_shuffle_ps(t[c + 1], t[c + 3], 0xEE);
      }
#pragma GCC unroll 4
      for (int l = 0; l < 4; ++l) {
        t[l] = _mm256_permute2f128_ps(r[l], r[l + 4], 0x20);
        t[l + 4] = _mm256_permute2f128_ps(r[l], r[l + 4], 0x31);
      }
#pragma GCC unroll 8
      for (int l = 0; l < 8; ++l) _mm256_storeu_ps(kt + (l * steps + i) * 8, t[l]);
    }
  }
}

// s[r][0, 16) = the scores of R rows (qp: padded to steps·8, zeros past hd,
// rows ldqp apart) for the 16 keys of lane-major vectors kt, kt + 64·steps.
template <int R>
SOLAR_AVX2 void scores_tile(const float* qp, int ldqp, const float* kt, int steps, __m256 sc, float (*s)[16]) {
  alignas(32) float part[8][R][2][8];
  const float* kt1 = kt + 64 * steps;
#pragma GCC unroll 1
  for (int l = 0; l < 8; ++l) {
    __m256 acc[R][2];
#pragma GCC unroll 6
    for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
    const float* a = kt + l * steps * 8;
    const float* b = kt1 + l * steps * 8;
    const float* x = qp + l;
    for (int i = 0; i < steps; ++i, a += 8, b += 8, x += 8) {
      const __m256 ka = _mm256_loadu_ps(a), kb = _mm256_loadu_ps(b);
#pragma GCC unroll 6
      for (int r = 0; r < R; ++r) {
        const __m256 xr = _mm256_broadcast_ss(x + r * ldqp);
        acc[r][0] = _mm256_fmadd_ps(xr, ka, acc[r][0]);
        acc[r][1] = _mm256_fmadd_ps(xr, kb, acc[r][1]);
      }
    }
#pragma GCC unroll 6
    for (int r = 0; r < R; ++r) _mm256_store_ps(part[l][r][0], acc[r][0]), _mm256_store_ps(part[l][r][1], acc[r][1]);
  }
#pragma GCC unroll 6
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 2
    for (int h = 0; h < 2; ++h) {
      __m256 p[8];
#pragma GCC unroll 8
      for (int l = 0; l < 8; ++l) p[l] = _mm256_load_ps(part[l][r][h]);
      const __m256 lo = _mm256_add_ps(_mm256_add_ps(p[0], p[1]), _mm256_add_ps(p[2], p[3]));
      const __m256 hi = _mm256_add_ps(_mm256_add_ps(p[4], p[5]), _mm256_add_ps(p[6], p[7]));
      _mm256_storeu_ps(s[r] + 8 * h, _mm256_mul_ps(_mm256_add_ps(lo, hi), sc));
    }
}

using ScoresTileFn = void (*)(const float*, int, const float*, int, __m256, float (*)[16]);
constexpr ScoresTileFn kScoresTile[kTileRows] = {scores_tile<1>, scores_tile<2>, scores_tile<3>,
                                                 scores_tile<4>, scores_tile<5>, scores_tile<6>};

// Rows [0, n)'s probabilities into b (row i's at b + at[i], its own keys only) by
// scores_tile: K copied lane-major once for the union of the rows' ranges,
// then tiles of up to 6 rows over their own union, 16 keys at a time.
SOLAR_AVX2 void scores_rows_avx2(const float* q, int64_t ldq, const float* k, int64_t ldkv, const int* lo, const int* hi,
                                 int n, int hd, float scale, const size_t* at, float* b) {
  thread_local std::vector<float> kt_buf, qp_buf;
  std::vector<float>& kt = kt_buf;
  std::vector<float>& qp = qp_buf;
  int kmin = INT32_MAX, kmax = -1;
  for (int i = 0; i < n; ++i)
    if (hi[i] >= lo[i]) kmin = std::min(kmin, lo[i]), kmax = std::max(kmax, hi[i]);
  if (kmax < 0) return;
  const int steps = (hd + 7) / 8, vecs = (kmax - kmin + 8) / 8;
  kt.resize(size_t(vecs + 1) * 64 * size_t(steps));  // + a vector of zeros: a tile's second may be past the end
  std::fill(kt.end() - 64 * steps, kt.end(), 0.f);
  lane_major(k, ldkv, kmin, kmax + 1, hd, kt.data());
  const int ldqp = 8 * steps;
  qp.assign(size_t(kTileRows) * size_t(ldqp), 0.f);
  const __m256 sc = _mm256_set1_ps(scale);
  float s[kTileRows][16];
  for (int i0 = 0; i0 < n; i0 += kTileRows) {
    const int r = std::min(kTileRows, n - i0);
    int a = INT32_MAX, z = -1;
    for (int t = 0; t < r; ++t) {
      const int i = i0 + t;
      if (hi[i] >= lo[i]) a = std::min(a, lo[i]), z = std::max(z, hi[i]);
      std::copy(q + int64_t(i) * ldq, q + int64_t(i) * ldq + hd, qp.data() + size_t(t) * size_t(ldqp));
    }
    if (z < 0) continue;
    for (int j = kmin + (a - kmin) / 8 * 8; j <= z; j += 16) {
      kScoresTile[r - 1](qp.data(), ldqp, kt.data() + size_t((j - kmin) / 8) * 64 * size_t(steps), steps, sc, s);
      for (int t = 0; t < r; ++t) {
        const int i = i0 + t, j0 = std::max(j, lo[i]), j1 = std::min(j + 15, hi[i]);
        if (j0 <= j1) std::copy(s[t] + (j0 - j), s[t] + (j1 - j) + 1, b + at[i] + size_t(j0 - lo[i]));
      }
    }
    for (int i = i0; i < i0 + r; ++i)
      if (hi[i] >= lo[i]) softmax(b + at[i], hi[i] - lo[i] + 1);
  }
}

// scores_rows_avx2's contract by attention_scores, a row at a time: a block
// of 16 rows over a chunk of keys that stays in L1 (8 KiB of K: the cache
// lines of keys a GQA row stride apart share few sets), so that K comes from
// L2 once per block, not once per row. A row's chunks start at lo + a
// multiple of 16, so its groups of 8 or 16 keys are the ones it has alone:
// the same bits. (Zen 3, 512-row causal prefill, hd 64, 4 KV heads:
// attention 1.36 → 1.23 ms against row by row over all keys.)
void scores_rows(const float* q, int64_t ldq, const float* k, int64_t ldkv, const int* lo, const int* hi, int n, int hd,
                 float scale, const size_t* at, float* b) {
  const int chunk = std::max(16, 2048 / std::max(1, hd) / 16 * 16);
  constexpr int kScoreRows = 16;
  for (int i0 = 0; i0 < n; i0 += kScoreRows) {
    const int i1 = std::min(n, i0 + kScoreRows);
    int longest = 0;
    for (int i = i0; i < i1; ++i) longest = std::max(longest, hi[i] - lo[i] + 1);
    for (int c0 = 0; c0 < longest; c0 += chunk)
      for (int i = i0; i < i1; ++i) {
        const int len = hi[i] - lo[i] + 1;
        if (c0 < len)
          attention_scores(q + int64_t(i) * ldq, k, ldkv, lo[i] + c0, lo[i] + std::min(len, c0 + chunk), hd, scale,
                           b + at[i] + c0);
      }
    for (int i = i0; i < i1; ++i)
      if (hi[i] >= lo[i]) softmax(b + at[i], hi[i] - lo[i] + 1);
  }
}

// Keys [j0, j1] into acc for NV vectors of 8 elements from d0 of R rows (the
// last one masked by m when Tail); Check: some row may not take every key
// of the range (only the ends of [first, last]).
template <int R, int NV, bool Tail, bool Check>
SOLAR_AVX2 SOLAR_INLINE void pv_keys(const float* const* p, const float* v, int64_t ldkv, const int* lo, const int* hi,
                                     int j0, int j1, int d0, __m256i m, __m256 (&acc)[R][NV]) {
  // Without checks every row takes every key: its probabilities from key j0
  // on, so that a broadcast's address is a pointer plus the loop's index.
  const float* pb[R];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) pb[r] = Check ? p[r] : p[r] + (j0 - lo[r]);
  for (int j = j0; j <= j1; ++j) {
    const float* vr = v + int64_t(j) * ldkv + d0;
    __m256 vv[NV];
#pragma GCC unroll 4
    for (int t = 0; t < NV; ++t) vv[t] = Tail && t == NV - 1 ? _mm256_maskload_ps(vr + 8 * t, m) : _mm256_loadu_ps(vr + 8 * t);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      if (Check && (j < lo[r] || j > hi[r])) continue;
      const __m256 pj = _mm256_broadcast_ss(Check ? p[r] + (j - lo[r]) : pb[r] + (j - j0));
#pragma GCC unroll 4
      for (int t = 0; t < NV; ++t) acc[r][t] = _mm256_fmadd_ps(pj, vv[t], acc[r][t]);
    }
  }
}

// R rows at once, each value row loaded once for them, as pv_avx512; the
// keys all R rows take run without per-row checks (same FMAs, same order).
template <int R, int NV, bool Tail>
SOLAR_AVX2 void pv_slice(const float* const* p, const float* v, int64_t ldkv, const int* lo, const int* hi, int hd,
                         int d0, float* const* out) {
  int first = lo[0], last = hi[0], all0 = lo[0], all1 = hi[0];
#pragma GCC unroll 8
  for (int r = 1; r < R; ++r) {
    first = std::min(first, lo[r]), last = std::max(last, hi[r]);
    all0 = std::max(all0, lo[r]), all1 = std::min(all1, hi[r]);
  }
  const __m256i m = Tail ? detail::avx2_tail(hd - d0 - 8 * (NV - 1)) : __m256i{};
  __m256 acc[R][NV];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int t = 0; t < NV; ++t) acc[r][t] = _mm256_setzero_ps();
  if (all0 > all1) {
    pv_keys<R, NV, Tail, true>(p, v, ldkv, lo, hi, first, last, d0, m, acc);
  } else {
    pv_keys<R, NV, Tail, true>(p, v, ldkv, lo, hi, first, all0 - 1, d0, m, acc);
    pv_keys<R, NV, Tail, false>(p, v, ldkv, lo, hi, all0, all1, d0, m, acc);
    pv_keys<R, NV, Tail, true>(p, v, ldkv, lo, hi, all1 + 1, last, d0, m, acc);
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int t = 0; t < NV; ++t) {
      if (Tail && t == NV - 1)
        _mm256_maskstore_ps(out[r] + d0 + 8 * t, m, acc[r][t]);
      else
        _mm256_storeu_ps(out[r] + d0 + 8 * t, acc[r][t]);
    }
}

// Up to 2 rows 32 elements of the head dimension at a time (decode: 4
// chains per key), 3 to 6 rows 16 at a time (12 accumulators, 2 value
// vectors, a broadcast): a causal 512-row head, hd 64, Zen 3, 1.16 → 0.97 ms
// with 6 rows (P·V read each value row once per row pair, at 40 GFLOP/s).
// A last slice of fewer takes only its own vectors (hd 8: one). Each (row,
// element) sums its keys in ascending order in one lane whatever the slice
// and the rows beside it: the same bits.
template <int R>
SOLAR_AVX2 void pv_avx2(const float* const* p, const float* v, int64_t ldkv, const int* lo, const int* hi, int hd,
                        float* const* out) {
  using Slice = void (*)(const float* const*, const float*, int64_t, const int*, const int*, int, int, float* const*);
  constexpr int W = R <= 2 ? 32 : 16;
  static constexpr Slice kSlice[2][4] = {
      {pv_slice<R, 1, false>, pv_slice<R, 2, false>, pv_slice<R, W / 8 == 4 ? 3 : 2, false>, pv_slice<R, W / 8, false>},
      {pv_slice<R, 1, true>, pv_slice<R, 2, true>, pv_slice<R, W / 8 == 4 ? 3 : 2, true>, pv_slice<R, W / 8, true>}};
  for (int d0 = 0; d0 < hd; d0 += W) {
    const int left = std::min(W, hd - d0);
    kSlice[left % 8 != 0][(left + 7) / 8 - 1](p, v, ldkv, lo, hi, hd, d0, out);
  }
}

constexpr int kPv2Rows = 6;
constexpr PvFn kPv2[kPv2Rows] = {pv_avx2<1>, pv_avx2<2>, pv_avx2<3>, pv_avx2<4>, pv_avx2<5>, pv_avx2<6>};

// attention_full: every row over every key (an encoder's attention). K is
// transposed once per call into [hd, keys padded to 32], so that both
// products are GEMM tiles of R rows × 32 columns in 2R accumulators, one
// broadcast per row and two loads per step: scores = q·Kᵀ (steps: the head
// dimension), then P·V (steps: the keys).
constexpr int kFullRows = 6;

// c[r][0, width) = scale · Σ_t a[r·lda + t] · b[t·ldb + (0, width)] over t <
// steps, for R rows and width ≤ 32 (b read past width as 0, c left there).
template <int R>
SOLAR_AVX512 void tile(const float* a, int64_t lda, const float* b, int64_t ldb, int steps, int width, float scale,
                       float* c, int64_t ldc) {
  const __mmask16 m0 = tail(width), m1 = tail(width - 16);
  __m512 acc[R][2];
#pragma GCC unroll 6
  for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
  for (int t = 0; t < steps; ++t) {
    const float* bt = b + int64_t(t) * ldb;
    const __m512 b0 = _mm512_maskz_loadu_ps(m0, bt), b1 = _mm512_maskz_loadu_ps(m1, bt + 16);
#pragma GCC unroll 6
    for (int r = 0; r < R; ++r) {
      const __m512 x = _mm512_set1_ps(a[int64_t(r) * lda + t]);
      acc[r][0] = _mm512_fmadd_ps(x, b0, acc[r][0]);
      acc[r][1] = _mm512_fmadd_ps(x, b1, acc[r][1]);
    }
  }
  const __m512 sc = _mm512_set1_ps(scale);
#pragma GCC unroll 6
  for (int r = 0; r < R; ++r) {
    _mm512_mask_storeu_ps(c + int64_t(r) * ldc, m0, _mm512_mul_ps(acc[r][0], sc));
    _mm512_mask_storeu_ps(c + int64_t(r) * ldc + 16, m1, _mm512_mul_ps(acc[r][1], sc));
  }
}

using TileFn = void (*)(const float*, int64_t, const float*, int64_t, int, int, float, float*, int64_t);
constexpr TileFn kTile[kFullRows] = {tile<1>, tile<2>, tile<3>, tile<4>, tile<5>, tile<6>};

}  // namespace

void attention_full(const float* q, int64_t ldq, const float* k, const float* v, int64_t ldkv, int n, int hd,
                    float scale, float* out, int64_t ldo) {
  if (n <= 0) return;
  thread_local std::vector<float> kt_buf, p_buf;  // named by reference: see attention_rows
  thread_local std::vector<int> lo_buf, hi_buf;
  std::vector<float>& kt = kt_buf;
  std::vector<float>& p = p_buf;
  if (detail::dispatch().isa != detail::Isa::Avx512) {  // row by row, as attention_rows
    std::vector<int>& lo = lo_buf;
    std::vector<int>& hi = hi_buf;
    lo.assign(size_t(n), 0), hi.assign(size_t(n), n - 1);
    return attention_rows(q, ldq, k, v, ldkv, lo.data(), hi.data(), n, hd, scale, out, ldo);
  }
  const int np = (n + 31) / 32 * 32;
  kt.assign(size_t(hd) * size_t(np), 0.f);  // padded keys score 0 and are left out of the softmax
  for (int j = 0; j < n; ++j)
    for (int d = 0; d < hd; ++d) kt[size_t(d) * size_t(np) + size_t(j)] = k[int64_t(j) * ldkv + d];
  p.resize(size_t(kFullRows) * size_t(np));
  for (int i0 = 0; i0 < n; i0 += kFullRows) {
    const int r = std::min(kFullRows, n - i0);
    for (int j0 = 0; j0 < np; j0 += 32)
      kTile[r - 1](q + int64_t(i0) * ldq, ldq, kt.data() + j0, np, hd, 32, scale, p.data() + j0, np);
    for (int t = 0; t < r; ++t) softmax(p.data() + int64_t(t) * np, n);
    for (int d0 = 0; d0 < hd; d0 += 32)
      kTile[r - 1](p.data(), np, v + d0, ldkv, n, std::min(32, hd - d0), 1.f, out + int64_t(i0) * ldo + d0, ldo);
  }
}

void attention_scores(const float* q, const float* k, int64_t ldkv, int j0, int j1, int hd, float scale, float* s) {
  if (j1 <= j0) return;
  const detail::Isa isa = detail::dispatch().isa;
  (isa == detail::Isa::Avx512 ? scores_avx512 : isa == detail::Isa::Avx2 ? scores_avx2 : scores_scalar)(
      q, k, ldkv, j0, j1, hd, scale, s);
}

void attention_pv(const float* p, const float* v, int64_t ldkv, int lo, int hi, int hd, float* out) {
  if (hi < lo) return std::fill(out, out + hd, 0.f);
  const detail::Isa isa = detail::dispatch().isa;
  if (isa == detail::Isa::Scalar) return pv_scalar(p, v, ldkv, lo, hi, hd, out);
  (isa == detail::Isa::Avx512 ? kPv : kPv2)[0](&p, v, ldkv, &lo, &hi, hd, &out);
}

void attention_rows(const float* q, int64_t ldq, const float* k, const float* v, int64_t ldkv, const int* lo,
                    const int* hi, int n, int hd, float scale, float* out, int64_t ldo) {
  if (n <= 0) return;
  const detail::Isa isa = detail::dispatch().isa;
  const bool simd = isa != detail::Isa::Scalar;
  const int pv_rows = isa == detail::Isa::Avx512 ? kPvRows : kPv2Rows;
  const PvFn* pv = isa == detail::Isa::Avx512 ? kPv : kPv2;
  // Row i's probabilities at p[i] (its own keys only).
  // Per-thread buffers, reused (decode calls this per head and layer): named
  // by reference, as callers run this inside parallel regions.
  thread_local std::vector<float> buf;
  thread_local std::vector<size_t> offsets;
  std::vector<float>& b = buf;
  std::vector<size_t>& at = offsets;
  at.assign(size_t(n) + 1, 0);
  for (int i = 0; i < n; ++i) at[size_t(i) + 1] = at[size_t(i)] + size_t(std::max(0, hi[i] - lo[i] + 1));
  b.resize(std::max<size_t>(1, at[size_t(n)]));
  // AVX2 with several rows: GEMM tiles over K copied lane-major.
  (isa == detail::Isa::Avx2 && n >= kTileMin ? scores_rows_avx2 : scores_rows)(q, ldq, k, ldkv, lo, hi, n, hd, scale,
                                                                              at.data(), b.data());
  for (int i0 = 0; i0 < n;) {
    if (hi[i0] < lo[i0]) {  // no key: 0
      std::fill(out + int64_t(i0) * ldo, out + int64_t(i0) * ldo + hd, 0.f);
      ++i0;
      continue;
    }
    if (!simd) {
      pv_scalar(b.data() + at[size_t(i0)], v, ldkv, lo[i0], hi[i0], hd, out + int64_t(i0) * ldo);
      ++i0;
      continue;
    }
    int r = 1;  // the rows with keys that follow
    while (r < pv_rows && i0 + r < n && hi[i0 + r] >= lo[i0 + r]) ++r;
    const float* p[std::max(kPvRows, kPv2Rows)];
    float* o[std::max(kPvRows, kPv2Rows)];
    for (int t = 0; t < r; ++t) p[t] = b.data() + at[size_t(i0 + t)], o[t] = out + int64_t(i0 + t) * ldo;
    pv[r - 1](p, v, ldkv, lo + i0, hi + i0, hd, o);
    i0 += r;
  }
}

}  // namespace solar::kernels
