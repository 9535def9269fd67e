// solar/core/quantize.h — GGML block quantizers, byte for byte as llama.cpp's.
//
// The inverse of core/dtype.h's dequantize_row for the block types solar
// writes: Q4_0, Q5_0, Q5_1 and Q8_0 as ggml's quantize_row_*_ref; Q4_K, Q5_K
// and Q6_K as quantize_row_q{4,5,6}_K_ref (the search llama-quantize runs
// without an importance matrix: make_qkx2_quants over 32-element sub-blocks
// for Q4_K/Q5_K, make_qx_quants over 16-element ones for Q6_K). Same blocks, same
// rounding (roundf for Q8_0, truncation of x/d + 8.5 for Q4_0, the f32
// round-to-nearest-even trick for the K-quants), same f16 scales, same order
// of every f32 operation (compiled without FMA contraction, as ggml's
// reference C is), so a file solar writes has the bytes llama-quantize
// writes from the same f32 rows.
//
// Input must be finite: ggml quantizes NaN and Inf into bytes that decode to
// garbage, and so does this (deterministically, the same bytes); callers
// check first (quantize/ names the tensor). Scales are f16: blocks whose
// largest |x| is below ~1e-5 (Q8_0) lose precision or quantize to zero, and
// |x| beyond ~8e6 (Q8_0; ~5e5 for Q4_0) overflows the scale to Inf — as in
// llama.cpp.
// Threads: pure functions of their arguments; rows may be quantized concurrently.
#pragma once
#include <cstdint>

#include "core/dtype.h"

namespace solar {

// Whether quantize_row writes t: Q4_0, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K and
// the float types F32, F16, BF16 (converted, round to nearest even).
bool can_quantize(DType t);
// Quantizes n floats (a multiple of t's block: 32, or 256 for K-quants) into
// row_bytes(t, n) bytes at dst. Throws solar::Error for another type or a
// partial block.
void quantize_row(const float* src, DType t, void* dst, int64_t n);

}  // namespace solar
