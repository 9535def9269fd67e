// GGML block quantizers (core/quantize.h), written from the algorithms of
// ggml's reference quantize_row_*_ref (ggml-quants.c).
//
// Byte identity with llama.cpp rests on doing every f32 operation as its C
// does, in its order: products and sums are separate roundings (this file is
// compiled with -ffp-contract=off, like ggml's reference code, which has no
// FMA), integer operands convert to float where C converts them, and
// float-to-int conversions behave as x86's truncating conversion does (an
// out-of-range or NaN value becomes INT_MIN, of which a char store keeps the
// low byte).
#include "core/quantize.h"

#include <algorithm>
#include <cfloat>
#include <climits>
#include <cmath>
#include <cstring>
#include <string>

#include "core/error.h"
#include "core/quant_impl.h"

namespace solar {

namespace {

void put_f16(uint8_t* p, float v) {
  const uint16_t h = f32_to_f16(v);
  p[0] = uint8_t(h);
  p[1] = uint8_t(h >> 8);
}
// The scale as stored, read back: the f16 rounding every later step sees.
float f16_round(float v) { return f16_to_f32(f32_to_f16(v)); }

// C's (int)v as x86 computes it (cvttss2si): truncation, INT_MIN when out of range or NaN.
int32_t trunc_i32(float v) { return v >= -2147483648.f && v < 2147483648.f ? int32_t(v) : INT32_MIN; }
// (int8_t)v: the low byte of the truncated value.
int8_t trunc_i8(float v) { return int8_t(uint8_t(uint32_t(trunc_i32(v)) & 0xFF)); }

// Round to nearest, ties to even, by adding 1.5·2^23 (the FPU does the
// rounding) and reading the low mantissa bits. Exact for |v| < 2^22; beyond
// that it returns what ggml's nearest_int returns, which callers then clamp.
int nearest_int(float v) {
  const float shifted = v + 12582912.f;
  int32_t bits;
  std::memcpy(&bits, &shifted, 4);
  return (bits & 0x007FFFFF) - 0x00400000;
}

constexpr float kGroupMaxEps = 1e-15f;  // below this a group's largest |x| counts as all zero

// ---- 32-element blocks ----

// Q4_0 {d; qs[16]} and Q5_0 {d; qh[4]; qs[16]}: symmetric, d = max / −2^(bits−1)
// where max is the signed element of largest magnitude (so it maps to quant 0).
template <int Bits>
void q_sym_block(const float* x, uint8_t* y) {
  constexpr int half = 1 << (Bits - 1), top = (1 << Bits) - 1;
  float amax = 0, max = 0;
  for (int j = 0; j < 32; ++j)
    if (amax < std::fabs(x[j])) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  const float d = max / float(-half);
  const float id = d != 0 ? 1.0f / d : 0.0f;
  put_f16(y, d);
  // q = min(top, (int8)(x/d + half + 0.5)): truncation after adding half + 0.5.
  auto q = [&](float v) {
    const float s = v * id;
    return uint8_t(std::min<int>(top, trunc_i8(s + (float(half) + 0.5f))));
  };
  uint8_t* qs = y + (Bits == 4 ? 2 : 6);
  uint32_t qh = 0;
  for (int j = 0; j < 16; ++j) {
    const uint8_t lo = q(x[j]), hi = q(x[j + 16]);
    // Q4_0 stores lo unmasked, as ggml does: only a quant that went negative
    // (a subnormal scale) has bits above the nibble.
    if (Bits == 4) {
      qs[j] = uint8_t(lo | hi << 4);
    } else {
      qs[j] = uint8_t((lo & 0xF) | (hi & 0xF) << 4);
      qh |= uint32_t((lo & 0x10) >> 4) << j | uint32_t((hi & 0x10) >> 4) << (j + 16);
    }
  }
  if (Bits == 5)
    for (int k = 0; k < 4; ++k) y[2 + k] = uint8_t(qh >> (8 * k));
}

// Q5_1 {d; m; qh[4]; qs[16]}: asymmetric, x ≈ d·q + m with m the block's min,
// q = (uint8)((x − m)/d + 0.5).
void q5_1_block(const float* x, uint8_t* y) {
  float min = FLT_MAX, max = -FLT_MAX;
  for (int j = 0; j < 32; ++j) {
    if (x[j] < min) min = x[j];
    if (x[j] > max) max = x[j];
  }
  const float d = (max - min) / 31.0f;
  const float id = d != 0 ? 1.0f / d : 0.0f;
  put_f16(y, d);
  put_f16(y + 2, min);
  auto q = [&](float v) {
    const float s = (v - min) * id;
    return uint8_t(uint32_t(trunc_i32(s + 0.5f)) & 0xFF);
  };
  uint32_t qh = 0;
  for (int j = 0; j < 16; ++j) {
    const uint8_t lo = q(x[j]), hi = q(x[j + 16]);
    y[8 + j] = uint8_t((lo & 0xF) | (hi & 0xF) << 4);
    qh |= uint32_t((lo & 0x10) >> 4) << j | uint32_t((hi & 0x10) >> 4) << (j + 16);
  }
  for (int k = 0; k < 4; ++k) y[4 + k] = uint8_t(qh >> (8 * k));
}

void q8_0_block(const float* x, uint8_t* y) {  // {d; int8 qs[32]}: d = amax / 127, q = roundf(x/d)
  float amax = 0;
  for (int j = 0; j < 32; ++j) amax = amax > std::fabs(x[j]) ? amax : std::fabs(x[j]);  // NaN propagates, as in ggml
  const float d = amax / 127.0f;
  const float id = d != 0 ? 1.0f / d : 0.0f;
  put_f16(y, d);
  for (int j = 0; j < 32; ++j) y[2 + j] = uint8_t(trunc_i8(std::round(x[j] * id)));
}

// ---- 256-element super-blocks ----

// make_qx_quants with rmse_type 1 (weights x²), no importance matrix: the
// scale of n symmetric quants in [−nmax, nmax) that minimises the weighted
// error, searched over 19 candidate inverse scales −(nmax + 0.1·is)/max.
// L gets the quants + nmax.
float qx_quants(int n, int nmax, const float* x, int8_t* L) {
  float max = 0, amax = 0;
  for (int i = 0; i < n; ++i) {
    const float ax = std::fabs(x[i]);
    if (ax > amax) {
      amax = ax;
      max = x[i];
    }
  }
  if (amax < kGroupMaxEps) {
    std::fill(L, L + n, int8_t(0));
    return 0.f;
  }
  auto quant = [&](float iscale, int i) { return std::max(-nmax, std::min(nmax - 1, nearest_int(iscale * x[i]))); };
  // Σ w·x·l and Σ w·l² for one candidate, each product rounded as C rounds (w·x)·l and (w·l)·l.
  auto sums = [&](float iscale, float& sumlx, float& suml2) {
    sumlx = suml2 = 0;
    for (int i = 0; i < n; ++i) {
      const int l = quant(iscale, i);
      const float w = x[i] * x[i];
      sumlx += w * x[i] * float(l);
      suml2 += w * float(l) * float(l);
    }
  };
  float iscale = float(-nmax) / max, sumlx, suml2;
  for (int i = 0; i < n; ++i) L[i] = int8_t(quant(iscale, i) + nmax);
  sums(iscale, sumlx, suml2);
  float scale = suml2 != 0 ? sumlx / suml2 : 0.0f;
  float best = scale * sumlx;
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    iscale = -(float(nmax) + 0.1f * float(is)) / max;
    sums(iscale, sumlx, suml2);
    if (suml2 > 0 && sumlx * sumlx > best * suml2) {
      for (int i = 0; i < n; ++i) L[i] = int8_t(quant(iscale, i) + nmax);
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

// make_qkx2_quants with squared error: an asymmetric fit x ≈ scale·l − the_min,
// l in [0, nmax], weighted; tries nstep + 1 inverse scales (rmin + rdelta·is +
// nmax)/(max − min) and, for each, the least-squares scale and min of the
// quants it gives. `min` moves to each better fit, and later candidates are
// measured from it (as ggml's loop does).
float qkx2_quants(int n, int nmax, const float* x, const float* w, uint8_t* L, float* the_min, uint8_t* Laux,
                  float rmin, float rdelta, int nstep) {
  float min = x[0], max = x[0];
  float sum_w = w[0], sum_x = sum_w * x[0];
  for (int i = 1; i < n; ++i) {
    if (x[i] < min) min = x[i];
    if (x[i] > max) max = x[i];
    sum_w += w[i];
    sum_x += w[i] * x[i];
  }
  if (min > 0) min = 0;
  if (max == min) {
    std::fill(L, L + n, uint8_t(0));
    *the_min = -min;
    return 0.f;
  }
  auto quant = [&](float iscale, int i) {
    return uint8_t(std::max(0, std::min(nmax, nearest_int(iscale * (x[i] - min)))));
  };
  auto error = [&](float scale, float mn, const uint8_t* q) {
    float e = 0;
    for (int i = 0; i < n; ++i) {
      const float diff = scale * float(q[i]) + mn - x[i];
      e += w[i] * (diff * diff);
    }
    return e;
  };
  float iscale = float(nmax) / (max - min);
  float scale = 1 / iscale;
  for (int i = 0; i < n; ++i) L[i] = quant(iscale, i);
  float best_error = error(scale, min, L);
  for (int is = 0; is <= nstep; ++is) {
    iscale = (rmin + rdelta * float(is) + float(nmax)) / (max - min);
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < n; ++i) {
      Laux[i] = quant(iscale, i);
      const float l = float(Laux[i]);
      sum_l += w[i] * l;
      sum_l2 += w[i] * l * l;
      sum_xl += w[i] * l * x[i];
    }
    const float D = sum_w * sum_l2 - sum_l * sum_l;
    if (!(D > 0)) continue;
    float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
    float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
    if (this_min > 0) {
      this_min = 0;
      this_scale = sum_xl / sum_l2;
    }
    const float cur_error = error(this_scale, this_min, Laux);
    if (cur_error < best_error) {
      std::copy(Laux, Laux + n, L);
      best_error = cur_error;
      scale = this_scale;
      min = this_min;
    }
  }
  *the_min = -min;
  return scale;
}

// Q4_K {d; dmin; scales[12]; qs[128]} and Q5_K {d; dmin; scales[12]; qh[32];
// qs[128]}: 8 sub-blocks of 32, each x ≈ d·sc·q − dmin·m with 6-bit sc and m
// and 4- or 5-bit q. Scales and mins pack as scale_min_k4 (quant_impl.h) reads them.
template <int Bits>
void qk_block(const float* x, uint8_t* y) {
  constexpr int nmax = (1 << Bits) - 1;
  // ggml's search parameters: Q4_K tries 21 scales from nmax − 1, Q5_K 16 from nmax − 0.5.
  constexpr float rmin = Bits == 4 ? -1.f : -0.5f;
  constexpr int nstep = Bits == 4 ? 20 : 15;
  uint8_t L[256], Laux[32];
  float weights[32], mins[8], scales[8];
  float max_scale = 0, max_min = 0;
  for (int j = 0; j < 8; ++j) {
    const float* xs = x + 32 * j;
    float sum_x2 = 0;
    for (int l = 0; l < 32; ++l) sum_x2 += xs[l] * xs[l];
    const float av_x = std::sqrt(sum_x2 / 32.0f);
    for (int l = 0; l < 32; ++l) weights[l] = av_x + std::fabs(xs[l]);
    scales[j] = qkx2_quants(32, nmax, xs, weights, L + 32 * j, &mins[j], Laux, rmin, 0.1f, nstep);
    if (scales[j] > max_scale) max_scale = scales[j];
    if (mins[j] > max_min) max_min = mins[j];
  }
  const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
  const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
  uint8_t* sc = y + 4;
  for (int j = 0; j < 8; ++j) {
    // A uint8_t keeps the low byte of a (rare) negative result, as ggml's does.
    const uint8_t ls = std::min<uint8_t>(63, uint8_t(nearest_int(inv_scale * scales[j])));
    const uint8_t lm = std::min<uint8_t>(63, uint8_t(nearest_int(inv_min * mins[j])));
    if (j < 4) {
      sc[j] = ls;
      sc[j + 4] = lm;
    } else {
      sc[j + 4] = uint8_t((ls & 0xF) | (lm & 0xF) << 4);
      sc[j - 4] |= uint8_t((ls >> 4) << 6);
      sc[j] |= uint8_t((lm >> 4) << 6);
    }
  }
  put_f16(y, max_scale / 63.f);
  put_f16(y + 2, max_min / 63.f);
  const float d_all = f16_round(max_scale / 63.f), dmin_all = f16_round(max_min / 63.f);
  for (int j = 0; j < 8; ++j) {
    int s, m;
    scale_min_k4(sc, j, s, m);  // as stored, so the quants fit the scales a reader sees
    const float d = d_all * float(s);
    if (d == 0) continue;  // keeps the search's quants
    const float dm = dmin_all * float(m);
    for (int i = 0; i < 32; ++i)
      L[32 * j + i] = uint8_t(std::max(0, std::min(nmax, nearest_int((x[32 * j + i] + dm) / d))));
  }
  // Element i: low nibble in qs[32·(i/64) + i%32] (high half of the byte for
  // the second 32 of each 64); Q5_K's fifth bit in qh[i%32], bit i/32.
  uint8_t* qs = y + (Bits == 4 ? 16 : 48);
  if (Bits == 5) std::memset(y + 16, 0, 32);
  for (int j = 0; j < 256; j += 64)
    for (int l = 0; l < 32; ++l) {
      const uint8_t a = L[j + l], b = L[j + l + 32];
      qs[j / 2 + l] = uint8_t((a & 0xF) | (b & 0xF) << 4);
      if (Bits == 5) y[16 + l] |= uint8_t((a >> 4) << (j / 32) | (b >> 4) << (j / 32 + 1));
    }
}

// Q6_K {ql[128]; qh[64]; int8 scales[16]; d}: 16 sub-blocks of 16, x ≈ d·sc·(q − 32)
// with 8-bit signed sc and 6-bit q.
void q6_k_block(const float* x, uint8_t* y) {
  int8_t L[256];
  float scales[16];
  float max_scale = 0, max_abs_scale = 0;
  for (int ib = 0; ib < 16; ++ib) {
    scales[ib] = qx_quants(16, 32, x + 16 * ib, L + 16 * ib);
    const float a = std::fabs(scales[ib]);
    if (a > max_abs_scale) {
      max_abs_scale = a;
      max_scale = scales[ib];
    }
  }
  uint8_t *ql = y, *qh = y + 128;
  int8_t* sc = reinterpret_cast<int8_t*>(y + 192);
  if (max_abs_scale < kGroupMaxEps) {
    std::memset(y, 0, 210);
    return;
  }
  const float iscale = -128.f / max_scale;
  put_f16(y + 208, 1 / iscale);
  const float d_all = f16_round(1 / iscale);
  for (int ib = 0; ib < 16; ++ib) sc[ib] = int8_t(std::min(127, nearest_int(iscale * scales[ib])));
  for (int j = 0; j < 16; ++j) {
    const float d = d_all * float(sc[j]);
    if (d == 0) continue;
    for (int i = 0; i < 16; ++i) L[16 * j + i] = int8_t(std::max(-32, std::min(31, nearest_int(x[16 * j + i] / d))) + 32);
  }
  // Halves of 128: quarter k of a half goes to ql nibble k/2 of ql[64h + 32(k%2) + l]
  // and bits 2k of qh[32h + l] (core/quant.cpp reads them back).
  for (int h = 0; h < 2; ++h)
    for (int l = 0; l < 32; ++l) {
      const int8_t* q = L + 128 * h + l;
      ql[64 * h + l] = uint8_t((q[0] & 0xF) | (q[64] & 0xF) << 4);
      ql[64 * h + 32 + l] = uint8_t((q[32] & 0xF) | (q[96] & 0xF) << 4);
      qh[32 * h + l] = uint8_t((q[0] >> 4) | (q[32] >> 4) << 2 | (q[64] >> 4) << 4 | (q[96] >> 4) << 6);
    }
}

}  // namespace

bool can_quantize(DType t) {
  switch (t) {
    case DType::F32: case DType::F16: case DType::BF16:
    case DType::Q4_0: case DType::Q5_0: case DType::Q5_1: case DType::Q8_0:
    case DType::Q4_K: case DType::Q5_K: case DType::Q6_K:
      return true;
    default:
      return false;
  }
}

void quantize_row(const float* src, DType t, void* dst, int64_t n) {
  if (is_float(t)) {
    convert(src, DType::F32, dst, t, size_t(n));
    return;
  }
  void (*block)(const float*, uint8_t*) = nullptr;
  switch (t) {
    case DType::Q4_0: block = q_sym_block<4>; break;
    case DType::Q5_0: block = q_sym_block<5>; break;
    case DType::Q5_1: block = q5_1_block; break;
    case DType::Q8_0: block = q8_0_block; break;
    case DType::Q4_K: block = qk_block<4>; break;
    case DType::Q5_K: block = qk_block<5>; break;
    case DType::Q6_K: block = q6_k_block; break;
    default:
      fail("quantize_row", dtype_name(t), "expected F32, F16, BF16, Q4_0, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K or Q6_K");
  }
  row_bytes(t, n);  // throws unless n is whole blocks
  const int64_t k = dtype_block_elems(t);
  const size_t bytes = dtype_block_bytes(t);
  uint8_t* p = static_cast<uint8_t*>(dst);
  for (int64_t i = 0; i < n; i += k, p += bytes) block(src + i, p);
}

}  // namespace solar
