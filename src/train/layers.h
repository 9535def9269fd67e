// solar/train/layers.h — forward and backward of every op of a Llama block.
//
// llm.c style: each op's forward and backward side by side, with shapes.
// N = B*T rows; activations are row-major [N, d]. Templated on the scalar:
// float is the training path (GEMMs through kernels::gemm at Precision p),
// double is the reference used by finite-difference gradient checks (p ignored).
// Backward functions ACCUMULATE (+=) into parameter gradients and into dx
// unless noted, so residual branches simply add. Every reduction runs in a
// fixed order, so results are bit-identical for a fixed thread count.
#pragma once
#include <cstdint>

#include "kernels/kernels.h"

namespace solar::train {

using kernels::Precision;

// C[M,N] = alpha·op(A)·op(B) + beta·C (row-major, as kernels::gemm).
template <class S>
void gemm(bool tA, bool tB, int64_t M, int64_t N, int64_t K, S alpha, const S* A, int64_t lda, const S* B,
          int64_t ldb, S beta, S* C, int64_t ldc, Precision p);

// out[N,d] = table[ids[n], :]          table [V,d]
template <class S>
void embedding_forward(S* out, const int32_t* ids, const S* table, int64_t N, int64_t d);
// dtable[ids[n], :] += dout[n, :]
template <class S>
void embedding_backward(S* dtable, const S* dout, const int32_t* ids, int64_t N, int64_t d);

// out[N,d] = x / sqrt(mean(x²) + eps) * w;  rstd[N] saved for backward.
template <class S>
void rmsnorm_forward(S* out, S* rstd, const S* x, const S* w, int64_t N, int64_t d, float eps);
// dx[N,d] += …, dw[d] += …
template <class S>
void rmsnorm_backward(S* dx, S* dw, const S* dout, const S* x, const S* w, const S* rstd, int64_t N, int64_t d);

// y[N,out] = x[N,in] · W[out,in]ᵀ
template <class S>
void linear_forward(S* y, const S* x, const S* W, int64_t N, int64_t in, int64_t out, Precision p);
// dx[N,in] (= or += per accumulate_dx) = dy·W;  dW[out,in] += dyᵀ·x.  dx may be null.
template <class S>
void linear_backward(S* dx, S* dW, const S* dy, const S* x, const S* W, int64_t N, int64_t in, int64_t out,
                     Precision p, bool accumulate_dx);

// RoPE tables for positions 0..T-1: cos/sin [T, head_dim/2], HF inv_freq.
template <class S>
void rope_table(S* cos, S* sin, int T, int head_dim, double theta);
// x[N = B*T, heads*head_dim] rotated in place (HF rotate_half). Row n sits
// at position pos[n] (packed examples restart it; the table must cover it),
// or n % T when pos is null.
template <class S>
void rope_forward(S* x, const S* cos, const S* sin, int64_t N, int T, int heads, int head_dim,
                  const int32_t* pos = nullptr);
// dx in place: the inverse rotation (rotations are orthogonal).
template <class S>
void rope_backward(S* dx, const S* cos, const S* sin, int64_t N, int T, int heads, int head_dim,
                   const int32_t* pos = nullptr);

// Causal grouped-query attention, softmax in FP32 (or double), computed in
// blocks of query rows that skip the keys no row of the block can see.
// q [B*T, H*hd], k/v [B*T, KV*hd], out [B*T, H*hd], att [B, H, T, T] = the
// probabilities, saved for backward (entries above the diagonal unspecified).
// seg [B*T] (packing; null = one example per row): query t sees key s <= t
// only when seg[s] == seg[t]; the others get probability exactly 0, so the
// backward below needs no mask (softmax'(p = 0) = 0).
template <class S>
void attention_forward(S* out, S* att, const S* q, const S* k, const S* v, int B, int T, int H, int KV, int hd,
                       Precision p, const int32_t* seg = nullptr);
// dq (=), dk, dv (=) from dout; scratch: attention_scratch(T) elements.
template <class S>
void attention_backward(S* dq, S* dk, S* dv, S* scratch, const S* dout, const S* att, const S* q, const S* k,
                        const S* v, int B, int T, int H, int KV, int hd, Precision p);
int64_t attention_scratch(int T);  // elements of scratch needed

// h[n] = silu(gate[n]) * up[n]
template <class S>
void swiglu_forward(S* h, const S* gate, const S* up, int64_t n);
// dgate[n], dup[n] (=) from dh
template <class S>
void swiglu_backward(S* dgate, S* dup, const S* dh, const S* gate, const S* up, int64_t n);

// Residual: x[n] += y[n]. Its backward is the identity on both branches.
template <class S>
void residual_forward(S* x, const S* y, int64_t n);

// The loss objectives: they read logits [N,V] and write dloss/dlogits in
// place, for Net::backward.
//
// Cross-entropy of logits [N,V] against targets [N], with an optional
// per-token weight [N] (a mask: 0 drops the token; nullptr = all 1). Returns
// the weighted mean Σ w·loss / Σ w (0 when Σ w = 0: an all-masked batch) and,
// if dlogits_scale != 0, overwrites logits with dloss/dlogits · scale
// = w·(softmax − onehot) / Σ w · scale (rows of weight 0 become 0).
template <class S>
double cross_entropy(S* logits, const int32_t* targets, int64_t N, int64_t V, S dlogits_scale,
                     const S* weight = nullptr);

// Per-sequence log-probability: logits [B*T, V], targets [B*T], optional
// weight [B*T]; logp[b] = Σ_t w·log p(target) over row b (the quantity pair
// losses such as DPO compare). If dlogp [B] is given, overwrites logits with
// d(Σ_b dlogp[b]·logp[b])/dlogits = dlogp[b]·w·(onehot − softmax).
template <class S>
void sequence_logprob(S* logits, const int32_t* targets, const S* weight, int64_t B, int64_t T, int64_t V,
                      double* logp, const S* dlogp = nullptr);

}  // namespace solar::train
