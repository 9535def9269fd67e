// solar/kernels/kernels.h — the matrix kernels everything hot runs on.
//
// CPU features are detected at run time; each entry point dispatches to the
// fastest implementation this machine has (AMX / AVX512-BF16 / AVX-512 /
// AVX2) and keeps a portable scalar fallback that tests compare against.
// Threading: OpenMP, set_num_threads() (the CLI's -t) applies to all kernels.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/hugepages.h"

namespace solar::kernels {

struct CpuFeatures {
  std::string model;  // CPUID brand string, "AMD EPYC 9654 96-Core Processor"
  bool avx2 = false, fma = false, f16c = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512_bf16 = false;
  bool avx512_vbmi = false, avx512_vnni = false;  // byte permutes; u8·s8 dot products (quantized GEMV)
  bool amx_tile = false, amx_bf16 = false, amx_int8 = false;  // usable: XCR0 + arch_prctl permission granted
  std::string describe() const;            // "avx2 fma f16c avx512f … amx_bf16"
};
const CpuFeatures& cpu();
// "AMD EPYC 9R14 (avx2 fma … avx512_bf16)": the CPU's brand string and the
// features detected, for logs and reports (results can depend on them).
std::string cpu_summary();
// Benchmarks print this first: the CPU model and the instruction sets found,
// then those the kernels use (GEMV and element-wise ISA, BF16 GEMMs native
// or widened to F32, oneDNN's version and ISA level). Two lines.
std::string cpu_report();

void set_num_threads(int n);  // <= 0: all cores
int num_threads();
// Whether `work` (multiply-adds, or element operations) pays for a parallel
// region: below ~2^18 a fork and join cost as much as they save, and on a
// machine whose cores are also busy (a server's HTTP threads, its clients)
// a region waits at its barrier until every thread has been scheduled. A
// small model's decode step would open ~50 regions of a few microseconds.
inline bool worth_threads(int64_t work) { return work >= (int64_t(1) << 18); }
// f(i) for i in [0, n): on the calling thread when the work is not worth
// threads (no OpenMP call at all: even a region with a false `if` makes a
// team), else an OpenMP loop, static or dynamic (chunks of 1) schedule.
template <class F>
void parallel_for(int64_t n, int64_t work, F&& f, bool dynamic = false) {
  if (n < 2 || !worth_threads(work)) {
    for (int64_t i = 0; i < n; ++i) f(i);
  } else if (dynamic) {
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t i = 0; i < n; ++i) f(i);
  } else {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) f(i);
  }
}

// y[M,N] = x[M,K] · W[N,K]ᵀ (+= y if accumulate). W is F32, BF16 or F16,
// row-major, used in place (e.g. a mmapped checkpoint), or a GGML block type
// (rows of K/block blocks; K a multiple of the block, else solar::Error).
// M == 1 is the decode case (memory-bound GEMV, split over threads by rows
// of W); M > 1 the prefill case (compute-bound GEMM, oneDNN beyond a few
// rows). BF16 W on a CPU with AVX512-BF16 rounds x to bf16 both ways (vdpbf16ps
// at decode, oneDNN's bf16 matmul at prefill), as llama.cpp does. Block-quantized W at decode: Q4_0, Q8_0, Q4_K and Q6_K as llama.cpp
// computes them, x rounded to 8 bits per block and integer dot products (the
// result differs from x·Wᵀ on dequantized W by that rounding, ≲ 0.5% of
// Σ|x·w|); other block types and prefill dequantize W to f32 exactly.
void linear(const float* x, int64_t M, int64_t K, const void* W, DType wdt, int64_t N, float* y,
            bool accumulate = false);

// W[N,K] repacked once (at model load) for the dot-product instructions:
// 16 rows interleaved per panel so that one instruction multiplies 16 rows
// by the same few elements of x (broadcast) and nothing is reduced across
// lanes. Decode and prefill both read it (the original is not needed after).
// Block-quantized W for AMX-INT8 (prefill), VNNI or AVX2 (qpanel.cpp has the layout): Q4_0, Q8_0 and
// Q6_K panels are their file's size, Q4_K's 2.8% more (its 6-bit scales as
// bytes), the other block types' larger (8-bit quants, f32 scales). BF16 W
// for vdpbf16ps, F16 for vcvtph2ps + FMA and F32 for FMA (fpanel.cpp): the
// same size, rows interleaved by pairs (BF16) or single columns of K.
struct PackedWeight {
  DType dtype = DType::Q4_0;  // the type it was packed from
  int64_t N = 0, K = 0;
  std::vector<uint8_t, HugePageAllocator<uint8_t>> bytes;  // streamed once per token: 2 MiB pages
};
// Every type on a CPU with AVX2, FMA and F16C: block types (Q4_0 … Q6_K)
// through vpdpbusd with AVX512-VNNI, else maddubs + madd; BF16, F16 and F32
// with AVX-512 kernels where the CPU has them, AVX2 ones elsewhere. (Without
// AVX2 only the scalar reference would run panels: linear() on W is faster.)
bool can_pack(DType t);
// Bytes of pack_weight's panels for W[N,K] of type t.
size_t packed_size(DType t, int64_t N, int64_t K);
// Throws solar::Error for another type or K not a multiple of the block.
PackedWeight pack_weight(const void* W, DType t, int64_t N, int64_t K);
// y[M,N] = x[M,K]·Wᵀ (+= y if accumulate) on packed W, any M. Block types: x
// rounded to int8 per 32 elements (scale amax/127), integer dot products per
// block as llama.cpp's, per-block sums scaled in f32; differs from x·Wᵀ on
// the dequantized W by the rounding of x only (≲ 0.5% of Σ|x·w|). BF16 with
// AVX512-BF16: x rounded to bf16, f32 sums; otherwise (and F16, F32) f32 x,
// f32 sums. Either way a row of
// y is the same bits for any M and thread count (a sequence's logits do not
// depend on what else is in its batch).
void linear(const float* x, int64_t M, const PackedWeight& w, float* y, bool accumulate = false);
// y_i = x·W_iᵀ for several packed weights of one K that read the same x (a
// layer's q, k and v; gate and up): x converted once for all of them (to
// int8 blocks for every block type, or to the float tiles of one float
// type), their panels shared out in one parallel region. The same bits as
// one call each. Weights of mixed kinds run one by one.
struct PackedOut {
  const PackedWeight* w;
  float* y;
};
void linear(const float* x, int64_t M, std::span<const PackedOut> outs, bool accumulate = false);

// Compute precision of gemm: F32, or BF16 inputs with F32 accumulation
// (mixed-precision training; inputs are rounded to bf16 on the fly).
enum class Precision { F32, BF16 };

// The faster of the two for training, both bit-reproducible for a fixed
// thread count: BF16 where oneDNN runs it on BF16 hardware (AVX512-BF16,
// AMX; Zen 4, 50m preset: 1.5x the F32 tokens/s), else F32 (emulated BF16
// is slower than F32).
Precision fastest_precision();

// C[M,N] = alpha · op(A)[M,K] · op(B)[K,N] + beta · C, all row-major f32 with
// leading dimensions; op(X) = Xᵀ when trans. beta == 0 ignores C's contents.
void gemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
          const float* B, int64_t ldb, float beta, float* C, int64_t ldc, Precision p = Precision::F32);

// Reference implementations (scalar, double accumulation) for tests.
void linear_ref(const float* x, int64_t M, int64_t K, const void* W, DType wdt, int64_t N, float* y);
void gemm_ref(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
              const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

}  // namespace solar::kernels
