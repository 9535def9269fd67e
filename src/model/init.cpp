#include "model/init.h"

#include <cmath>
#include <cstring>

#include "core/rng.h"

namespace solar::model {

void init_tensor(const ModelConfig& c, const std::string& name, uint64_t seed, void* out, DType dt, size_t n) {
  bool norm = name.find("norm") != std::string::npos;
  bool out_proj = name.find("o_proj") != std::string::npos || name.find("down_proj") != std::string::npos;
  float std_ = 0.02f * (out_proj ? 1.0f / std::sqrt(2.0f * float(c.num_hidden_layers)) : 1.0f);
  const uint64_t h = rng_key(seed, name);
  size_t esz = dtype_size(dt);
#pragma omp parallel for schedule(static)
  for (size_t i = 0; i < n; ++i) {
    float v = norm ? 1.0f : std_ * rng_normal(h, i);
    uint8_t* p = static_cast<uint8_t*>(out) + i * esz;
    if (dt == DType::F32) std::memcpy(p, &v, 4);
    else {
      uint16_t b = dt == DType::BF16 ? f32_to_bf16(v) : f32_to_f16(v);
      std::memcpy(p, &b, 2);
    }
  }
}

}  // namespace solar::model
