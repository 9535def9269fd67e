// Float weights repacked into panels (kernels.h, PackedWeight with dtype BF16,
// F16 or F32): one layout for decode and prefill.
//
// Why: row by row (gemv.cpp) each W row is its own stream and its sum ends
// in a cross-lane reduction, and prefill went through oneDNN, which reorders
// plain weights on every call (BF16) or needed them widened to f32 first
// (F16). A panel interleaves 16 rows: step j of panel p holds, in 32-bit lane
// r, W[16p + r] at the step's columns — a pair of K for BF16 (vdpbf16ps
// multiplies both by a broadcast pair of x), one column for F16 (widened
// with vcvtph2ps, then one FMA with a broadcast x) and F32 (one FMA). Nothing
// is reduced across
// lanes, and each panel is one contiguous stream (64 KiB at K = 2048).
// Prefill reuses a group of panels from L2 for 12 rows of x at a time: 24
// accumulators, 2 loads of W and 12 broadcasts per 24 multiply-adds.
//
// Sum order: every (row of x, row of W) has one f32 accumulator that takes
// the steps of K in order, in every tile shape. So a row's result is the
// same bits for any M, row range or thread count: a sequence decodes to the
// same logits alone or in a batch (serve's continuous batching).
//
// x: BF16 rounds it to bf16 (nearest even) first, as llama.cpp's BF16 dot
// products do; F16 and F32 keep it f32. K is padded to whole steps with zeros. Each
// block of 12 rows of x is interleaved by steps, so that a tile's 12
// broadcasts per step read one cache line: rows 4 KiB apart would all fall
// in one L1 set (measured: half the speed).
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

// One target for both: a tile instantiated for F16 emits no bf16 instruction.
#define SOLAR_FP512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16,fma,f16c")))
#define SOLAR_INLINE inline __attribute__((always_inline))

namespace solar::kernels::detail {
namespace {

constexpr int kRows = 16;
constexpr int kMaxMR = 12;  // rows of x per prefill tile

// Elements of K per step: a pair for BF16, one for F16 and F32. A step of a
// panel is 64 (BF16, F32) or 32 bytes (F16); a step of x is one 32-bit word.
int step_of(DType t) { return t == DType::BF16 ? 2 : 1; }
int elem_bytes(DType t) { return t == DType::F32 ? 4 : 2; }
int64_t steps_of(DType t, int64_t K) { return (K + step_of(t) - 1) / step_of(t); }
int64_t panel_bytes(DType t, int64_t K) { return steps_of(t, K) * step_of(t) * kRows * elem_bytes(t); }

// The multiply-add of one step: acc += W step (16 rows) × broadcast x word.
struct Bf16Step {
  static constexpr int kBytes = 64;
  SOLAR_FP512 static SOLAR_INLINE __m512 load(const uint8_t* p) { return _mm512_castsi512_ps(_mm512_loadu_si512(p)); }
  SOLAR_FP512 static SOLAR_INLINE __m512 mac(__m512 acc, __m512 w, int32_t x) {
    return _mm512_dpbf16_ps(acc, (__m512bh)_mm512_castps_si512(w), (__m512bh)_mm512_set1_epi32(x));
  }
};
struct F16Step {
  static constexpr int kBytes = 32;
  SOLAR_FP512 static SOLAR_INLINE __m512 load(const uint8_t* p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }
  SOLAR_FP512 static SOLAR_INLINE __m512 mac(__m512 acc, __m512 w, int32_t x) {
    float xf;
    std::memcpy(&xf, &x, 4);
    return _mm512_fmadd_ps(w, _mm512_set1_ps(xf), acc);
  }
};
struct F32Step {
  static constexpr int kBytes = 64;
  SOLAR_FP512 static SOLAR_INLINE __m512 load(const uint8_t* p) { return _mm512_loadu_ps(p); }
  SOLAR_FP512 static SOLAR_INLINE __m512 mac(__m512 acc, __m512 w, int32_t x) { return F16Step::mac(acc, w, x); }
};

// acc[m][q] (row m of x, panel q) over all steps, one accumulator each (see
// the header). xb: MR rows of x interleaved by steps; last_cols: valid rows
// of the last panel.
template <class S, int MR, int NP>
SOLAR_FP512 void tile(const int32_t* xb, const uint8_t* panels, int64_t pbytes, int64_t steps, float* y,
                                  int64_t ldy, __mmask16 last_cols, bool accumulate) {
  // GCC keeps acc in registers only when these loops are fully unrolled.
  __m512 acc[MR][NP];
#pragma GCC unroll 16
  for (int m = 0; m < MR; ++m)
#pragma GCC unroll 8
    for (int q = 0; q < NP; ++q) acc[m][q] = _mm512_setzero_ps();
  for (int64_t j = 0; j < steps; ++j) {
    __m512 wv[NP];
#pragma GCC unroll 8
    for (int q = 0; q < NP; ++q) wv[q] = S::load(panels + q * pbytes + j * S::kBytes);
#pragma GCC unroll 16
    for (int m = 0; m < MR; ++m) {
      const int32_t x = xb[j * MR + m];
#pragma GCC unroll 8
      for (int q = 0; q < NP; ++q) acc[m][q] = S::mac(acc[m][q], wv[q], x);
    }
  }
#pragma GCC unroll 16
  for (int m = 0; m < MR; ++m)
#pragma GCC unroll 8
    for (int q = 0; q < NP; ++q) {
      const __mmask16 k = q == NP - 1 ? last_cols : __mmask16(0xffff);
      float* dst = y + m * ldy + q * kRows;
      __m512 v = acc[m][q];
      if (accumulate) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(k, dst));
      _mm512_mask_storeu_ps(dst, k, v);
    }
}

using TileFn = void (*)(const int32_t*, const uint8_t*, int64_t, int64_t, float*, int64_t, __mmask16, bool);

// Panels per tile for MR rows of x: decode keeps 8 chains in flight (the
// multiply-add's latency), prefill 2 panels × up to 12 rows (24 registers).
constexpr int np_for(int mr) { return mr == 1 ? 8 : mr <= 3 ? 4 : 2; }

int tile_np(int mr, int np) {
  const int NP = np_for(mr);
  return np >= NP ? NP : np >= 4 && NP >= 8 ? 4 : np >= 2 && NP >= 4 ? 2 : 1;
}

template <class S, int MR>
TileFn tile_fn(int np) {
  switch (np) {
    case 8: if constexpr (np_for(MR) >= 8) return tile<S, MR, 8>; break;
    case 4: if constexpr (np_for(MR) >= 4) return tile<S, MR, 4>; break;
    case 2: if constexpr (np_for(MR) >= 2) return tile<S, MR, 2>; break;
    default: break;
  }
  return tile<S, MR, 1>;
}

template <class S>
TileFn pick(int mr, int np) {
  switch (mr) {
    case 1: return tile_fn<S, 1>(np);
    case 2: return tile_fn<S, 2>(np);
    case 3: return tile_fn<S, 3>(np);
    case 4: return tile_fn<S, 4>(np);
    case 5: return tile_fn<S, 5>(np);
    case 6: return tile_fn<S, 6>(np);
    case 7: return tile_fn<S, 7>(np);
    case 8: return tile_fn<S, 8>(np);
    case 9: return tile_fn<S, 9>(np);
    case 10: return tile_fn<S, 10>(np);
    case 11: return tile_fn<S, 11>(np);
    default: return tile_fn<S, 12>(np);
  }
}

// Element i of a panel's storage as f32.
float widen(DType t, const uint8_t* p, int64_t i) {
  if (t == DType::F32) {
    float v;
    std::memcpy(&v, p + 4 * i, 4);
    return v;
  }
  uint16_t h;
  std::memcpy(&h, p + 2 * i, 2);
  return t == DType::BF16 ? bf16_to_f32(h) : f16_to_f32(h);
}

// The scalar definition the tests hold the SIMD paths to: the panel read
// back as W, the steps summed in order in f32 (vdpbf16ps may round inside a
// pair differently, FMA skips the product's rounding: the tests allow f32
// rounding). x: the row's word of step j at x[stride·j].
void panel_scalar(DType t, const uint8_t* panel, const int32_t* x, int64_t stride, int64_t steps, float* out) {
  const int e = step_of(t);
  for (int r = 0; r < kRows; ++r) {
    float s = 0;
    for (int64_t j = 0; j < steps; ++j) {
      const int64_t i = (j * kRows + r) * e;
      if (t == DType::BF16) {
        uint16_t xh[2];
        std::memcpy(xh, &x[stride * j], 4);
        s += widen(t, panel, i) * bf16_to_f32(xh[0]) + widen(t, panel, i + 1) * bf16_to_f32(xh[1]);
      } else {
        float xf;
        std::memcpy(&xf, &x[stride * j], 4);
        s += widen(t, panel, i) * xf;
      }
    }
    out[r] = s;
  }
}

bool simd_for(DType t) {
  const Dispatch& d = dispatch();
  if (d.isa != Isa::Avx512) return false;
  if (t == DType::BF16) return d.bf16_dot && cpu().avx512_bf16;
  return cpu().fma && (t == DType::F32 || cpu().f16c);
}

}  // namespace

bool float_packable(DType t) {
  const CpuFeatures& c = cpu();
  if (t == DType::BF16) return c.avx512f && c.avx512bw && c.avx512_bf16;
  if (t == DType::F16) return c.avx512f && c.avx512bw && c.f16c && c.fma;
  return t == DType::F32 && c.avx512f && c.avx512bw && c.fma;
}

size_t float_packed_size(DType t, int64_t N, int64_t K) {
  return size_t((N + kRows - 1) / kRows) * size_t(panel_bytes(t, K));
}

void float_pack(DType t, const void* W, int64_t N, int64_t K, uint8_t* out) {
  const int e = step_of(t), eb = elem_bytes(t);
  const int64_t steps = steps_of(t, K), panels = (N + kRows - 1) / kRows, pb = panel_bytes(t, K);
  const uint8_t* w = static_cast<const uint8_t*>(W);
#pragma omp parallel for schedule(dynamic, 4)
  for (int64_t p = 0; p < panels; ++p) {
    uint8_t* dst = out + p * pb;
    for (int r = 0; r < kRows; ++r) {
      const int64_t n = p * kRows + r;
      for (int64_t j = 0; j < steps; ++j)
        for (int i = 0; i < e; ++i) {
          const int64_t k = e * j + i;
          uint8_t* d = dst + ((j * kRows + r) * e + i) * eb;
          if (n < N && k < K) std::memcpy(d, w + (n * K + k) * eb, size_t(eb));
          else std::memset(d, 0, size_t(eb));
        }
    }
  }
}

void float_x_tiles(DType t, const float* x, int64_t M, int64_t K, int32_t* xb) {
  const int64_t steps = steps_of(t, K);
  const bool simd = dispatch().isa == Isa::Avx512;
  // Rows in parallel: a prefill of 512 rows runs this before every linear layer.
  parallel_for(M, M * K, [&](int64_t m) {
    const int64_t mb = m / kMaxMR * kMaxMR, mr = std::min<int64_t>(kMaxMR, M - mb);
    int32_t* dst = xb + mb * steps + (m - mb);
    if (t != DType::BF16) {
      for (int64_t j = 0; j < steps; ++j) std::memcpy(&dst[mr * j], &x[m * K + j], 4);
      return;
    }
    thread_local std::vector<uint16_t> buffer;  // each thread's own row
    std::vector<uint16_t>& row = buffer;
    row.resize(size_t(2 * steps));
    if (simd) {
      to_bf16_avx512(x + m * K, K, row.data());
    } else {
      for (int64_t k = 0; k < K; ++k) row[size_t(k)] = f32_to_bf16(x[m * K + k]);
    }
    if (2 * steps > K) row[size_t(K)] = 0;
    for (int64_t j = 0; j < steps; ++j) std::memcpy(&dst[mr * j], &row[size_t(2 * j)], 4);
  });
}

int64_t float_x_words(DType t, int64_t M, int64_t K) { return M * steps_of(t, K); }

void float_packed_rows(const PackedWeight& w, const int32_t* xb, int64_t M, int64_t p0, int64_t p1, float* y,
                       bool accumulate) {
  const int64_t steps = steps_of(w.dtype, w.K), pb = panel_bytes(w.dtype, w.K);
  const uint8_t* base = w.bytes.data();
  if (!simd_for(w.dtype)) {
    float out[kRows];
    for (int64_t p = p0; p < p1; ++p) {
      const int64_t n0 = p * kRows, cols = std::min<int64_t>(kRows, w.N - n0);
      for (int64_t m = 0; m < M; ++m) {
        const int64_t mb = m / kMaxMR * kMaxMR, mr = std::min<int64_t>(kMaxMR, M - mb);
        panel_scalar(w.dtype, base + p * pb, xb + mb * steps + (m - mb), mr, steps, out);
        float* dst = y + m * w.N + n0;
        for (int64_t r = 0; r < cols; ++r) dst[r] = accumulate ? dst[r] + out[r] : out[r];
      }
    }
    return;
  }
  auto fn = w.dtype == DType::BF16 ? pick<Bf16Step> : w.dtype == DType::F16 ? pick<F16Step> : pick<F32Step>;
  // Groups of up to 8 panels; every block of 12 rows of x passes over a
  // group while it is in L2, in tiles of as many panels as its row count
  // allows (np_for). Tiles change no sums (see the header).
  for (int64_t g = p0; g < p1; g += 8) {
    const int64_t g1 = std::min(p1, g + 8);
    for (int64_t m0 = 0; m0 < M; m0 += kMaxMR) {
      const int mr = int(std::min<int64_t>(kMaxMR, M - m0));
      for (int64_t p = g; p < g1;) {
        const int np = tile_np(mr, int(g1 - p));
        const int64_t last = std::min<int64_t>(kRows, w.N - (p + np - 1) * kRows);
        fn(mr, np)(xb + m0 * steps, base + p * pb, pb, steps, y + m0 * w.N + p * kRows, w.N,
                   __mmask16((1u << last) - 1), accumulate);
        p += np;
      }
    }
  }
}

}  // namespace solar::kernels::detail
