// solar/core/dtype.h — element types of checkpoint tensors and their conversions.
#pragma once
#include <cstdint>
#include <cstring>
#include <string>

namespace solar {

enum class DType : uint8_t { F32, F16, BF16, I32, I64, U8, I8 };

size_t dtype_size(DType t);
// safetensors spelling: "F32", "F16", "BF16", "I32", "I64", "U8", "I8".
const char* dtype_name(DType t);
// Accepts safetensors names and torch_dtype spellings ("float32", "bfloat16",
// "float16"); throws solar::Error naming `where` otherwise.
DType parse_dtype(const std::string& s, const std::string& where = "dtype");
bool is_float(DType t);

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

// Converts n elements between float dtypes (F32/F16/BF16), any direction.
void convert(const void* src, DType st, void* dst, DType dt, size_t n);
// Reads element i of a float tensor as f32.
float load_f32(const void* data, DType t, size_t i);

}  // namespace solar
