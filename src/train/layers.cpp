#include "train/layers.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include "kernels/ops.h"

namespace solar::train {

// Below this many scalar operations a loop runs on one thread: fork/join
// costs more than it saves, above all on a busy machine.
static constexpr int64_t kParallelWork = 1 << 15;

// Runs f(lo, hi) on a contiguous slice of [0, n) per thread: column-parallel
// reductions (dW of norms, embeddings) then sum rows in a fixed order.
template <class F>
static void for_slices(int64_t n, int64_t work, F f) {
#pragma omp parallel if (work > kParallelWork)
  {
    int64_t nt = omp_get_num_threads(), t = omp_get_thread_num();
    int64_t lo = n * t / nt, hi = n * (t + 1) / nt;
    if (lo < hi) f(lo, hi);
  }
}

template <>
void gemm<float>(bool tA, bool tB, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                 const float* B, int64_t ldb, float beta, float* C, int64_t ldc, Precision p) {
  kernels::gemm(tA, tB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, p);
}

template <>
void gemm<double>(bool tA, bool tB, int64_t M, int64_t N, int64_t K, double alpha, const double* A, int64_t lda,
                  const double* B, int64_t ldb, double beta, double* C, int64_t ldc, Precision) {
#pragma omp parallel for schedule(static) if (M * N * K > kParallelWork)
  for (int64_t i = 0; i < M; ++i) {
    double* c = C + i * ldc;
    for (int64_t j = 0; j < N; ++j) c[j] = beta == 0 ? 0.0 : beta * c[j];
    for (int64_t k = 0; k < K; ++k) {
      double a = alpha * (tA ? A[k * lda + i] : A[i * lda + k]);
      if (tB)
        for (int64_t j = 0; j < N; ++j) c[j] += a * B[j * ldb + k];
      else
        for (int64_t j = 0; j < N; ++j) c[j] += a * B[k * ldb + j];
    }
  }
}

// ---- embedding -------------------------------------------------------------

template <class S>
void embedding_forward(S* out, const int32_t* ids, const S* table, int64_t N, int64_t d) {
#pragma omp parallel for schedule(static) if (N * d > kParallelWork)
  for (int64_t n = 0; n < N; ++n) std::copy_n(table + int64_t(ids[n]) * d, d, out + n * d);
}

template <class S>
void embedding_backward(S* dtable, const S* dout, const int32_t* ids, int64_t N, int64_t d) {
  for_slices(d, N * d, [&](int64_t lo, int64_t hi) {
    for (int64_t n = 0; n < N; ++n) {
      S* dst = dtable + int64_t(ids[n]) * d;
      const S* src = dout + n * d;
      for (int64_t j = lo; j < hi; ++j) dst[j] += src[j];
    }
  });
}

// ---- rmsnorm ---------------------------------------------------------------

template <class S>
void rmsnorm_forward(S* out, S* rstd, const S* x, const S* w, int64_t N, int64_t d, float eps) {
#pragma omp parallel for schedule(static) if (N * d > kParallelWork)
  for (int64_t n = 0; n < N; ++n) {
    const S* xr = x + n * d;
    S ss = 0;
    for (int64_t j = 0; j < d; ++j) ss += xr[j] * xr[j];
    S r = S(1) / std::sqrt(ss / S(d) + S(eps));
    rstd[n] = r;
    for (int64_t j = 0; j < d; ++j) out[n * d + j] = xr[j] * r * w[j];
  }
}

// y = x·r·w, r = (mean(x²)+eps)^-½:  dx = r·w·dy − r³/d · x · Σ(dy·w·x),  dw = Σₙ dy·x·r
template <class S>
void rmsnorm_backward(S* dx, S* dw, const S* dout, const S* x, const S* w, const S* rstd, int64_t N, int64_t d) {
#pragma omp parallel for schedule(static) if (N * d > kParallelWork)
  for (int64_t n = 0; n < N; ++n) {
    const S *xr = x + n * d, *dy = dout + n * d;
    S r = rstd[n], dot = 0;
    for (int64_t j = 0; j < d; ++j) dot += dy[j] * w[j] * xr[j];
    S c = r * r * r * dot / S(d);
    for (int64_t j = 0; j < d; ++j) dx[n * d + j] += r * w[j] * dy[j] - c * xr[j];
  }
  for_slices(d, N * d, [&](int64_t lo, int64_t hi) {
    for (int64_t n = 0; n < N; ++n)
      for (int64_t j = lo; j < hi; ++j) dw[j] += dout[n * d + j] * x[n * d + j] * rstd[n];
  });
}

// ---- linear ----------------------------------------------------------------

template <class S>
void linear_forward(S* y, const S* x, const S* W, int64_t N, int64_t in, int64_t out, Precision p) {
  gemm<S>(false, true, N, out, in, 1, x, in, W, in, 0, y, out, p);
}

template <class S>
void linear_backward(S* dx, S* dW, const S* dy, const S* x, const S* W, int64_t N, int64_t in, int64_t out,
                     Precision p, bool accumulate_dx) {
  if (dx) gemm<S>(false, false, N, in, out, 1, dy, out, W, in, accumulate_dx ? 1 : 0, dx, in, p);
  gemm<S>(true, false, out, in, N, 1, dy, out, x, in, 1, dW, in, p);
}

// ---- RoPE (HF rotate_half: pairs (i, i + hd/2)) ----------------------------

template <class S>
void rope_table(S* cos, S* sin, int T, int hd, double theta) {
  int h2 = hd / 2;
  for (int t = 0; t < T; ++t)
    for (int i = 0; i < h2; ++i) {
      double a = t * std::pow(theta, -2.0 * i / hd);
      cos[t * h2 + i] = S(std::cos(a));
      sin[t * h2 + i] = S(std::sin(a));
    }
}

template <class S>
static void rope_rotate(S* x, const S* cos, const S* sin, int64_t N, int T, int heads, int hd, S sign,
                        const int32_t* pos) {
  int h2 = hd / 2;
#pragma omp parallel for schedule(static) if (N * heads * hd > kParallelWork)
  for (int64_t n = 0; n < N; ++n) {
    const int64_t at = pos ? pos[n] : n % T;
    const S *c = cos + at * h2, *s = sin + at * h2;
    for (int h = 0; h < heads; ++h) {
      S* v = x + (n * heads + h) * hd;
      for (int i = 0; i < h2; ++i) {
        S a = v[i], b = v[i + h2], si = sign * s[i];
        v[i] = a * c[i] - b * si;
        v[i + h2] = b * c[i] + a * si;
      }
    }
  }
}

template <class S>
void rope_forward(S* x, const S* cos, const S* sin, int64_t N, int T, int heads, int hd, const int32_t* pos) {
  rope_rotate<S>(x, cos, sin, N, T, heads, hd, 1, pos);
}
template <class S>
void rope_backward(S* dx, const S* cos, const S* sin, int64_t N, int T, int heads, int hd, const int32_t* pos) {
  rope_rotate<S>(dx, cos, sin, N, T, heads, hd, -1, pos);
}

// ---- row softmax: the vectorised kernels for float, plain loops for double --

// In place; returns log Σ exp(x).
template <class S>
static S softmax_row(S* x, int64_t n) {
  if constexpr (std::is_same_v<S, float>) {
    return kernels::softmax(x, n);
  } else {
    S mx = *std::max_element(x, x + n), sum = 0;
    for (int64_t j = 0; j < n; ++j) sum += x[j] = std::exp(x[j] - mx);
    for (int64_t j = 0; j < n; ++j) x[j] /= sum;
    return mx + std::log(sum);
  }
}

// dp ← p ⊙ (dp − Σ p·dp) · scale
template <class S>
static void softmax_backward_row(S* dp, const S* p, int64_t n, S scale) {
  if constexpr (std::is_same_v<S, float>) {
    kernels::softmax_backward(dp, p, n, scale);
  } else {
    S dot = 0;
    for (int64_t j = 0; j < n; ++j) dot += p[j] * dp[j];
    for (int64_t j = 0; j < n; ++j) dp[j] = p[j] * (dp[j] - dot) * scale;
  }
}

// ---- causal grouped-query attention ----------------------------------------
// Per (batch, head), in blocks of kAttnBlock query rows [r0, r1): only keys
// [0, r1) can be attended to, so the masked upper triangle is skipped
// block-wise (≈ half the FLOPs at T = 1024):
//   S_b = Q_b·K[0:r1]ᵀ/√hd,  P_b = causal softmax(S_b),  O_b = P_b·V[0:r1].

static constexpr int kAttnBlock = 128;

template <class S>
void attention_forward(S* out, S* att, const S* q, const S* k, const S* v, int B, int T, int H, int KV, int hd,
                       Precision p, const int32_t* seg) {
  int64_t qd = int64_t(H) * hd, kvd = int64_t(KV) * hd, TT = int64_t(T) * T;
  int group = H / KV;
  S scale = S(1) / std::sqrt(S(hd));
#pragma omp parallel for schedule(static) if (int64_t(B) * H * TT * hd > kParallelWork)
  for (int bh = 0; bh < B * H; ++bh) {
    int b = bh / H, h = bh % H, g = h / group;
    const S* Q = q + int64_t(b) * T * qd + h * hd;
    const S* K = k + int64_t(b) * T * kvd + g * hd;
    const S* V = v + int64_t(b) * T * kvd + g * hd;
    S* O = out + int64_t(b) * T * qd + h * hd;
    S* P = att + bh * TT;
    const int32_t* sg = seg ? seg + int64_t(b) * T : nullptr;
    // first[t]: where t's run of equal seg starts. Packed rows keep each
    // example contiguous: its keys are then [first, t], else they are gathered.
    std::vector<int> first(sg ? T : 0);
    bool contiguous = true;
    if (sg) {
      std::vector<int32_t> runs;  // the seg of each run: contiguous when no value has two
      for (int t = 0; t < T; ++t) {
        first[t] = t > 0 && sg[t - 1] == sg[t] ? first[t - 1] : t;
        if (first[t] == t) runs.push_back(sg[t]);
      }
      std::sort(runs.begin(), runs.end());
      contiguous = std::adjacent_find(runs.begin(), runs.end()) == runs.end();
    }
    std::vector<S> seen(sg && !contiguous ? T : 0);
    std::vector<int> keys(seen.size());
    for (int r0 = 0; r0 < T; r0 += kAttnBlock) {
      const int r1 = std::min(T, r0 + kAttnBlock), rows = r1 - r0;
      S* Pb = P + int64_t(r0) * T;
      gemm<S>(false, true, rows, r1, hd, scale, Q + r0 * qd, qd, K, kvd, 0, Pb, T, p);
      for (int i = r0; i < r1; ++i) {
        S* row = P + int64_t(i) * T;
        if (!sg) {
          softmax_row<S>(row, i + 1);
        } else if (contiguous) {  // softmax over the query's own example; 0 before it
          softmax_row<S>(row + first[i], i + 1 - first[i]);
          std::fill(row, row + first[i], S(0));
        } else {  // the same over keys gathered from anywhere before the query
          int n = 0;
          for (int s = 0; s <= i; ++s)
            if (sg[s] == sg[i]) keys[n] = s, seen[n++] = row[s];
          softmax_row<S>(seen.data(), n);
          std::fill(row, row + i + 1, S(0));
          for (int j = 0; j < n; ++j) row[keys[j]] = seen[j];
        }
        std::fill(row + i + 1, row + r1, S(0));
      }
      gemm<S>(false, false, rows, hd, r1, 1, Pb, T, V, kvd, 0, O + r0 * qd, qd, p);
    }
  }
}

int64_t attention_scratch(int T) { return int64_t(std::min(T, kAttnBlock)) * T * omp_get_max_threads(); }

// Parallel over (batch, kv head) so the heads sharing a K/V accumulate into
// dK/dV in a fixed order without races. Per query block, with dS = dP's
// softmax backward:  dP_b = dO_b·V[0:r1]ᵀ,  dV[0:r1] += P_bᵀ·dO_b,
// dQ_b = dS_b·K[0:r1],  dK[0:r1] += dS_bᵀ·Q_b.
template <class S>
void attention_backward(S* dq, S* dk, S* dv, S* scratch, const S* dout, const S* att, const S* q, const S* k,
                        const S* v, int B, int T, int H, int KV, int hd, Precision p) {
  int64_t qd = int64_t(H) * hd, kvd = int64_t(KV) * hd, TT = int64_t(T) * T;
  int group = H / KV;
  S scale = S(1) / std::sqrt(S(hd));
#pragma omp parallel for schedule(static) if (int64_t(B) * H * TT * hd > kParallelWork)
  for (int bg = 0; bg < B * KV; ++bg) {
    int b = bg / KV, g = bg % KV;
    S* dP = scratch + omp_get_thread_num() * int64_t(std::min(T, kAttnBlock)) * T;  // [rows, T]
    const S* K = k + int64_t(b) * T * kvd + g * hd;
    const S* V = v + int64_t(b) * T * kvd + g * hd;
    S* dK = dk + int64_t(b) * T * kvd + g * hd;
    S* dV = dv + int64_t(b) * T * kvd + g * hd;
    for (int t = 0; t < T; ++t) {
      std::fill_n(dK + t * kvd, hd, S(0));
      std::fill_n(dV + t * kvd, hd, S(0));
    }
    for (int h = g * group; h < (g + 1) * group; ++h) {
      const S* P = att + (int64_t(b) * H + h) * TT;
      const S* dO = dout + int64_t(b) * T * qd + h * hd;
      const S* Q = q + int64_t(b) * T * qd + h * hd;
      S* dQ = dq + int64_t(b) * T * qd + h * hd;
      for (int r0 = 0; r0 < T; r0 += kAttnBlock) {
        const int r1 = std::min(T, r0 + kAttnBlock), rows = r1 - r0;
        const S* Pb = P + int64_t(r0) * T;
        gemm<S>(false, true, rows, r1, hd, 1, dO + r0 * qd, qd, V, kvd, 0, dP, T, p);
        for (int i = r0; i < r1; ++i) {
          S* dr = dP + int64_t(i - r0) * T;
          softmax_backward_row<S>(dr, P + int64_t(i) * T, i + 1, scale);
          std::fill(dr + i + 1, dr + r1, S(0));
        }
        gemm<S>(true, false, r1, hd, rows, 1, Pb, T, dO + r0 * qd, qd, 1, dV, kvd, p);
        gemm<S>(false, false, rows, hd, r1, 1, dP, T, K, kvd, 0, dQ + r0 * qd, qd, p);
        gemm<S>(true, false, r1, hd, rows, 1, dP, T, Q + r0 * qd, qd, 1, dK, kvd, p);
      }
    }
  }
}

// ---- SwiGLU ----------------------------------------------------------------

template <class S>
void swiglu_forward(S* h, const S* gate, const S* up, int64_t n) {
  if constexpr (std::is_same_v<S, float>) {
    for_slices(n, n, [&](int64_t lo, int64_t hi) { kernels::swiglu(h + lo, gate + lo, up + lo, hi - lo); });
  } else {
    for (int64_t i = 0; i < n; ++i) h[i] = gate[i] / (S(1) + std::exp(-gate[i])) * up[i];
  }
}

// silu'(g) = σ(g)·(1 + g·(1 − σ(g)))
template <class S>
void swiglu_backward(S* dgate, S* dup, const S* dh, const S* gate, const S* up, int64_t n) {
  if constexpr (std::is_same_v<S, float>) {
    for_slices(n, n, [&](int64_t lo, int64_t hi) {
      kernels::swiglu_backward(dgate + lo, dup + lo, dh + lo, gate + lo, up + lo, hi - lo);
    });
  } else {
    for (int64_t i = 0; i < n; ++i) {
      S g = gate[i], sg = S(1) / (S(1) + std::exp(-g));
      dgate[i] = dh[i] * up[i] * sg * (S(1) + g * (S(1) - sg));
      dup[i] = dh[i] * g * sg;
    }
  }
}

template <class S>
void residual_forward(S* x, const S* y, int64_t n) {
#pragma omp parallel for schedule(static) if (n > kParallelWork)
  for (int64_t i = 0; i < n; ++i) x[i] += y[i];
}

// ---- cross-entropy ---------------------------------------------------------
// loss = logsumexp(row) − row[target]; the row becomes softmax(row) in place
// (its gradient after the scaling below) or, forward only, a scratch copy does.

template <class S>
double cross_entropy(S* logits, const int32_t* targets, int64_t N, int64_t V, S dlogits_scale, const S* weight) {
  std::vector<double> rowloss(N);
  double wsum = double(N);
  if (weight) {
    wsum = 0;
    for (int64_t n = 0; n < N; ++n) wsum += double(weight[n]);
  }
#pragma omp parallel if (N * V > kParallelWork)
  {
    std::vector<S> copy(dlogits_scale != 0 ? 0 : V);
#pragma omp for schedule(static)
    for (int64_t n = 0; n < N; ++n) {
      S* row = logits + n * V;
      const S w = weight ? weight[n] : S(1);
      if (weight && w == S(0)) {  // masked: no loss, no gradient
        rowloss[n] = 0;
        if (dlogits_scale != 0) std::fill(row, row + V, S(0));
        continue;
      }
      const S target = row[targets[n]];
      if (dlogits_scale == 0) row = std::copy_n(row, V, copy.data()) - V;
      rowloss[n] = double(softmax_row<S>(row, V)) - double(target);
      if (weight) rowloss[n] *= double(w);
      if (dlogits_scale != 0) {
        const S c = weight ? S(double(dlogits_scale) * double(w) / wsum) : dlogits_scale / S(N);
        for (int64_t j = 0; j < V; ++j) row[j] *= c;
        row[targets[n]] -= c;
      }
    }
  }
  if (wsum == 0) return 0;
  double total = 0;
  for (double l : rowloss) total += l;
  return total / wsum;
}

template <class S>
void sequence_logprob(S* logits, const int32_t* targets, const S* weight, int64_t B, int64_t T, int64_t V,
                      double* logp, const S* dlogp) {
  const int64_t N = B * T;
  std::vector<double> tok(N);
#pragma omp parallel if (N * V > kParallelWork)
  {
    std::vector<S> copy(dlogp ? 0 : V);
#pragma omp for schedule(static)
    for (int64_t n = 0; n < N; ++n) {
      S* row = logits + n * V;
      const S w = weight ? weight[n] : S(1);
      if (w == S(0)) {
        tok[n] = 0;
        if (dlogp) std::fill(row, row + V, S(0));
        continue;
      }
      const S target = row[targets[n]];
      if (!dlogp) row = std::copy_n(row, V, copy.data()) - V;
      tok[n] = double(w) * (double(target) - double(softmax_row<S>(row, V)));
      if (dlogp) {
        const S c = -dlogp[n / T] * w;  // d log p(target) / dz = onehot − softmax
        for (int64_t j = 0; j < V; ++j) row[j] *= c;
        row[targets[n]] -= c;
      }
    }
  }
  for (int64_t b = 0; b < B; ++b) {
    double sum = 0;
    for (int64_t t = 0; t < T; ++t) sum += tok[b * T + t];
    logp[b] = sum;
  }
}

#define SOLAR_TRAIN_OPS(S)                                                                                          \
  template void embedding_forward<S>(S*, const int32_t*, const S*, int64_t, int64_t);                              \
  template void embedding_backward<S>(S*, const S*, const int32_t*, int64_t, int64_t);                             \
  template void rmsnorm_forward<S>(S*, S*, const S*, const S*, int64_t, int64_t, float);                           \
  template void rmsnorm_backward<S>(S*, S*, const S*, const S*, const S*, const S*, int64_t, int64_t);             \
  template void linear_forward<S>(S*, const S*, const S*, int64_t, int64_t, int64_t, Precision);                   \
  template void linear_backward<S>(S*, S*, const S*, const S*, const S*, int64_t, int64_t, int64_t, Precision,     \
                                   bool);                                                                           \
  template void rope_table<S>(S*, S*, int, int, double);                                                            \
  template void rope_forward<S>(S*, const S*, const S*, int64_t, int, int, int, const int32_t*);                   \
  template void rope_backward<S>(S*, const S*, const S*, int64_t, int, int, int, const int32_t*);                  \
  template void attention_forward<S>(S*, S*, const S*, const S*, const S*, int, int, int, int, int, Precision,     \
                                     const int32_t*);                                                               \
  template void attention_backward<S>(S*, S*, S*, S*, const S*, const S*, const S*, const S*, const S*, int, int, \
                                      int, int, int, Precision);                                                    \
  template void swiglu_forward<S>(S*, const S*, const S*, int64_t);                                                \
  template void swiglu_backward<S>(S*, S*, const S*, const S*, const S*, int64_t);                                 \
  template void residual_forward<S>(S*, const S*, int64_t);                                                         \
  template double cross_entropy<S>(S*, const int32_t*, int64_t, int64_t, S, const S*);                            \
  template void sequence_logprob<S>(S*, const int32_t*, const S*, int64_t, int64_t, int64_t, double*, const S*);
SOLAR_TRAIN_OPS(float)
SOLAR_TRAIN_OPS(double)

}  // namespace solar::train
