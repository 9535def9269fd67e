#include "kernels/ops.h"

#include <cmath>

#include "kernels/kernels_impl.h"

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

// The AVX-512 (ops_avx512.cpp) or AVX2 (ops_avx2.cpp) versions when the CPU has them; these loops
// are the portable fallback and the reference the kernel tests compare to.
float dot(const float* a, const float* b, int64_t n) {
  if (detail::dispatch().isa == detail::Isa::Avx512) return detail::dot_avx512(a, b, n);
  if (detail::dispatch().isa == detail::Isa::Avx2) return detail::dot_avx2(a, b, n);
  float s = 0;
  for (int64_t i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

void axpy(float* y, float a, const float* x, int64_t n) {
  if (detail::dispatch().isa == detail::Isa::Avx512) return detail::axpy_avx512(y, a, x, n);
  if (detail::dispatch().isa == detail::Isa::Avx2) return detail::axpy_avx2(y, a, x, n);
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

float softmax(float* x, int64_t n) {
  if (detail::dispatch().isa == detail::Isa::Avx512) return detail::softmax_avx512(x, n);
  if (detail::dispatch().isa == detail::Isa::Avx2) return detail::softmax_avx2(x, n);
  float mx = x[0];
  for (int64_t i = 1; i < n; ++i) mx = x[i] > mx ? x[i] : mx;
  // The reference path: sums in double (one float chain over a 32,000-word
  // vocabulary drifts by ~1e-6 relative, more than the SIMD paths' lanes).
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - mx);
    sum += x[i];
  }
  const float inv = float(1.0 / sum);
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
  return mx + float(std::log(sum));
}

int64_t argmax(const float* x, int64_t n) {
  if (n <= 1 || std::isnan(x[0])) return 0;
  if (detail::dispatch().isa == detail::Isa::Avx512) return detail::argmax_avx512(x, n);
  if (detail::dispatch().isa == detail::Isa::Avx2) return detail::argmax_avx2(x, n);
  // 16 independent lanes (no chain through memory), then where the maximum
  // first occurs.
  constexpr int L = 16;
  float lane[L];
  for (float& v : lane) v = x[0];
  int64_t i = 0;
  for (; i + L <= n; i += L)
    for (int j = 0; j < L; ++j) lane[j] = x[i + j] > lane[j] ? x[i + j] : lane[j];
  float m = x[0];
  for (float v : lane) m = v > m ? v : m;
  for (; i < n; ++i) m = x[i] > m ? x[i] : m;
  int64_t k = 0;
  while (x[k] != m) ++k;  // m is one of x's values, not NaN: found
  return k;
}

void softmax_backward(float* dp, const float* p, int64_t n, float scale) {
  if (detail::dispatch().isa == detail::Isa::Avx512) return detail::softmax_backward_avx512(dp, p, n, scale);
  if (detail::dispatch().isa == detail::Isa::Avx2) return detail::softmax_backward_avx2(dp, p, n, scale);
  double acc = 0;
  for (int64_t i = 0; i < n; ++i) acc += double(p[i]) * dp[i];
  const float dot = float(acc);
  for (int64_t i = 0; i < n; ++i) dp[i] = p[i] * (dp[i] - dot) * scale;
}

void layernorm(float* x, const float* w, const float* b, int64_t n, float eps) {
  if (detail::dispatch().isa == detail::Isa::Avx512) return detail::layernorm_avx512(x, w, b, n, eps);
  if (detail::dispatch().isa == detail::Isa::Avx2) return detail::layernorm_avx2(x, w, b, n, eps);
  double mean = 0, var = 0;
  for (int64_t i = 0; i < n; ++i) mean += x[i];
  mean /= double(n);
  for (int64_t i = 0; i < n; ++i) var += (x[i] - mean) * (x[i] - mean);
  const float inv = float(1.0 / std::sqrt(var / double(n) + eps)), m = float(mean);
  for (int64_t i = 0; i < n; ++i) x[i] = (x[i] - m) * inv * w[i] + b[i];
}

void gelu(float* x, int64_t n) {
  if (detail::dispatch().isa == detail::Isa::Avx512) return detail::gelu_avx512(x, n);
  if (detail::dispatch().isa == detail::Isa::Avx2) return detail::gelu_avx2(x, n);
  for (int64_t i = 0; i < n; ++i) x[i] = 0.5f * x[i] * (1.f + std::erf(x[i] * float(M_SQRT1_2)));
}

void swiglu(float* h, const float* gate, const float* up, int64_t n) {
  if (detail::dispatch().isa == detail::Isa::Avx512) return detail::swiglu_avx512(h, gate, up, n);
  if (detail::dispatch().isa == detail::Isa::Avx2) return detail::swiglu_avx2(h, gate, up, n);
  for (int64_t i = 0; i < n; ++i) {
    float g = gate[i];
    h[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

// d silu(g) = σ(g)·(1 + g·(1 − σ(g)))
void swiglu_backward(float* dgate, float* dup, const float* dh, const float* gate, const float* up, int64_t n) {
  if (detail::dispatch().isa == detail::Isa::Avx512)
    return detail::swiglu_backward_avx512(dgate, dup, dh, gate, up, n);
  if (detail::dispatch().isa == detail::Isa::Avx2) return detail::swiglu_backward_avx2(dgate, dup, dh, gate, up, n);
  for (int64_t i = 0; i < n; ++i) {
    float g = gate[i], s = 1.0f / (1.0f + std::exp(-g));
    dgate[i] = dh[i] * up[i] * s * (1.0f + g * (1.0f - s));
    dup[i] = dh[i] * g * s;
  }
}

}  // namespace solar::kernels
