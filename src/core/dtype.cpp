#include "core/dtype.h"

#include "core/error.h"

namespace solar {

size_t dtype_size(DType t) {
  switch (t) {
    case DType::F32: case DType::I32: return 4;
    case DType::F16: case DType::BF16: return 2;
    case DType::I64: return 8;
    case DType::U8: case DType::I8: return 1;
  }
  return 0;
}

const char* dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "F32";
    case DType::F16: return "F16";
    case DType::BF16: return "BF16";
    case DType::I32: return "I32";
    case DType::I64: return "I64";
    case DType::U8: return "U8";
    case DType::I8: return "I8";
  }
  return "?";
}

DType parse_dtype(const std::string& s, const std::string& where) {
  if (s == "F32" || s == "float32" || s == "f32" || s == "fp32") return DType::F32;
  if (s == "F16" || s == "float16" || s == "f16" || s == "fp16") return DType::F16;
  if (s == "BF16" || s == "bfloat16" || s == "bf16") return DType::BF16;
  if (s == "I32" || s == "int32") return DType::I32;
  if (s == "I64" || s == "int64") return DType::I64;
  if (s == "U8" || s == "uint8") return DType::U8;
  if (s == "I8" || s == "int8") return DType::I8;
  fail(where, "", "unknown dtype '" + s + "' (expected F32, F16 or BF16)");
}

bool is_float(DType t) { return t == DType::F32 || t == DType::F16 || t == DType::BF16; }

float f16_to_f32(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, u;
  if (exp == 0) {
    if (man == 0) {
      u = sign;
    } else {  // subnormal: normalise
      int e = -1;
      do { man <<= 1; ++e; } while (!(man & 0x400));
      u = sign | uint32_t(127 - 15 - e) << 23 | (man & 0x3ff) << 13;
    }
  } else if (exp == 31) {
    u = sign | 0x7f800000u | man << 13;
  } else {
    u = sign | (exp + 112) << 23 | man << 13;
  }
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

uint16_t f32_to_f16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  uint32_t sign = (u >> 16) & 0x8000;
  int32_t exp = int32_t((u >> 23) & 0xff) - 127 + 15;
  uint32_t man = u & 0x7fffff;
  if (((u >> 23) & 0xff) == 0xff) return uint16_t(sign | 0x7c00 | (man ? 0x200 : 0));
  if (exp >= 31) return uint16_t(sign | 0x7c00);
  if (exp <= 0) {
    if (exp < -10) return uint16_t(sign);
    man |= 0x800000;
    uint32_t shift = uint32_t(14 - exp);
    uint32_t half = man >> shift, rem = man & ((1u << shift) - 1), mid = 1u << (shift - 1);
    if (rem > mid || (rem == mid && (half & 1))) ++half;
    return uint16_t(sign | half);
  }
  uint32_t half = sign | uint32_t(exp) << 10 | man >> 13, rem = man & 0x1fff;
  if (rem > 0x1000 || (rem == 0x1000 && (half & 1))) ++half;  // may carry into exp: correct
  return uint16_t(half);
}

float load_f32(const void* data, DType t, size_t i) {
  switch (t) {
    case DType::F32: return static_cast<const float*>(data)[i];
    case DType::BF16: return bf16_to_f32(static_cast<const uint16_t*>(data)[i]);
    case DType::F16: return f16_to_f32(static_cast<const uint16_t*>(data)[i]);
    default: fail("load_f32: not a float dtype");
  }
}

void convert(const void* src, DType st, void* dst, DType dt, size_t n) {
  if (n == 0) return;  // empty tensors may carry null pointers
  if (st == dt) {
    std::memcpy(dst, src, n * dtype_size(st));
    return;
  }
  if (!is_float(st) || !is_float(dt)) fail("convert: only F32/F16/BF16 convert");
  for (size_t i = 0; i < n; ++i) {
    float v = load_f32(src, st, i);
    if (dt == DType::F32) static_cast<float*>(dst)[i] = v;
    else if (dt == DType::BF16) static_cast<uint16_t*>(dst)[i] = f32_to_bf16(v);
    else static_cast<uint16_t*>(dst)[i] = f32_to_f16(v);
  }
}

}  // namespace solar
