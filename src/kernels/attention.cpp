// Blockwise causal attention for many query rows (ops.h, attention_rows):
// the online softmax of FlashAttention (Dao et al., 2022) on CPU GEMMs.
// Scores exist only for one block of keys at a time ([rows, kKeyBlock]):
// a 4096-token prompt never materialises its 4096 × 4096 matrix, and the two
// products per block run as GEMMs instead of one dot product per (query, key).
#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/kernels.h"
#include "kernels/kernels_impl.h"
#include "kernels/ops.h"

namespace solar::kernels {
namespace {

constexpr int kKeyBlock = 128;

void exp_inplace(float* x, int64_t n) {
  if (detail::dispatch().isa == detail::Isa::Avx512) return detail::exp_avx512(x, x, n);
  for (int64_t i = 0; i < n; ++i) x[i] = std::exp(x[i]);
}

}  // namespace

void attention_rows(const float* q, int64_t ldq, const float* k, const float* v, int64_t ldkv, const int* lo,
                    const int* hi, int n, int hd, float scale, float* out, int64_t ldo) {
  if (n <= 0) return;
  int first = lo[0], last = hi[0];
  for (int i = 1; i < n; ++i) first = std::min(first, lo[i]), last = std::max(last, hi[i]);
  // Per row: the running max m and sum l of exp(s − m); o accumulates
  // exp(s − m)·V and is rescaled whenever m grows.
  thread_local std::vector<float> buf;
  std::vector<float>& b = buf;  // named by reference: callers run this inside parallel regions
  b.assign(size_t(n) * (kKeyBlock + hd + 2), 0.f);
  float* s = b.data();                       // [n, kKeyBlock]
  float* o = s + size_t(n) * kKeyBlock;      // [n, hd]
  float* m = o + size_t(n) * hd;             // [n]
  float* l = m + n;                          // [n]
  std::fill(m, m + n, -INFINITY);
  for (int j0 = first; j0 <= last; j0 += kKeyBlock) {
    const int cols = std::min(kKeyBlock, last + 1 - j0);
    // s[i, c] = scale · q_i · k_{j0+c}
    gemm(false, true, n, cols, hd, scale, q, ldq, k + int64_t(j0) * ldkv, ldkv, 0.f, s, kKeyBlock);
    bool any = false;
    for (int i = 0; i < n; ++i) {
      float* si = s + size_t(i) * kKeyBlock;
      const int c0 = std::clamp(lo[i] - j0, 0, cols), c1 = std::clamp(hi[i] + 1 - j0, 0, cols);
      std::fill(si, si + c0, -INFINITY);
      std::fill(si + c1, si + cols, -INFINITY);
      if (c0 >= c1) {  // no key of this block: p = 0, nothing changes
        std::fill(si, si + cols, 0.f);
        continue;
      }
      any = true;
      const float mb = *std::max_element(si + c0, si + c1), mn = std::max(m[i], mb);
      const float corr = m[i] == -INFINITY ? 0.f : std::exp(m[i] - mn);
      for (int c = 0; c < cols; ++c) si[c] -= mn;
      exp_inplace(si, cols);  // exp(−inf) = 0 for the masked keys
      float sum = 0;
      for (int c = 0; c < cols; ++c) sum += si[c];
      l[i] = l[i] * corr + sum;
      m[i] = mn;
      if (corr != 1.f)
        for (int d = 0; d < hd; ++d) o[size_t(i) * hd + d] *= corr;
    }
    // o += p · V_block
    if (any) gemm(false, false, n, hd, cols, 1.f, s, kKeyBlock, v + int64_t(j0) * ldkv, ldkv, 1.f, o, hd);
  }
  for (int i = 0; i < n; ++i) {
    const float inv = l[i] > 0 ? 1.f / l[i] : 0.f;
    for (int d = 0; d < hd; ++d) out[i * ldo + d] = o[size_t(i) * hd + d] * inv;
  }
}

}  // namespace solar::kernels
