// solar/kernels/qpanel_layout.h — where things sit in a block-quantized
// panel (qpanel.cpp's header comment describes the layout); shared by the
// VNNI/AVX2 kernels (qpanel.cpp) and the AMX ones (qpanel_amx.cpp).
#pragma once
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#include <cstdint>

#include "core/dtype.h"

namespace solar::kernels::detail::qpanel {

constexpr int kRows = 16;  // rows per panel: one per 32-bit lane of a 512-bit vector

// Panel flavours (see the header): Q4_0/Q8_0 keep the file's f16 d; Q4_K
// and Q6_K their files' scales per super-block (k_scales); the others an f32
// scale (and a min, has_min) per 16 with 8-bit u.
constexpr bool d16_type(DType t) { return t == DType::Q4_0 || t == DType::Q8_0; }
constexpr bool four_bit(DType t) { return t == DType::Q4_0 || t == DType::Q4_K; }
constexpr bool has_min(DType t) {
  return t == DType::Q4_K || t == DType::Q4_1 || t == DType::Q5_1 || t == DType::Q2_K || t == DType::Q5_K;
}
// w = s·(u − c): the integer zero point, 0 for the types with a min.
constexpr int zero_point(DType t) {
  return t == DType::Q8_0 ? 128 : t == DType::Q6_K ? 32 : t == DType::Q5_0 ? 16 : t == DType::Q4_0 ? 8 : t == DType::Q3_K ? 4 : 0;
}
constexpr bool six_bit(DType t) { return t == DType::Q6_K; }
constexpr bool k_scales(DType t) { return t == DType::Q4_K || t == DType::Q6_K; }
constexpr int qbytes(DType t) { return four_bit(t) ? 256 : six_bit(t) ? 384 : 512; }  // quant bytes per block of a panel
// Scale bytes per block of a panel: 16 f16 d; or 16 f32 per scale/min
// vector; k_scales: 32 bytes, and an eighth of the super-block's f16 d (and dmin).
constexpr int sbytes(DType t) {
  return d16_type(t) ? 32 : t == DType::Q4_K ? 40 : six_bit(t) ? 36 : has_min(t) ? 256 : 128;
}
constexpr int64_t block_stride(DType t) { return qbytes(t) + sbytes(t); }
// A k_scales type's 256 of K in a panel: 8 blocks, each its quants then its
// 32 bytes of scales, then the f16 d (and dmin) of 16 rows: one sequential
// stream per panel at decode. With the 8 blocks' scales after all their
// quants (2 KiB past them), Zen 4 streamed Q4_K from DRAM at 18 GB/s a core
// and Q6_K at 15, against 23-25 for both this way (W in L2: 50 and 57
// either way).
constexpr int64_t super_bytes(DType t) { return 8 * block_stride(t); }
constexpr int64_t block_offset(DType t, int64_t b) {  // where block b's quants start (its scales follow them)
  return k_scales(t) ? b / 8 * super_bytes(t) + b % 8 * (qbytes(t) + 32) : b * block_stride(t);
}
constexpr int64_t scales_at(DType t, int64_t b) { return block_offset(t, b) + qbytes(t); }
constexpr int64_t d_at(DType t, int64_t b) { return b / 8 * super_bytes(t) + 8 * (qbytes(t) + 32); }

// The 16 rows' f16 scales at p as f32.
__attribute__((target("avx512f"), always_inline)) inline __m512 f16x16(const uint8_t* p) {
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}

// Q6_K: a block's 8 quant vectors w (lane r: 4 weights of row r, their low
// nibbles) with bits 4-5 added from its two high-bit vectors at p — bits
// 2(t/2) of vector t % 2 for vector t.
__attribute__((target("avx512f,avx512bw"), always_inline)) inline void or_six_bit_highs(const uint8_t* p,
                                                                                     __m512i (&w)[8]) {
  const __m512i hi2 = _mm512_set1_epi8(0x30);
  const __m512i h[2] = {_mm512_loadu_si512(p), _mm512_loadu_si512(p + 64)};
#pragma GCC unroll 8
  for (int t = 0; t < 8; ++t) {
    const __m512i v = h[t % 2];
    const __m512i at4 = t / 2 == 0   ? _mm512_slli_epi16(v, 4)
                        : t / 2 == 1 ? _mm512_slli_epi16(v, 2)
                        : t / 2 == 2 ? v
                                     : _mm512_srli_epi16(v, 2);
    w[t] = _mm512_ternarylogic_epi32(w[t], at4, hi2, 0xF8);  // w | (at4 & 0x30)
  }
}

}  // namespace solar::kernels::detail::qpanel
