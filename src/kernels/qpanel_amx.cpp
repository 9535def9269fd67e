// Block-quantized panels (qpanel.cpp) against 16 rows of x at a time on AMX
// tiles (Intel Sapphire Rapids and later): the prefill path of Q4_0, Q8_0,
// Q4_K and Q6_K where the CPU has AMX-INT8.
//
// Why: the VNNI kernel spends ~12 vector instructions per block of 32 per
// row of x (8 vpdpbusd, the block's scale product, its conversion and FMA),
// and the vector units are the limit. Here one tdpbssd multiplies a block of
// 16 rows of x by the block of the panel's 16 weight rows (16×16 int32 sums
// in 16 cycles of the tile unit, beside the vector units), and the vector
// units only turn each block's sums into f32: 3 instructions per block per
// row (Q4_0, Q8_0, Q4_K; Q6_K, with a scale per half, 5).
//
// The integer sums are the VNNI kernel's (exact either way) and the f32
// operations on them are its own, in its order: Q4_K's cvt(Σ·sc) is
// computed as cvt(Σ)·sc and Q6_K's cvt(Σ₀·sc₀ + Σ₁·sc₁) as
// fma(cvt(Σ₁), sc₁, cvt(Σ₀)·sc₀), equal because every product and sum is an
// integer below 2^24 (exact in f32). So a row of y is the same bits as at
// M = 1 (decode runs the VNNI kernel), whatever the batch (tests).
//
// The tiles read weights as signed bytes w − c (the zero point taken off once
// per panel and call, when the panel is unpacked into a thread's buffer) in
// the panels' own order: vector t of a block (lane r: 4 weights of row r) is
// row t of the B tile, so a block is one 8×64-byte tile (Q6_K: two of 4×64,
// one per half).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "kernels/kernels.h"
#include "kernels/kernels_impl.h"
#include "kernels/qpanel_layout.h"

#define SOLAR_AMX __attribute__((target("avx512f,avx512bw,avx512vl,fma,f16c,amx-tile,amx-int8")))
#define SOLAR_INLINE inline __attribute__((always_inline))

namespace solar::kernels::detail {
using namespace qpanel;
namespace {

constexpr int kBlockBytes = 512;  // a block of a panel as signed bytes: 8 rows of 64

// Palette 1: tiles 0 and 1 x (16 rows × kb bytes), 2 and 3 weights (kb/4
// rows × 64 bytes), 4 to 7 int32 sums (16 × 16). kb: 32 (a block) or 16 (a
// half).
struct alignas(64) TileConfig {
  uint8_t palette = 1, start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

SOLAR_AMX void configure(int kb) {
  TileConfig c;
  for (int t = 0; t < 2; ++t) c.rows[t] = 16, c.colsb[t] = uint16_t(kb);
  for (int t = 2; t < 4; ++t) c.rows[t] = uint8_t(kb / 4), c.colsb[t] = 64;
  for (int t = 4; t < 8; ++t) c.rows[t] = 16, c.colsb[t] = 64;
  // GCC 12 does not see ldtilecfg read c and drops the stores above without this.
  asm volatile("" : : "r"(&c) : "memory");
  _tile_loadconfig(&c);
}

SOLAR_AMX SOLAR_INLINE __m512 scales_u8(const uint8_t* p) {
  return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
}
SOLAR_AMX SOLAR_INLINE __m512 scales_i8(const uint8_t* p) {
  return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
}

// A panel's nb blocks as signed bytes w − c, kBlockBytes each.
template <DType T>
SOLAR_AMX void unpack_panel(const uint8_t* panel, int64_t nb, int8_t* out) {
  const __m512i lo4 = _mm512_set1_epi8(0x0F), c = _mm512_set1_epi8(char(zero_point(T)));
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* p = panel + block_offset(T, b);
    __m512i w[8];
    if constexpr (!four_bit(T) && !six_bit(T)) {
      for (int t = 0; t < 8; ++t) w[t] = _mm512_loadu_si512(p + 64 * t);
    } else {
      for (int t = 0; t < 4; ++t) {
        const __m512i v = _mm512_loadu_si512(p + 64 * t);
        w[t] = _mm512_and_si512(v, lo4);
        w[t + 4] = _mm512_and_si512(_mm512_srli_epi16(v, 4), lo4);
      }
      if constexpr (six_bit(T)) or_six_bit_highs(p + 256, w);
    }
    for (int t = 0; t < 8; ++t) _mm512_storeu_si512(out + b * kBlockBytes + 64 * t, _mm512_sub_epi8(w[t], c));
  }
}

// Rows [m0, m0 + 16) of x against one panel (bw: its unpacked blocks).
template <DType T>
struct Tile16 {
  static constexpr bool kHalves = six_bit(T);  // two sums per block, one per 16
  const int8_t* bw;
  const uint8_t* panel;
  int64_t K, nb, m0;
  const XQ32& x;
  const int8_t* xq;  // row m0 of x
  const float* dx;   // row m's block b: dx[m * nb + b]
  alignas(64) int32_t sums[2][2][16][16];  // [stage][tile]: a step's sums are read while the next step's are made
  alignas(64) float acck[16][16];  // k_scales: the sums after each super-block's d (touched once per 256)

  // A step: tiles 0/2 → C and 1/3 → C + 1 (C: 4 or 6 by stage, so that a
  // step's tdpbssd need not wait for the last step's sums to be stored), two
  // blocks (b1 < 0: one) or a block's halves, stored to sums[st].
  template <int C>
  SOLAR_AMX SOLAR_INLINE void multiply(int64_t b0, int64_t b1) {
    constexpr int st = (C - 4) / 2;
    _tile_loadd(0, xq + 32 * b0, K);
    _tile_loadd(2, bw + b0 * kBlockBytes, 64);
    if constexpr (kHalves) {
      _tile_loadd(1, xq + 32 * b0 + 16, K);
      _tile_loadd(3, bw + b0 * kBlockBytes + 256, 64);
    } else if (b1 >= 0) {
      _tile_loadd(1, xq + 32 * b1, K);
      _tile_loadd(3, bw + b1 * kBlockBytes, 64);
    }
    const bool two = kHalves || b1 >= 0;
    // The tile intrinsics take literal tile numbers.
#define SOLAR_AMX_STEP(c0, c1)       \
  _tile_zero(c0);                    \
  _tile_dpbssd(c0, 0, 2);            \
  if (two) {                         \
    _tile_zero(c1);                  \
    _tile_dpbssd(c1, 1, 3);          \
  }                                  \
  _tile_stored(c0, sums[st][0], 64); \
  if (two) _tile_stored(c1, sums[st][1], 64);
    if constexpr (C == 4) {
      SOLAR_AMX_STEP(4, 5)
    } else {
      SOLAR_AMX_STEP(6, 7)
    }
#undef SOLAR_AMX_STEP
  }

  SOLAR_AMX SOLAR_INLINE __m512 sum(int st, int t, int m) const {
    return _mm512_cvtepi32_ps(_mm512_load_si512(sums[st][t][m]));
  }

  // Block b's sums (sums[st][s]; Q6_K both halves) into the f32 accumulators, as panel_avx512 does.
  // acc: the d16 types' sums; sbs: the k-quants' super-block's sums before d.
  SOLAR_AMX SOLAR_INLINE void finish(int64_t b, int st, int s, __m512 (&acc)[16], __m512 (&sbs)[16]) {
    if constexpr (d16_type(T)) {
      const __m512 d = f16x16(panel + block_offset(T, b) + qbytes(T));
#pragma GCC unroll 16
      for (int m = 0; m < 16; ++m)
        acc[m] = _mm512_fmadd_ps(sum(st, s, m), _mm512_mul_ps(d, _mm512_set1_ps(dx[m * nb + b])), acc[m]);
    } else if constexpr (T == DType::Q4_K) {
      const __m512 sc = scales_u8(panel + scales_at(T, b));
#pragma GCC unroll 16
      for (int m = 0; m < 16; ++m)
        sbs[m] = _mm512_fmadd_ps(_mm512_mul_ps(sum(st, s, m), sc), _mm512_set1_ps(dx[m * nb + b]), sbs[m]);
    } else {  // Q6_K
      const __m512 sc0 = scales_i8(panel + scales_at(T, b)), sc1 = scales_i8(panel + scales_at(T, b) + 16);
#pragma GCC unroll 16
      for (int m = 0; m < 16; ++m) {
        const __m512 v = _mm512_fmadd_ps(sum(st, 1, m), sc1, _mm512_mul_ps(sum(st, 0, m), sc0));
        sbs[m] = _mm512_fmadd_ps(v, _mm512_set1_ps(dx[m * nb + b]), sbs[m]);
      }
    }
    if constexpr (k_scales(T)) {
      if (b % 8 == 7) super_block(b - 7, sbs);
    }
  }

  // The super-block from block b0 done: its d, and Q4_K's min term times dmin.
  SOLAR_AMX SOLAR_INLINE void super_block(int64_t b0, __m512 (&sbs)[16]) {
    const uint8_t* dp = panel + d_at(T, b0);
    const __m512 d = f16x16(dp);
#pragma GCC unroll 16
    for (int m = 0; m < 16; ++m) {
      _mm512_store_ps(acck[m], _mm512_fmadd_ps(sbs[m], d, _mm512_load_ps(acck[m])));
      sbs[m] = _mm512_setzero_ps();
    }
    if constexpr (T == DType::Q4_K) {
      __m512 mnb[8];
      for (int j = 0; j < 8; ++j) mnb[j] = scales_u8(panel + scales_at(T, b0 + j) + 16);
      const __m512 dmin = f16x16(dp + 32);
      for (int m = 0; m < 16; ++m) {
        const float* dsq = x.dsq.data() + (m0 + m) * nb + b0;
        __m512 mins = _mm512_setzero_ps();
        for (int j = 0; j < 8; ++j) mins = _mm512_fmadd_ps(mnb[j], _mm512_set1_ps(dsq[j]), mins);
        _mm512_store_ps(acck[m], _mm512_fnmadd_ps(mins, dmin, _mm512_load_ps(acck[m])));
      }
    }
  }

  SOLAR_AMX SOLAR_INLINE void run(float* y, int64_t ldy, __mmask16 cols, bool accumulate) {
    __m512 acc[16], sbs[16];
#pragma GCC unroll 16
    for (int m = 0; m < 16; ++m) acc[m] = sbs[m] = _mm512_setzero_ps();
    if constexpr (k_scales(T)) std::memset(acck, 0, sizeof acck);
    // Step i: block i (Q6_K), or blocks 2i and 2i + 1. The tile unit makes
    // step i + 1's sums while the vector units finish step i's: finishing
    // each step right after its tdpbssd waited on it (Sapphire Rapids, one
    // core, Q8_0 W[5632,2048], M = 512: 440 GOP/s that way).
    const int64_t steps = kHalves ? nb : (nb + 1) / 2;
    auto first = [&](int64_t i) { return kHalves ? i : 2 * i; };
    auto second = [&](int64_t i) { return kHalves || 2 * i + 1 >= nb ? int64_t(-1) : 2 * i + 1; };
    multiply<4>(first(0), second(0));
    for (int64_t i = 0; i < steps; ++i) {
      const int st = int(i & 1);
      if (i + 1 < steps) st ? multiply<4>(first(i + 1), second(i + 1)) : multiply<6>(first(i + 1), second(i + 1));
      finish(first(i), st, 0, acc, sbs);
      if (second(i) >= 0) finish(second(i), st, 1, acc, sbs);
    }
#pragma GCC unroll 16
    for (int m = 0; m < 16; ++m) {
      float* dst = y + (m0 + m) * ldy;
      __m512 v = k_scales(T) ? _mm512_load_ps(acck[m]) : acc[m];
      if (accumulate) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(cols, dst));
      _mm512_mask_storeu_ps(dst, cols, v);
    }
  }
};

template <DType T>
SOLAR_AMX void tile16(const int8_t* bw, const uint8_t* panel, int64_t K, const XQ32& x, int64_t m0, float* y,
                      int64_t ldy, __mmask16 cols, bool accumulate) {
  Tile16<T> t{bw, panel, K, K / 32, m0, x, x.q.data() + m0 * K, x.d.data() + m0 * (K / 32), {}, {}};
  t.run(y, ldy, cols, accumulate);
}

template <DType T>
SOLAR_AMX void rows_amx(const PackedWeight& w, const XQ32& x, int64_t m1, int64_t p0, int64_t p1, float* y,
                        bool accumulate) {
  const int64_t nb = w.K / 32, pstride = nb * block_stride(T);
  // A thread's unpacked panels: p1 − p0 of them (packed_rows' L2 group).
  thread_local std::vector<int8_t> buffer;
  buffer.resize(size_t((p1 - p0) * nb * kBlockBytes));
  for (int64_t p = p0; p < p1; ++p)
    unpack_panel<T>(w.bytes.data() + p * pstride, nb, buffer.data() + (p - p0) * nb * kBlockBytes);
  configure(six_bit(T) ? 16 : 32);
  for (int64_t m0 = 0; m0 < m1; m0 += 16)
    for (int64_t p = p0; p < p1; ++p) {
      const int64_t cols = std::min<int64_t>(kRows, w.N - p * kRows);
      tile16<T>(buffer.data() + (p - p0) * nb * kBlockBytes, w.bytes.data() + p * pstride, w.K, x, m0,
                y + p * kRows, w.N, __mmask16((1u << cols) - 1), accumulate);
    }
  _tile_release();
}

}  // namespace

bool amx_packable(DType t) {
  return cpu().amx_int8 && (t == DType::Q4_0 || t == DType::Q8_0 || t == DType::Q4_K || t == DType::Q6_K);
}

void packed_rows_amx(const PackedWeight& w, const XQ32& x, int64_t m1, int64_t p0, int64_t p1, float* y,
                     bool accumulate) {
  switch (w.dtype) {
    case DType::Q8_0: return rows_amx<DType::Q8_0>(w, x, m1, p0, p1, y, accumulate);
    case DType::Q4_0: return rows_amx<DType::Q4_0>(w, x, m1, p0, p1, y, accumulate);
    case DType::Q4_K: return rows_amx<DType::Q4_K>(w, x, m1, p0, p1, y, accumulate);
    case DType::Q6_K: return rows_amx<DType::Q6_K>(w, x, m1, p0, p1, y, accumulate);
    default: fail("packed_rows_amx", dtype_name(w.dtype), "expected Q4_0, Q8_0, Q4_K or Q6_K");
  }
}

}  // namespace solar::kernels::detail
