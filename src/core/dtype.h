// solar/core/dtype.h — element types of checkpoint tensors and their conversions.
//
// Scalar types store one element per dtype_size() bytes. Block-quantized
// types (GGML's Q4_0 … Q6_K) store K consecutive elements of a row in one
// block of B bytes: dtype_block_elems() = K, dtype_block_bytes() = B; a scalar
// type is a block of 1. Rows (the innermost dimension) are whole blocks, so
// the bytes of a row of n elements are row_bytes(t, n) = n / K · B.
#pragma once
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>

namespace solar {

enum class DType : uint8_t {
  F32, F16, BF16, I32, I64, U8, I8,
  // GGML block types: 32-element blocks …
  Q4_0, Q4_1, Q5_0, Q5_1, Q8_0,
  // … and 256-element super-blocks (k-quants).
  Q2_K, Q3_K, Q4_K, Q5_K, Q6_K,
};

// Bytes per element of a scalar type; throws solar::Error for a block type
// (use row_bytes).
size_t dtype_size(DType t);
int64_t dtype_block_elems(DType t);  // 1 for scalar types, 32 or 256 for block types
size_t dtype_block_bytes(DType t);   // dtype_size for scalar types
// Bytes of a row of n elements; throws solar::Error naming the dtype when n
// is not a multiple of the block (or negative).
size_t row_bytes(DType t, int64_t n);
// safetensors spelling: "F32", "F16", "BF16", "I32", "I64", "U8", "I8"; GGML's
// for block types: "Q4_0", "Q8_0", "Q4_K", ….
const char* dtype_name(DType t);
// GGML type ids (ggml_type): F32 0, F16 1, Q4_0 2, Q4_1 3, Q5_0 6, Q5_1 7,
// Q8_0 8, Q2_K 10, Q3_K 11, Q4_K 12, Q5_K 13, Q6_K 14, I8 24, I32 26, I64 27,
// BF16 30. ggml_type_id throws for a type GGML lacks (U8).
uint32_t ggml_type_id(DType t);
std::optional<DType> dtype_from_ggml(uint32_t id);
// Accepts safetensors names and torch_dtype spellings ("float32", "bfloat16",
// "float16"); throws solar::Error naming `where` otherwise.
DType parse_dtype(const std::string& s, const std::string& where = "dtype");
bool is_float(DType t);      // F32, F16, BF16
bool is_quantized(DType t);  // a GGML block type

inline float bf16_to_f32(uint16_t h) {
  uint32_t u = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
// Round to nearest even; NaN stays NaN.
inline uint16_t f32_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return uint16_t(u >> 16);
}
float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);

// Reference dequantizer: n elements (a multiple of the block) of block type
// t, starting at a block boundary, to f32, bit-exact with ggml's
// dequantize_row_* (and gguf-py's gguf.quants.dequantize). Float types are
// widened. Throws for other types and partial blocks.
void dequantize_row(const void* src, DType t, float* dst, int64_t n);

// Converts n elements between float dtypes (F32/F16/BF16), any direction, or
// from a block type (src at a block boundary, n a multiple of the block) to
// a float dtype by dequantizing.
void convert(const void* src, DType st, void* dst, DType dt, size_t n);
// Reads element i of a float or block-quantized tensor as f32 (a block type
// dequantizes the whole block holding i: slow, for tests and spot reads).
float load_f32(const void* data, DType t, size_t i);

}  // namespace solar
