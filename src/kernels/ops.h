// solar/kernels/ops.h — the small element-wise ops of a Llama block.
// Forward only; training's backward versions live in train/ops.h beside
// their own forwards.
#pragma once
#include <cstdint>

namespace solar::kernels {

// out[i] = x[i] / sqrt(mean(x²) + eps) * w[i], n elements.
void rmsnorm(float* out, const float* x, const float* w, int64_t n, float eps);
// Rotates one head vector (head_dim values) in place for position pos.
// interleaved: pairs (2i, 2i+1); else HF rotate_half: (i, i + head_dim/2).
// inv_freq[i] = theta^(-2i/head_dim), head_dim/2 entries (see rope_inv_freq).
void rope(float* v, int head_dim, int pos, const float* inv_freq, bool interleaved);
void rope_inv_freq(float* inv_freq, int head_dim, double theta);
// In-place softmax over n values.
void softmax(float* x, int64_t n);
// gate[i] = silu(gate[i]) * up[i].
void swiglu(float* gate, const float* up, int64_t n);

}  // namespace solar::kernels
