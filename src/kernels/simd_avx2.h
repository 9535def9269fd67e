// AVX2 helpers the kernels share (ops_avx2.cpp, attention.cpp).
#pragma once
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#include <algorithm>
#include <cstdint>

namespace solar::kernels::detail {

// The first clamp(left, 0, 8) lanes set: the mask of a row's tail for
// maskload / maskstore, as a window into eight −1s then eight 0s.
__attribute__((target("avx2"))) inline __attribute__((always_inline)) __m256i avx2_tail(int64_t left) {
  alignas(64) static const int32_t window[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(window + 8 - std::clamp<int64_t>(left, 0, 8)));
}

}  // namespace solar::kernels::detail
