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
//   8-bit (Q8_0: u = q + 128; Q6_K: u = q, 0..63): 8 vectors, vector t
//                              lane r = u[r][4t..4t+3];
//   4-bit (Q4_0, Q4_K):        4 vectors, vector t lane r byte i =
//                              u[r][4t+i] | u[r][16+4t+i] << 4,
// then the scales: Q4_0/Q8_0 16 f16 d (the file's own); Q4_K 16 f32 s = d·sc
// and 16 f32 mn = dmin·m; Q6_K 16 f32 s = d·sc of elements 0..15 and 16 of
// elements 16..31. A weight is s·u − mn: Q8_0 d·(q+128) − 128·d, Q4_0
// d·u − 8·d, Q6_K s·u − 32·s, Q4_K as ggml's dequantize_row_q4_K computes it.
//
// x is rounded to int8 per 32 with scale amax/127 (as for qgemv), its sums Σq
// kept: Σ_k w·x = dx·(s·Σu·q − mn·Σq) per block, exact in integers up to the
// f32 scale products. Q4_0/Q8_0/Q6_K start each int32 sum at −c·Σq (c = 8,
// 128, 32), so each block's integer dot product is llama.cpp's.
//
// Q6_K's panel is 1.5× its file's bytes (u unpacked to 8 bits): it serves
// prefill only, decode reads the file's layout (PackedWeight::decode).
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

#define SOLAR_P512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,fma,f16c")))
#define SOLAR_INLINE inline __attribute__((always_inline))

namespace solar::kernels {
namespace detail {
namespace {

constexpr int kRows = 16;  // rows per panel: one per 32-bit lane of a 512-bit vector

bool eight_bit(DType t) { return t == DType::Q8_0 || t == DType::Q6_K; }
bool f32_scales(DType t) { return t == DType::Q4_K || t == DType::Q6_K; }
int qbytes(DType t) { return eight_bit(t) ? 512 : 256; }         // quant bytes per block of a panel
int sbytes(DType t) { return f32_scales(t) ? 128 : 32; }         // scale bytes per block of a panel
int64_t block_stride(DType t) { return qbytes(t) + sbytes(t); }  // bytes per block of a panel
// Q4_0/Q8_0/Q6_K: w = s·(u − c).
int zero_point(DType t) { return t == DType::Q8_0 ? 128 : t == DType::Q6_K ? 32 : t == DType::Q4_0 ? 8 : 0; }

uint16_t u16(const uint8_t* p) { return uint16_t(p[0] | p[1] << 8); }

// Row `row`'s block b (32 elements) as unsigned u[32] with its scales: raw
// f16 bits for Q4_0/Q8_0, f32 s and mn for Q4_K, Q6_K's s of each half in s
// and mn.
void unpack(DType t, const uint8_t* row, int64_t b, uint8_t* u, uint16_t* d16, float* s, float* mn) {
  switch (t) {
    case DType::Q8_0: {
      const uint8_t* blk = row + b * 34;
      *d16 = u16(blk);
      for (int j = 0; j < 32; ++j) u[j] = uint8_t(int(int8_t(blk[2 + j])) + 128);
      break;
    }
    case DType::Q4_0: {
      const uint8_t* blk = row + b * 18;
      *d16 = u16(blk);
      for (int j = 0; j < 16; ++j) u[j] = blk[2 + j] & 0xF, u[16 + j] = blk[2 + j] >> 4;
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
        u[i] = uint8_t(lo | hi << 4);
      }
      *s = d * float(int8_t(sb[192 + e0 / 16]));
      *mn = d * float(int8_t(sb[192 + e0 / 16 + 1]));
      break;
    }
    default: {  // Q4_K: sub-block j of the super-block; ggml's get_scale_min_k4
      const uint8_t* sb = row + (b / 8) * 144;
      const int j = int(b % 8);
      const uint8_t* q = sb + 4;
      int sc, m;
      if (j < 4) {
        sc = q[j] & 63, m = q[j + 4] & 63;
      } else {
        sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
        m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
      }
      *s = f16_to_f32(u16(sb)) * float(sc);
      *mn = f16_to_f32(u16(sb + 2)) * float(m);
      const uint8_t* qs = sb + 16 + 32 * (j / 2);
      for (int l = 0; l < 32; ++l) u[l] = j % 2 ? qs[l] >> 4 : qs[l] & 0xF;
    }
  }
}

// ---- Scalar: the same integer sums and scale products, block by block.

void panel_scalar(const PackedWeight& w, const uint8_t* panel, const XQ32& x, int64_t m, float* out /*[16]*/) {
  const int64_t nb = w.K / 32;
  const int qb = qbytes(w.dtype), c = zero_point(w.dtype);
  for (int r = 0; r < kRows; ++r) {
    float acc = 0;
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* p = panel + b * block_stride(w.dtype);
      const int8_t* xq = x.q.data() + m * w.K + b * 32;
      const int64_t i = m * nb + b;
      const int32_t sq = x.sq[size_t(i)];
      int32_t dot = -c * sq, half[2] = {-c * x.sq16[size_t(2 * i)], -c * x.sq16[size_t(2 * i + 1)]};
      for (int k = 0; k < 32; ++k) {
        int u;
        if (eight_bit(w.dtype)) {
          u = p[64 * (k / 4) + 4 * r + k % 4];
        } else {
          const uint8_t byte = p[64 * ((k % 16) / 4) + 4 * r + k % 4];
          u = k < 16 ? byte & 0xF : byte >> 4;
        }
        dot += u * xq[k];
        half[k / 16] += u * xq[k];
      }
      const float dx = x.d[size_t(i)];
      if (w.dtype == DType::Q6_K) {
        float s0, s1;
        std::memcpy(&s0, p + qb + 4 * r, 4);
        std::memcpy(&s1, p + qb + 64 + 4 * r, 4);
        acc += float(half[0]) * (s0 * dx) + float(half[1]) * (s1 * dx);
      } else if (w.dtype == DType::Q4_K) {
        float s, mn;
        std::memcpy(&s, p + qb + 4 * r, 4);
        std::memcpy(&mn, p + qb + 64 + 4 * r, 4);
        acc += float(dot) * (s * dx) - mn * (dx * float(sq));
      } else {
        acc += float(dot) * (f16_to_f32(u16(p + qb + 2 * r)) * dx);
      }
    }
    out[r] = acc;
  }
}

// ---- AVX-512 VNNI: up to MT rows of x against one panel.

template <DType T, int MT>
SOLAR_P512 void panel_avx512(const uint8_t* panel, int64_t K, const XQ32& x, int64_t m0, float* y, int64_t ldy,
                             __mmask16 cols, bool accumulate) {
  constexpr bool kEight = T == DType::Q8_0 || T == DType::Q6_K, kF32 = T == DType::Q4_K || T == DType::Q6_K;
  constexpr int QB = kEight ? 512 : 256;
  constexpr int64_t stride = QB + (kF32 ? 128 : 32);
  constexpr int c = T == DType::Q8_0 ? 128 : T == DType::Q6_K ? 32 : 8;
  const int64_t nb = K / 32;
  const __m512i lo4 = _mm512_set1_epi8(0x0F);
  __m512 acc[MT];
#pragma GCC unroll 8
  for (int m = 0; m < MT; ++m) acc[m] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* p = panel + b * stride;
    __m512i w[8];
    if constexpr (kEight) {
#pragma GCC unroll 8
      for (int t = 0; t < 8; ++t) w[t] = _mm512_loadu_si512(p + 64 * t);
    } else {
#pragma GCC unroll 4
      for (int t = 0; t < 4; ++t) {
        const __m512i v = _mm512_loadu_si512(p + 64 * t);
        w[t] = _mm512_and_si512(v, lo4);
        w[t + 4] = _mm512_and_si512(_mm512_srli_epi16(v, 4), lo4);
      }
    }
    __m512 s, s2;  // Q4_K: s and mn; Q6_K: the halves' s
    if constexpr (kF32) {
      s = _mm512_loadu_ps(p + QB);
      s2 = _mm512_loadu_ps(p + QB + 64);
    } else {
      s = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + QB)));
    }
#pragma GCC unroll 8
    for (int m = 0; m < MT; ++m) {
      const int64_t i = (m0 + m) * nb + b;
      const int8_t* xq = x.q.data() + i * 32;
      // Two chains of four (Q6_K: one per half, each with its own scale): at
      // M = 1 one chain of eight would wait on vpdpbusd's latency.
      __m512i a0, a1;
      if constexpr (T == DType::Q6_K) {
        a0 = _mm512_set1_epi32(-c * x.sq16[size_t(2 * i)]);
        a1 = _mm512_set1_epi32(-c * x.sq16[size_t(2 * i + 1)]);
      } else {
        a0 = T == DType::Q4_K ? _mm512_setzero_si512() : _mm512_set1_epi32(-c * x.sq[size_t(i)]);
        a1 = _mm512_setzero_si512();
      }
#pragma GCC unroll 8
      for (int t = 0; t < 8; ++t) {
        int32_t xv;
        std::memcpy(&xv, xq + 4 * t, 4);
        const bool first = T == DType::Q6_K ? t < 4 : t % 2 == 0;
        if (first)
          a0 = _mm512_dpbusd_epi32(a0, w[t], _mm512_set1_epi32(xv));
        else
          a1 = _mm512_dpbusd_epi32(a1, w[t], _mm512_set1_epi32(xv));
      }
      const __m512 dx = _mm512_set1_ps(x.d[size_t(i)]);
      if constexpr (T == DType::Q6_K) {
        acc[m] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(a0), _mm512_mul_ps(s, dx), acc[m]);
        acc[m] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(a1), _mm512_mul_ps(s2, dx), acc[m]);
      } else {
        acc[m] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(a0, a1)), _mm512_mul_ps(s, dx), acc[m]);
        if constexpr (T == DType::Q4_K)
          acc[m] = _mm512_fnmadd_ps(s2, _mm512_set1_ps(x.d[size_t(i)] * float(x.sq[size_t(i)])), acc[m]);
      }
    }
  }
#pragma GCC unroll 8
  for (int m = 0; m < MT; ++m) {
    float* dst = y + (m0 + m) * ldy;
    __m512 v = acc[m];
    if (accumulate) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(cols, dst));
    _mm512_mask_storeu_ps(dst, cols, v);
  }
}

using PanelFn = void (*)(const uint8_t*, int64_t, const XQ32&, int64_t, float*, int64_t, __mmask16, bool);
constexpr int kMaxMT = 6;

template <DType T>
PanelFn panel_fn(int mt) {
  static constexpr PanelFn f[kMaxMT] = {panel_avx512<T, 1>, panel_avx512<T, 2>, panel_avx512<T, 3>,
                                        panel_avx512<T, 4>, panel_avx512<T, 5>, panel_avx512<T, 6>};
  return f[mt - 1];
}

PanelFn panel_fn(DType t, int mt) {
  switch (t) {
    case DType::Q8_0: return panel_fn<DType::Q8_0>(mt);
    case DType::Q4_0: return panel_fn<DType::Q4_0>(mt);
    case DType::Q6_K: return panel_fn<DType::Q6_K>(mt);
    default: return panel_fn<DType::Q4_K>(mt);
  }
}

}  // namespace

void packed_rows(Isa isa, const PackedWeight& w, const XQ32& x, int64_t p0, int64_t p1, float* y, bool accumulate) {
  const int64_t pstride = (w.K / 32) * block_stride(w.dtype);
  const uint8_t* base = w.bytes.data();
  const bool simd = isa == Isa::Avx512 && cpu().avx512_vnni && dispatch().vnni;
  // Panels in groups that stay in L2 (≤ 256 KiB) while every row of x passes
  // over them: x is read once per group, not once per panel.
  const int64_t group = std::max<int64_t>(1, (256 << 10) / std::max<int64_t>(1, pstride));
  for (int64_t g0 = p0; g0 < p1; g0 += group) {
    const int64_t g1 = std::min(p1, g0 + group);
    for (int64_t m0 = 0; m0 < x.M; m0 += kMaxMT) {
      const int mt = int(std::min<int64_t>(kMaxMT, x.M - m0));
      for (int64_t p = g0; p < g1; ++p) {
        const int64_t n0 = p * kRows, cols = std::min<int64_t>(kRows, w.N - n0);
        const uint8_t* panel = base + p * pstride;
        if (simd) {
          panel_fn(w.dtype, mt)(panel, w.K, x, m0, y + n0, w.N, __mmask16((1u << cols) - 1), accumulate);
          continue;
        }
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

}  // namespace

void quantize_x32(const float* x, int64_t M, int64_t K, XQ32& a) {
  if (K % 32) fail("quantize_x32", "K", "expected a multiple of 32, got " + std::to_string(K));
  a.M = M, a.K = K;
  a.q.resize(size_t(M * K));
  a.d.resize(size_t(M * K / 32));
  a.sq.resize(size_t(M * K / 32));
  a.sq16.resize(size_t(M * K / 16));
  const bool simd = dispatch().isa == Isa::Avx512 && cpu().avx512bw;
#pragma omp parallel for schedule(static) if (M * K >= (1 << 16))
  for (int64_t i = 0; i < M * K / 32; ++i) {
    int32_t* half = &a.sq16[size_t(2 * i)];
    (simd ? quantize_block_avx512 : quantize_block)(x + i * 32, &a.q[size_t(i * 32)], &a.d[size_t(i)], half);
    a.sq[size_t(i)] = half[0] + half[1];
  }
}

}  // namespace detail

bool can_pack(DType t) {
  return (t == DType::Q4_0 || t == DType::Q8_0 || t == DType::Q4_K || t == DType::Q6_K) && cpu().avx512f &&
         cpu().avx512bw && cpu().avx512_vnni;
}

PackedWeight pack_weight(const void* W, DType t, int64_t N, int64_t K) {
  if (t != DType::Q4_0 && t != DType::Q8_0 && t != DType::Q4_K && t != DType::Q6_K)
    fail("pack_weight", dtype_name(t), "expected Q4_0, Q8_0, Q4_K or Q6_K");
  const size_t rb = row_bytes(t, K);  // throws unless rows are whole blocks
  if (N <= 0) fail("pack_weight", "N", "expected > 0, got " + std::to_string(N));
  PackedWeight pw;
  pw.dtype = t, pw.N = N, pw.K = K, pw.src = W, pw.decode = t != DType::Q6_K;
  const int64_t nb = K / 32, panels = (N + detail::kRows - 1) / detail::kRows;
  const int64_t bs = detail::block_stride(t), qb = detail::qbytes(t);
  pw.bytes.assign(size_t(panels * nb * bs), 0);
  const uint8_t* w = static_cast<const uint8_t*>(W);
#pragma omp parallel for schedule(dynamic, 4)
  for (int64_t p = 0; p < panels; ++p) {
    uint8_t u[32];
    for (int r = 0; r < detail::kRows && p * detail::kRows + r < N; ++r) {
      const uint8_t* row = w + size_t(p * detail::kRows + r) * rb;
      for (int64_t b = 0; b < nb; ++b) {
        uint8_t* dst = pw.bytes.data() + (p * nb + b) * bs;
        uint16_t d16 = 0;
        float s = 0, mn = 0;
        detail::unpack(t, row, b, u, &d16, &s, &mn);
        if (detail::eight_bit(t)) {
          for (int k = 0; k < 32; ++k) dst[64 * (k / 4) + 4 * r + k % 4] = u[k];
        } else {
          for (int k = 0; k < 16; ++k) dst[64 * (k / 4) + 4 * r + k % 4] = uint8_t(u[k] | u[16 + k] << 4);
        }
        if (detail::f32_scales(t)) {
          std::memcpy(dst + qb + 4 * r, &s, 4);
          std::memcpy(dst + qb + 64 + 4 * r, &mn, 4);
        } else {
          std::memcpy(dst + qb + 2 * r, &d16, 2);
        }
      }
    }
  }
  return pw;
}

}  // namespace solar::kernels
