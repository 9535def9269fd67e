// solar/kernels/kernels_impl.h — internals shared by the kernel sources, the
// tests and the benchmark (not part of the public contract).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/dtype.h"

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

// The reference path of linear() for block-quantized W (and of linear_ref):
// each row of W dequantized to f32 once, dotted with every row of x in
// double. Slow; the fast quantized kernels are still to come.
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
void swiglu_backward_avx512(float* dgate, float* dup, const float* dh, const float* gate, const float* up, int64_t n);
float dot_avx512(const float* a, const float* b, int64_t n);
void axpy_avx512(float* y, float a, const float* x, int64_t n);
// out[i] = f32_to_bf16(x[i]) (round to nearest even), bit for bit.
void to_bf16_avx512(const float* x, int64_t n, uint16_t* out);

}  // namespace solar::kernels::detail
