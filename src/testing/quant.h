// solar/testing/quant.h — test helper: simple Q8_0 / Q4_0 quantizers (the
// rounding of ggml's reference quantize_row_*), to build quantized
// checkpoints in memory. Tests only: solar itself only dequantizes.
#pragma once
#include <algorithm>
#include <cstring>
#include <cmath>
#include <string>
#include <vector>

#include "model/checkpoint.h"

namespace solar::testing {

// n floats (a multiple of 32) to Q8_0 or Q4_0 blocks.
inline std::vector<uint8_t> quantize(const float* x, int64_t n, DType t) {
  std::vector<uint8_t> out(row_bytes(t, n));
  uint8_t* o = out.data();
  for (int64_t b = 0; b < n; b += 32, o += dtype_block_bytes(t)) {
    const float* v = x + b;
    float amax = 0, max = 0;
    for (int j = 0; j < 32; ++j)
      if (std::fabs(v[j]) > amax) amax = std::fabs(v[j]), max = v[j];
    float d = t == DType::Q8_0 ? amax / 127 : max / -8;
    uint16_t h = f32_to_f16(d);
    o[0] = uint8_t(h), o[1] = uint8_t(h >> 8);
    float id = d != 0 ? 1 / d : 0;
    if (t == DType::Q8_0) {
      for (int j = 0; j < 32; ++j) o[2 + j] = uint8_t(int8_t(std::lround(v[j] * id)));
    } else {
      auto q = [&](float f) { return uint8_t(std::min(15, int(f * id + 8.5f))); };
      for (int j = 0; j < 16; ++j) o[2 + j] = uint8_t(q(v[j]) | q(v[16 + j]) << 4);
    }
  }
  return out;
}

// A copy of float checkpoint `ck` with every 2-D weight whose rows are whole
// 32-element blocks quantized to `t` (the others, and the norms, as they are).
inline model::Checkpoint quantize_checkpoint(const model::Checkpoint& ck, DType t) {
  model::Checkpoint q;
  q.source = ck.source + " (" + dtype_name(t) + ")";
  q.config = ck.config;
  q.tokenizer_path = ck.tokenizer_path;
  for (const auto& [name, v] : ck.tensors) {
    std::vector<float> f(size_t(v.numel()));
    convert(v.data, v.dtype, f.data(), DType::F32, f.size());
    if (v.shape.size() == 2 && v.cols() % 32 == 0) {
      q.tensors[name] = q.adopt(name, t, v.shape, quantize(f.data(), v.numel(), t));
    } else {
      std::vector<uint8_t> bytes(v.nbytes);
      std::memcpy(bytes.data(), v.data, v.nbytes);
      q.tensors[name] = q.adopt(name, v.dtype, v.shape, std::move(bytes));
    }
  }
  return q;
}

// `ck` with every tensor dequantized to F32.
inline model::Checkpoint dequantize_checkpoint(const model::Checkpoint& ck) {
  model::Checkpoint f;
  f.source = ck.source;
  f.config = ck.config;
  f.tokenizer_path = ck.tokenizer_path;
  for (const auto& [name, v] : ck.tensors) {
    std::vector<uint8_t> bytes(size_t(v.numel()) * 4);
    convert(v.data, v.dtype, bytes.data(), DType::F32, size_t(v.numel()));
    f.tensors[name] = f.adopt(name, DType::F32, v.shape, std::move(bytes));
  }
  return f;
}

}  // namespace solar::testing
