// BF16 panels (bpanel.cpp): the layout read back exactly, the product equal
// to bf16(x)·W summed in double within f32 rounding on every path, and each
// row's result the same bits whatever the batch, the row range or the
// thread count (serve's continuous batching relies on it).
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"
#include "kernels/kernels.h"
#include "kernels/kernels_impl.h"
#include "testing/testing.h"

namespace solar::kernels {
namespace {

struct DispatchGuard {
  detail::Dispatch saved = detail::dispatch();
  int threads = num_threads();
  ~DispatchGuard() {
    detail::dispatch() = saved;
    set_num_threads(threads);
  }
};

std::vector<uint16_t> random_bf16(int64_t n, uint32_t seed) {
  std::vector<uint16_t> v;
  for (float f : testing::gaussian(n, seed)) v.push_back(f32_to_bf16(f));
  return v;
}

std::vector<float> randx(int64_t n, uint32_t seed) { return testing::gaussian(n, seed, 2.f); }

// The paths this CPU can run: vdpbf16ps, and the scalar definition.
std::vector<std::pair<std::string, bool>> paths() {
  std::vector<std::pair<std::string, bool>> p{{"scalar", false}};
  if (can_pack(DType::BF16) && detail::dispatch().isa == detail::Isa::Avx512) p.push_back({"vdpbf16ps", true});
  return p;
}

void set_path(bool simd) {
  detail::dispatch().bf16_dot = simd;
  if (!simd) detail::dispatch().isa = detail::Isa::Avx2;  // x rounding by the portable loop too
}

TEST(BPanel, OneHotXReadsBackEveryColumn) {
  DispatchGuard g;
  for (auto [name, simd] : paths()) {
    set_path(simd);
    for (int64_t N : {1, 16, 21}) {
      const int64_t K = 37;
      auto w = random_bf16(N * K, uint32_t(N));
      const PackedWeight pw = pack_weight(w.data(), DType::BF16, N, K);
      EXPECT_EQ(pw.bytes.size(), packed_size(DType::BF16, N, K));
      for (int64_t k = 0; k < K; ++k) {
        std::vector<float> x(size_t(K), 0.f), y(size_t(N), NAN);
        x[size_t(k)] = 1.f;
        linear(x.data(), 1, pw, y.data());
        for (int64_t n = 0; n < N; ++n)
          ASSERT_EQ(y[size_t(n)], bf16_to_f32(w[size_t(n * K + k)])) << name << " N=" << N << " n=" << n << " k=" << k;
      }
    }
  }
}

TEST(BPanel, EqualsRoundedXTimesWInDouble) {
  DispatchGuard g;
  for (auto [name, simd] : paths()) {
    set_path(simd);
    for (int64_t K : {1, 2, 3, 31, 32, 33, 100, 2048})
      for (int64_t M : {1, 2, 3, 4, 5, 12, 13, 29})
        for (int64_t N : {1, 17, 130}) {
          auto w = random_bf16(N * K, uint32_t(K * 7 + N));
          auto x = randx(M * K, uint32_t(M + K));
          const PackedWeight pw = pack_weight(w.data(), DType::BF16, N, K);
          std::vector<float> y(size_t(M * N), 1.f);
          linear(x.data(), M, pw, y.data(), /*accumulate=*/true);
          for (int64_t m = 0; m < M; ++m)
            for (int64_t n = 0; n < N; ++n) {
              double s = 0, mag = 0;
              for (int64_t k = 0; k < K; ++k) {
                const double p = double(bf16_to_f32(f32_to_bf16(x[size_t(m * K + k)]))) * bf16_to_f32(w[size_t(n * K + k)]);
                s += p, mag += std::fabs(p);
              }
              // f32 accumulation over K/2 pairs: K·2⁻²⁴ of Σ|x·w| bounds it.
              const double tol = 1.0 + mag * (double(K) + 4) * 6e-8;
              ASSERT_NEAR(y[size_t(m * N + n)], 1.0 + s, tol) << name << " M=" << M << " N=" << N << " K=" << K;
            }
        }
  }
}

TEST(BPanel, RowsAreTheSameBitsInAnyBatchAndThreadCount) {
  DispatchGuard g;
  const int64_t N = 1003, K = 515, M = 29;
  auto w = random_bf16(N * K, 11);
  auto x = randx(M * K, 12);
  const PackedWeight pw = pack_weight(w.data(), DType::BF16, N, K);
  for (auto [name, simd] : paths()) {
    set_path(simd);
    set_num_threads(2);
    std::vector<float> batch(size_t(M * N));
    linear(x.data(), M, pw, batch.data());
    for (int threads : {1, 2}) {
      set_num_threads(threads);
      for (int64_t m = 0; m < M; ++m) {
        std::vector<float> alone(static_cast<size_t>(N));
        linear(&x[size_t(m * K)], 1, pw, alone.data());
        for (int64_t n = 0; n < N; ++n)
          ASSERT_EQ(alone[size_t(n)], batch[size_t(m * N + n)]) << name << " t=" << threads << " m=" << m << " n=" << n;
      }
      std::vector<float> part(size_t(5 * N));  // a block of rows from the middle
      linear(&x[size_t(7 * K)], 5, pw, part.data());
      for (int64_t i = 0; i < 5 * N; ++i) ASSERT_EQ(part[size_t(i)], batch[size_t(7 * N + i)]) << name;
    }
  }
}

TEST(BPanel, RefusesAnEmptyShape) {
  std::vector<uint16_t> w(4);
  EXPECT_THROW(pack_weight(w.data(), DType::BF16, 0, 4), Error);
  EXPECT_THROW(pack_weight(w.data(), DType::BF16, 4, 0), Error);
}

}  // namespace
}  // namespace solar::kernels
