#include "kernels/ops.h"

#include <cmath>

namespace solar::kernels {

void rmsnorm(float* out, const float* x, const float* w, int64_t n, float eps) {
  float ss = 0;
  for (int64_t i = 0; i < n; ++i) ss += x[i] * x[i];
  float r = 1.0f / std::sqrt(ss / float(n) + eps);
  for (int64_t i = 0; i < n; ++i) out[i] = x[i] * r * w[i];
}

void rope_inv_freq(float* inv_freq, int head_dim, double theta) {
  for (int i = 0; i < head_dim / 2; ++i) inv_freq[i] = float(1.0 / std::pow(theta, double(2 * i) / head_dim));
}

void rope(float* v, int head_dim, int pos, const float* inv_freq, bool interleaved) {
  int half = head_dim / 2;
  for (int i = 0; i < half; ++i) {
    float a = float(pos) * inv_freq[i];
    float c = std::cos(a), s = std::sin(a);
    int i0 = interleaved ? 2 * i : i, i1 = interleaved ? 2 * i + 1 : i + half;
    float x0 = v[i0], x1 = v[i1];
    v[i0] = x0 * c - x1 * s;
    v[i1] = x0 * s + x1 * c;
  }
}

void softmax(float* x, int64_t n) {
  float mx = x[0];
  for (int64_t i = 1; i < n; ++i) mx = x[i] > mx ? x[i] : mx;
  float sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - mx);
    sum += x[i];
  }
  float inv = 1.0f / sum;
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

void swiglu(float* gate, const float* up, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    float g = gate[i];
    gate[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

}  // namespace solar::kernels
