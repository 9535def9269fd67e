// The reference dequantizer of GGML's block types (declared in core/dtype.h).
//
// Written from the published block layouts (ggml-common.h) and the
// semantics of ggml's dequantize_row_*: every value is an f32 product of an
// f16 scale (or a scale times a small integer sub-scale, rounded to f32
// first) and an integer quant, minus an f32 offset where the type has one.
// Each operation is a separate f32 rounding, in ggml's order: the file is
// compiled with -ffp-contract=off so the compiler cannot fuse a·b − c into
// one FMA, which would round once and differ in the last bit.
#include <cstdint>
#include <string>

#include "core/dtype.h"
#include "core/error.h"
#include "core/quant_impl.h"

namespace solar {

void scale_min_k4(const uint8_t* s, int j, int& sc, int& m) {
  if (j < 4) {
    sc = s[j] & 63;
    m = s[j + 4] & 63;
  } else {
    sc = (s[j + 4] & 0xF) | (s[j - 4] >> 6) << 4;
    m = (s[j + 4] >> 4) | (s[j] >> 6) << 4;
  }
}

namespace {

float f16_at(const uint8_t* p) { return f16_to_f32(uint16_t(p[0] | p[1] << 8)); }

// 32-element blocks. Quants run in two halves: element j (< 16) takes the
// low nibble of qs[j], element j + 16 the high nibble.
void q4_0(const uint8_t* b, float* y) {  // {d; qs[16]}: y = (q − 8)·d
  const float d = f16_at(b);
  for (int j = 0; j < 16; ++j) {
    y[j] = float(int(b[2 + j] & 0xF) - 8) * d;
    y[j + 16] = float(int(b[2 + j] >> 4) - 8) * d;
  }
}

void q4_1(const uint8_t* b, float* y) {  // {d; m; qs[16]}: y = q·d + m
  const float d = f16_at(b), m = f16_at(b + 2);
  for (int j = 0; j < 16; ++j) {
    y[j] = float(b[4 + j] & 0xF) * d + m;
    y[j + 16] = float(b[4 + j] >> 4) * d + m;
  }
}

// Q5: bit j of the little-endian u32 qh is the fifth bit of element j.
void q5(const uint8_t* qh_p, const uint8_t* qs, float d, float m, bool has_min, float* y) {
  const uint32_t qh = uint32_t(qh_p[0]) | uint32_t(qh_p[1]) << 8 | uint32_t(qh_p[2]) << 16 | uint32_t(qh_p[3]) << 24;
  for (int j = 0; j < 16; ++j) {
    int lo = int((qs[j] & 0xF) | ((qh >> j) & 1) << 4), hi = int((qs[j] >> 4) | ((qh >> (j + 16)) & 1) << 4);
    if (has_min) {
      y[j] = float(lo) * d + m;
      y[j + 16] = float(hi) * d + m;
    } else {
      y[j] = float(lo - 16) * d;
      y[j + 16] = float(hi - 16) * d;
    }
  }
}

void q8_0(const uint8_t* b, float* y) {  // {d; int8 qs[32]}: y = q·d
  const float d = f16_at(b);
  for (int j = 0; j < 32; ++j) y[j] = float(int8_t(b[2 + j])) * d;
}

// 256-element super-blocks of 16 (Q2_K, Q3_K, Q6_K) or 8 (Q4_K, Q5_K)
// sub-blocks. Element i's 2-bit quant (Q2_K, Q3_K low bits) sits in
// qs[32·(i/128) + i%32] at bit shift 2·((i/32)%4); Q3_K's high bit in
// hmask[i%32] bit (i/32); nibbles of Q4_K/Q5_K in qs[32·(i/64) + i%32],
// low nibble for the first 32 of each 64.

void q2_k(const uint8_t* b, float* y) {  // {scales[16]; qs[64]; d; dmin}
  const uint8_t *sc = b, *qs = b + 16;
  const float d = f16_at(b + 80), dmin = f16_at(b + 82);
  for (int i = 0; i < 256; ++i) {
    const uint8_t s = sc[i / 16];
    const float dl = d * float(s & 0xF), ml = dmin * float(s >> 4);
    const int q = (qs[32 * (i / 128) + i % 32] >> (2 * ((i / 32) % 4))) & 3;
    y[i] = dl * float(q) - ml;
  }
}

void q3_k(const uint8_t* b, float* y) {  // {hmask[32]; qs[64]; scales[12]; d}
  const uint8_t *hm = b, *qs = b + 32, *sc = b + 96;
  const float d = f16_at(b + 108);
  // 16 six-bit scales: low nibbles from bytes 0..7 (byte j%8, high nibble for
  // j >= 8), high two bits from bytes 8..11 (byte 8 + j%4, shift 2·(j/4)).
  int scale[16];
  for (int j = 0; j < 16; ++j) {
    int lo = (sc[j % 8] >> (4 * (j / 8))) & 0xF, hi = (sc[8 + j % 4] >> (2 * (j / 4))) & 3;
    scale[j] = (lo | hi << 4) - 32;
  }
  for (int i = 0; i < 256; ++i) {
    const float dl = d * float(scale[i / 16]);
    int q = (qs[32 * (i / 128) + i % 32] >> (2 * ((i / 32) % 4))) & 3;
    if (!((hm[i % 32] >> (i / 32)) & 1)) q -= 4;
    y[i] = dl * float(q);
  }
}

void q45_k(const uint8_t* b, const uint8_t* qh, const uint8_t* qs, float* y) {
  const float d = f16_at(b), dmin = f16_at(b + 2);
  for (int j = 0; j < 8; ++j) {
    int sc, m;
    scale_min_k4(b + 4, j, sc, m);
    const float dl = d * float(sc), ml = dmin * float(m);
    for (int l = 0; l < 32; ++l) {
      const int i = 32 * j + l;
      int q = (qs[32 * (j / 2) + l] >> (4 * (j % 2))) & 0xF;
      if (qh) q |= ((qh[l] >> j) & 1) << 4;
      y[i] = dl * float(q) - ml;
    }
  }
}
void q4_k(const uint8_t* b, float* y) { q45_k(b, nullptr, b + 16, y); }  // {d; dmin; scales[12]; qs[128]}
void q5_k(const uint8_t* b, float* y) { q45_k(b, b + 16, b + 48, y); }   // {d; dmin; scales[12]; qh[32]; qs[128]}

void q6_k(const uint8_t* b, float* y) {  // {ql[128]; qh[64]; int8 scales[16]; d}
  const uint8_t *ql = b, *qh = b + 128;
  const int8_t* sc = reinterpret_cast<const int8_t*>(b + 192);
  const float d = f16_at(b + 208);
  // Halves h of 128; within one, quarter k of 32 takes ql[64h + 32(k%2) + l]
  // (nibble k/2) and bits 2k of qh[32h + l]; each 16 has its own scale.
  for (int h = 0; h < 2; ++h)
    for (int k = 0; k < 4; ++k)
      for (int half = 0; half < 2; ++half) {
        const int i0 = 128 * h + 32 * k + 16 * half;
        const float dl = d * float(sc[i0 / 16]);  // ggml's order: (d·scale)·q
        for (int l = 16 * half; l < 16 * half + 16; ++l) {
          const int lo = (ql[64 * h + 32 * (k % 2) + l] >> (4 * (k / 2))) & 0xF;
          const int hi = (qh[32 * h + l] >> (2 * k)) & 3;
          y[128 * h + 32 * k + l] = dl * float((lo | hi << 4) - 32);
        }
      }
}

}  // namespace

void dequantize_row(const void* src, DType t, float* dst, int64_t n) {
  if (is_float(t)) {
    convert(src, t, dst, DType::F32, size_t(n));
    return;
  }
  void (*block)(const uint8_t*, float*) = nullptr;
  switch (t) {
    case DType::Q4_0: block = q4_0; break;
    case DType::Q4_1: block = q4_1; break;
    case DType::Q5_0:
      block = [](const uint8_t* b, float* y) { q5(b + 2, b + 6, f16_at(b), 0.f, false, y); };
      break;
    case DType::Q5_1:
      block = [](const uint8_t* b, float* y) { q5(b + 4, b + 8, f16_at(b), f16_at(b + 2), true, y); };
      break;
    case DType::Q8_0: block = q8_0; break;
    case DType::Q2_K: block = q2_k; break;
    case DType::Q3_K: block = q3_k; break;
    case DType::Q4_K: block = q4_k; break;
    case DType::Q5_K: block = q5_k; break;
    case DType::Q6_K: block = q6_k; break;
    default: fail("dequantize_row", dtype_name(t), "expected a float or GGML block type");
  }
  row_bytes(t, n);  // throws unless n is whole blocks
  const int64_t k = dtype_block_elems(t);
  const size_t bytes = dtype_block_bytes(t);
  const uint8_t* p = static_cast<const uint8_t*>(src);
  for (int64_t i = 0; i < n; i += k, p += bytes) block(p, dst + i);
}

}  // namespace solar
