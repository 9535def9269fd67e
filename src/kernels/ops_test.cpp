// Element-wise ops (ops.h): every dispatch path against double-precision
// formulas, including the masked tails of the AVX-512 loops and the edges of
// exp (underflow, overflow, ±inf, NaN).
#include "kernels/ops.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "core/dtype.h"
#include "kernels/kernels_impl.h"

namespace solar::kernels {
namespace {

using detail::Isa;

struct IsaGuard {
  detail::Dispatch saved = detail::dispatch();
  ~IsaGuard() { detail::dispatch() = saved; }
};

// Every path this CPU can run: the portable loops, AVX2, AVX-512.
std::vector<Isa> isas() {
  std::vector<Isa> v{Isa::Scalar};
  if (detail::dispatch().isa != Isa::Scalar) v.push_back(Isa::Avx2);
  if (detail::dispatch().isa == Isa::Avx512) v.push_back(Isa::Avx512);
  return v;
}

std::vector<float> uniform(size_t n, uint32_t seed, float lo, float hi) {
  std::mt19937 g(seed);
  std::uniform_real_distribution<float> u(lo, hi);
  std::vector<float> v(n);
  for (float& f : v) f = u(g);
  return v;
}

double rel(double a, double b) { return std::abs(a - b) / std::max(std::abs(b), 1e-30); }

using ExpFn = void (*)(float*, const float*, int64_t);

// Each SIMD exp within 2 ulp over the normal range, within 2 of the
// smallest subnormal below it, and at its edges as expf.
TEST(KernelsOps, ExpSimdWithinTwoUlp) {
  std::vector<std::pair<Isa, ExpFn>> paths;
  if (detail::dispatch().isa != Isa::Scalar) paths.push_back({Isa::Avx2, detail::exp_avx2});
  if (detail::dispatch().isa == Isa::Avx512) paths.push_back({Isa::Avx512, detail::exp_avx512});
  if (paths.empty()) GTEST_SKIP() << "no AVX2 on this CPU";
  for (auto [isa, exp_simd] : paths) {
    const char* name = detail::isa_name(isa);
    std::vector<float> x = uniform(100003, 1, -87.f, 88.f), y(x.size());
    exp_simd(y.data(), x.data(), int64_t(x.size()));
    double worst = 0;
    for (size_t i = 0; i < x.size(); ++i) worst = std::max(worst, rel(y[i], std::exp(double(x[i]))));
    EXPECT_LT(worst, 2.5e-7) << name;  // 2 ulp of float is 2.4e-7 relative at worst

    std::vector<float> sub = uniform(10007, 2, -103.9f, -87.4f), ys(sub.size());
    exp_simd(ys.data(), sub.data(), int64_t(sub.size()));
    double worst_abs = 0;
    for (size_t i = 0; i < sub.size(); ++i) worst_abs = std::max(worst_abs, std::abs(ys[i] - std::exp(double(sub[i]))));
    EXPECT_LE(worst_abs, 2 * std::ldexp(1.0, -149)) << name;

    const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
    std::vector<float> e{0.f, -inf, inf, nan, -200.f, -104.5f, 89.f, 200.f, -1e-8f, 1.f, -1.f};
    std::vector<float> out(e.size());
    exp_simd(out.data(), e.data(), int64_t(e.size()));
    EXPECT_EQ(out[0], 1.f) << name;
    EXPECT_EQ(out[1], 0.f) << name;
    EXPECT_EQ(out[2], inf) << name;
    EXPECT_TRUE(std::isnan(out[3])) << name;
    EXPECT_EQ(out[4], 0.f) << name;
    EXPECT_EQ(out[5], 0.f) << name;
    EXPECT_EQ(out[6], inf) << name;  // expf(89) overflows too
    EXPECT_EQ(out[7], inf) << name;
    EXPECT_NEAR(out[8], 1.f, 1e-7) << name;
    EXPECT_NEAR(out[9], float(M_E), 3e-7) << name;
    EXPECT_NEAR(out[10], float(1 / M_E), 1e-7) << name;
  }
}

TEST(KernelsOps, Bf16RoundingAvx512BitExact) {
  if (detail::dispatch().isa != Isa::Avx512) GTEST_SKIP() << "no AVX-512 on this CPU";
  std::vector<float> x = uniform(10007, 9, -3e4f, 3e4f);
  const float inf = std::numeric_limits<float>::infinity();
  for (float v : {0.f, -0.f, inf, -inf, std::numeric_limits<float>::quiet_NaN(), -std::numeric_limits<float>::quiet_NaN(),
                  std::numeric_limits<float>::max(), std::numeric_limits<float>::denorm_min(), 1.00390625f,
                  1.01171875f, 3.0e38f})
    x.push_back(v);
  uint32_t sig_nan = 0x7f800001u;  // signalling NaN whose payload rounds away: must stay NaN
  float snan;
  std::memcpy(&snan, &sig_nan, 4);
  x.push_back(snan);
  std::vector<uint16_t> got(x.size());
  detail::to_bf16_avx512(x.data(), int64_t(x.size()), got.data());
  for (size_t i = 0; i < x.size(); ++i) ASSERT_EQ(got[i], f32_to_bf16(x[i])) << i << " " << x[i];
}

// GELU against x/2·(1 + erf(x/√2)) in double on every path: a dense sweep,
// the far tails (x → −∞ gives −0 or a tiny negative, not a cancelled 0 − 1
// difference), ±inf, NaN, and lengths that leave a partial vector.
// argmax() on every path against the plain scan it replaces: ties (first
// wins), ±0, ±inf, NaNs anywhere (never win, except at index 0), lengths
// around the 16-lane blocks and masked tails.
TEST(KernelsOps, ArgmaxIsTheFirstMaximumOfAScanEveryPath) {
  IsaGuard guard;
  auto scan = [](const std::vector<float>& x) {
    int best = 0;
    for (int i = 1; i < int(x.size()); ++i)
      if (x[size_t(i)] > x[size_t(best)]) best = i;
    return best;
  };
  const float specials[] = {0.f, -0.f, INFINITY, -INFINITY, NAN, 1.f, -1.f, 3.f};
  uint64_t s = 12345;
  auto rnd = [&] { return (s = s * 6364136223846793005ULL + 1442695040888963407ULL) >> 33; };
  for (int n : {1, 2, 15, 16, 17, 31, 32, 33, 100, 32000}) {
    for (int trial = 0; trial < 200; ++trial) {
      std::vector<float> x(static_cast<size_t>(n));
      const int mode = trial % 4;  // 0: distinct, 1: few values (ties), 2: specials sprinkled, 3: all specials
      for (auto& v : x) {
        const uint64_t r = rnd();
        v = mode == 0 ? float(int64_t(r % 2000001) - 1000000) * 1e-3f
            : mode == 1 ? float(r % 3)
            : mode == 2 ? (r % 8 == 0 ? specials[(r >> 3) % 8] : float(int64_t(r % 200) - 100))
                        : specials[r % 8];
      }
      for (Isa isa : isas()) {
        detail::dispatch().isa = isa;
        ASSERT_EQ(argmax(x.data(), n), scan(x)) << detail::isa_name(isa) << " n=" << n << " mode=" << mode << " trial=" << trial;
      }
    }
  }
  for (Isa isa : isas()) {
    detail::dispatch().isa = isa;
    std::vector<float> nan_first{NAN, 5.f, 7.f};
    EXPECT_EQ(argmax(nan_first.data(), 3), 0);
    std::vector<float> zeros{-0.f, 0.f, -0.f};
    EXPECT_EQ(argmax(zeros.data(), 3), 0);
    std::vector<float> last(40, 1.f);
    last.back() = 2.f;  // in a masked tail
    EXPECT_EQ(argmax(last.data(), 40), 39);
  }
}

TEST(KernelsOps, GeluEveryPath) {
  IsaGuard guard;
  for (Isa isa : isas()) {
    detail::dispatch().isa = isa;
    std::vector<float> x;
    for (int i = -20000; i <= 20000; ++i) x.push_back(float(i) / 1000.f);  // [-20, 20] by 0.001
    for (float f : {1e-30f, -1e-30f, 1e-6f, -1e-6f, 300.f, -300.f, 1e30f, -1e30f}) x.push_back(f);
    std::vector<float> y = x;
    gelu(y.data(), int64_t(y.size()));
    for (size_t i = 0; i < x.size(); ++i) {
      const double v = x[i], want = 0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0)));
      ASSERT_NEAR(y[i], want, 3e-7 * std::max(1.0, std::fabs(v))) << detail::isa_name(isa) << " x=" << v;
    }
    float special[] = {INFINITY, -INFINITY, NAN, 0.f, -0.f};
    gelu(special, 5);
    EXPECT_EQ(special[0], INFINITY) << detail::isa_name(isa);
    EXPECT_TRUE(std::isnan(special[1])) << detail::isa_name(isa);  // −∞ · 0, as the formula (and torch's erf form) gives
    EXPECT_TRUE(std::isnan(special[2])) << detail::isa_name(isa);
    EXPECT_EQ(special[3], 0.f);
    EXPECT_EQ(special[4], 0.f);
  }
}

TEST(KernelsOps, SoftmaxAndLogSumExpEveryPath) {
  IsaGuard guard;
  for (Isa isa : isas()) {
    detail::dispatch().isa = isa;
    for (int64_t n : {1, 7, 16, 17, 33, 1000}) {
      std::vector<float> x = uniform(size_t(n), uint32_t(n), -30.f, 30.f), p = x;
      const float lse = softmax(p.data(), n);
      double mx = -1e300, sum = 0;
      for (float v : x) mx = std::max(mx, double(v));
      for (float v : x) sum += std::exp(double(v) - mx);
      double total = 0;
      for (int64_t i = 0; i < n; ++i) {
        EXPECT_NEAR(p[i], std::exp(double(x[i]) - mx) / sum, 1e-6) << detail::isa_name(isa) << " n=" << n;
        total += p[i];
      }
      EXPECT_NEAR(total, 1.0, 1e-5);
      EXPECT_NEAR(lse, mx + std::log(sum), 1e-5 * std::max(1.0, std::abs(mx)));
    }
    // Large logits: no overflow, the max entry dominates.
    std::vector<float> big{1000.f, 0.f, -1000.f};
    EXPECT_NEAR(softmax(big.data(), 3), 1000.f, 1e-3);
    EXPECT_NEAR(big[0], 1.f, 1e-7);
    EXPECT_EQ(big[2], 0.f);
  }
}

TEST(KernelsOps, DotAndAxpyEveryPath) {
  IsaGuard guard;
  for (Isa isa : isas()) {
    detail::dispatch().isa = isa;
    for (int64_t n : {1, 15, 16, 64, 100}) {
      std::vector<float> a = uniform(size_t(n), 31, -1.f, 1.f), b = uniform(size_t(n), 32, -1.f, 1.f), y = b;
      double want = 0;
      for (int64_t i = 0; i < n; ++i) want += double(a[i]) * b[i];
      EXPECT_NEAR(dot(a.data(), b.data(), n), want, 1e-5) << detail::isa_name(isa) << " n=" << n;
      axpy(y.data(), 0.25f, a.data(), n);
      for (int64_t i = 0; i < n; ++i) EXPECT_NEAR(y[i], b[i] + 0.25 * a[i], 1e-6) << detail::isa_name(isa);
    }
  }
}

TEST(KernelsOps, SoftmaxBackwardEveryPath) {
  IsaGuard guard;
  for (Isa isa : isas()) {
    detail::dispatch().isa = isa;
    for (int64_t n : {1, 5, 16, 31, 300}) {
      std::vector<float> p = uniform(size_t(n), 3, -4.f, 4.f), dp = uniform(size_t(n), 4, -1.f, 1.f), ref = dp;
      softmax(p.data(), n);
      double dot = 0;
      for (int64_t i = 0; i < n; ++i) dot += double(p[i]) * dp[i];
      softmax_backward(dp.data(), p.data(), n, 0.5f);
      for (int64_t i = 0; i < n; ++i)
        EXPECT_NEAR(dp[i], p[i] * (ref[i] - dot) * 0.5, 1e-6) << detail::isa_name(isa) << " n=" << n;
    }
  }
}

TEST(KernelsOps, SwigluAndBackwardEveryPath) {
  IsaGuard guard;
  for (Isa isa : isas()) {
    detail::dispatch().isa = isa;
    const int64_t n = 1001;
    std::vector<float> g = uniform(n, 5, -20.f, 20.f), u = uniform(n, 6, -2.f, 2.f), dh = uniform(n, 7, -1.f, 1.f);
    g[0] = -200.f, g[1] = 200.f;  // σ saturates without NaN
    std::vector<float> h(n), dg(n), du(n);
    swiglu(h.data(), g.data(), u.data(), n);
    swiglu_backward(dg.data(), du.data(), dh.data(), g.data(), u.data(), n);
    for (int64_t i = 0; i < n; ++i) {
      double x = g[i], s = 1 / (1 + std::exp(-x));
      EXPECT_NEAR(h[i], x * s * u[i], 1e-5 * std::max(1.0, std::abs(x * u[i]))) << detail::isa_name(isa) << " " << i;
      EXPECT_NEAR(dg[i], dh[i] * u[i] * s * (1 + x * (1 - s)), 1e-5) << detail::isa_name(isa) << " " << i;
      EXPECT_NEAR(du[i], dh[i] * x * s, 1e-5 * std::max(1.0, std::abs(x))) << detail::isa_name(isa) << " " << i;
    }
    std::vector<float> inplace = g;  // h may alias gate
    swiglu(inplace.data(), inplace.data(), u.data(), n);
    EXPECT_EQ(inplace, h);
  }
}

// Blockwise attention against softmax(q·kᵀ)·v in double, over key ranges
// that span several key blocks, start late (sliding window), are one key, or
// are empty, with q/k/v/out strided as the engine lays them out (GQA heads).
TEST(Ops, AttentionRowsEqualsSoftmaxInDouble) {
  IsaGuard guard;
  for (Isa isa : isas()) {
    detail::dispatch().isa = isa;
    for (int hd : {8, 20, 64})
      for (int n : {1, 5, 64}) {
        const int keys = 300, ld = 3 * hd;  // rows hold 3 heads; this test reads the middle one
        std::vector<float> q = uniform(int64_t(n) * ld, 11, -2.f, 2.f), k = uniform(int64_t(keys) * ld, 12, -2.f, 2.f),
                           v = uniform(int64_t(keys) * ld, 13, -1.f, 1.f), out(size_t(n) * ld, 7.f);
        std::vector<int> lo(static_cast<size_t>(n)), hi(static_cast<size_t>(n));
        for (int i = 0; i < n; ++i) {
          hi[size_t(i)] = std::min(keys - 1, 200 + i * 3);
          lo[size_t(i)] = i % 4 == 1 ? hi[size_t(i)] - 150 : i % 4 == 2 ? hi[size_t(i)] : i % 4 == 3 ? hi[size_t(i)] + 1 : 0;
        }
        const float scale = 1.f / std::sqrt(float(hd));
        attention_rows(q.data() + hd, ld, k.data() + hd, v.data() + hd, ld, lo.data(), hi.data(), n, hd, scale,
                       out.data() + hd, ld);
        for (int i = 0; i < n; ++i) {
          std::vector<double> p;
          double mx = -1e300, sum = 0;
          for (int j = lo[size_t(i)]; j <= hi[size_t(i)]; ++j) {
            double s = 0;
            for (int d = 0; d < hd; ++d) s += double(q[size_t(i * ld + hd + d)]) * k[size_t(j * ld + hd + d)];
            p.push_back(s * scale);
            mx = std::max(mx, p.back());
          }
          for (double& x : p) sum += (x = std::exp(x - mx));
          for (int d = 0; d < hd; ++d) {
            double want = 0;
            for (size_t j = 0; j < p.size(); ++j) want += p[j] / sum * v[size_t((lo[size_t(i)] + int(j)) * ld + hd + d)];
            ASSERT_NEAR(out[size_t(i * ld + hd + d)], want, 2e-5) << detail::isa_name(isa) << " hd=" << hd << " n=" << n
                                                                 << " row " << i << " [" << lo[size_t(i)] << ", " << hi[size_t(i)] << "]";
          }
          EXPECT_EQ(out[size_t(i * ld)], 7.f);  // other heads untouched
          EXPECT_EQ(out[size_t(i * ld + 2 * hd)], 7.f);
        }
      }
  }
}

// Encoder attention (every row over all n keys) against softmax(q·kᵀ)·v in
// double on every path: n around the 6-row and 32-key tiles, head sizes that
// leave a partial vector, q/k/v interleaved in one [n, 3·ld] buffer as the
// embedder lays them out.
TEST(Ops, AttentionFullEqualsSoftmaxInDouble) {
  IsaGuard guard;
  for (Isa isa : isas()) {
    detail::dispatch().isa = isa;
    for (int hd : {8, 20, 32, 64})
      for (int n : {1, 5, 6, 7, 31, 32, 33, 70}) {
        const int ld = 3 * hd * 2;  // 2 heads of q, k and v; this test reads the second
        std::vector<float> qkv = uniform(size_t(n) * ld, uint32_t(n * 100 + hd), -2.f, 2.f),
                           out(size_t(n) * 2 * hd, 7.f);
        const float* q = qkv.data() + hd;
        const float *k = q + 2 * hd, *v = q + 4 * hd;
        const float scale = 1.f / std::sqrt(float(hd));
        attention_full(q, ld, k, v, ld, n, hd, scale, out.data() + hd, 2 * hd);
        for (int i = 0; i < n; ++i) {
          std::vector<double> p(static_cast<size_t>(n));
          double mx = -1e300, sum = 0;
          for (int j = 0; j < n; ++j) {
            double s = 0;
            for (int d = 0; d < hd; ++d) s += double(q[size_t(i * ld + d)]) * k[size_t(j * ld + d)];
            mx = std::max(mx, p[size_t(j)] = s * scale);
          }
          for (double& x : p) sum += (x = std::exp(x - mx));
          for (int d = 0; d < hd; ++d) {
            double want = 0;
            for (int j = 0; j < n; ++j) want += p[size_t(j)] / sum * v[size_t(j * ld + d)];
            ASSERT_NEAR(out[size_t(i * 2 * hd + hd + d)], want, 2e-5)
                << detail::isa_name(isa) << " hd=" << hd << " n=" << n << " row " << i << " d " << d;
          }
          EXPECT_EQ(out[size_t(i * 2 * hd)], 7.f);  // the other head untouched
        }
      }
  }
}

// LayerNorm against the double formula on every path, lengths with partial
// vectors, and a row far from zero mean: the two-pass variance keeps it to
// the rounding of x − mean in f32 (one pass, E[x²] − mean², would lose it).
TEST(KernelsOps, LayerNormEveryPath) {
  IsaGuard guard;
  for (Isa isa : isas()) {
    detail::dispatch().isa = isa;
    for (int64_t n : {1, 7, 16, 17, 384, 1000})
      for (float offset : {0.f, 1000.f}) {
        std::vector<float> x = uniform(size_t(n), uint32_t(n), -3.f, 3.f), w = uniform(size_t(n), 2, 0.5f, 1.5f),
                           b = uniform(size_t(n), 3, -1.f, 1.f);
        for (float& f : x) f += offset;
        std::vector<float> y = x;
        const float eps = 1e-12f;
        layernorm(y.data(), w.data(), b.data(), n, eps);
        double mean = 0, var = 0;
        for (float f : x) mean += f;
        mean /= double(n);
        for (float f : x) var += (f - mean) * (f - mean);
        const double inv = 1 / std::sqrt(var / double(n) + eps);
        for (int64_t i = 0; i < n; ++i)
          ASSERT_NEAR(y[size_t(i)], (x[size_t(i)] - mean) * inv * w[size_t(i)] + b[size_t(i)], 2e-5 + 2e-7 * offset)
              << detail::isa_name(isa) << " n=" << n << " offset " << offset << " i=" << i;
      }
  }
}

// A row's output is the same bits alone, in any block of rows and beside
// rows with other ranges (a causal prompt chunked differently, a decoded token).
TEST(Ops, AttentionRowsSameBitsInAnyBlock) {
  IsaGuard guard;
  for (Isa isa : isas()) {
    detail::dispatch().isa = isa;
    for (int hd : {8, 16, 20, 40, 64, 80, 128}) {  // 8, 40: a last slice of one vector
      const int n = 45, past = 37, ld = hd;
      std::vector<float> q = uniform(int64_t(n) * ld, 21, -3.f, 3.f), k = uniform(int64_t(past + n) * ld, 22, -3.f, 3.f),
                         v = uniform(int64_t(past + n) * ld, 23, -1.f, 1.f);
      std::vector<int> lo(static_cast<size_t>(n)), hi(static_cast<size_t>(n));
      for (int i = 0; i < n; ++i) lo[size_t(i)] = i % 7 == 3 ? std::max(0, past + i - 20) : 0, hi[size_t(i)] = past + i;
      const float scale = 1.f / std::sqrt(float(hd));
      std::vector<float> all(size_t(n) * ld);
      attention_rows(q.data(), ld, k.data(), v.data(), ld, lo.data(), hi.data(), n, hd, scale, all.data(), ld);
      for (int chunk : {1, 2, 5, 16}) {
        std::vector<float> parts(all.size(), NAN);
        for (int i0 = 0; i0 < n; i0 += chunk) {
          const int r = std::min(chunk, n - i0);
          attention_rows(&q[size_t(i0) * ld], ld, k.data(), v.data(), ld, &lo[size_t(i0)], &hi[size_t(i0)], r, hd, scale,
                         &parts[size_t(i0) * ld], ld);
        }
        for (size_t e = 0; e < all.size(); ++e)
          ASSERT_EQ(parts[e], all[e]) << detail::isa_name(isa) << " hd=" << hd << " chunk " << chunk << " row " << e / size_t(ld);
      }
    }
  }
}

}  // namespace
}  // namespace solar::kernels
