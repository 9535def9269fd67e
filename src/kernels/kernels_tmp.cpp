// Placeholder dispatch (simple OpenMP loops) until kernels/ lands its fast paths.
#include <omp.h>

#include <vector>

#include "kernels/kernels.h"

namespace solar::kernels {

const CpuFeatures& cpu() {
  static CpuFeatures f;
  return f;
}
std::string CpuFeatures::describe() const { return "generic"; }
void set_num_threads(int n) { omp_set_num_threads(n > 0 ? n : omp_get_num_procs()); }
int num_threads() { return omp_get_max_threads(); }

void linear(const float* x, int64_t M, int64_t K, const void* W, DType wdt, int64_t N, float* y, bool acc) {
#pragma omp parallel
  {
    std::vector<float> row((size_t(K)));
#pragma omp for schedule(static)
    for (int64_t n = 0; n < N; ++n) {
      convert(static_cast<const uint8_t*>(W) + size_t(n * K) * dtype_size(wdt), wdt, row.data(), DType::F32, size_t(K));
      for (int64_t m = 0; m < M; ++m) {
        float s = 0;
        for (int64_t k = 0; k < K; ++k) s += x[m * K + k] * row[k];
        y[m * N + n] = acc ? y[m * N + n] + s : s;
      }
    }
  }
}

void gemm(bool tA, bool tB, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
          const float* B, int64_t ldb, float beta, float* C, int64_t ldc, Precision) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      float s = 0;
      for (int64_t k = 0; k < K; ++k) s += (tA ? A[k * lda + i] : A[i * lda + k]) * (tB ? B[j * ldb + k] : B[k * ldb + j]);
      C[i * ldc + j] = (beta == 0 ? 0.f : beta * C[i * ldc + j]) + alpha * s;
    }
}

}  // namespace solar::kernels
