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
// AVX2 (no AVX-512: Zen 3, Haswell … Alder Lake) reads the same panels as
// two ymm halves of 8 rows: prefill in tiles of 6 rows of x × 1 panel (12
// accumulators, 2 W, 1 broadcast: 15 of 16 registers), decode
// 4 panels at once (8 chains in flight). BF16 has no dot product there: each
// lane's pair is widened (low << 16, high & 0xffff0000, or by two shifts in
// the 6-row tile, which has no register for the mask) for two FMAs, even
// column first, against x's pair given as two f32 words, not rounded (bf16
// x would save nothing here and cost precision: this is the widened path). Measured (bench_kernels --packed,
// "AMD EPYC (2 logical CPUs); detected: avx2 fma f16c", Zen 3 shared with
// other jobs, load ~4.4: two runs, W[5632,2048], 1 thread): prefill M=512 F32
// 63.5–88.6 GFLOP/s, 1.10–1.12× oneDNN 2.6.3's f32 matmul in the same run
// (2 threads 1.01–1.09×); BF16 1.09–1.14× and F16 0.97–1.07× W widened +
// oneDNN f32. Decode M=1, panels against gemv.cpp's rows: F32 22.9–23.9 GB/s
// against 16.0–16.4, BF16 21.4–22.0 against 10.0–10.6, F16 19.4–24.2 against
// 8.9–9.6. BF16 is no faster than F32 here, so embed keeps F32 without
// AVX512-BF16.
//
// Sum order: every (row of x, row of W) has one f32 accumulator that takes
// the steps of K in order, in every tile shape. So a row's result is the
// same bits for any M, row range or thread count: a sequence decodes to the
// same logits alone or in a batch (serve's continuous batching).
//
// x: BF16 with vdpbf16ps rounds it to bf16 (nearest even) first, as
// llama.cpp's BF16 dot products do; AVX2's BF16, F16 and F32 keep it f32. K is padded to whole steps with zeros. Each
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
#include <utility>
#include <vector>

#include "core/error.h"
#include "kernels/kernels.h"
#include "kernels/kernels_impl.h"

// One target for both: a tile instantiated for F16 emits no bf16 instruction.
#define SOLAR_FP512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16,fma,f16c")))
#define SOLAR_FP256 __attribute__((target("avx2,fma,f16c")))
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

// AVX2: a panel's 16 rows are two ymm halves. The same sums as above, one
// f32 accumulator per element taking the steps in order; BF16 widens each
// lane's pair (the low element by a shift, the high one by masking) and
// takes two FMAs per step, even column first, against x already widened
// (x_words: two f32 words per step, so a broadcast needs no shift).
// tight: no register to spare for the mask (6 rows of x: 12 accumulators, 2
// of W, a broadcast); two shifts then clear the low half instead.
struct Bf16Half {
  static constexpr int kBytes = 64, kWords = 2, kMaxMR = 6;
  SOLAR_FP256 static SOLAR_INLINE __m256 load(const uint8_t* p, int h, int i, bool tight) {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32 * h));
    if (i == 0) return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
    return _mm256_castsi256_ps(tight ? _mm256_slli_epi32(_mm256_srli_epi32(v, 16), 16)
                                     : _mm256_and_si256(v, _mm256_set1_epi32(int32_t(0xffff0000u))));
  }
};
struct F16Half {
  static constexpr int kBytes = 32, kWords = 1, kMaxMR = 6;
  SOLAR_FP256 static SOLAR_INLINE __m256 load(const uint8_t* p, int h, int, bool) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16 * h)));
  }
};
struct F32Half {
  static constexpr int kBytes = 64, kWords = 1, kMaxMR = 6;
  SOLAR_FP256 static SOLAR_INLINE __m256 load(const uint8_t* p, int h, int, bool) {
    return _mm256_loadu_ps(reinterpret_cast<const float*>(p + 32 * h));
  }
};

// 16 results to dst[0, cols): the last panel's padding rows are not stored.
SOLAR_FP256 SOLAR_INLINE void store16(float* dst, __m256 lo, __m256 hi, int cols, bool accumulate) {
  if (cols == kRows) {
    if (accumulate) lo = _mm256_add_ps(lo, _mm256_loadu_ps(dst)), hi = _mm256_add_ps(hi, _mm256_loadu_ps(dst + 8));
    _mm256_storeu_ps(dst, lo);
    _mm256_storeu_ps(dst + 8, hi);
    return;
  }
  float v[kRows];
  _mm256_storeu_ps(v, lo);
  _mm256_storeu_ps(v + 8, hi);
  for (int r = 0; r < cols; ++r) dst[r] = accumulate ? dst[r] + v[r] : v[r];
}

// acc[m][q] as tile() above, for MR rows of x inside a block of x_tiles:
// word i of step j of row m at xb[j·xstep + m·kWords + i].
template <class S, int MR, int NP>
SOLAR_FP256 void tile256(const int32_t* xb, int64_t xstep, const uint8_t* panels, int64_t pbytes, int64_t steps,
                         float* y, int64_t ldy, int last_cols, bool accumulate) {
  __m256 acc[MR][2 * NP];
#pragma GCC unroll 8
  for (int m = 0; m < MR; ++m)
#pragma GCC unroll 8
    for (int v = 0; v < 2 * NP; ++v) acc[m][v] = _mm256_setzero_ps();
  for (int64_t j = 0; j < steps; ++j) {
    const uint8_t* w = panels + j * S::kBytes;
    const int32_t* x = xb + j * xstep;
#pragma GCC unroll 2
    for (int i = 0; i < S::kWords; ++i) {
      __m256 wv[2 * NP];
#pragma GCC unroll 8
      for (int v = 0; v < 2 * NP; ++v) wv[v] = S::load(w + v / 2 * pbytes, v % 2, i, MR > 4);
#pragma GCC unroll 8
      for (int m = 0; m < MR; ++m) {
        const __m256 xv = _mm256_castsi256_ps(_mm256_set1_epi32(x[m * S::kWords + i]));
#pragma GCC unroll 8
        for (int v = 0; v < 2 * NP; ++v) acc[m][v] = _mm256_fmadd_ps(wv[v], xv, acc[m][v]);
      }
    }
  }
#pragma GCC unroll 8
  for (int m = 0; m < MR; ++m)
#pragma GCC unroll 4
    for (int q = 0; q < NP; ++q)
      store16(y + m * ldy + q * kRows, acc[m][2 * q], acc[m][2 * q + 1], q == NP - 1 ? last_cols : kRows, accumulate);
}

using TileFn256 = void (*)(const int32_t*, int64_t, const uint8_t*, int64_t, int64_t, float*, int64_t, int, bool);

// 16 registers: decode 4 panels (8 chains in flight), prefill kMaxMR rows
// × 1 panel (12 accumulators, 2 of W, 1 broadcast; BF16 with its mask there
// spilled, 27% slower than 4 rows: two shifts instead, 4 → 6 rows took a
// thread's prefill from 82–86 to 93–96 GFLOP/s on Zen 3).
constexpr int kGroup256 = 4;  // panels per pass of a block of x: F32 at K = 2048 fills Zen 3's 512 KiB L2
constexpr int np256_for(int mr) { return mr == 1 ? 4 : mr <= 3 ? 2 : 1; }

// The panels of a tile of `rows` rows of x, `left` of its group left: a
// size tile_fn256 has.
int tile_np256(int rows, int left) {
  const int NP = np256_for(rows);
  return left >= NP ? NP : left >= 2 ? 2 : 1;
}

template <class S, int MR>
TileFn256 tile_fn256(int np) {
  if constexpr (np256_for(MR) >= 4) if (np >= 4) return tile256<S, MR, 4>;
  if constexpr (np256_for(MR) >= 2) if (np >= 2) return tile256<S, MR, 2>;
  return tile256<S, MR, 1>;
}

template <class S, int... MR>
TileFn256 pick256_of(int mr, int np, std::integer_sequence<int, MR...>) {
  TileFn256 f = nullptr;
  ((mr == MR + 1 ? f = tile_fn256<S, MR + 1>(np) : f), ...);
  return f;
}
template <class S>
TileFn256 pick256(int mr, int np) { return pick256_of<S>(mr, np, std::make_integer_sequence<int, S::kMaxMR>()); }

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

bool avx2_fma() { return cpu().avx2 && cpu().fma && cpu().f16c; }

// The kernels float_packed_rows runs for t: AVX-512 where the CPU and
// dispatch() allow (BF16 needs vdpbf16ps), else AVX2, else the scalar loop.
Isa path_for(DType t) {
  const Dispatch& d = dispatch();
  const CpuFeatures& c = cpu();
  if (d.isa == Isa::Avx512 && (t != DType::BF16 || (d.bf16_dot && c.avx512_bf16))) return Isa::Avx512;
  return d.isa != Isa::Scalar && avx2_fma() ? Isa::Avx2 : Isa::Scalar;
}

// 32-bit words of x per step: AVX2 takes a BF16 pair as two f32.
int x_words(DType t) { return t == DType::BF16 && path_for(t) == Isa::Avx2 ? 2 : 1; }

}  // namespace

bool float_packable(DType t) { return is_float(t) && avx2_fma(); }

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
  const int64_t steps = steps_of(t, K), xw = x_words(t);
  const bool simd = dispatch().isa == Isa::Avx512;
  // Rows in parallel: a prefill of 512 rows runs this before every linear layer.
  parallel_for(M, M * K, [&](int64_t m) {
    const int64_t mb = m / kMaxMR * kMaxMR, mr = std::min<int64_t>(kMaxMR, M - mb);
    int32_t* dst = xb + (mb * steps + m - mb) * xw;
    if (t != DType::BF16) {
      for (int64_t j = 0; j < steps; ++j) std::memcpy(&dst[mr * j], &x[m * K + j], 4);
      return;
    }
    if (xw == 2) {  // AVX2 widens the weights and multiplies in f32: x stays f32 (rounding it would buy nothing)
      for (int64_t j = 0; j < steps; ++j)
        for (int i = 0; i < 2; ++i) {
          const float v = 2 * j + i < K ? x[m * K + 2 * j + i] : 0.f;
          std::memcpy(&dst[2 * mr * j + i], &v, 4);
        }
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

int64_t float_x_words(DType t, int64_t M, int64_t K) { return M * steps_of(t, K) * x_words(t); }

namespace {

void rows_scalar(const PackedWeight& w, const int32_t* xb, int64_t M, int64_t p0, int64_t p1, float* y,
                 bool accumulate) {
  const int64_t steps = steps_of(w.dtype, w.K), pb = panel_bytes(w.dtype, w.K);
  float out[kRows];
  for (int64_t p = p0; p < p1; ++p) {
    const int64_t n0 = p * kRows, cols = std::min<int64_t>(kRows, w.N - n0);
    for (int64_t m = 0; m < M; ++m) {
      const int64_t mb = m / kMaxMR * kMaxMR, mr = std::min<int64_t>(kMaxMR, M - mb);
      panel_scalar(w.dtype, w.bytes.data() + p * pb, xb + mb * steps + (m - mb), mr, steps, out);
      float* dst = y + m * w.N + n0;
      for (int64_t r = 0; r < cols; ++r) dst[r] = accumulate ? dst[r] + out[r] : out[r];
    }
  }
}

void rows512(const PackedWeight& w, const int32_t* xb, int64_t M, int64_t p0, int64_t p1, float* y,
             bool accumulate) {
  const int64_t steps = steps_of(w.dtype, w.K), pb = panel_bytes(w.dtype, w.K);
  const uint8_t* base = w.bytes.data();
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

// As rows512, each block of 12 rows of x in tiles of at most kMaxMR rows.
void rows256(const PackedWeight& w, const int32_t* xb, int64_t M, int64_t p0, int64_t p1, float* y,
             bool accumulate) {
  const int64_t steps = steps_of(w.dtype, w.K), pb = panel_bytes(w.dtype, w.K), xw = x_words(w.dtype);
  const uint8_t* base = w.bytes.data();
  const bool bf16 = w.dtype == DType::BF16;
  auto fn = bf16 ? pick256<Bf16Half> : w.dtype == DType::F16 ? pick256<F16Half> : pick256<F32Half>;
  const int max_mr = bf16 ? Bf16Half::kMaxMR : F32Half::kMaxMR;
  for (int64_t g = p0; g < p1; g += kGroup256) {
    const int64_t g1 = std::min(p1, g + kGroup256);
    for (int64_t m0 = 0; m0 < M; m0 += kMaxMR) {
      const int mr = int(std::min<int64_t>(kMaxMR, M - m0)), parts = (mr + max_mr - 1) / max_mr;
      for (int64_t p = g; p < g1;) {
        const int np = tile_np256((mr + parts - 1) / parts, int(g1 - p));
        const int last = int(std::min<int64_t>(kRows, w.N - (p + np - 1) * kRows));
        for (int part = 0, r0 = 0; part < parts; ++part) {
          const int rows = (mr - r0) / (parts - part);
          fn(rows, np)(xb + (m0 * steps + r0) * xw, mr * xw, base + p * pb, pb, steps, y + (m0 + r0) * w.N + p * kRows,
                       w.N, last, accumulate);
          r0 += rows;
        }
        p += np;
      }
    }
  }
}

}  // namespace

void float_packed_rows(const PackedWeight& w, const int32_t* xb, int64_t M, int64_t p0, int64_t p1, float* y,
                       bool accumulate) {
  switch (path_for(w.dtype)) {
    case Isa::Avx512: return rows512(w, xb, M, p0, p1, y, accumulate);
    case Isa::Avx2: return rows256(w, xb, M, p0, p1, y, accumulate);
    default: return rows_scalar(w, xb, M, p0, p1, y, accumulate);
  }
}

}  // namespace solar::kernels::detail
