#include "core/tensor.h"

#include "core/error.h"

namespace solar {

size_t tensor_bytes(DType dt, const std::vector<int64_t>& shape) {
  if (shape.empty()) return row_bytes(dt, 1);
  for (int64_t d : shape)
    if (d < 0) fail(shape_str(shape), dtype_name(dt), "expected dimensions >= 0");
  int64_t inner = shape.back(), outer = 1;
  for (size_t i = 0; i + 1 < shape.size(); ++i)
    if (__builtin_mul_overflow(outer, shape[i], &outer)) fail(shape_str(shape), dtype_name(dt), "too many elements");
  if (inner % dtype_block_elems(dt) != 0)
    fail(shape_str(shape), dtype_name(dt),
         "innermost dimension " + std::to_string(inner) + " is not a multiple of the " +
             std::to_string(dtype_block_elems(dt)) + "-element block");
  size_t bytes;
  if (__builtin_mul_overflow(size_t(outer), row_bytes(dt, inner), &bytes) || bytes > size_t(INT64_MAX))
    fail(shape_str(shape), dtype_name(dt), "too many bytes for one tensor");
  return bytes;
}

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

}  // namespace solar
