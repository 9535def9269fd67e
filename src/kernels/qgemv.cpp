// Quantized GEMV (decode) for GGML block types: x is rounded to 8 bits per
// block (quantize_acts), each block's dot product is exact in integers, and
// only the per-block sums are scaled and added in f32 — llama.cpp's vec_dot
// scheme, so a quantized model computes what it computes under llama.cpp.
//
// Per type, one W row against up to 4 rows of x (the W row is unpacked once
// and used for every x row). The AVX-512 path takes two 32-blocks (or a
// 256-super-block) per step and needs VBMI; its u8·s8 dot products use VNNI
// where present, else maddubs + madd (no pair can saturate: every unsigned
// operand is ≤ 128 in those kernels). AVX2 takes one block per step. The
// scalar path computes the same integer sums: the tests' reference.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "kernels/kernels.h"
#include "kernels/kernels_impl.h"

#define SOLAR_Q512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vbmi,avx512vnni,fma,f16c")))
#define SOLAR_Q256 __attribute__((target("avx2,fma,f16c")))
#define SOLAR_INLINE inline __attribute__((always_inline))

namespace solar::kernels::detail {
namespace {

constexpr int64_t kQ4_0 = 18, kQ8_0 = 34, kQ4_K = 144, kQ6_K = 210;  // block bytes

bool kquant(DType t) { return t == DType::Q4_K || t == DType::Q6_K; }

// Q4_K's 8 sub-blocks of 32 are stored in x in the order its nibbles unpack
// from two 64-byte loads: low nibbles of bytes 0..63 are sub-blocks 0 and 2,
// high nibbles 1 and 3 (then 4, 6, 5, 7 from bytes 64..127).
int q4k_slot(int j) { return (j / 4) * 4 + (j % 2) * 2 + (j % 4) / 2; }

// Where element j of 32-element block b sits in x's row (see q4_0_row).
int64_t x32_pos(DType t, int64_t b, int j) {
  return t == DType::Q4_0 ? (b / 2) * 64 + (j / 16) * 32 + (b % 2) * 16 + j % 16 : 32 * b + j;
}

float f16(const uint8_t* p) { return f16_to_f32(uint16_t(p[0] | p[1] << 8)); }

// Q4_K's 8 six-bit scales and mins from their 12 bytes, as two groups of 8 bytes.
void q4k_scales(const uint8_t* s, uint64_t& sc, uint64_t& mn) {
  uint32_t a, b, c;
  std::memcpy(&a, s, 4), std::memcpy(&b, s + 4, 4), std::memcpy(&c, s + 8, 4);
  // Sub-blocks 0..3: the low 6 bits of bytes 0..3 (scales) and 4..7 (mins);
  // 4..7: a nibble of bytes 8..11 plus the top 2 bits of bytes 0..3 / 4..7.
  sc = (a & 0x3f3f3f3fu) | uint64_t((c & 0x0f0f0f0fu) | ((a >> 6) & 0x03030303u) << 4) << 32;
  mn = (b & 0x3f3f3f3fu) | uint64_t(((c >> 4) & 0x0f0f0f0fu) | ((b >> 6) & 0x03030303u) << 4) << 32;
}

// ---- Scalar: the same integer sums, one block at a time.

float row_scalar(const QActs& a, const uint8_t* w, int64_t m) {
  const int8_t* x = a.q.data() + m * a.Kp;
  double s = 0;
  switch (a.wdt) {
    case DType::Q8_0:
    case DType::Q4_0: {
      const bool q8 = a.wdt == DType::Q8_0;
      const float* dx = a.d.data() + m * (a.Kp / 4);
      for (int64_t b = 0; b < a.K / 32; ++b) {
        const uint8_t* blk = w + b * (q8 ? kQ8_0 : kQ4_0);
        int32_t dot = 0;
        for (int j = 0; j < 32; ++j) {
          const int v = q8 ? int(int8_t(blk[2 + j])) : int((blk[2 + j % 16] >> (4 * (j / 16))) & 0xF) - 8;
          dot += v * x[x32_pos(a.wdt, b, j)];
        }
        s += double(f16(blk)) * double(dx[x32_pos(a.wdt, b, 0) / 4]) * dot;
      }
      break;
    }
    case DType::Q4_K: {
      const float* dx = a.d.data() + m * (a.K / 256);
      const int16_t* bs = a.bsum.data() + m * (a.K / 32);
      for (int64_t i = 0; i < a.K / 256; ++i) {
        const uint8_t* blk = w + i * kQ4_K;
        uint64_t sc, mn;
        q4k_scales(blk + 4, sc, mn);
        int64_t dot = 0, mins = 0;
        for (int j = 0; j < 8; ++j) {
          int32_t sub = 0;
          for (int l = 0; l < 32; ++l)
            sub += ((blk[16 + 32 * (j / 2) + l] >> (4 * (j % 2))) & 0xF) * x[256 * i + 32 * q4k_slot(j) + l];
          dot += int64_t((sc >> (8 * j)) & 0xFF) * sub;
          mins += int64_t((mn >> (8 * j)) & 0xFF) * bs[8 * i + j];
        }
        s += double(dx[i]) * (double(f16(blk)) * double(dot) - double(f16(blk + 2)) * double(mins));
      }
      break;
    }
    case DType::Q6_K: {
      const float* dx = a.d.data() + m * (a.K / 256);
      const int32_t* bias = a.bias.data() + m * (a.K / 4);
      for (int64_t i = 0; i < a.K / 256; ++i) {
        const uint8_t* blk = w + i * kQ6_K;
        int64_t dot = 0;
        for (int j = 0; j < 16; ++j) {
          int32_t sub = bias[64 * i + 4 * j];  // −32·Σx: the quants are stored +32
          for (int e = 16 * j; e < 16 * j + 16; ++e) {
            const int h = e / 128, k = (e % 128) / 32, l = e % 32;
            const int lo = (blk[64 * h + 32 * (k % 2) + l] >> (4 * (k / 2))) & 0xF;
            const int hi = (blk[128 + 32 * h + l] >> (2 * k)) & 3;
            sub += (lo | hi << 4) * x[256 * i + e];
          }
          dot += int64_t(int8_t(blk[192 + j])) * sub;
        }
        s += double(dx[i]) * double(f16(blk + 208)) * double(dot);
      }
      break;
    }
    default: break;
  }
  return float(s);
}

// ---- AVX-512 (VBMI; VNNI or not).

template <bool V>
SOLAR_Q512 SOLAR_INLINE __m512i dot4(__m512i acc, __m512i u8, __m512i s8) {
  if constexpr (V) return _mm512_dpbusd_epi32(acc, u8, s8);
  return _mm512_add_epi32(acc, _mm512_madd_epi16(_mm512_maddubs_epi16(u8, s8), _mm512_set1_epi16(1)));
}

SOLAR_Q512 SOLAR_INLINE float f16_512(const uint8_t* p) {
  return _cvtsh_ss(uint16_t(p[0] | p[1] << 8));
}

SOLAR_Q512 SOLAR_INLINE __m256i f16x2(const uint8_t* p, const uint8_t* q, __mmask16 second) {
  short a, b;
  std::memcpy(&a, p, 2), std::memcpy(&b, q, 2);
  return _mm256_mask_blend_epi16(second, _mm256_set1_epi16(a), _mm256_set1_epi16(b));
}

// Q4_0 and Q8_0: two blocks (64 elements) per step, x padded to whole pairs
// (zeros). Q4_0's 16 bytes of nibbles per block load as [q0 q1 q0 q1]; the
// low nibbles of the first half and the high of the second are then x's
// order [b 0..15 | b+1 0..15 | b 16..31 | b+1 16..31] (quantize_acts), so
// block b owns lanes 0..3 and 8..11. Q8_0's block b owns lanes 0..7.
template <bool V, int M>
SOLAR_Q512 void q4_0_row(const QActs& a, const uint8_t* w, int64_t m0, float* out) {
  const __m512i shift = _mm512_set_epi64(0x0004000400040004, 0x0004000400040004, 0x0004000400040004,
                                         0x0004000400040004, 0, 0, 0, 0);
  const __m512i lo4 = _mm512_set1_epi8(0x0F);
  const int64_t nb = a.K / 32;
  __m512 acc[M];
#pragma GCC unroll 8
  for (int m = 0; m < M; ++m) acc[m] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; b += 2) {
    const uint8_t* p = w + b * kQ4_0;
    const bool pair = b + 1 < nb;  // else the second block is zeros (no load past the row)
    // Broadcast loads and a blend: no shuffle unit (the bottleneck on Zen 4).
    const __m512i q0 = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 2)));
    const __m512i q1 = pair ? _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + kQ4_0 + 2)))
                            : _mm512_setzero_si512();
    const __m512i nib = _mm512_and_si512(_mm512_srlv_epi16(_mm512_mask_blend_epi64(0xCC, q0, q1), shift), lo4);
    const __m512 dw = _mm512_cvtph_ps(f16x2(p, pair ? p + kQ4_0 : p, pair ? 0xF0F0 : 0));
#pragma GCC unroll 8
    for (int m = 0; m < M; ++m) {
      const int64_t r = (m0 + m) * a.Kp + 32 * b;  // a.d and a.bias hold 8 lanes per 32 of x
      const __m512i dot = dot4<V>(_mm512_loadu_si512(a.bias.data() + r / 4), nib, _mm512_loadu_si512(a.q.data() + r));
      acc[m] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_mul_ps(dw, _mm512_loadu_ps(a.d.data() + r / 4)), acc[m]);
    }
  }
#pragma GCC unroll 8
  for (int m = 0; m < M; ++m) out[m] = _mm512_reduce_add_ps(acc[m]);
}

template <bool V, int M>
SOLAR_Q512 void q8_0_row(const QActs& a, const uint8_t* w, int64_t m0, float* out) {
  const __m512i zero = _mm512_setzero_si512();
  const int64_t nb = a.K / 32;
  __m512 acc[M];
#pragma GCC unroll 8
  for (int m = 0; m < M; ++m) acc[m] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; b += 2) {
    const uint8_t* p = w + b * kQ8_0;
    const bool pair = b + 1 < nb;
    const __m256i q0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 2));
    const __m256i q1 = pair ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + kQ8_0 + 2)) : _mm256_setzero_si256();
    const __m512i q = _mm512_inserti64x4(_mm512_castsi256_si512(q0), q1, 1);
    const __m512 dw = _mm512_cvtph_ps(f16x2(p, pair ? p + kQ8_0 : p, pair ? 0xFF00 : 0));
    // u8·s8 products: |w| against x with w's sign (|−128| is 128 as u8).
    const __m512i u = _mm512_abs_epi8(q);
    const __mmask64 neg = _mm512_movepi8_mask(q);
#pragma GCC unroll 8
    for (int m = 0; m < M; ++m) {
      const int64_t r = (m0 + m) * a.Kp + 32 * b;
      const __m512i x = _mm512_loadu_si512(a.q.data() + r);
      const __m512i dot = dot4<V>(zero, u, _mm512_mask_sub_epi8(x, neg, zero, x));
      acc[m] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_mul_ps(dw, _mm512_loadu_ps(a.d.data() + r / 4)), acc[m]);
    }
  }
#pragma GCC unroll 8
  for (int m = 0; m < M; ++m) out[m] = _mm512_reduce_add_ps(acc[m]);
}

// pshufb indices: int16 words of 128-bit lanes 0-1 take byte a, of lanes 2-3 byte b.
SOLAR_Q512 SOLAR_INLINE __m512i kq_idx(int a, int b) {
  const int64_t wa = 0x8000800080008000 | int64_t(a) * 0x0001000100010001;
  const int64_t wb = 0x8000800080008000 | int64_t(b) * 0x0001000100010001;
  return _mm512_set_epi64(wb, wb, wb, wb, wa, wa, wa, wa);
}

// Q4_K: a super-block of 256 per step; each sub-block's sum is scaled by its
// 6-bit scale in int16·int16 (madd), the mins go through x's sums per 32.
template <bool V, int M>
SOLAR_Q512 void q4_k_row(const QActs& a, const uint8_t* w, int64_t m0, float* out) {
  (void)V;  // nibbles are ≤ 15: maddubs cannot saturate, VNNI buys nothing here
  const __m512i lo4 = _mm512_set1_epi8(0x0F);
  // Word lanes 0..15 of n[v] hold sub-block a's products, 16..31 sub-block
  // b's: their scale as an int16, picked from the 8 scale bytes broadcast to
  // every 128-bit lane by an in-lane byte shuffle (high byte zeroed).
  const __m512i sidx[4] = {kq_idx(0, 2), kq_idx(1, 3), kq_idx(4, 6), kq_idx(5, 7)};
  __m512 acc[M];
  __m128 macc[M];
#pragma GCC unroll 8
  for (int m = 0; m < M; ++m) acc[m] = _mm512_setzero_ps(), macc[m] = _mm_setzero_ps();
  for (int64_t i = 0; i < a.K / 256; ++i) {
    const uint8_t* blk = w + i * kQ4_K;
    const float d = f16_512(blk), dmin = f16_512(blk + 2);
    uint64_t sc, mn;
    q4k_scales(blk + 4, sc, mn);
    const __m512i sc8 = _mm512_set1_epi64(int64_t(sc));
    const __m128i mn16 = _mm_cvtepu8_epi16(_mm_cvtsi64_si128(int64_t(mn)));
    const __m512i z0 = _mm512_loadu_si512(blk + 16), z1 = _mm512_loadu_si512(blk + 80);
    const __m512i n[4] = {_mm512_and_si512(z0, lo4), _mm512_and_si512(_mm512_srli_epi16(z0, 4), lo4),
                          _mm512_and_si512(z1, lo4), _mm512_and_si512(_mm512_srli_epi16(z1, 4), lo4)};
    __m512i s[4];
    for (int v = 0; v < 4; ++v) s[v] = _mm512_shuffle_epi8(sc8, sidx[v]);
#pragma GCC unroll 8
    for (int m = 0; m < M; ++m) {
      const int8_t* x = a.q.data() + (m0 + m) * a.Kp + 256 * i;
      __m512i dot = _mm512_setzero_si512();
      for (int v = 0; v < 4; ++v)
        dot = _mm512_add_epi32(
            dot, _mm512_madd_epi16(_mm512_maddubs_epi16(n[v], _mm512_loadu_si512(x + 64 * v)), s[v]));
      const float dx = a.d[(m0 + m) * (a.K / 256) + i];
      acc[m] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_set1_ps(d * dx), acc[m]);
      const __m128i bs = _mm_loadu_si128(reinterpret_cast<const __m128i*>(a.bsum.data() + (m0 + m) * (a.K / 32) + 8 * i));
      macc[m] = _mm_fmadd_ps(_mm_cvtepi32_ps(_mm_madd_epi16(mn16, bs)), _mm_set1_ps(dmin * dx), macc[m]);
    }
  }
#pragma GCC unroll 8
  for (int m = 0; m < M; ++m) {
    __m128 h = _mm_add_ps(macc[m], _mm_movehl_ps(macc[m], macc[m]));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    out[m] = _mm512_reduce_add_ps(acc[m]) - _mm_cvtss_f32(h);
  }
}

// Q6_K: per half of 128, the low nibbles of 64 bytes of ql and 2 bits of qh
// give elements 0..63 (A) and the high nibbles 64..127 (B) in order. The
// quants are stored +32; x's bias lanes undo it before the scale multiply.
template <bool V, int M>
SOLAR_Q512 void q6_k_row(const QActs& a, const uint8_t* w, int64_t m0, float* out) {
  const __m512i lo4 = _mm512_set1_epi8(0x0F), hi2 = _mm512_set1_epi8(0x30);
  // qh bits 2k..2k+1 to bits 4..5: shift left 4 (k=0) or 2 (k=1) for A, right 0 or 2 for B.
  const __m512i shA = _mm512_set_epi64(0x0002000200020002, 0x0002000200020002, 0x0002000200020002,
                                       0x0002000200020002, 0x0004000400040004, 0x0004000400040004,
                                       0x0004000400040004, 0x0004000400040004);
  const __m512i shB = _mm512_set_epi64(0x0002000200020002, 0x0002000200020002, 0x0002000200020002,
                                       0x0002000200020002, 0, 0, 0, 0);
  // Lane t of A in half h: sub-block 8h + t/4 (B: 8h + 4 + t/4).
  const __m128i sidx[4] = {_mm_set_epi8(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0),
                           _mm_set_epi8(7, 7, 7, 7, 6, 6, 6, 6, 5, 5, 5, 5, 4, 4, 4, 4),
                           _mm_set_epi8(11, 11, 11, 11, 10, 10, 10, 10, 9, 9, 9, 9, 8, 8, 8, 8),
                           _mm_set_epi8(15, 15, 15, 15, 14, 14, 14, 14, 13, 13, 13, 13, 12, 12, 12, 12)};
  __m512 acc[M];
#pragma GCC unroll 8
  for (int m = 0; m < M; ++m) acc[m] = _mm512_setzero_ps();
  for (int64_t i = 0; i < a.K / 256; ++i) {
    const uint8_t* blk = w + i * kQ6_K;
    const float d = f16_512(blk + 208);
    const __m128i S = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 192));
    __m512i dot[M];
#pragma GCC unroll 8
    for (int m = 0; m < M; ++m) dot[m] = _mm512_setzero_si512();
    for (int h = 0; h < 2; ++h) {
      const __m512i L = _mm512_loadu_si512(blk + 64 * h);
      const __m512i H = _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 128 + 32 * h)));
      const __m512i A = _mm512_ternarylogic_epi32(_mm512_and_si512(L, lo4), _mm512_sllv_epi16(H, shA), hi2, 0xF8);
      const __m512i B = _mm512_ternarylogic_epi32(_mm512_and_si512(_mm512_srli_epi16(L, 4), lo4),
                                                  _mm512_srlv_epi16(H, shB), hi2, 0xF8);
      const __m512i sA = _mm512_cvtepi8_epi32(_mm_shuffle_epi8(S, sidx[2 * h]));
      const __m512i sB = _mm512_cvtepi8_epi32(_mm_shuffle_epi8(S, sidx[2 * h + 1]));
#pragma GCC unroll 8
      for (int m = 0; m < M; ++m) {
        const int8_t* x = a.q.data() + (m0 + m) * a.Kp + 256 * i + 128 * h;
        const int32_t* bias = a.bias.data() + (m0 + m) * (a.K / 4) + 64 * i + 32 * h;
        const __m512i dA = dot4<V>(_mm512_loadu_si512(bias), A, _mm512_loadu_si512(x));
        const __m512i dB = dot4<V>(_mm512_loadu_si512(bias + 16), B, _mm512_loadu_si512(x + 64));
        dot[m] = _mm512_add_epi32(dot[m], _mm512_add_epi32(_mm512_mullo_epi32(dA, sA), _mm512_mullo_epi32(dB, sB)));
      }
    }
#pragma GCC unroll 8
    for (int m = 0; m < M; ++m)
      acc[m] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot[m]), _mm512_set1_ps(d * a.d[(m0 + m) * (a.K / 256) + i]), acc[m]);
  }
#pragma GCC unroll 8
  for (int m = 0; m < M; ++m) out[m] = _mm512_reduce_add_ps(acc[m]);
}

// ---- AVX2 (and AVX-512 CPUs without VBMI): one block of 32 per step, the
// same x layouts; maddubs + madd for the u8·s8 products (Q8_0 through
// vpsignb, every unsigned operand ≤ 128: no pair saturates).

SOLAR_Q256 SOLAR_INLINE __m256i dot8(__m256i u8, __m256i s8) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(u8, s8), _mm256_set1_epi16(1));
}

SOLAR_Q256 SOLAR_INLINE float hsum8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

SOLAR_Q256 SOLAR_INLINE __m256i load2x16(const void* lo, const void* hi) {
  return _mm256_loadu2_m128i(reinterpret_cast<const __m128i*>(hi), reinterpret_cast<const __m128i*>(lo));
}

template <int M>
SOLAR_Q256 void q4_0_row256(const QActs& a, const uint8_t* w, int64_t m0, float* out) {
  const __m256i lo4 = _mm256_set1_epi8(0x0F);
  __m256 acc[M];
#pragma GCC unroll 8
  for (int m = 0; m < M; ++m) acc[m] = _mm256_setzero_ps();
  for (int64_t b = 0; b < a.K / 32; ++b) {
    const uint8_t* p = w + b * kQ4_0;
    const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 2));
    const __m256i nib = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), lo4);
    const float dw = _cvtsh_ss(uint16_t(p[0] | p[1] << 8));
#pragma GCC unroll 4
    for (int m = 0; m < M; ++m) {
      const int64_t r = (m0 + m) * a.Kp + x32_pos(a.wdt, b, 0);  // elements 16..31 sit 32 further
      const __m256i dot = _mm256_add_epi32(dot8(nib, load2x16(a.q.data() + r, a.q.data() + r + 32)),
                                           load2x16(a.bias.data() + r / 4, a.bias.data() + r / 4 + 8));
      acc[m] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), _mm256_set1_ps(dw * a.d[r / 4]), acc[m]);
    }
  }
#pragma GCC unroll 8
  for (int m = 0; m < M; ++m) out[m] = hsum8(acc[m]);
}

template <int M>
SOLAR_Q256 void q8_0_row256(const QActs& a, const uint8_t* w, int64_t m0, float* out) {
  __m256 acc[M];
#pragma GCC unroll 8
  for (int m = 0; m < M; ++m) acc[m] = _mm256_setzero_ps();
  for (int64_t b = 0; b < a.K / 32; ++b) {
    const uint8_t* p = w + b * kQ8_0;
    const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 2));
    const __m256i u = _mm256_abs_epi8(q);
    const float dw = _cvtsh_ss(uint16_t(p[0] | p[1] << 8));
#pragma GCC unroll 4
    for (int m = 0; m < M; ++m) {
      const int64_t r = (m0 + m) * a.Kp + 32 * b;
      const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.q.data() + r));
      const __m256i dot = dot8(u, _mm256_sign_epi8(x, q));
      acc[m] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), _mm256_set1_ps(dw * a.d[r / 4]), acc[m]);
    }
  }
#pragma GCC unroll 8
  for (int m = 0; m < M; ++m) out[m] = hsum8(acc[m]);
}

template <int M>
SOLAR_Q256 void q4_k_row256(const QActs& a, const uint8_t* w, int64_t m0, float* out) {
  const __m256i lo4 = _mm256_set1_epi8(0x0F);
  __m256 acc[M];
  float mins[M] = {};
#pragma GCC unroll 8
  for (int m = 0; m < M; ++m) acc[m] = _mm256_setzero_ps();
  for (int64_t i = 0; i < a.K / 256; ++i) {
    const uint8_t* blk = w + i * kQ4_K;
    const float d = _cvtsh_ss(uint16_t(blk[0] | blk[1] << 8)), dmin = _cvtsh_ss(uint16_t(blk[2] | blk[3] << 8));
    uint64_t sc, mn;
    q4k_scales(blk + 4, sc, mn);
#pragma GCC unroll 4
    for (int m = 0; m < M; ++m) {
      const int8_t* x = a.q.data() + (m0 + m) * a.Kp + 256 * i;
      __m256i dot = _mm256_setzero_si256();
      int32_t msum = 0;
      for (int j = 0; j < 8; ++j) {
        const __m256i z = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 16 + 32 * (j / 2)));
        const __m256i n = _mm256_and_si256(j % 2 ? _mm256_srli_epi16(z, 4) : z, lo4);
        const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + 32 * q4k_slot(j)));
        const __m256i p16 = _mm256_maddubs_epi16(n, xv);
        dot = _mm256_add_epi32(dot, _mm256_madd_epi16(p16, _mm256_set1_epi16(int16_t((sc >> (8 * j)) & 0xFF))));
        msum += int32_t((mn >> (8 * j)) & 0xFF) * a.bsum[size_t((m0 + m) * (a.K / 32) + 8 * i + j)];
      }
      const float dx = a.d[(m0 + m) * (a.K / 256) + i];
      acc[m] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), _mm256_set1_ps(d * dx), acc[m]);
      mins[m] += dmin * dx * float(msum);
    }
  }
#pragma GCC unroll 8
  for (int m = 0; m < M; ++m) out[m] = hsum8(acc[m]) - mins[m];
}

template <int M>
SOLAR_Q256 void q6_k_row256(const QActs& a, const uint8_t* w, int64_t m0, float* out) {
  const __m256i lo4 = _mm256_set1_epi8(0x0F), hi2 = _mm256_set1_epi8(0x30);
  __m256 acc[M];
#pragma GCC unroll 8
  for (int m = 0; m < M; ++m) acc[m] = _mm256_setzero_ps();
  for (int64_t i = 0; i < a.K / 256; ++i) {
    const uint8_t* blk = w + i * kQ6_K;
    const int8_t* sc = reinterpret_cast<const int8_t*>(blk + 192);
    const float d = _cvtsh_ss(uint16_t(blk[208] | blk[209] << 8));
#pragma GCC unroll 4
    for (int m = 0; m < M; ++m) {
      const int8_t* x = a.q.data() + (m0 + m) * a.Kp + 256 * i;
      const int32_t* bias = a.bias.data() + (m0 + m) * (a.K / 4) + 64 * i;
      __m256i dot = _mm256_setzero_si256();
      int32_t corr = 0;  // Σ scale·(−32·Σx) over the 16 sub-blocks
      for (int h = 0; h < 2; ++h) {
        const __m256i L0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 64 * h));
        const __m256i L1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 64 * h + 32));
        const __m256i H = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 128 + 32 * h));
        // Quarter k of the half: nibble k/2 of ql[32(k%2) + l], bits 2k of qh[l].
        const __m256i q[4] = {
            _mm256_or_si256(_mm256_and_si256(L0, lo4), _mm256_and_si256(_mm256_slli_epi16(H, 4), hi2)),
            _mm256_or_si256(_mm256_and_si256(L1, lo4), _mm256_and_si256(_mm256_slli_epi16(H, 2), hi2)),
            _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(L0, 4), lo4), _mm256_and_si256(H, hi2)),
            _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(L1, 4), lo4),
                            _mm256_and_si256(_mm256_srli_epi16(H, 2), hi2))};
        for (int k = 0; k < 4; ++k) {
          const int j = 8 * h + 2 * k;  // the two sub-blocks of 16 in these 32
          const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + 128 * h + 32 * k));
          const __m256i s16 = _mm256_set_m128i(_mm_set1_epi16(sc[j + 1]), _mm_set1_epi16(sc[j]));
          dot = _mm256_add_epi32(dot, _mm256_madd_epi16(_mm256_maddubs_epi16(q[k], xv), s16));
          corr += sc[j] * bias[4 * j] + sc[j + 1] * bias[4 * j + 4];
        }
      }
      const __m256i total = _mm256_add_epi32(dot, _mm256_setr_epi32(corr, 0, 0, 0, 0, 0, 0, 0));
      acc[m] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(total), _mm256_set1_ps(d * a.d[(m0 + m) * (a.K / 256) + i]), acc[m]);
    }
  }
#pragma GCC unroll 8
  for (int m = 0; m < M; ++m) out[m] = hsum8(acc[m]);
}

using RowFn = void (*)(const QActs&, const uint8_t*, int64_t, float*);

RowFn row256(DType t, int64_t mb) {
  static constexpr RowFn q40[4] = {q4_0_row256<1>, q4_0_row256<2>, q4_0_row256<3>, q4_0_row256<4>};
  static constexpr RowFn q80[4] = {q8_0_row256<1>, q8_0_row256<2>, q8_0_row256<3>, q8_0_row256<4>};
  static constexpr RowFn q4k[4] = {q4_k_row256<1>, q4_k_row256<2>, q4_k_row256<3>, q4_k_row256<4>};
  static constexpr RowFn q6k[4] = {q6_k_row256<1>, q6_k_row256<2>, q6_k_row256<3>, q6_k_row256<4>};
  const RowFn* f = t == DType::Q4_0 ? q40 : t == DType::Q8_0 ? q80 : t == DType::Q4_K ? q4k : q6k;
  return f[mb - 1];
}

template <bool V>
RowFn row512(DType t, int64_t mb) {
  static constexpr RowFn q40[4] = {q4_0_row<V, 1>, q4_0_row<V, 2>, q4_0_row<V, 3>, q4_0_row<V, 4>};
  static constexpr RowFn q80[4] = {q8_0_row<V, 1>, q8_0_row<V, 2>, q8_0_row<V, 3>, q8_0_row<V, 4>};
  static constexpr RowFn q4k[4] = {q4_k_row<V, 1>, q4_k_row<V, 2>, q4_k_row<V, 3>, q4_k_row<V, 4>};
  static constexpr RowFn q6k[4] = {q6_k_row<V, 1>, q6_k_row<V, 2>, q6_k_row<V, 3>, q6_k_row<V, 4>};
  const RowFn* f = t == DType::Q4_0 ? q40 : t == DType::Q8_0 ? q80 : t == DType::Q4_K ? q4k : q6k;
  return f[mb - 1];
}

}  // namespace

bool qgemv_supported(DType t) {
  return t == DType::Q4_0 || t == DType::Q8_0 || t == DType::Q4_K || t == DType::Q6_K;
}

void quantize_acts(const float* x, int64_t M, int64_t K, DType wdt, QActs& a) {
  if (!qgemv_supported(wdt)) fail("quantize_acts", dtype_name(wdt), "expected Q4_0, Q8_0, Q4_K or Q6_K");
  const int64_t B = kquant(wdt) ? 256 : 32;
  if (K % B) fail("quantize_acts", "K", "expected a multiple of " + std::to_string(B) + ", got " + std::to_string(K));
  a.wdt = wdt, a.M = M, a.K = K, a.Kp = B == 32 ? (K + 63) / 64 * 64 : K;
  a.q.assign(size_t(M * a.Kp), 0);
  a.d.assign(size_t(B == 32 ? M * a.Kp / 4 : M * (K / 256)), 0.f);
  a.bias.assign(size_t(wdt == DType::Q4_0 ? M * a.Kp / 4 : wdt == DType::Q6_K ? M * K / 4 : 0), 0);
  a.bsum.assign(size_t(wdt == DType::Q4_K ? M * K / 32 : 0), 0);
  int8_t q[256];
  for (int64_t m = 0; m < M; ++m)
    for (int64_t b = 0; b < K / B; ++b) {
      const float* xb = x + m * K + b * B;
      float amax = 0;
      for (int64_t j = 0; j < B; ++j) amax = std::max(amax, std::fabs(xb[j]));
      const float id = amax > 0 ? 127.f / amax : 0.f;
      int32_t sum = 0;
      for (int64_t j = 0; j < B; ++j) {
        const float v = std::nearbyint(xb[j] * id);
        q[j] = int8_t(v >= 127.f ? 127 : v <= -127.f ? -127 : v == v ? int(v) : 0);
        sum += q[j];
      }
      int8_t* dst = a.q.data() + m * a.Kp + b * B;  // the k-quants' super-block
      const float d = amax / 127.f;
      switch (wdt) {
        case DType::Q4_0:
        case DType::Q8_0:
          for (int j = 0; j < 32; ++j) {
            const int64_t pos = m * a.Kp + x32_pos(wdt, b, j);
            a.q[size_t(pos)] = q[j];
            if (j % 4) continue;  // the block's 8 lanes of 4
            a.d[size_t(pos / 4)] = d;
            if (wdt == DType::Q4_0) a.bias[size_t(pos / 4)] = -sum;  // 8 lanes: −8·Σq
          }
          break;
        case DType::Q4_K:
          for (int j = 0; j < 8; ++j) {
            std::copy_n(q + 32 * j, 32, dst + 32 * q4k_slot(j));
            int32_t s = 0;
            for (int l = 0; l < 32; ++l) s += q[32 * j + l];
            a.bsum[size_t(m * (K / 32) + b * 8 + j)] = int16_t(s);
          }
          a.d[size_t(m * (K / 256) + b)] = d;
          break;
        default:  // Q6_K
          std::copy_n(q, 256, dst);
          for (int j = 0; j < 16; ++j) {
            int32_t s = 0;
            for (int l = 0; l < 16; ++l) s += q[16 * j + l];
            a.bias[size_t(m * (K / 4) + b * 64 + 4 * j)] = -32 * s;
          }
          a.d[size_t(m * (K / 256) + b)] = d;
      }
    }
}

void qgemv_rows(Isa isa, bool vnni, const QActs& a, const void* W, int64_t N, int64_t n0, int64_t n1, float* y,
                bool accumulate) {
  const size_t rb = row_bytes(a.wdt, a.K);
  const uint8_t* w = static_cast<const uint8_t*>(W);
  // AVX-512 CPUs without VBMI (Skylake-X) take the AVX2 kernels.
  const bool avx512 = isa == Isa::Avx512 && cpu().avx512_vbmi, avx2 = isa != Isa::Scalar && cpu().avx2;
  float out[4];
  for (int64_t m0 = 0; m0 < a.M; m0 += 4) {
    const int64_t mb = std::min<int64_t>(4, a.M - m0);
    const RowFn f = avx512 ? (vnni ? row512<true>(a.wdt, mb) : row512<false>(a.wdt, mb))
                    : avx2 ? row256(a.wdt, mb)
                           : nullptr;
    for (int64_t n = n0; n < n1; ++n) {
      if (f) {
        f(a, w + n * rb, m0, out);
      } else {
        for (int64_t m = 0; m < mb; ++m) out[m] = row_scalar(a, w + n * rb, m0 + m);
      }
      for (int64_t m = 0; m < mb; ++m) {
        float& o = y[(m0 + m) * N + n];
        o = accumulate ? o + out[m] : out[m];
      }
    }
  }
}

}  // namespace solar::kernels::detail
