// BF16 weights repacked for vdpbf16ps (kernels.h, PackedWeight with dtype
// BF16): one layout for decode and prefill, on CPUs with AVX512-BF16.
//
// Why: row by row (gemv.cpp) each W row is its own stream and its sum ends
// in a cross-lane reduction, and prefill went through oneDNN, which reorders
// the plain weights on every call. A panel interleaves 16 rows by pairs of K:
// vector j of panel p holds W[16p + r][2j .. 2j+1] in 32-bit lane r, so one
// vdpbf16ps multiplies 2 columns of 16 rows by the same pair of x (a 32-bit
// broadcast from memory), nothing is reduced across lanes, and each panel is
// one contiguous stream (64 KiB at K = 2048). Prefill reuses a tile of
// panels from L2 for 12 rows of x at a time: 24 accumulators, 2 loads of W
// and 12 broadcasts per 24 dot-product instructions.
//
// Sum order: every (row of x, row of W) has one f32 accumulator that takes
// the pairs of K in order, in every tile shape. So a row's result is the
// same bits for any M, row range or thread count: a sequence decodes to the
// same logits alone or in a batch (serve's continuous batching).
//
// x is rounded to bf16 (nearest even) first, as llama.cpp's BF16 dot
// products do; K is padded to even with a zero column. Each block of 12 rows
// of x is interleaved by pairs, so that a tile's 12 broadcasts per step read
// one cache line: rows 4 KiB apart would all fall in one L1 set (measured:
// half the speed).
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

#define SOLAR_BP512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))

namespace solar::kernels::detail {
namespace {

constexpr int kRows = 16;
constexpr int kMaxMR = 12;  // rows of x per prefill tile

int64_t pairs_of(int64_t K) { return (K + 1) / 2; }
int64_t panel_bytes(int64_t K) { return pairs_of(K) * kRows * 4; }

// acc[m][q] (row m of x, panel q) over all pairs: see the header for why one
// accumulator each. `cols`: valid rows of the last panel.
// xb: MR rows of x interleaved by pairs (x_tiles).
template <int MR, int NP>
SOLAR_BP512 void tile(const uint16_t* xb, int64_t Kp, const uint8_t* panels, int64_t pbytes, int64_t pairs, float* y,
                      int64_t ldy, __mmask16 last_cols, bool accumulate) {
  // GCC keeps acc in registers only when these loops are fully unrolled.
  __m512 acc[MR][NP];
#pragma GCC unroll 16
  for (int m = 0; m < MR; ++m)
#pragma GCC unroll 8
    for (int q = 0; q < NP; ++q) acc[m][q] = _mm512_setzero_ps();
  const uint8_t* w[NP];
#pragma GCC unroll 8
  for (int q = 0; q < NP; ++q) w[q] = panels + q * pbytes;
  for (int64_t j = 0; j < pairs; ++j) {
    __m512bh wv[NP];
#pragma GCC unroll 8
    for (int q = 0; q < NP; ++q) wv[q] = (__m512bh)_mm512_loadu_si512(w[q] + j * 64);
#pragma GCC unroll 16
    for (int m = 0; m < MR; ++m) {
      int32_t pair;
      std::memcpy(&pair, xb + (j * MR + m) * 2, 4);
      const __m512bh xv = (__m512bh)_mm512_set1_epi32(pair);
#pragma GCC unroll 8
      for (int q = 0; q < NP; ++q) acc[m][q] = _mm512_dpbf16_ps(acc[m][q], wv[q], xv);
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

using TileFn = void (*)(const uint16_t*, int64_t, const uint8_t*, int64_t, int64_t, float*, int64_t, __mmask16, bool);

// Panels per tile for MR rows of x: decode keeps 8 chains in flight (the
// dot product's latency), prefill 2 panels × up to 12 rows (24 registers).
constexpr int np_for(int mr) { return mr == 1 ? 8 : mr <= 3 ? 4 : 2; }

template <int MR>
TileFn tile_fn(int np) {
  constexpr int NP = np_for(MR);
  if (np >= NP) return tile<MR, NP>;
  if constexpr (NP >= 8)
    if (np >= 4) return tile<MR, 4>;
  if constexpr (NP >= 4)
    if (np >= 2) return tile<MR, 2>;
  return tile<MR, 1>;
}

TileFn pick(int mr, int np) {
  switch (mr) {
    case 1: return tile_fn<1>(np);
    case 2: return tile_fn<2>(np);
    case 3: return tile_fn<3>(np);
    case 4: return tile_fn<4>(np);
    case 5: return tile_fn<5>(np);
    case 6: return tile_fn<6>(np);
    case 7: return tile_fn<7>(np);
    case 8: return tile_fn<8>(np);
    case 9: return tile_fn<9>(np);
    case 10: return tile_fn<10>(np);
    case 11: return tile_fn<11>(np);
    default: return tile_fn<12>(np);
  }
}

int tile_np(int mr, int np) {
  const int NP = np_for(mr);
  return np >= NP ? NP : np >= 4 && NP >= 8 ? 4 : np >= 2 && NP >= 4 ? 2 : 1;
}

// The scalar definition the tests hold the SIMD path to: the panel read back
// as W, x rounded to bf16, the pairs summed in order in f32 (vdpbf16ps may
// round inside a pair differently: the tests allow f32 rounding).
// xb: the row's pairs at xb[2·stride·j], xb[2·stride·j + 1].
void panel_scalar(const uint8_t* panel, const uint16_t* xb, int64_t stride, int64_t pairs, float* out /*[16]*/) {
  for (int r = 0; r < kRows; ++r) {
    float s = 0;
    for (int64_t j = 0; j < pairs; ++j) {
      uint16_t w2[2];
      std::memcpy(w2, panel + j * 64 + r * 4, 4);
      const uint16_t* x2 = xb + 2 * stride * j;
      s += bf16_to_f32(w2[0]) * bf16_to_f32(x2[0]) + bf16_to_f32(w2[1]) * bf16_to_f32(x2[1]);
    }
    out[r] = s;
  }
}

}  // namespace

void bf16_packed_rows(const PackedWeight& w, const uint16_t* xb, int64_t M, int64_t p0, int64_t p1, float* y,
                      bool accumulate) {
  const int64_t pairs = pairs_of(w.K), Kp = 2 * pairs, pb = panel_bytes(w.K);
  const uint8_t* base = w.bytes.data();
  const bool simd = dispatch().isa == Isa::Avx512 && dispatch().bf16_dot && cpu().avx512_bf16;
  if (!simd) {
    float out[kRows];
    for (int64_t p = p0; p < p1; ++p) {
      const int64_t n0 = p * kRows, cols = std::min<int64_t>(kRows, w.N - n0);
      for (int64_t m = 0; m < M; ++m) {
        const int64_t mb = m / kMaxMR * kMaxMR, mr = std::min<int64_t>(kMaxMR, M - mb);
        panel_scalar(base + p * pb, xb + mb * Kp + 2 * (m - mb), mr, pairs, out);
        float* dst = y + m * w.N + n0;
        for (int64_t r = 0; r < cols; ++r) dst[r] = accumulate ? dst[r] + out[r] : out[r];
      }
    }
    return;
  }
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
        pick(mr, np)(xb + m0 * Kp, Kp, base + p * pb, pb, pairs, y + m0 * w.N + p * kRows, w.N,
                     __mmask16((1u << last) - 1), accumulate);
        p += np;
      }
    }
  }
}

void x_tiles_bf16(const float* x, int64_t M, int64_t K, uint16_t* xb) {
  const int64_t pairs = pairs_of(K), Kp = 2 * pairs;
  const bool simd = dispatch().isa == Isa::Avx512;
  std::vector<uint16_t> row(static_cast<size_t>(Kp));
  for (int64_t m = 0; m < M; ++m) {
    if (simd) {
      to_bf16_avx512(x + m * K, K, row.data());
    } else {
      for (int64_t k = 0; k < K; ++k) row[size_t(k)] = f32_to_bf16(x[m * K + k]);
    }
    if (Kp > K) row[size_t(K)] = 0;
    const int64_t mb = m / kMaxMR * kMaxMR, mr = std::min<int64_t>(kMaxMR, M - mb);
    uint16_t* dst = xb + mb * Kp + 2 * (m - mb);
    for (int64_t j = 0; j < pairs; ++j) std::memcpy(dst + 2 * mr * j, &row[size_t(2 * j)], 4);
  }
}

size_t bf16_packed_size(int64_t N, int64_t K) { return size_t((N + kRows - 1) / kRows) * size_t(panel_bytes(K)); }

void bf16_pack(const uint16_t* W, int64_t N, int64_t K, uint8_t* out) {
  const int64_t pairs = pairs_of(K), panels = (N + kRows - 1) / kRows, pb = panel_bytes(K);
#pragma omp parallel for schedule(dynamic, 4)
  for (int64_t p = 0; p < panels; ++p) {
    uint16_t* dst = reinterpret_cast<uint16_t*>(out + p * pb);
    for (int r = 0; r < kRows; ++r) {
      const int64_t n = p * kRows + r;
      for (int64_t j = 0; j < pairs; ++j)
        for (int e = 0; e < 2; ++e) {
          const int64_t k = 2 * j + e;
          dst[(j * kRows + r) * 2 + e] = n < N && k < K ? W[n * K + k] : uint16_t(0);
        }
    }
  }
}

}  // namespace solar::kernels::detail
