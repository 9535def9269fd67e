// Portable reference kernels and, until the optimised paths land, the
// dispatch targets themselves.
#include <omp.h>

#include <vector>

#include "kernels/kernels.h"
#include "kernels/kernels_impl.h"

namespace solar::kernels {

// Each row of W is widened (or dequantized) once for all M rows of x: the
// tests' references with M up to 130 took most of the kernel tests' time.
void detail::linear_dequant(const float* x, int64_t M, int64_t K, const void* W, DType wdt, int64_t N, float* y,
                            bool accumulate) {
  const size_t rb = row_bytes(wdt, K);  // throws unless rows are whole blocks
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n) {
    std::vector<float> w(static_cast<size_t>(K));
    dequantize_row(static_cast<const uint8_t*>(W) + size_t(n) * rb, wdt, w.data(), K);
    for (int64_t m = 0; m < M; ++m) {
      double s = 0;
      for (int64_t k = 0; k < K; ++k) s += double(x[m * K + k]) * double(w[k]);
      y[m * N + n] = accumulate ? y[m * N + n] + float(s) : float(s);
    }
  }
}

void linear_ref(const float* x, int64_t M, int64_t K, const void* W, DType wdt, int64_t N, float* y) {
  detail::linear_dequant(x, M, K, W, wdt, N, y, false);
}

void gemm_ref(bool tA, bool tB, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
              const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double s = 0;
      for (int64_t k = 0; k < K; ++k)
        s += double(tA ? A[k * lda + i] : A[i * lda + k]) * double(tB ? B[j * ldb + k] : B[k * ldb + j]);
      float c = beta == 0 ? 0.f : beta * C[i * ldc + j];
      C[i * ldc + j] = c + alpha * float(s);
    }
}

}  // namespace solar::kernels
