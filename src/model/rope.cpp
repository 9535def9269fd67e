#include "model/rope.h"

#include <cstdint>
#include <cstring>

namespace solar::model {

void permute_rope_rows(const void* src, void* dst, int n_heads, int head_dim, size_t row_bytes, bool to_hf) {
  auto* s = static_cast<const uint8_t*>(src);
  auto* d = static_cast<uint8_t*>(dst);
  int half = head_dim / 2;
  for (int h = 0; h < n_heads; ++h)
    for (int i = 0; i < half; ++i)
      for (int j = 0; j < 2; ++j) {
        size_t inter = size_t(h) * head_dim + 2 * i + j, hf = size_t(h) * head_dim + j * half + i;
        std::memcpy(d + (to_hf ? hf : inter) * row_bytes, s + (to_hf ? inter : hf) * row_bytes, row_bytes);
      }
}

}  // namespace solar::model
