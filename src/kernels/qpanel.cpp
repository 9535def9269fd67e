// Block-quantized weights repacked for int8 matrix kernels (kernels.h,
// PackedWeight): one layout serves decode (M = 1) and prefill (M = 512).
//
// Why repack: row by row (qgemv.cpp), each 32-block costs a scale
// conversion, a scale product and a horizontal reduction for every row, and
// the dot product of one row spans one vector: ~15 instructions per 64
// weights. Interleaving 16 rows puts one row in each 32-bit lane, so one
// vpdpbusd multiplies 4 weights of 16 rows by the same 4 bytes of x
// (broadcast), the 16 rows' scales are one vector, and nothing is reduced
// across lanes: ~3 instructions per 64 weights. For prefill the same panel
// is reused by every row of x from L1/L2 (llama.cpp's REPACK does the same
// with 8 rows).
//
// A panel holds rows [16p, 16p+16) (zero rows past N). Per 32 elements of K
// (a "block", whatever the type's own block), 16 rows × 32 unsigned bytes u:
//   4-bit (Q4_0, Q4_K): 4 vectors, vector t lane r byte i =
//                       u[r][4t+i] | u[r][16+4t+i] << 4;
//   6-bit (Q6_K):       those 4 of the low nibbles, then 2 of the high 2 bits,
//                       vector a lane r byte i = hi(u[r][4a+i]) | hi(u[r][8+4a+i]) << 2
//                       | hi(u[r][16+4a+i]) << 4 | hi(u[r][24+4a+i]) << 6;
//   8-bit (the rest):   8 vectors, vector t lane r = u[r][4t..4t+3];
// then the scales: Q4_0/Q8_0 16 f16 d (the file's own); the others 16 f32 s
// for elements 0..15 and 16 for 16..31, then (types with a min) the two
// halves' 16 f32 mn. Q4_K and Q6_K keep their files' own scales, so their
// panels are about their files' size: per 256 of K the 8 blocks, each its
// quants then its 32 bytes of scales (Q4_K: 16 u8 sc, 16 u8 m; Q6_K: int8
// [half][row]), then 16 f16 d (Q4_K: and 16 f16 dmin); s = d·sc, mn = dmin·m
// are computed as ggml's dequantizer computes them (packed_weights_of; the
// kernels multiply integer sums by sc, then by d once per 256).
// A weight is s·(u − c) for the types with an integer zero point c (Q8_0:
// u = q + 128, c = 128; Q4_0 8; Q5_0 16; Q3_K 4; Q6_K 32) and s·u − mn for
// those with a min (Q4_1, Q5_1: mn = −m; Q2_K, Q4_K, Q5_K), as ggml's
// dequantize_row_* computes them (tests: bit for bit).
//
// x is rounded to int8 per 32 with scale amax/127 (as for qgemv), its sums Σq
// per 16 kept: Σ_k w·x = dx·(s·Σ(u − c)·q − mn·Σq) per block or half, exact
// in integers up to the f32 scale products; with the int32 sums started at
// −c·Σq, each block's integer dot product is llama.cpp's.
//
// Panels of 8-bit u are larger than their files (Q5_K 2.2×); those of the
// types people download (Q4_0, Q8_0, Q4_K, Q6_K) are their files' size
// (Q4_K: 2.8% more). Decode reads the panels too, so a row of y is the same bits
// whatever M (serve's batches equal each sequence alone): measured on Zen 4
// at M = 1, the Q4_0/Q4_K/Q6_K panels stream faster than the row kernels
// (qgemv.cpp) and Q8_0's within a few percent of them.
//
// CPUs with AMX-INT8 (Sapphire Rapids on) run whole tiles of 16 rows of x
// on the tile unit (qpanel_amx.cpp, Q4_0, Q8_0, Q4_K, Q6_K), the same sums
// and float operations, so the same bits; the other rows on the kernel below.
//
// CPUs with AVX2 but no VNNI (Zen 1-3, Intel clients) run the same panels as
// two halves of 8 rows (panel_avx2), with the same integer sums, so their
// rows too are the same bits for any M and the prefill needs no f32 copy of
// W. bench_kernels --packed on "AMD EPYC (2 logical CPUs); avx2 fma f16c"
// (Zen 3, one thread, W[5632,2048], a shared machine), decode GB/s, prefill
// (M = 512) GOP/s against dequantize + oneDNN f32: Q8_0 25.7–28.3 and
// 112–122 (1.46×), Q4_0 22.4–27.6 and 188–196 (2.34–2.40×), Q4_K 19.4–20.7
// and 137 (1.88×), Q6_K 18.8–19.9 and 95 (1.32×).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "kernels/kernels.h"
#include "kernels/kernels_impl.h"
#include "kernels/qpanel_layout.h"

#define SOLAR_P512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,fma,f16c")))
#define SOLAR_P256 __attribute__((target("avx2,fma,f16c")))
#define SOLAR_INLINE inline __attribute__((always_inline))



namespace solar::kernels {
namespace detail {
using namespace qpanel;
namespace {

bool packable(DType t) { return is_quantized(t); }

uint16_t u16(const uint8_t* p) { return uint16_t(p[0] | p[1] << 8); }

// One block of 32 of a row: unsigned u and the scales that make w = s·u − mn
// per half of 16 (s, mn [0] and [1]); Q4_0/Q8_0 keep the file's f16 d.
struct Block {
  uint8_t u[32];
  uint16_t d16 = 0;
  float s[2] = {0, 0}, mn[2] = {0, 0};
};

// ggml's get_scale_min_k4: sub-block j's 6-bit scale and min (Q4_K, Q5_K).
void scale_min_k4(int j, const uint8_t* q, int* sc, int* m) {
  if (j < 4) {
    *sc = q[j] & 63, *m = q[j + 4] & 63;
  } else {
    *sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
    *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

// Row `row`'s block b, as ggml's dequantize_row_* reads it (the tests check
// s·u − mn against core's dequantizer, bit for bit).
Block unpack(DType t, const uint8_t* row, int64_t b) {
  Block o;
  auto both = [&](float s, float mn) { o.s[0] = o.s[1] = s, o.mn[0] = o.mn[1] = mn; };
  switch (t) {
    case DType::Q8_0: {
      const uint8_t* blk = row + b * 34;
      o.d16 = u16(blk);
      for (int j = 0; j < 32; ++j) o.u[j] = uint8_t(int(int8_t(blk[2 + j])) + 128);
      break;
    }
    case DType::Q4_0:
    case DType::Q4_1: {
      const bool one = t == DType::Q4_1;
      const uint8_t* blk = row + b * (one ? 20 : 18);
      const uint8_t* qs = blk + (one ? 4 : 2);
      o.d16 = u16(blk);
      for (int j = 0; j < 16; ++j) o.u[j] = qs[j] & 0xF, o.u[16 + j] = qs[j] >> 4;
      if (one) both(f16_to_f32(u16(blk)), -f16_to_f32(u16(blk + 2)));  // w = d·q + m
      break;
    }
    case DType::Q5_0:
    case DType::Q5_1: {
      const bool one = t == DType::Q5_1;
      const uint8_t* blk = row + b * (one ? 24 : 22);
      const uint8_t* hb = blk + (one ? 4 : 2);
      const uint32_t qh = uint32_t(hb[0]) | uint32_t(hb[1]) << 8 | uint32_t(hb[2]) << 16 | uint32_t(hb[3]) << 24;
      const uint8_t* qs = hb + 4;
      for (int j = 0; j < 16; ++j) {
        o.u[j] = uint8_t((qs[j] & 0xF) | (((qh >> j) << 4) & 0x10));
        o.u[16 + j] = uint8_t((qs[j] >> 4) | ((qh >> (j + 12)) & 0x10));
      }
      const float d = f16_to_f32(u16(blk));
      both(d, one ? -f16_to_f32(u16(blk + 2)) : 16 * d);  // Q5_0: d·(q − 16)
      break;
    }
    case DType::Q2_K: {  // {scales[16]; qs[64]; d; dmin}
      const uint8_t* sb = row + (b / 8) * 84;
      const int e0 = int(b % 8) * 32, n = e0 / 128, j = (e0 % 128) / 32;  // 32 elements of shift 2j
      const float d = f16_to_f32(u16(sb + 80)), dmin = f16_to_f32(u16(sb + 82));
      const uint8_t* q = sb + 16 + 32 * n;
      for (int l = 0; l < 32; ++l) o.u[l] = (q[l] >> (2 * j)) & 3;
      for (int h = 0; h < 2; ++h) {
        const uint8_t sc = sb[8 * n + 2 * j + h];
        o.s[h] = d * float(sc & 0xF), o.mn[h] = dmin * float(sc >> 4);
      }
      break;
    }
    case DType::Q3_K: {  // {hmask[32]; qs[64]; scales[12]; d}
      const uint8_t* sb = row + (b / 8) * 110;
      const int e0 = int(b % 8) * 32, n = e0 / 128, j = (e0 % 128) / 32;
      const uint8_t *hm = sb, *q = sb + 32 + 32 * n, *sc = sb + 96;
      const int bit = 4 * n + j;  // hmask bit of these 32
      for (int l = 0; l < 32; ++l) o.u[l] = uint8_t(((q[l] >> (2 * j)) & 3) | (((hm[l] >> bit) & 1) << 2));
      const float d = f16_to_f32(u16(sb + 108));
      for (int h = 0; h < 2; ++h) {
        const int is = 8 * n + 2 * j + h;  // ggml's 16 6-bit scales: low 4 bits, then 2 high bits
        const int lo = is < 8 ? sc[is] & 0xF : sc[is - 8] >> 4;
        const int hi = (sc[8 + is % 4] >> (2 * (is / 4))) & 3;
        o.s[h] = d * float((lo | hi << 4) - 32);
        o.mn[h] = 4 * o.s[h];  // d·sc·(u − 4)
      }
      break;
    }
    case DType::Q5_K: {  // {d; dmin; scales[12]; qh[32]; qs[128]}
      const uint8_t* sb = row + (b / 8) * 176;
      const int j = int(b % 8);
      int sc, m;
      scale_min_k4(j, sb + 4, &sc, &m);
      both(f16_to_f32(u16(sb)) * float(sc), f16_to_f32(u16(sb + 2)) * float(m));
      const uint8_t *qh = sb + 16, *ql = sb + 48 + 32 * (j / 2);
      for (int l = 0; l < 32; ++l) o.u[l] = uint8_t((j % 2 ? ql[l] >> 4 : ql[l] & 0xF) | (((qh[l] >> j) & 1) << 4));
      break;
    }
    case DType::Q6_K: {  // ggml's dequantize_row_q6_K, 32 of its 256
      const uint8_t* sb = row + (b / 8) * 210;
      const float d = f16_to_f32(u16(sb + 208));
      const int e0 = int(b % 8) * 32;
      for (int i = 0; i < 32; ++i) {
        const int e = e0 + i, h = e / 128, k = (e % 128) / 32, l = e % 32;
        const int lo = (sb[64 * h + 32 * (k % 2) + l] >> (4 * (k / 2))) & 0xF;
        const int hi = (sb[128 + 32 * h + l] >> (2 * k)) & 3;
        o.u[i] = uint8_t(lo | hi << 4);
      }
      for (int h = 0; h < 2; ++h) o.s[h] = d * float(int8_t(sb[192 + e0 / 16 + h])), o.mn[h] = 32 * o.s[h];
      break;
    }
    default: {  // Q4_K: sub-block j of the super-block
      const uint8_t* sb = row + (b / 8) * 144;
      const int j = int(b % 8);
      int sc, m;
      scale_min_k4(j, sb + 4, &sc, &m);
      both(f16_to_f32(u16(sb)) * float(sc), f16_to_f32(u16(sb + 2)) * float(m));
      const uint8_t* qs = sb + 16 + 32 * (j / 2);
      for (int l = 0; l < 32; ++l) o.u[l] = j % 2 ? qs[l] >> 4 : qs[l] & 0xF;
    }
  }
  return o;
}

// ---- Scalar: the same integer sums and scale products, block by block.

void panel_scalar(const PackedWeight& w, const uint8_t* panel, const XQ32& x, int64_t m, float* out /*[16]*/) {
  const DType t = w.dtype;
  const int64_t nb = w.K / 32;
  const int qb = qbytes(t), c = zero_point(t);
  auto f32_at = [](const uint8_t* p) {
    float v;
    std::memcpy(&v, p, 4);
    return v;
  };
  for (int r = 0; r < kRows; ++r) {
    float acc = 0, sbs = 0, sbm = 0;  // k_scales: the super-block's sums before d, dmin
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* p = panel + block_offset(t, b);
      const int64_t i = m * nb + b;
      const int8_t* xq = x.q.data() + i * 32;
      int32_t half[2] = {-c * x.sq16[size_t(2 * i)], -c * x.sq16[size_t(2 * i + 1)]};
      for (int k = 0; k < 32; ++k) {
        const bool nibbles = four_bit(t) || six_bit(t);
        const uint8_t byte = p[64 * ((nibbles ? k % 16 : k) / 4) + 4 * r + k % 4];
        int u = !nibbles ? byte : k < 16 ? byte & 0xF : byte >> 4;
        if (six_bit(t)) u |= ((p[256 + 64 * (k / 4 % 2) + 4 * r + k % 4] >> (2 * (k / 8))) & 3) << 4;
        half[k / 16] += u * xq[k];
      }
      const float dx = x.d[size_t(i)];
      const float sx[2] = {dx * float(x.sq16[size_t(2 * i)]), dx * float(x.sq16[size_t(2 * i + 1)])};
      if (d16_type(t)) {
        acc += float(half[0] + half[1]) * (f16_to_f32(u16(p + qb + 2 * r)) * dx);
      } else if (k_scales(t)) {  // integer scales in int32, d (dmin) once per super-block
        const uint8_t* sc = panel + scales_at(t, b);
        if (t == DType::Q4_K) {
          sbs += float((half[0] + half[1]) * int32_t(sc[r])) * dx;
          sbm += float(sc[16 + r]) * x.dsq[size_t(i)];
        } else {
          sbs += float(half[0] * int32_t(int8_t(sc[r])) + half[1] * int32_t(int8_t(sc[16 + r]))) * dx;
        }
        if (b % 8 == 7) {
          const uint8_t* dp = panel + d_at(t, b);
          acc += sbs * f16_to_f32(u16(dp + 2 * r));
          if (t == DType::Q4_K) acc -= sbm * f16_to_f32(u16(dp + 32 + 2 * r));
          sbs = sbm = 0;
        }
      } else {
        for (int h = 0; h < 2; ++h) {
          acc += float(half[h]) * (f32_at(p + qb + 64 * h + 4 * r) * dx);
          if (has_min(t)) acc -= f32_at(p + qb + 128 + 64 * h + 4 * r) * sx[h];
        }
      }
    }
    out[r] = acc;
  }
}

// ---- AVX-512 VNNI: up to MT rows of x against one panel.

SOLAR_P512 SOLAR_INLINE __m128i bytes16(const uint8_t* p) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)); }

// NP panels (pstride bytes apart) at once: at M = 1 a single panel is one
// sequential stream, which the hardware prefetchers restart at every 4 KiB
// page (measured on Zen 4: Q8_0 W[5632,2048] 13.6 GB/s on one panel at a
// time against 23 GB/s for the row kernel's 8 rows at once; 8 panels stream
// faster than 4). The panels take turns by 8 blocks (a k-quant's super-block).
// Panel q's outputs go to y + 16q; last_cols masks the last panel's rows.
//
// At M = 1 every vector instruction per block counts (Zen 4, one core, W in
// L2: Q4_K 47 GB/s before the changes below, 58 after):
// - 4-bit quants: the high nibbles are masked in place (16·u) rather than
//   shifted down, and their int32 sum shifted right by 4 once (exact: a
//   multiple of 16): 4 shifts per block become 1.
// - k-quants (Q4_K, Q6_K): the block's integer sum times its integer scale in
//   int32 (vpmulld; exact, |Σ·sc| < 2^24), converted once and scaled by x's
//   block scale into the super-block's sum, which the file's d multiplies
//   once per 256. Q4_K's min term, Σ_b m_b·(dx·Σq)_b, is summed after the
//   super-block's quants, then times dmin. No float scale vector per block.
template <DType T, int MT, int NP>
SOLAR_P512 void panel_avx512(const uint8_t* panels, int64_t pstride, int64_t K, const XQ32& x, int64_t m0, float* y,
                             int64_t ldy, __mmask16 last_cols, bool accumulate) {
  // One int32 sum per 32 where one scale covers it, else one per half.
  constexpr bool kWhole = d16_type(T) || T == DType::Q4_K;
  constexpr bool kNib = four_bit(T);  // chain 0: low nibbles; chain 1: high nibbles in place (16·u)
  constexpr int QB = qbytes(T), c = zero_point(T);
  const int64_t nb = K / 32;
  const __m512i lo4 = _mm512_set1_epi8(0x0F), hi4 = _mm512_set1_epi8(char(0xF0));
  __m512 acc[MT][NP], sbs[MT][NP];  // sbs (k_scales): the super-block's sums before d
#pragma GCC unroll 8
  for (int m = 0; m < MT; ++m)
#pragma GCC unroll 8
    for (int q = 0; q < NP; ++q) acc[m][q] = sbs[m][q] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
#pragma GCC unroll 8
    for (int q = 0; q < NP; ++q) {
      const uint8_t* panel = panels + q * pstride;
      const uint8_t* p = panel + block_offset(T, b);
      __m512i w[8];
      if constexpr (!four_bit(T) && !six_bit(T)) {
#pragma GCC unroll 8
        for (int t = 0; t < 8; ++t) w[t] = _mm512_loadu_si512(p + 64 * t);
      } else {
#pragma GCC unroll 4
        for (int t = 0; t < 4; ++t) {
          const __m512i v = _mm512_loadu_si512(p + 64 * t);
          w[t] = _mm512_and_si512(v, lo4);
          w[t + 4] = kNib ? _mm512_and_si512(v, hi4) : _mm512_and_si512(_mm512_srli_epi16(v, 4), lo4);
        }
        if constexpr (six_bit(T)) or_six_bit_highs(p + 256, w);
      }
      // Q4_0/Q8_0: s[0] = d; per-16 types: s, mn per half; k_scales: integer
      // scales (Q6_K: per half).
      __m512 s[2], mn[2];
      __m512i isc[2];
      if constexpr (d16_type(T)) {
        s[0] = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + QB)));
      } else if constexpr (T == DType::Q4_K) {
        isc[0] = _mm512_cvtepu8_epi32(bytes16(panel + scales_at(T, b)));
      } else if constexpr (six_bit(T)) {
        const uint8_t* sc = panel + scales_at(T, b);
        isc[0] = _mm512_cvtepi8_epi32(bytes16(sc)), isc[1] = _mm512_cvtepi8_epi32(bytes16(sc + 16));
      } else {
        s[0] = _mm512_loadu_ps(p + QB), s[1] = _mm512_loadu_ps(p + QB + 64);
        if constexpr (has_min(T)) mn[0] = _mm512_loadu_ps(p + QB + 128), mn[1] = _mm512_loadu_ps(p + QB + 192);
      }
#pragma GCC unroll 8
      for (int m = 0; m < MT; ++m) {
        const int64_t i = (m0 + m) * nb + b;
        const int8_t* xq = x.q.data() + i * 32;
        const int32_t* sq16 = &x.sq16[size_t(2 * i)];
        // Two chains of four: at M = 1 one chain of eight would wait on
        // vpdpbusd's latency. 4-bit types: low and high nibbles; Q8_0
        // alternates; per-half types: the halves, each with its zero point.
        __m512i a0, a1;
        if constexpr (kWhole) {
          a0 = _mm512_set1_epi32(-c * (sq16[0] + sq16[1])), a1 = _mm512_setzero_si512();
        } else {
          a0 = _mm512_set1_epi32(-c * sq16[0]), a1 = _mm512_set1_epi32(-c * sq16[1]);
        }
#pragma GCC unroll 8
        for (int t = 0; t < 8; ++t) {
          int32_t xv;
          std::memcpy(&xv, xq + 4 * t, 4);
          if (kNib ? t < 4 : kWhole ? t % 2 == 0 : t < 4)
            a0 = _mm512_dpbusd_epi32(a0, w[t], _mm512_set1_epi32(xv));
          else
            a1 = _mm512_dpbusd_epi32(a1, w[t], _mm512_set1_epi32(xv));
        }
        const float dxs = x.d[size_t(i)];
        const __m512 dx = _mm512_set1_ps(dxs);
        __m512& a = acc[m][q];
        if constexpr (T == DType::Q4_K) {
          const __m512i isum = _mm512_add_epi32(a0, _mm512_srai_epi32(a1, 4));
          sbs[m][q] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_mullo_epi32(isum, isc[0])), dx, sbs[m][q]);
        } else if constexpr (six_bit(T)) {
          const __m512i isum = _mm512_add_epi32(_mm512_mullo_epi32(a0, isc[0]), _mm512_mullo_epi32(a1, isc[1]));
          sbs[m][q] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), dx, sbs[m][q]);
        } else if constexpr (kWhole) {
          const __m512i isum = _mm512_add_epi32(a0, kNib ? _mm512_srai_epi32(a1, 4) : a1);
          a = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_mul_ps(s[0], dx), a);
        } else {
          a = _mm512_fmadd_ps(_mm512_cvtepi32_ps(a0), _mm512_mul_ps(s[0], dx), a);
          a = _mm512_fmadd_ps(_mm512_cvtepi32_ps(a1), _mm512_mul_ps(s[1], dx), a);
          if constexpr (has_min(T)) {
            a = _mm512_fnmadd_ps(mn[0], _mm512_set1_ps(dxs * float(sq16[0])), a);
            a = _mm512_fnmadd_ps(mn[1], _mm512_set1_ps(dxs * float(sq16[1])), a);
          }
        }
      }
    }
    if constexpr (k_scales(T)) {
      if (b % 8 == 7) {  // the super-block's d (and dmin with the min term), per panel
        const int64_t b0 = b - 7;
#pragma GCC unroll 8
        for (int q = 0; q < NP; ++q) {
          const uint8_t* panel = panels + q * pstride;
          const uint8_t* dp = panel + d_at(T, b0);
          const __m512 d = f16x16(dp);
#pragma GCC unroll 8
          for (int m = 0; m < MT; ++m) {
            acc[m][q] = _mm512_fmadd_ps(sbs[m][q], d, acc[m][q]);
            sbs[m][q] = _mm512_setzero_ps();
          }
          if constexpr (T == DType::Q4_K) {
            __m512 mins[MT];
#pragma GCC unroll 8
            for (int m = 0; m < MT; ++m) mins[m] = _mm512_setzero_ps();
            for (int64_t j = b0; j <= b; ++j) {
              const __m512 mnb = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(bytes16(panel + scales_at(T, j) + 16)));
#pragma GCC unroll 8
              for (int m = 0; m < MT; ++m)
                mins[m] = _mm512_fmadd_ps(mnb, _mm512_set1_ps(x.dsq[size_t((m0 + m) * nb + j)]), mins[m]);
            }
            const __m512 dmin = f16x16(dp + 32);
#pragma GCC unroll 8
            for (int m = 0; m < MT; ++m) acc[m][q] = _mm512_fnmadd_ps(mins[m], dmin, acc[m][q]);
          }
        }
      }
    }
  }
#pragma GCC unroll 8
  for (int m = 0; m < MT; ++m)
#pragma GCC unroll 8
    for (int q = 0; q < NP; ++q) {
      const __mmask16 cols = q == NP - 1 ? last_cols : __mmask16(0xffff);
      float* dst = y + (m0 + m) * ldy + q * kRows;
      __m512 v = acc[m][q];
      if (accumulate) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(cols, dst));
      _mm512_mask_storeu_ps(dst, cols, v);
    }
}

// ---- AVX2: each 64-byte vector of a panel as two 32-byte halves, rows
// 0-7 and 8-15, with vpdpbusd's 4-byte dot products as vpmaddubsw (u8·s8
// pairs into int16, saturating) + vpmaddwd by ones. Every integer sum is the
// VNNI kernel's, exact, and the float operations per lane are its own, in
// its order. No pair saturates: x is within ±127 and
// u ≤ 63 but for Q8_0, whose u = q + 128 would (2·255·127 > 32767): its
// products are |q|·(x signed as q), ≤ 128·127 a product, and need no −128·Σq.
// int16 sums of pairs stay within 32767: 8 pairs of 4-bit products
// (8·2·15·127), 4 of u ≤ 31, 2 of Q6_K's 6-bit u (2·2·63·127 = 32004).

SOLAR_P256 SOLAR_INLINE __m256i load256(const uint8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
SOLAR_P256 SOLAR_INLINE __m128i bytes8(const uint8_t* p) { return _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)); }
SOLAR_P256 SOLAR_INLINE __m256 f16x8(const uint8_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

// Vector t of a block's quants for rows 8h..8h+7: elements 4t..4t+3 of
// each row (4-bit and 6-bit types: t ≥ 4 are elements 16 + 4(t − 4)..).
// Q8_0: q = u − 128 as int8.
template <DType T>
SOLAR_P256 SOLAR_INLINE __m256i weights_avx2(const uint8_t* p, int t, int h) {
  const __m256i lo4 = _mm256_set1_epi8(0x0F);
  if constexpr (T == DType::Q8_0) return _mm256_xor_si256(load256(p + 64 * t + 32 * h), _mm256_set1_epi8(char(0x80)));
  if constexpr (!four_bit(T) && !six_bit(T)) return load256(p + 64 * t + 32 * h);
  const __m256i v = load256(p + 64 * (t % 4) + 32 * h);
  const __m256i w = _mm256_and_si256(t < 4 ? v : _mm256_srli_epi16(v, 4), lo4);
  if constexpr (!six_bit(T)) return w;
  // bits 4-5: bits 2(t/2) of high-bit vector t % 2
  const __m256i hv = load256(p + 256 + 64 * (t % 2) + 32 * h);
  const __m256i at4 = t / 2 == 0   ? _mm256_slli_epi16(hv, 4)
                      : t / 2 == 1 ? _mm256_slli_epi16(hv, 2)
                      : t / 2 == 2 ? hv
                                   : _mm256_srli_epi16(hv, 2);
  return _mm256_or_si256(w, _mm256_and_si256(at4, _mm256_set1_epi8(0x30)));
}

// 4 bytes of x in every lane.
SOLAR_P256 SOLAR_INLINE __m256i x4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm256_set1_epi32(v);
}

// A k-quant super-block (8 blocks from b0) done: its d, and Q4_K's min term
// times dmin, per half, as panel_avx512 applies them. (Both halves' mins in
// one pass over the 8 blocks: Zen 3, M = 512, one thread, Q4_K 147 → 153 GOP/s.)
template <DType T, int MT>
SOLAR_P256 SOLAR_INLINE void super_block_avx2(const uint8_t* panel, const XQ32& x, int64_t m0, int64_t nb, int64_t b0,
                                              __m256 (&acc)[MT][2], __m256 (&sbs)[MT][2]) {
  const uint8_t* dp = panel + d_at(T, b0);
#pragma GCC unroll 2
  for (int h = 0; h < 2; ++h) {
    const __m256 d = f16x8(dp + 16 * h);
#pragma GCC unroll 8
    for (int m = 0; m < MT; ++m) {
      acc[m][h] = _mm256_fmadd_ps(sbs[m][h], d, acc[m][h]);
      sbs[m][h] = _mm256_setzero_ps();
    }
  }
  if constexpr (T == DType::Q4_K) {
    // Both halves' mins per block, each row's x term broadcast once for
    // them (the sums per half in the same order as half by half).
    __m256 mins[MT][2];
#pragma GCC unroll 8
    for (int m = 0; m < MT; ++m) mins[m][0] = mins[m][1] = _mm256_setzero_ps();
    const float* dsq[MT];
#pragma GCC unroll 8
    for (int m = 0; m < MT; ++m) dsq[m] = &x.dsq[size_t((m0 + m) * nb)];
    for (int64_t j = b0; j < b0 + 8; ++j) {
      const uint8_t* mp = panel + scales_at(T, j) + 16;
      const __m256 mn0 = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(bytes8(mp)));
      const __m256 mn1 = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(bytes8(mp + 8)));
#pragma GCC unroll 8
      for (int m = 0; m < MT; ++m) {
        const __m256 xs = _mm256_broadcast_ss(dsq[m] + j);
        mins[m][0] = _mm256_fmadd_ps(mn0, xs, mins[m][0]);
        mins[m][1] = _mm256_fmadd_ps(mn1, xs, mins[m][1]);
      }
    }
#pragma GCC unroll 2
    for (int h = 0; h < 2; ++h) {
      const __m256 dmin = f16x8(dp + 32 + 16 * h);
#pragma GCC unroll 8
      for (int m = 0; m < MT; ++m) acc[m][h] = _mm256_fnmadd_ps(mins[m][h], dmin, acc[m][h]);
    }
  }
}

// One block of one panel against MT rows of x. The vectors t go outermost,
// each multiplied into every row's and half's sum at once: with the rows
// outermost GCC kept every row's broadcasts of x live and spilled them
// (Zen 3, M = 512, one thread: Q4_0 110 GOP/s that way, 196 this way).
template <DType T, int MT>
SOLAR_P256 SOLAR_INLINE void block_avx2(const uint8_t* panel, int64_t b, const XQ32& x, int64_t m0, int64_t nb,
                                        __m256 (&acc)[MT][2], __m256 (&sbs)[MT][2]) {
  constexpr bool kWhole = d16_type(T) || T == DType::Q4_K;
  constexpr int c = T == DType::Q8_0 ? 0 : zero_point(T);                // Q8_0: Σq·x directly
  constexpr int run = T == DType::Q8_0 ? 1 : four_bit(T) ? 8 : six_bit(T) ? 2 : 4;  // pairs an int16 sum holds
  const uint8_t* p = panel + block_offset(T, b);
  const __m256i ones = _mm256_set1_epi16(1);
  const int8_t* xq[MT];
#pragma GCC unroll 8
  for (int m = 0; m < MT; ++m) xq[m] = x.q.data() + ((m0 + m) * nb + b) * 32;
  __m256i s16[MT][2], a[MT][2], isum[MT][2];  // int16 run; int32 sum of the 16 (or 32); Q6_K's scaled sum
  // Half k of the 32 (kWhole: all 32, k = 1) summed: scaled into acc or sbs.
  auto done = [&](int k) __attribute__((always_inline, target("avx2,fma,f16c"))) {  // SOLAR_P256, inlined
#pragma GCC unroll 2
    for (int h = 0; h < 2; ++h) {
      __m256 s[2], mn[2];
      __m256i isc[2];
      const uint8_t* sc = panel + scales_at(T, b) + 8 * h;
      if constexpr (d16_type(T)) {
        s[0] = f16x8(p + qbytes(T) + 16 * h);
      } else if constexpr (T == DType::Q4_K) {
        isc[0] = _mm256_cvtepu8_epi32(bytes8(sc));
      } else if constexpr (six_bit(T)) {
        isc[k] = _mm256_cvtepi8_epi32(bytes8(sc + 16 * k));
      } else {
        const float* f = reinterpret_cast<const float*>(p + qbytes(T) + 32 * h);
        s[k] = _mm256_loadu_ps(f + 16 * k);
        if constexpr (has_min(T)) mn[0] = _mm256_loadu_ps(f + 32), mn[1] = _mm256_loadu_ps(f + 48);
      }
#pragma GCC unroll 8
      for (int m = 0; m < MT; ++m) {
        const int64_t i = (m0 + m) * nb + b;
        const int32_t* sq16 = &x.sq16[size_t(2 * i)];
        const float dxs = x.d[size_t(i)];
        const __m256 dx = _mm256_set1_ps(dxs);
        if constexpr (kWhole) {
          const __m256i is = _mm256_add_epi32(a[m][h], _mm256_set1_epi32(-c * (sq16[0] + sq16[1])));
          if constexpr (T == DType::Q4_K)
            sbs[m][h] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_mullo_epi32(is, isc[0])), dx, sbs[m][h]);
          else
            acc[m][h] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(is), _mm256_mul_ps(s[0], dx), acc[m][h]);
        } else {
          const __m256i ak = _mm256_add_epi32(a[m][h], _mm256_set1_epi32(-c * sq16[k]));
          if constexpr (six_bit(T)) {
            const __m256i prod = _mm256_mullo_epi32(ak, isc[k]);
            if (k == 0) {
              isum[m][h] = prod;
            } else {
              sbs[m][h] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(isum[m][h], prod)), dx, sbs[m][h]);
            }
          } else {
            acc[m][h] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(ak), _mm256_mul_ps(s[k], dx), acc[m][h]);
            if constexpr (has_min(T)) {
              if (k == 1) {
                acc[m][h] = _mm256_fnmadd_ps(mn[0], _mm256_set1_ps(dxs * float(sq16[0])), acc[m][h]);
                acc[m][h] = _mm256_fnmadd_ps(mn[1], _mm256_set1_ps(dxs * float(sq16[1])), acc[m][h]);
              }
            }
          }
        }
        a[m][h] = _mm256_setzero_si256();
      }
    }
  };
#pragma GCC unroll 8
  for (int m = 0; m < MT; ++m)
#pragma GCC unroll 2
    for (int h = 0; h < 2; ++h) a[m][h] = _mm256_setzero_si256();
#pragma GCC unroll 8
  for (int t = 0; t < 8; ++t) {
    const __m256i w[2] = {weights_avx2<T>(p, t, 0), weights_avx2<T>(p, t, 1)};
#pragma GCC unroll 8
    for (int m = 0; m < MT; ++m) {
      const __m256i xb = x4(xq[m] + 4 * t);
#pragma GCC unroll 2
      for (int h = 0; h < 2; ++h) {
        const __m256i prod = T == DType::Q8_0
                                 ? _mm256_maddubs_epi16(_mm256_abs_epi8(w[h]), _mm256_sign_epi8(xb, w[h]))
                                 : _mm256_maddubs_epi16(w[h], xb);
        s16[m][h] = t % run == 0 ? prod : _mm256_add_epi16(s16[m][h], prod);
        // Each sum in turn: GCC otherwise holds the products for a tree of adds and spills them.
        __asm__("" : "+x"(s16[m][h]));
        if (t % run == run - 1) {
          a[m][h] = _mm256_add_epi32(a[m][h], _mm256_madd_epi16(s16[m][h], ones));
          __asm__("" : "+x"(a[m][h]));
        }
      }
    }
    if (!kWhole && t == 3) done(0);
    if (t == 7) done(1);
  }
}

// panel_avx512's kernel on halves of 8 rows.
template <DType T, int MT, int NP>
SOLAR_P256 void panel_avx2(const uint8_t* panels, int64_t pstride, int64_t K, const XQ32& x, int64_t m0, float* y,
                           int64_t ldy, uint16_t last_cols, bool accumulate) {
  const int64_t nb = K / 32;
  __m256 acc[NP][MT][2], sbs[NP][MT][2];
#pragma GCC unroll 8
  for (int q = 0; q < NP; ++q)
#pragma GCC unroll 8
    for (int m = 0; m < MT; ++m)
#pragma GCC unroll 2
      for (int h = 0; h < 2; ++h) acc[q][m][h] = sbs[q][m][h] = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
#pragma GCC unroll 8
    for (int q = 0; q < NP; ++q) {
      block_avx2<T, MT>(panels + q * pstride, b, x, m0, nb, acc[q], sbs[q]);
      if constexpr (k_scales(T)) {
        if (b % 8 == 7) super_block_avx2<T, MT>(panels + q * pstride, x, m0, nb, b - 7, acc[q], sbs[q]);
        // k-quants' float sums in memory: touched once a block (acc once per 8),
        // they are what GCC should spill, but it kept them in registers and
        // spilled the int16 runs of the inner loop instead (Zen 3, M = 512, one
        // thread: Q4_K 112 → 150 GOP/s, Q6_K 92 → 107). Decode (MT = 1) has
        // too little work a block to pay for the stores.
        if constexpr (MT > 1) __asm__ volatile("" : : "r"(&acc[0][0][0]), "r"(&sbs[0][0][0]) : "memory");
      }
    }
  }
#pragma GCC unroll 8
  for (int m = 0; m < MT; ++m)
#pragma GCC unroll 8
    for (int q = 0; q < NP; ++q) {
      const int cols = q == NP - 1 ? __builtin_popcount(last_cols) : kRows;
      float* dst = y + (m0 + m) * ldy + q * kRows;
      alignas(32) float v[kRows];
      _mm256_store_ps(v, acc[q][m][0]), _mm256_store_ps(v + 8, acc[q][m][1]);
      for (int r = 0; r < cols; ++r) dst[r] = accumulate ? dst[r] + v[r] : v[r];
    }
}

using PanelFn = void (*)(const uint8_t*, int64_t, int64_t, const XQ32&, int64_t, float*, int64_t, __mmask16, bool);
constexpr int kMaxMT = 6;
constexpr int kMaxMT2 = 4;  // AVX2: rows of x per tile (16 ymm registers)
constexpr int kDecodeNP = 8;  // panels at once for one row of x (several streams)

// Panels per call for mt rows of x and n panels left: one row of x takes
// up to kDecodeNP (a range's tail 4, 2, then 1), more rows one at a time.
int decode_np(int mt, int64_t n) { return mt > 1 ? 1 : n >= kDecodeNP ? kDecodeNP : n >= 4 ? 4 : n >= 2 ? 2 : 1; }

// The kernels as class templates, for panel_fn's tables.
template <DType T, int MT, int NP>
struct Avx512Panel {
  static constexpr PanelFn run = panel_avx512<T, MT, NP>;
};
template <DType T, int MT, int NP>
struct Avx2Panel {
  static constexpr PanelFn run = panel_avx2<T, MT, NP>;
};

template <template <DType, int, int> class P, DType T>
PanelFn panel_fn(int mt, int np) {
  static constexpr PanelFn f[kMaxMT] = {P<T, 1, 1>::run, P<T, 2, 1>::run, P<T, 3, 1>::run,
                                        P<T, 4, 1>::run, P<T, 5, 1>::run, P<T, 6, 1>::run};
  if (mt == 1) {
    if (np == kDecodeNP) return P<T, 1, kDecodeNP>::run;
    if (np == 4) return P<T, 1, 4>::run;
    if (np == 2) return P<T, 1, 2>::run;
  }
  return f[mt - 1];
}

template <template <DType, int, int> class P>
PanelFn panel_fn(DType t, int mt, int np) {
  switch (t) {
    case DType::Q8_0: return panel_fn<P, DType::Q8_0>(mt, np);
    case DType::Q4_0: return panel_fn<P, DType::Q4_0>(mt, np);
    case DType::Q4_K: return panel_fn<P, DType::Q4_K>(mt, np);
    case DType::Q6_K: return panel_fn<P, DType::Q6_K>(mt, np);
    case DType::Q5_0: return panel_fn<P, DType::Q5_0>(mt, np);
    case DType::Q3_K: return panel_fn<P, DType::Q3_K>(mt, np);
    default: return panel_fn<P, DType::Q5_K>(mt, np);  // the types with a min per 16: one kernel
  }
}

// The kernel for mt rows of x and np panels (decode_np).
PanelFn panel_fn(bool avx512, DType t, int mt, int np) {
  return avx512 ? panel_fn<Avx512Panel>(t, mt, np) : panel_fn<Avx2Panel>(t, mt, np);
}

bool avx2_panels() { return cpu().avx2 && cpu().fma && cpu().f16c; }

}  // namespace

void packed_rows(Isa isa, const PackedWeight& w, const XQ32& x, int64_t p0, int64_t p1, float* y, bool accumulate) {
  const int64_t pstride = (w.K / 32) * block_stride(w.dtype);  // k_scales: K / 256 super-blocks
  const uint8_t* base = w.bytes.data();
  const bool vnni = isa == Isa::Avx512 && cpu().avx512_vnni && dispatch().vnni;
  const bool simd = vnni || (isa != Isa::Scalar && avx2_panels());
  const int max_mt = vnni ? kMaxMT : kMaxMT2;
  // Panels in groups that stay in L2 (≤ 256 KiB) while every row of x passes
  // over them: x is read once per group, not once per panel. One row of x:
  // one group, in steps of kDecodeNP panels.
  const int64_t group = x.M == 1 ? p1 - p0 : std::max<int64_t>(1, (256 << 10) / std::max<int64_t>(1, pstride));
  // Whole tiles of 16 rows of x on AMX, the rest (and decode) on VNNI: the same bits.
  const int64_t amx_rows = isa == Isa::Avx512 && dispatch().amx_int8 && amx_packable(w.dtype) ? x.M / 16 * 16 : 0;
  for (int64_t g0 = p0; g0 < p1; g0 += group) {
    const int64_t g1 = std::min(p1, g0 + group);
    if (amx_rows > 0) packed_rows_amx(w, x, amx_rows, g0, g1, y, accumulate);
    for (int64_t m0 = amx_rows; m0 < x.M; m0 += max_mt) {
      const int mt = int(std::min<int64_t>(max_mt, x.M - m0));
      for (int64_t p = g0; p < g1;) {
        if (simd) {
          const int np = decode_np(mt, g1 - p);
          const int64_t n0 = (p + np - 1) * kRows, cols = std::min<int64_t>(kRows, w.N - n0);
          panel_fn(vnni, w.dtype, mt, np)(base + p * pstride, pstride, w.K, x, m0, y + p * kRows, w.N,
                                    __mmask16((1u << cols) - 1), accumulate);
          p += np;
          continue;
        }
        const int64_t n0 = p * kRows, cols = std::min<int64_t>(kRows, w.N - n0);
        const uint8_t* panel = base + p++ * pstride;
        float out[kRows];
        for (int m = 0; m < mt; ++m) {
          panel_scalar(w, panel, x, m0 + m, out);
          float* dst = y + (m0 + m) * w.N + n0;
          for (int64_t r = 0; r < cols; ++r) dst[r] = accumulate ? dst[r] + out[r] : out[r];
        }
      }
    }
  }
}

namespace {

// One block of 32: the scalar definition (NaN quantizes to 0, and an
// infinite block to zeros).
void quantize_block(const float* xb, int8_t* q, float* d, int32_t* half) {
  float amax = 0;
  for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(xb[j]));
  const float id = amax > 0 ? 127.f / amax : 0.f;
  half[0] = half[1] = 0;
  for (int j = 0; j < 32; ++j) {
    const float v = std::nearbyint(xb[j] * id);
    q[j] = int8_t(v >= 127.f ? 127 : v <= -127.f ? -127 : v == v ? int(v) : 0);
    half[j / 16] += q[j];
  }
  *d = amax / 127.f;
}

// The same bits (one multiply, round to nearest even as nearbyint under the
// default rounding mode); blocks holding a NaN or infinity take the scalar
// path, whose rules for them the conversions would not follow.
SOLAR_P512 void quantize_block_avx512(const float* xb, int8_t* q, float* d, int32_t* half) {
  const __m512 v0 = _mm512_loadu_ps(xb), v1 = _mm512_loadu_ps(xb + 16);
  const __m512 a = _mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1));
  const float amax = _mm512_reduce_max_ps(a);
  if (!std::isfinite(amax) || _mm512_cmp_ps_mask(v0, v0, _CMP_UNORD_Q) || _mm512_cmp_ps_mask(v1, v1, _CMP_UNORD_Q))
    return quantize_block(xb, q, d, half);  // (maxps drops a NaN operand: test v0, v1 themselves)
  const __m512 id = _mm512_set1_ps(amax > 0 ? 127.f / amax : 0.f);
  const __m512i q0 = _mm512_cvtps_epi32(_mm512_mul_ps(v0, id)), q1 = _mm512_cvtps_epi32(_mm512_mul_ps(v1, id));
  const __m512i lim = _mm512_set1_epi32(127);
  const __m512i c0 = _mm512_max_epi32(_mm512_min_epi32(q0, lim), _mm512_sub_epi32(_mm512_setzero_si512(), lim));
  const __m512i c1 = _mm512_max_epi32(_mm512_min_epi32(q1, lim), _mm512_sub_epi32(_mm512_setzero_si512(), lim));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(q), _mm512_cvtepi32_epi8(c0));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(q + 16), _mm512_cvtepi32_epi8(c1));
  half[0] = _mm512_reduce_add_epi32(c0), half[1] = _mm512_reduce_add_epi32(c1);
  *d = amax / 127.f;
}

// quantize_block_avx512's rules on 8 lanes.
SOLAR_P256 void quantize_block_avx2(const float* xb, int8_t* q, float* d, int32_t* half) {
  const __m256 v[4] = {_mm256_loadu_ps(xb), _mm256_loadu_ps(xb + 8), _mm256_loadu_ps(xb + 16), _mm256_loadu_ps(xb + 24)};
  const __m256 abs = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
  __m256 a = _mm256_setzero_ps(), nan = _mm256_setzero_ps();
  for (const __m256& vi : v) a = _mm256_max_ps(a, _mm256_and_ps(vi, abs)), nan = _mm256_or_ps(nan, _mm256_cmp_ps(vi, vi, _CMP_UNORD_Q));
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  const float amax = _mm_cvtss_f32(_mm_max_ss(m, _mm_shuffle_ps(m, m, 1)));
  if (!std::isfinite(amax) || _mm256_movemask_ps(nan)) return quantize_block(xb, q, d, half);
  const __m256 id = _mm256_set1_ps(amax > 0 ? 127.f / amax : 0.f);
  const __m256i lim = _mm256_set1_epi32(127), nlim = _mm256_set1_epi32(-127);
  __m256i c[4];
  for (int j = 0; j < 4; ++j)
    c[j] = _mm256_max_epi32(_mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(v[j], id)), lim), nlim);
  // packs interleaves the 128-bit lanes: 4-byte groups come out as 0 4 1 5 2 6 3 7.
  const __m256i bytes = _mm256_packs_epi16(_mm256_packs_epi32(c[0], c[1]), _mm256_packs_epi32(c[2], c[3]));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(q), _mm256_permutevar8x32_epi32(bytes, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
  for (int h = 0; h < 2; ++h) {
    const __m256i s = _mm256_add_epi32(c[2 * h], c[2 * h + 1]);
    __m128i t = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0x4E));
    half[h] = _mm_cvtsi128_si32(_mm_add_epi32(t, _mm_shuffle_epi32(t, 0xB1)));
  }
  *d = amax / 127.f;
}

}  // namespace

void packed_weights_of(DType t, const void* row, int64_t b, float* out) {
  const Block o = unpack(t, static_cast<const uint8_t*>(row), b);
  const int c = zero_point(t);
  for (int k = 0; k < 32; ++k) {
    const float s = d16_type(t) ? f16_to_f32(o.d16) : o.s[k / 16];
    out[k] = has_min(t) ? s * float(o.u[k]) - o.mn[k / 16] : s * float(int(o.u[k]) - c);
  }
}

void quantize_x32(const float* x, int64_t M, int64_t K, XQ32& a) {
  if (K % 32) fail("quantize_x32", "K", "expected a multiple of 32, got " + std::to_string(K));
  a.M = M, a.K = K;
  a.q.resize(size_t(M * K));
  a.d.resize(size_t(M * K / 32));
  a.sq.resize(size_t(M * K / 32));
  a.dsq.resize(size_t(M * K / 32));
  a.sq16.resize(size_t(M * K / 16));
  const Isa isa = dispatch().isa;
  const auto quantize = isa == Isa::Avx512 && cpu().avx512bw ? quantize_block_avx512
                        : isa != Isa::Scalar && avx2_panels() ? quantize_block_avx2
                                                              : quantize_block;
  parallel_for(M * K / 32, M * K, [&](int64_t i) {
    int32_t* half = &a.sq16[size_t(2 * i)];
    quantize(x + i * 32, &a.q[size_t(i * 32)], &a.d[size_t(i)], half);
    a.sq[size_t(i)] = half[0] + half[1];
    a.dsq[size_t(i)] = a.d[size_t(i)] * float(a.sq[size_t(i)]);
  });
}

}  // namespace detail

bool can_pack(DType t) {
  if (is_float(t)) return detail::float_packable(t);
  return detail::packable(t) && ((cpu().avx512f && cpu().avx512bw && cpu().avx512_vnni) || detail::avx2_panels());
}

size_t packed_size(DType t, int64_t N, int64_t K) {
  if (is_float(t)) return detail::float_packed_size(t, N, K);
  return size_t((N + detail::kRows - 1) / detail::kRows) * size_t(K / 32) * size_t(detail::block_stride(t));
}

PackedWeight pack_weight(const void* W, DType t, int64_t N, int64_t K) {
  if (N <= 0 || K <= 0) fail("pack_weight", "shape", "expected N, K > 0, got " + std::to_string(N) + ", " + std::to_string(K));
  if (is_float(t)) {
    PackedWeight pw;
    pw.dtype = t, pw.N = N, pw.K = K;
    pw.bytes.resize(detail::float_packed_size(t, N, K));
    detail::float_pack(t, W, N, K, pw.bytes.data());
    return pw;
  }
  if (!detail::packable(t)) fail("pack_weight", dtype_name(t), "expected F32, BF16, F16 or a GGML block type (Q4_0 … Q6_K)");
  const size_t rb = row_bytes(t, K);  // throws unless rows are whole blocks
  PackedWeight pw;
  pw.dtype = t, pw.N = N, pw.K = K;
  const int64_t nb = K / 32, panels = (N + detail::kRows - 1) / detail::kRows;
  const int64_t bs = detail::block_stride(t), qb = detail::qbytes(t);
  pw.bytes.assign(size_t(panels * nb * bs), 0);
  const uint8_t* w = static_cast<const uint8_t*>(W);
#pragma omp parallel for schedule(dynamic, 4)
  for (int64_t p = 0; p < panels; ++p) {
    for (int r = 0; r < detail::kRows && p * detail::kRows + r < N; ++r) {
      const uint8_t* row = w + size_t(p * detail::kRows + r) * rb;
      for (int64_t b = 0; b < nb; ++b) {
        uint8_t* panel = pw.bytes.data() + p * nb * bs;
        uint8_t* dst = panel + detail::block_offset(t, b);
        const detail::Block o = detail::unpack(t, row, b);
        if (detail::six_bit(t)) {  // the file's scales and d; quants as the header says
          const uint8_t* sb = row + (b / 8) * 210;
          for (int h = 0; h < 2; ++h) panel[detail::scales_at(t, b) + 16 * h + r] = sb[192 + 2 * (b % 8) + h];
          std::memcpy(panel + detail::d_at(t, b) + 2 * r, sb + 208, 2);
          for (int k = 0; k < 16; ++k) dst[64 * (k / 4) + 4 * r + k % 4] = uint8_t((o.u[k] & 0xF) | (o.u[16 + k] & 0xF) << 4);
          for (int k = 0; k < 32; ++k) dst[256 + 64 * (k / 4 % 2) + 4 * r + k % 4] |= uint8_t((o.u[k] >> 4) << (2 * (k / 8)));
          continue;
        }
        if (t == DType::Q4_K) {  // the file's 6-bit sc and m of the block, d and dmin of the super-block
          const uint8_t* sb = row + (b / 8) * 144;
          int sc, m;
          detail::scale_min_k4(int(b % 8), sb + 4, &sc, &m);
          panel[detail::scales_at(t, b) + r] = uint8_t(sc), panel[detail::scales_at(t, b) + 16 + r] = uint8_t(m);
          std::memcpy(panel + detail::d_at(t, b) + 2 * r, sb, 2);
          std::memcpy(panel + detail::d_at(t, b) + 32 + 2 * r, sb + 2, 2);
          for (int k = 0; k < 16; ++k) dst[64 * (k / 4) + 4 * r + k % 4] = uint8_t(o.u[k] | o.u[16 + k] << 4);
          continue;
        }
        if (detail::four_bit(t)) {
          for (int k = 0; k < 16; ++k) dst[64 * (k / 4) + 4 * r + k % 4] = uint8_t(o.u[k] | o.u[16 + k] << 4);
        } else {
          for (int k = 0; k < 32; ++k) dst[64 * (k / 4) + 4 * r + k % 4] = o.u[k];
        }
        uint8_t* sc = dst + qb;
        if (detail::d16_type(t)) {
          std::memcpy(sc + 2 * r, &o.d16, 2);
        } else {
          for (int h = 0; h < 2; ++h) {
            std::memcpy(sc + 64 * h + 4 * r, &o.s[h], 4);
            if (detail::has_min(t)) std::memcpy(sc + 128 + 64 * h + 4 * r, &o.mn[h], 4);
          }
        }
      }
    }
  }
  return pw;
}

}  // namespace solar::kernels
