// solar/testing/quant.h — test helper: quantized checkpoints built in memory
// (core/quantize.h's quantizers), and their dequantized copies.
#pragma once
#include <algorithm>
#include <cstring>
#include <cmath>
#include <string>
#include <vector>

#include "core/quantize.h"
#include "model/checkpoint.h"

namespace solar::testing {

// n floats (whole blocks of t) quantized by core/quantize.h.
inline std::vector<uint8_t> quantize(const float* x, int64_t n, DType t) {
  std::vector<uint8_t> out(row_bytes(t, n));
  quantize_row(x, t, out.data(), n);
  return out;
}

// A copy of float checkpoint `ck` with every 2-D weight whose rows are whole
// blocks of `t` quantized to it (the others, and the norms, as they are).
inline model::Checkpoint quantize_checkpoint(const model::Checkpoint& ck, DType t) {
  model::Checkpoint q;
  q.source = ck.source + " (" + dtype_name(t) + ")";
  q.config = ck.config;
  q.tokenizer_path = ck.tokenizer_path;
  for (const auto& [name, v] : ck.tensors) {
    std::vector<float> f(size_t(v.numel()));
    convert(v.data, v.dtype, f.data(), DType::F32, f.size());
    if (v.shape.size() == 2 && v.cols() % dtype_block_elems(t) == 0) {
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
