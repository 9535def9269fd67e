// Float panels (fpanel.cpp, BF16, F16 and F32): the layout read back exactly, the
// product equal to x·W summed in double (x rounded to bf16 for BF16's bf16 products) within
// f32 rounding on every path, and each row's result the same bits whatever
// the batch, the row range or the thread count (serve's continuous batching
// relies on it).
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

const DType kTypes[] = {DType::BF16, DType::F16, DType::F32};

// n random weights stored as t, and element i of them as f32.
struct W {
  DType t;
  std::vector<uint8_t> bytes;
  float operator[](size_t i) const {
    float f;
    convert(bytes.data() + i * dtype_size(t), t, &f, DType::F32, 1);
    return f;
  }
};
W random_w(DType t, int64_t n, uint32_t seed) {
  const std::vector<float> f = testing::gaussian(n, seed);
  W w{t, std::vector<uint8_t>(size_t(n) * dtype_size(t))};
  convert(f.data(), DType::F32, w.bytes.data(), t, size_t(n));
  return w;
}
// BF16 rounds x to bf16 where the products are bf16 (vdpbf16ps, and the
// scalar definition of that path); AVX2 widens the weights and keeps x f32.
float x_as_used(DType t, detail::Isa isa, float x) {
  return t == DType::BF16 && isa != detail::Isa::Avx2 ? bf16_to_f32(f32_to_bf16(x)) : x;
}

std::vector<float> randx(int64_t n, uint32_t seed) { return testing::gaussian(n, seed, 2.f); }

using detail::Isa;

// The paths this CPU can run for t, each forced by dispatch().isa: the
// scalar definition, AVX2 (can_pack's minimum) and AVX-512 (BF16: with
// vdpbf16ps; without it, isa Avx512 runs the AVX2 kernels).
std::vector<std::pair<std::string, Isa>> paths(DType t) {
  const std::string n = dtype_name(t);
  std::vector<std::pair<std::string, Isa>> p{{n + " scalar", Isa::Scalar}};
  if (can_pack(t)) p.push_back({n + " avx2", Isa::Avx2});
  if (can_pack(t) && detail::dispatch().isa == Isa::Avx512 && (t != DType::BF16 || cpu().avx512_bf16))
    p.push_back({n + " avx512", Isa::Avx512});
  return p;
}

void set_path(Isa isa) {
  detail::dispatch().isa = isa;
  detail::dispatch().bf16_dot = isa == Isa::Avx512 && cpu().avx512_bf16;
}

// Packing is the layout, not the CPU: the scalar path runs everywhere.
PackedWeight pack(const W& w, DType t, int64_t N, int64_t K) { return pack_weight(w.bytes.data(), t, N, K); }

TEST(FPanel, OneHotXReadsBackEveryColumn) {
  DispatchGuard g;
  for (DType t : kTypes)
  for (auto [name, isa] : paths(t)) {
    set_path(isa);
    for (int64_t N : {1, 16, 21}) {
      const int64_t K = 37;
      auto w = random_w(t, N * K, uint32_t(N));
      const PackedWeight pw = pack(w, t, N, K);
      EXPECT_EQ(pw.bytes.size(), packed_size(t, N, K));
      for (int64_t k = 0; k < K; ++k) {
        std::vector<float> x(size_t(K), 0.f), y(size_t(N), NAN);
        x[size_t(k)] = 1.f;
        linear(x.data(), 1, pw, y.data());
        for (int64_t n = 0; n < N; ++n)
          ASSERT_EQ(y[size_t(n)], w[size_t(n * K + k)]) << name << " N=" << N << " n=" << n << " k=" << k;
      }
    }
  }
}

TEST(FPanel, EqualsRoundedXTimesWInDouble) {
  DispatchGuard g;
  for (DType t : kTypes)
  for (auto [name, isa] : paths(t)) {
    set_path(isa);
    // K: tails of a pair, of 8 and 16; M: the tiles of 1 … 12 rows and
    // blocks of 12; N: a partial last panel, whole ones, groups of panels.
    for (int64_t K : {1, 2, 3, 7, 8, 9, 15, 17, 31, 32, 33, 100, 2048})
      for (int64_t M : {1, 2, 3, 4, 5, 6, 7, 12, 13, 29})
        for (int64_t N : {1, 16, 17, 47, 130}) {
          auto w = random_w(t, N * K, uint32_t(K * 7 + N));
          auto x = randx(M * K, uint32_t(M + K));
          const PackedWeight pw = pack(w, t, N, K);
          std::vector<float> y(size_t(M * N), 1.f);
          linear(x.data(), M, pw, y.data(), /*accumulate=*/true);
          for (int64_t m = 0; m < M; ++m)
            for (int64_t n = 0; n < N; ++n) {
              double s = 0, mag = 0;
              for (int64_t k = 0; k < K; ++k) {
                const double p = double(x_as_used(t, isa, x[size_t(m * K + k)])) * w[size_t(n * K + k)];
                s += p, mag += std::fabs(p);
              }
              // f32 accumulation over K steps: K·2⁻²⁴ of Σ|x·w| bounds it.
              const double tol = 1.0 + mag * (double(K) + 4) * 6e-8;
              ASSERT_NEAR(y[size_t(m * N + n)], 1.0 + s, tol) << name << " M=" << M << " N=" << N << " K=" << K;
            }
        }
  }
}

TEST(FPanel, RowsAreTheSameBitsInAnyBatchAndThreadCount) {
  DispatchGuard g;
  const int64_t N = 1003, K = 515, M = 29;
  auto x = randx(M * K, 12);
  for (DType t : kTypes)
  for (auto [name, isa] : paths(t)) {
    auto w = random_w(t, N * K, 11);
    const PackedWeight pw = pack(w, t, N, K);
    set_path(isa);
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

TEST(FPanel, RefusesAnEmptyShape) {
  std::vector<float> w(4);
  for (DType t : kTypes) {
    EXPECT_THROW(pack_weight(w.data(), t, 0, 4), Error);
    EXPECT_THROW(pack_weight(w.data(), t, 4, 0), Error);
  }
  EXPECT_THROW(pack_weight(w.data(), DType::I32, 1, 4), Error);
}

}  // namespace
}  // namespace solar::kernels
