#include "core/dtype.h"

#include "core/error.h"

#include <algorithm>

namespace solar {

namespace {

struct TypeInfo {
  const char* name;
  int64_t block;  // elements per block
  size_t bytes;   // bytes per block
  int64_t ggml;   // ggml_type id, -1 when GGML has none
};

// Indexed by DType. Block layouts (ggml-common.h), f16 scales "d"/"dmin":
//   Q4_0 {d; qs[16]}  Q4_1 {d; m; qs[16]}  Q5_0 {d; qh[4]; qs[16]}
//   Q5_1 {d; m; qh[4]; qs[16]}  Q8_0 {d; int8 qs[32]}
//   Q2_K {scales[16]; qs[64]; d; dmin}  Q3_K {hmask[32]; qs[64]; scales[12]; d}
//   Q4_K {d; dmin; scales[12]; qs[128]}  Q5_K {d; dmin; scales[12]; qh[32]; qs[128]}
//   Q6_K {ql[128]; qh[64]; int8 scales[16]; d}
constexpr TypeInfo kTypes[] = {
    {"F32", 1, 4, 0},      {"F16", 1, 2, 1},      {"BF16", 1, 2, 30},    {"I32", 1, 4, 26},
    {"I64", 1, 8, 27},     {"U8", 1, 1, -1},      {"I8", 1, 1, 24},      {"Q4_0", 32, 18, 2},
    {"Q4_1", 32, 20, 3},   {"Q5_0", 32, 22, 6},   {"Q5_1", 32, 24, 7},   {"Q8_0", 32, 34, 8},
    {"Q2_K", 256, 84, 10}, {"Q3_K", 256, 110, 11}, {"Q4_K", 256, 144, 12}, {"Q5_K", 256, 176, 13},
    {"Q6_K", 256, 210, 14},
};
constexpr size_t kNumTypes = sizeof kTypes / sizeof kTypes[0];
static_assert(kNumTypes == size_t(DType::Q6_K) + 1, "kTypes must list every DType in order");

const TypeInfo& info(DType t) {
  if (size_t(t) >= kNumTypes) fail("dtype", "", "invalid DType " + std::to_string(int(t)));
  return kTypes[size_t(t)];
}

}  // namespace

size_t dtype_size(DType t) {
  const TypeInfo& i = info(t);
  if (i.block != 1)
    fail("dtype_size", i.name, "a block type has no per-element size (" + std::to_string(i.bytes) + " bytes per " +
                                   std::to_string(i.block) + " elements; use row_bytes)");
  return i.bytes;
}

int64_t dtype_block_elems(DType t) { return info(t).block; }
size_t dtype_block_bytes(DType t) { return info(t).bytes; }

size_t row_bytes(DType t, int64_t n) {
  const TypeInfo& i = info(t);
  if (n < 0 || n % i.block != 0)
    fail("row_bytes", i.name, "a row of " + std::to_string(n) + " elements is not a whole number of " +
                                  std::to_string(i.block) + "-element blocks");
  size_t bytes;
  if (__builtin_mul_overflow(size_t(n / i.block), i.bytes, &bytes))
    fail("row_bytes", i.name, "a row of " + std::to_string(n) + " elements overflows size_t");
  return bytes;
}

const char* dtype_name(DType t) { return size_t(t) < kNumTypes ? kTypes[size_t(t)].name : "?"; }

uint32_t ggml_type_id(DType t) {
  const TypeInfo& i = info(t);
  if (i.ggml < 0) fail("ggml_type_id", i.name, "GGML has no such tensor type");
  return uint32_t(i.ggml);
}

std::optional<DType> dtype_from_ggml(uint32_t id) {
  for (size_t k = 0; k < kNumTypes; ++k)
    if (kTypes[k].ggml == int64_t(id)) return DType(k);
  return std::nullopt;
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
bool is_quantized(DType t) { return size_t(t) < kNumTypes && kTypes[size_t(t)].block > 1; }

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
    default: break;
  }
  if (!is_quantized(t)) fail("load_f32: not a float or block-quantized dtype");
  const size_t k = size_t(dtype_block_elems(t));
  float block[256];
  dequantize_row(static_cast<const uint8_t*>(data) + i / k * dtype_block_bytes(t), t, block, int64_t(k));
  return block[i % k];
}

void convert(const void* src, DType st, void* dst, DType dt, size_t n) {
  if (n == 0) return;  // empty tensors may carry null pointers
  if (st == dt) {
    std::memcpy(dst, src, row_bytes(st, int64_t(n)));
    return;
  }
  if (is_quantized(st) && is_float(dt)) {
    if (dt == DType::F32) return dequantize_row(src, st, static_cast<float*>(dst), int64_t(n));
    // Through an f32 buffer, a few blocks at a time.
    const size_t chunk = 4096, k = size_t(dtype_block_elems(st));
    row_bytes(st, int64_t(n));  // whole blocks only
    float buf[chunk];
    for (size_t i = 0; i < n; i += chunk) {
      size_t m = std::min(chunk, n - i);
      dequantize_row(static_cast<const uint8_t*>(src) + i / k * dtype_block_bytes(st), st, buf, int64_t(m));
      convert(buf, DType::F32, static_cast<uint8_t*>(dst) + i * dtype_size(dt), dt, m);
    }
    return;
  }
  if (!is_float(st) || !is_float(dt))
    fail("convert", "", std::string("cannot convert ") + dtype_name(st) + " to " + dtype_name(dt) +
                            " (F32/F16/BF16 convert both ways; block types only dequantize)");
  for (size_t i = 0; i < n; ++i) {
    float v = load_f32(src, st, i);
    if (dt == DType::F32) static_cast<float*>(dst)[i] = v;
    else if (dt == DType::BF16) static_cast<uint16_t*>(dst)[i] = f32_to_bf16(v);
    else static_cast<uint16_t*>(dst)[i] = f32_to_f16(v);
  }
}

}  // namespace solar
