#include "model/init.h"

#include <cmath>
#include <cstring>

namespace solar {

static uint64_t splitmix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

void init_tensor(const ModelConfig& c, const std::string& name, uint64_t seed, void* out, DType dt, size_t n) {
  bool norm = name.find("norm") != std::string::npos;
  bool out_proj = name.find("o_proj") != std::string::npos || name.find("down_proj") != std::string::npos;
  float std_ = 0.02f * (out_proj ? 1.0f / std::sqrt(2.0f * float(c.num_hidden_layers)) : 1.0f);
  float a = std_ * std::sqrt(3.0f);  // uniform(-a, a) has std a/√3
  uint64_t h = seed;
  for (char ch : name) h = splitmix(h ^ uint8_t(ch));
  size_t esz = dtype_size(dt);
#pragma omp parallel for schedule(static)
  for (size_t i = 0; i < n; ++i) {
    float v = norm ? 1.0f : (float(splitmix(h + i) >> 40) * (2.0f / 16777216.0f) - 1.0f) * a;
    uint8_t* p = static_cast<uint8_t*>(out) + i * esz;
    if (dt == DType::F32) std::memcpy(p, &v, 4);
    else {
      uint16_t b = dt == DType::BF16 ? f32_to_bf16(v) : f32_to_f16(v);
      std::memcpy(p, &b, 2);
    }
  }
}

}  // namespace solar
