// solar/kernels/ops.h — the small element-wise ops of a Llama block.
// Inference calls the forwards; training (train/layers.h) also calls the
// vectorised backwards of softmax and SwiGLU, whose exp is the hot part.
// AVX-512 or AVX2 where the CPU has it (dispatch().isa), portable loops otherwise.
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
// Σ a[i]·b[i], and y[i] += a·x[i]: the per-position loops of inference attention.
float dot(const float* a, const float* b, int64_t n);
void axpy(float* y, float a, const float* x, int64_t n);
// In-place softmax over n ≥ 1 values (AVX2 and scalar sum in double);
// returns log Σ exp(x) of the input
// (cross-entropy = that − x[target], without log of a rounded probability).
float softmax(float* x, int64_t n);
// Causal attention of one head for n query rows: out_i = softmax(scale ·
// q_i·K_jᵀ) · V over key rows j in [lo[i], hi[i]] (inclusive; an empty range
// gives 0). Row i's result depends only on q_i, its range and K/V: the same
// bits for any n and any rows beside it (attention.cpp has the definition).
// Scores are held for these n rows only. q rows at stride ldq, k/v rows at
// ldkv, out at ldo. Single-threaded.
void attention_rows(const float* q, int64_t ldq, const float* k, const float* v, int64_t ldkv, const int* lo,
                    const int* hi, int n, int hd, float scale, float* out, int64_t ldo);
// The two halves of attention_rows for one query, for callers whose keys are
// not one contiguous range (a tree's cached prefix, then its own ancestors):
// s[j − j0] = scale · q·k_j over keys [j0, j1), each key's sum in the one
// order attention_rows uses (the same bits alone or in any range); and
// out = Σ_j p[j − lo] · v_j over [lo, hi], ascending j (zeros if hi < lo).
void attention_scores(const float* q, const float* k, int64_t ldkv, int j0, int j1, int hd, float scale, float* s);
void attention_pv(const float* p, const float* v, int64_t ldkv, int lo, int hi, int hd, float* out);
// The first index of the largest of n values, as the scan `if (x[i] >
// x[best]) best = i` finds it: ties go to the first, NaNs never win (a NaN
// at index 0 wins alone), -0 and +0 are equal. Greedy decoding runs it over
// the vocabulary for every token; the scan is a chain through memory (~10
// cycles an element, 0.1 ms for 32K logits, a small model's forward pass).
int64_t argmax(const float* x, int64_t n);
// Bidirectional attention of one head (an encoder's: every row sees all n
// keys): out_i = softmax(scale · q_i·K_jᵀ, j < n) · V, for rows i < n. q rows
// at stride ldq, k/v rows at ldkv, out at ldo. Single-threaded; AVX-512 runs
// it as tiles of 6 rows × 32 keys, the other paths row by row as
// attention_rows: either way a row's bits depend on n only.
void attention_full(const float* q, int64_t ldq, const float* k, const float* v, int64_t ldkv, int n, int hd,
                    float scale, float* out, int64_t ldo);
// x ← (x − mean) / sqrt(var + eps) · w + b over n elements (BERT's LayerNorm;
// biased variance). AVX-512, AVX2: f32 sums; scalar: double.
void layernorm(float* x, const float* w, const float* b, int64_t n, float eps);
// Softmax backward in place: dp ← p ⊙ (dp − Σ p·dp) · scale.
void softmax_backward(float* dp, const float* p, int64_t n, float scale);
// x[i] ← GELU(x[i]) = x/2 · (1 + erf(x/√2)) in place (BERT's activation).
// AVX-512, AVX2: erf by Abramowitz & Stegun 7.1.26 (|error| ≤ 1.5e-7), 1 + erf
// taken as erfc for x < 0 (no cancellation); within 3e-7·max(1, |x|) of the
// exact value. Scalar: std::erf.
void gelu(float* x, int64_t n);
// h[i] = silu(gate[i]) * up[i]; h may alias gate or up.
void swiglu(float* h, const float* gate, const float* up, int64_t n);
// dgate[i], dup[i] (=) from dh: the backward of swiglu.
void swiglu_backward(float* dgate, float* dup, const float* dh, const float* gate, const float* up, int64_t n);

}  // namespace solar::kernels
