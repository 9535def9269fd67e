#include "core/tensor.h"

#include "core/error.h"

namespace solar {

size_t tensor_bytes(DType dt, const std::vector<int64_t>& shape) {
  if (shape.empty()) return row_bytes(dt, 1);
  int64_t inner = shape.back(), outer = 1;
  for (size_t i = 0; i + 1 < shape.size(); ++i) outer *= shape[i];
  if (inner % dtype_block_elems(dt) != 0)
    fail(shape_str(shape), dtype_name(dt),
         "innermost dimension " + std::to_string(inner) + " is not a multiple of the " +
             std::to_string(dtype_block_elems(dt)) + "-element block");
  return size_t(outer) * row_bytes(dt, inner);
}

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

}  // namespace solar
