// solar/kernels/kernels_impl.h — internals shared by the kernel sources, the
// tests and the benchmark (not part of the public contract).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "kernels/kernels.h"

namespace solar::kernels::detail {

// Instruction-set levels of the hand-written GEMV paths.
enum class Isa { Scalar, Avx2, Avx512 };
const char* isa_name(Isa i);

// Knobs the dispatch reads; tests and the benchmark lower them to reach every
// path on one machine. Defaults come from cpu().
struct Dispatch {
  Isa isa;             // best GEMV path allowed
  bool dnnl_bf16;      // BF16 weights/precision through oneDNN's bf16 matmul (fast with avx512_bf16/AMX)
  int64_t gemv_max_m;  // linear() uses the GEMV path for M <= this, oneDNN above
  bool vnni;           // quantized GEMV's u8·s8 dot products with AVX512-VNNI (else maddubs + madd)
  bool bf16_dot;       // BF16 GEMV as vdpbf16ps on x rounded to bf16 (AVX512-BF16), else W widened to f32
  bool amx_int8;       // block-quantized panels against 16 rows of x at a time on AMX tiles (qpanel_amx.cpp)
};
Dispatch& dispatch();

// Rows [n0, n1) of y[M,N] = x[M,K]·W[N,K]ᵀ, single-threaded. Every y element
// is summed in the same order whatever n0/n1 are, so results do not depend on
// how rows are split over threads.
void gemv_rows(Isa isa, const float* x, int64_t M, int64_t K, const void* W, DType wdt, int64_t N, int64_t n0,
               int64_t n1, float* y, bool accumulate);

// out[(n - n0)·K + k] = W[n,k] as f32 for rows [n0, n1), single-threaded.
void widen_rows(Isa isa, const void* W, DType wdt, int64_t K, int64_t n0, int64_t n1, float* out);

// oneDNN's instruction-set levels that matter to solar's paths, those this
// CPU runs, lowest first, named as ONEDNN_MAX_CPU_ISA takes them: AVX2,
// AVX512_CORE, AVX512_CORE_BF16, AVX512_CORE_AMX. oneDNN uses the last (at
// least), or the cap that variable sets.
std::vector<std::string> dnnl_isas();

// x quantized for the integer dot products with block-quantized W (qgemv.cpp),
// as llama.cpp's vec_dot does: each block of x (32 elements for Q4_0/Q8_0, 256
// for the k-quants) rounded to int8 (round(x·127/amax), to nearest even) with
// its own f32 scale amax/127 (llama.cpp rounds Q8_0's to f16: measured on
// stories260K in Q8_0, keeping f32 leaves perplexity closer to llama.cpp's). The
// result differs from x·Wᵀ on dequantized W by that rounding (≲ 0.5% of
// Σ|x·w|). Per row of x: the int8 values in the order the weight type unpacks
// its blocks, the scales, and the sums the type's offsets and mins need.
struct QActs {
  DType wdt = DType::Q8_0;
  int64_t M = 0, K = 0, Kp = 0;  // Kp: K padded with zeros to whole pairs of blocks (Q4_0/Q8_0)
  std::vector<int8_t> q;         // [M][Kp]; Q4_0: each pair of blocks as [b 0..15, b+1 0..15, b 16..31,
                                 // b+1 16..31]; Q4_K: each 256's sub-blocks of 32 in the order 0 2 1 3 4 6 5 7
  std::vector<float> d;          // Q4_0/Q8_0: [M][Kp/4], the block's scale in its 8 lanes of 4; k-quants: [M][K/256]
  std::vector<int32_t> bias;     // Q4_0: [M][Kp/4] −Σq in each of the block's lanes (−8·Σq undoes the +8);
                                 // Q6_K: [M][K/4] −32·Σq of each 16 in its first lane (undoes the +32), else 0
  std::vector<int16_t> bsum;     // Q4_K: [M][K/32] Σq of each 32 (for the mins)
};
bool qgemv_supported(DType t);  // Q4_0, Q8_0, Q4_K, Q6_K
void quantize_acts(const float* x, int64_t M, int64_t K, DType wdt, QActs& a);
// Rows [n0, n1) of y[M,N] = x·Wᵀ from quantize_acts' x, single-threaded. The
// AVX-512 path (isa Avx512 on a CPU with VBMI; `vnni` picks the dot product)
// sums blocks in its own order, the scalar path block by block: they agree to
// f32 rounding, not bit for bit.
void qgemv_rows(Isa isa, bool vnni, const QActs& a, const void* W, int64_t N, int64_t n0, int64_t n1, float* y,
                bool accumulate);

// x rounded to int8 per 32 for the packed kernels (qpanel.cpp), natural
// order: q [M][K], the scale and Σq of each 32 [M][K/32] (rounded as
// quantize_acts rounds Q4_0/Q8_0's x).
struct XQ32 {
  int64_t M = 0, K = 0;
  std::vector<int8_t> q;
  std::vector<float> d;
  std::vector<int32_t> sq;
  std::vector<int32_t> sq16;  // [M][K/16] Σq of each 16 (Q6_K's sub-blocks)
  std::vector<float> dsq;     // [M][K/32] d·Σq of each 32 (Q4_K's mins)
};
void quantize_x32(const float* x, int64_t M, int64_t K, XQ32& a);
// Block b (elements 32b..32b+31) of a row of W as the packed kernels read
// it, s·(u − c) or s·u − mn (qpanel.cpp): equal to core's dequantize_row bit
// for bit (tests).
void packed_weights_of(DType t, const void* row, int64_t b, float* out);
// Panels [p0, p1) (rows [16·p0, 16·p1) ∩ [0, N)) of y[M,N] = x·Wᵀ on packed W,
// single-threaded. AVX-512 with VNNI (when isa, the CPU and dispatch().vnni
// allow), else AVX2 (isa not Scalar, the CPU with AVX2, FMA and F16C), else
// scalar; each element is summed block by block in the same order for any M,
// row range or thread count.
void packed_rows(Isa isa, const PackedWeight& w, const XQ32& x, int64_t p0, int64_t p1, float* y, bool accumulate);
// AMX-INT8 (qpanel_amx.cpp): rows [0, m1) of x (m1 a multiple of 16) against
// panels [p0, p1), each element of y the same bits as packed_rows' VNNI
// kernel gives it. packed_rows takes this path for whole tiles of 16 rows
// where isa is Avx512 and dispatch().amx_int8 allows.
bool amx_packable(DType t);  // the CPU has AMX-INT8 and t is Q4_0, Q8_0, Q4_K or Q6_K
void packed_rows_amx(const PackedWeight& w, const XQ32& x, int64_t m1, int64_t p0, int64_t p1, float* y,
                     bool accumulate);

// Float panels (fpanel.cpp): W[N,K] (BF16, F16 or F32) as ceil(N/16) panels
// of 16 rows interleaved by steps of K (BF16: pairs; F16, F32: single
// columns), K padded to whole steps with zeros, for vdpbf16ps / vcvtph2ps +
// FMA / FMA (AVX-512) or as two ymm halves (AVX2: BF16 widened, 2 FMAs).
bool float_packable(DType t);  // the CPU runs t's panel kernels (AVX2, FMA and F16C at least)
size_t float_packed_size(DType t, int64_t N, int64_t K);
void float_pack(DType t, const void* W, int64_t N, int64_t K, uint8_t* out);
// x[M,K] for W of type t as the panel kernels read it: one 32-bit word per
// step (BF16: a pair rounded to bf16, nearest even, on AVX2 as two f32 words; F16,
// F32: the f32), rows in blocks of 12 interleaved by steps (step j of row m of a
// block of mr rows at j·mr + m). float_x_words: M rows' words; both per dispatch().
int64_t float_x_words(DType t, int64_t M, int64_t K);
void float_x_tiles(DType t, const float* x, int64_t M, int64_t K, int32_t* xb);
// Panels [p0, p1) of y[M,N] = x·Wᵀ from float_x_tiles' xb, single-threaded:
// AVX-512 where the CPU and dispatch() allow (isa Avx512; BF16 also
// bf16_dot), else AVX2 (isa Avx2 or above), else the scalar definition.
// Each element's steps are summed in order into one f32 accumulator,
// whatever M, the panel range or the thread count.
void float_packed_rows(const PackedWeight& w, const int32_t* xb, int64_t M, int64_t p0, int64_t p1, float* y,
                       bool accumulate);

// The reference path of linear_ref for block-quantized W (and of linear()
// for the types qgemv lacks, at decode): each row of W dequantized to f32
// once, dotted with every row of x in double. Slow.
void linear_dequant(const float* x, int64_t M, int64_t K, const void* W, DType wdt, int64_t N, float* y,
                    bool accumulate);

// The oneDNN prefill path of linear() (any M), exposed for the benchmark.
void linear_dnnl(const float* x, int64_t M, int64_t K, const void* W, DType wdt, int64_t N, float* y, bool accumulate);

// AVX-512 element-wise kernels behind ops.h (ops_avx512.cpp). exp_avx512 is
// y = exp(x) within 2 ulp, exposed for its accuracy test.
void exp_avx512(float* y, const float* x, int64_t n);
float softmax_avx512(float* x, int64_t n);
void softmax_backward_avx512(float* dp, const float* p, int64_t n, float scale);
void swiglu_avx512(float* h, const float* gate, const float* up, int64_t n);
void gelu_avx512(float* x, int64_t n);
int64_t argmax_avx512(const float* x, int64_t n);  // n ≥ 2, x[0] not NaN
void layernorm_avx512(float* x, const float* w, const float* b, int64_t n, float eps);
void swiglu_backward_avx512(float* dgate, float* dup, const float* dh, const float* gate, const float* up, int64_t n);
float dot_avx512(const float* a, const float* b, int64_t n);
void axpy_avx512(float* y, float a, const float* x, int64_t n);
// The same for AVX2 CPUs (ops_avx2.cpp): eight lanes, the same algorithms.
void exp_avx2(float* y, const float* x, int64_t n);
float softmax_avx2(float* x, int64_t n);
void softmax_backward_avx2(float* dp, const float* p, int64_t n, float scale);
void swiglu_avx2(float* h, const float* gate, const float* up, int64_t n);
void gelu_avx2(float* x, int64_t n);
int64_t argmax_avx2(const float* x, int64_t n);  // n ≥ 2, x[0] not NaN
void layernorm_avx2(float* x, const float* w, const float* b, int64_t n, float eps);
void swiglu_backward_avx2(float* dgate, float* dup, const float* dh, const float* gate, const float* up, int64_t n);
float dot_avx2(const float* a, const float* b, int64_t n);
void axpy_avx2(float* y, float a, const float* x, int64_t n);
// out[i] = f32_to_bf16(x[i]) (round to nearest even), bit for bit.
void to_bf16_avx512(const float* x, int64_t n, uint16_t* out);

}  // namespace solar::kernels::detail
