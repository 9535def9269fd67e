// solar/core/tensor.h — a named, typed, shaped view of bytes someone else owns.
//
// Shapes are row-major in Hugging Face order: a linear layer's weight is
// [out_features, in_features]. Readers of formats with other conventions
// (GGUF's reversed dims) convert the shape, never the bytes.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace solar {

struct TensorView {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  const void* data = nullptr;
  size_t nbytes = 0;

  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
  int64_t rows() const { return shape.empty() ? 1 : shape[0]; }
  int64_t cols() const { return shape.size() < 2 ? (shape.empty() ? 1 : shape[0]) : numel() / shape[0]; }
  // Bytes of one row of a 2-D tensor (cols() elements; whole blocks for a
  // block-quantized dtype, else throws).
  size_t row_nbytes() const { return row_bytes(dtype, cols()); }
  // Pointer to row r of a 2-D tensor.
  const void* row(int64_t r) const { return static_cast<const uint8_t*>(data) + size_t(r) * row_nbytes(); }
};

// Bytes of a tensor of `shape` and `dt`: block types quantize along the
// innermost dimension, which must be whole blocks (else solar::Error naming
// the shape and dtype). A 0-D shape is one element. Overflow-checked: a
// negative dimension or a product past 2^63 bytes throws too.
size_t tensor_bytes(DType dt, const std::vector<int64_t>& shape);
inline size_t tensor_bytes(const TensorView& t) { return tensor_bytes(t.dtype, t.shape); }

std::string shape_str(const std::vector<int64_t>& shape);  // "[4096, 32000]"

}  // namespace solar
