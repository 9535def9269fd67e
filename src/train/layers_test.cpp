// Per-op gradient checks in double: central differences (eps 1e-6) of
// L = Σ out·R (R random) against each op's backward.
#include "train/layers.h"

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <random>
#include <vector>

namespace solar::train {
namespace {

using Vec = std::vector<double>;

Vec randn(size_t n, uint64_t seed, double scale = 1.0) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> nd(0.0, scale);
  Vec v(n);
  for (double& x : v) x = nd(rng);
  return v;
}

double dot(const Vec& a, const Vec& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

// Compares analytic d(loss)/d(x) with central differences on every entry of x.
void expect_grad(const char* what, Vec& x, const Vec& analytic, const std::function<double()>& loss) {
  ASSERT_EQ(x.size(), analytic.size());
  const double eps = 1e-6;
  double worst = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    double x0 = x[i];
    x[i] = x0 + eps;
    double lp = loss();
    x[i] = x0 - eps;
    double lm = loss();
    x[i] = x0;
    double num = (lp - lm) / (2 * eps);
    double err = std::abs(num - analytic[i]) / std::max({std::abs(num), std::abs(analytic[i]), 1e-3});
    worst = std::max(worst, err);
  }
  EXPECT_LT(worst, 1e-6) << what;
}

TEST(TrainOps, RmsnormGrad) {
  const int N = 3, d = 8;
  Vec x = randn(N * d, 1), w = randn(d, 2), R = randn(N * d, 3), out(N * d), rstd(N);
  auto loss = [&] {
    rmsnorm_forward<double>(out.data(), rstd.data(), x.data(), w.data(), N, d, 1e-5f);
    return dot(out, R);
  };
  loss();
  Vec dx(N * d, 0.0), dw(d, 0.0);
  rmsnorm_backward<double>(dx.data(), dw.data(), R.data(), x.data(), w.data(), rstd.data(), N, d);
  expect_grad("x", x, dx, loss);
  expect_grad("w", w, dw, loss);
}

TEST(TrainOps, LinearGrad) {
  const int N = 4, in = 5, o = 3;
  Vec x = randn(N * in, 1), W = randn(o * in, 2), R = randn(N * o, 3), y(N * o);
  auto loss = [&] {
    linear_forward<double>(y.data(), x.data(), W.data(), N, in, o, Precision::F32);
    return dot(y, R);
  };
  Vec dx(N * in, 7.0), dW(o * in, 0.0);  // dx is overwritten (accumulate_dx = false)
  linear_backward<double>(dx.data(), dW.data(), R.data(), x.data(), W.data(), N, in, o, Precision::F32, false);
  expect_grad("x", x, dx, loss);
  expect_grad("W", W, dW, loss);
}

TEST(TrainOps, LinearFloatMatchesDouble) {
  const int N = 7, in = 9, o = 5;
  Vec x = randn(N * in, 1), W = randn(o * in, 2);
  Vec y(N * o);
  linear_forward<double>(y.data(), x.data(), W.data(), N, in, o, Precision::F32);
  std::vector<float> xf(x.begin(), x.end()), Wf(W.begin(), W.end()), yf(N * o);
  linear_forward<float>(yf.data(), xf.data(), Wf.data(), N, in, o, Precision::F32);
  for (int i = 0; i < N * o; ++i) EXPECT_NEAR(yf[i], y[i], 1e-4);
}

TEST(TrainOps, RopeGradAndNorm) {
  const int B = 2, T = 5, H = 3, hd = 8;
  Vec cos(T * hd / 2), sin(T * hd / 2);
  rope_table<double>(cos.data(), sin.data(), T, hd, 10000.0);
  Vec x = randn(B * T * H * hd, 1), R = randn(x.size(), 2);
  auto loss = [&] {
    Vec y = x;
    rope_forward<double>(y.data(), cos.data(), sin.data(), B * T, T, H, hd);
    return dot(y, R);
  };
  Vec dx = R;
  rope_backward<double>(dx.data(), cos.data(), sin.data(), B * T, T, H, hd);
  expect_grad("x", x, dx, loss);
  // Position 0 is the identity; rotations keep norms.
  Vec y = x;
  rope_forward<double>(y.data(), cos.data(), sin.data(), B * T, T, H, hd);
  for (int i = 0; i < H * hd; ++i) EXPECT_DOUBLE_EQ(y[i], x[i]);
  EXPECT_NEAR(dot(y, y), dot(x, x), 1e-9);
}

TEST(TrainOps, RopeMatchesHfRotateHalf) {
  // HF: q*cos + rotate_half(q)*sin with cos/sin repeated over both halves.
  const int T = 4, hd = 6;
  Vec cos(T * hd / 2), sin(T * hd / 2);
  rope_table<double>(cos.data(), sin.data(), T, hd, 500000.0);
  Vec x = randn(T * hd, 5), y = x;
  rope_forward<double>(y.data(), cos.data(), sin.data(), T, T, 1, hd);
  for (int t = 0; t < T; ++t)
    for (int i = 0; i < hd; ++i) {
      double f = std::pow(500000.0, -2.0 * (i % (hd / 2)) / hd), a = t * f;
      double rot = i < hd / 2 ? -x[t * hd + i + hd / 2] : x[t * hd + i - hd / 2];
      EXPECT_NEAR(y[t * hd + i], x[t * hd + i] * std::cos(a) + rot * std::sin(a), 1e-12);
    }
}

TEST(TrainOps, AttentionGradGqa) {
  const int B = 2, T = 5, H = 4, KV = 2, hd = 4;
  Vec q = randn(B * T * H * hd, 1), k = randn(B * T * KV * hd, 2), v = randn(B * T * KV * hd, 3);
  Vec R = randn(B * T * H * hd, 4), out(q.size()), att(size_t(B) * H * T * T);
  auto loss = [&] {
    attention_forward<double>(out.data(), att.data(), q.data(), k.data(), v.data(), B, T, H, KV, hd, Precision::F32);
    return dot(out, R);
  };
  loss();
  Vec dq(q.size()), dk(k.size(), 9.0), dv(v.size(), 9.0), scratch(attention_scratch(T));
  attention_backward<double>(dq.data(), dk.data(), dv.data(), scratch.data(), R.data(), att.data(), q.data(), k.data(),
                             v.data(), B, T, H, KV, hd, Precision::F32);
  expect_grad("q", q, dq, loss);
  expect_grad("k", k, dk, loss);
  expect_grad("v", v, dv, loss);
}

TEST(TrainOps, AttentionIsCausal) {
  // Changing the last position's k/v must not change earlier outputs.
  const int T = 6, H = 2, KV = 1, hd = 4;
  Vec q = randn(T * H * hd, 1), k = randn(T * KV * hd, 2), v = randn(T * KV * hd, 3);
  Vec o1(q.size()), o2(q.size()), att(H * T * T);
  attention_forward<double>(o1.data(), att.data(), q.data(), k.data(), v.data(), 1, T, H, KV, hd, Precision::F32);
  for (int i = 0; i < KV * hd; ++i) k[(T - 1) * KV * hd + i] += 1, v[(T - 1) * KV * hd + i] -= 1;
  attention_forward<double>(o2.data(), att.data(), q.data(), k.data(), v.data(), 1, T, H, KV, hd, Precision::F32);
  for (int i = 0; i < (T - 1) * H * hd; ++i) EXPECT_DOUBLE_EQ(o1[i], o2[i]);
  EXPECT_NE(o1.back(), o2.back());
  // Row 0 attends only to itself: output = v[0].
  for (int h = 0; h < H; ++h)
    for (int i = 0; i < hd; ++i) EXPECT_NEAR(o1[h * hd + i], v[i], 1e-12);
}

// Several query blocks (T > the block of 128 rows, with a ragged tail): the
// blocked kernels against a plain full-matrix reference, in double and in
// float, and the double backward against central differences on a sample.
TEST(TrainOps, AttentionBlocksMatchFullReference) {
  const int B = 1, T = 300, H = 4, KV = 2, hd = 8;
  Vec q = randn(B * T * H * hd, 11), k = randn(B * T * KV * hd, 12), v = randn(B * T * KV * hd, 13);
  Vec R = randn(q.size(), 14), ref(q.size(), 0.0);
  for (int h = 0; h < H; ++h)
    for (int i = 0; i < T; ++i) {
      const int g = h / (H / KV);
      Vec s(i + 1);
      double mx = -1e300, sum = 0;
      for (int j = 0; j <= i; ++j) {
        for (int e = 0; e < hd; ++e) s[j] += q[(i * H + h) * hd + e] * k[(j * KV + g) * hd + e];
        s[j] /= std::sqrt(double(hd));
        mx = std::max(mx, s[j]);
      }
      for (double& x : s) sum += x = std::exp(x - mx);
      for (int j = 0; j <= i; ++j)
        for (int e = 0; e < hd; ++e) ref[(i * H + h) * hd + e] += s[j] / sum * v[(j * KV + g) * hd + e];
    }
  Vec out(q.size()), att(size_t(B) * H * T * T);
  attention_forward<double>(out.data(), att.data(), q.data(), k.data(), v.data(), B, T, H, KV, hd, Precision::F32);
  for (size_t i = 0; i < out.size(); ++i) ASSERT_NEAR(out[i], ref[i], 1e-12) << i;

  // float: same kernels as training (vectorised softmax, oneDNN GEMMs).
  auto f = [](const Vec& x) { return std::vector<float>(x.begin(), x.end()); };
  std::vector<float> qf = f(q), kf = f(k), vf = f(v), Rf = f(R), of(q.size()), attf(att.size());
  attention_forward<float>(of.data(), attf.data(), qf.data(), kf.data(), vf.data(), B, T, H, KV, hd, Precision::F32);
  for (size_t i = 0; i < of.size(); ++i) ASSERT_NEAR(of[i], ref[i], 2e-5) << i;
  Vec dq(q.size()), dk(k.size()), dv(v.size()), scratch(attention_scratch(T));
  attention_backward<double>(dq.data(), dk.data(), dv.data(), scratch.data(), R.data(), att.data(), q.data(), k.data(),
                             v.data(), B, T, H, KV, hd, Precision::F32);
  std::vector<float> dqf(q.size()), dkf(k.size()), dvf(v.size()), scratchf(attention_scratch(T));
  attention_backward<float>(dqf.data(), dkf.data(), dvf.data(), scratchf.data(), Rf.data(), attf.data(), qf.data(),
                            kf.data(), vf.data(), B, T, H, KV, hd, Precision::F32);
  for (auto [a, b] : {std::pair{&dq, &dqf}, std::pair{&dk, &dkf}, std::pair{&dv, &dvf}})
    for (size_t i = 0; i < a->size(); ++i) ASSERT_NEAR((*b)[i], (*a)[i], 1e-4 * std::max(1.0, std::abs((*a)[i])));

  // Central differences on 25 entries of each input, spread over all blocks.
  auto loss = [&] {
    attention_forward<double>(out.data(), att.data(), q.data(), k.data(), v.data(), B, T, H, KV, hd, Precision::F32);
    return dot(out, R);
  };
  for (auto [x, g] : {std::pair{&q, &dq}, std::pair{&k, &dk}, std::pair{&v, &dv}}) {
    double worst = 0;
    for (size_t i = 7; i < x->size(); i += x->size() / 25) {
      const double x0 = (*x)[i], eps = 1e-5;  // |loss| ~ 100: a larger step keeps roundoff down
      (*x)[i] = x0 + eps;
      double lp = loss();
      (*x)[i] = x0 - eps;
      double lm = loss();
      (*x)[i] = x0;
      double num = (lp - lm) / (2 * eps);
      worst = std::max(worst, std::abs(num - (*g)[i]) / std::max({std::abs(num), std::abs((*g)[i]), 1e-3}));
    }
    EXPECT_LT(worst, 1e-6);
  }
}

TEST(TrainOps, CrossEntropyFloatMatchesDoubleAndKeepsLogitsForwardOnly) {
  const int N = 5, V = 1000;
  Vec logits = randn(N * V, 21, 4.0);
  std::vector<int32_t> tgt{0, 999, 17, 500, 3};
  std::vector<float> lf(logits.begin(), logits.end()), keep = lf, grad = lf;
  Vec ld = logits;
  const double ref = cross_entropy<double>(ld.data(), tgt.data(), N, V, 1.0);
  EXPECT_NEAR(cross_entropy<float>(lf.data(), tgt.data(), N, V, 0.f), ref, 1e-5);
  EXPECT_EQ(lf, keep);  // forward only: logits untouched
  EXPECT_NEAR(cross_entropy<float>(grad.data(), tgt.data(), N, V, 1.f), ref, 1e-5);
  for (size_t i = 0; i < grad.size(); ++i) ASSERT_NEAR(grad[i], ld[i], 1e-7) << i;
}

TEST(TrainOps, SwigluGrad) {
  const int n = 20;
  Vec g = randn(n, 1, 2.0), u = randn(n, 2), R = randn(n, 3), h(n);
  auto loss = [&] {
    swiglu_forward<double>(h.data(), g.data(), u.data(), n);
    return dot(h, R);
  };
  Vec dg(n), du(n);
  swiglu_backward<double>(dg.data(), du.data(), R.data(), g.data(), u.data(), n);
  expect_grad("gate", g, dg, loss);
  expect_grad("up", u, du, loss);
}

TEST(TrainOps, CrossEntropyGradAndValue) {
  const int N = 3, V = 7;
  Vec logits = randn(N * V, 1, 3.0);
  std::vector<int32_t> tgt{0, 6, 3};
  auto loss = [&] {
    Vec l = logits;
    return cross_entropy<double>(l.data(), tgt.data(), N, V, 0.0);
  };
  Vec d = logits;
  double L = cross_entropy<double>(d.data(), tgt.data(), N, V, 1.0);
  expect_grad("logits", logits, d, loss);
  double ref = 0;  // log-sum-exp by hand
  for (int n = 0; n < N; ++n) {
    double s = 0;
    for (int j = 0; j < V; ++j) s += std::exp(logits[n * V + j]);
    ref += std::log(s) - logits[n * V + tgt[n]];
  }
  EXPECT_NEAR(L, ref / N, 1e-12);
  Vec u(V, 0.0);  // uniform logits: log V
  int32_t t0 = 2;
  EXPECT_NEAR(cross_entropy<double>(u.data(), &t0, 1, V, 0.0), std::log(double(V)), 1e-12);
}

TEST(TrainOps, EmbeddingGrad) {
  const int N = 6, V = 4, d = 3;
  Vec table = randn(V * d, 1), R = randn(N * d, 2), out(N * d);
  std::vector<int32_t> ids{1, 3, 1, 0, 1, 2};
  auto loss = [&] {
    embedding_forward<double>(out.data(), ids.data(), table.data(), N, d);
    return dot(out, R);
  };
  Vec dt(V * d, 0.0);
  embedding_backward<double>(dt.data(), R.data(), ids.data(), N, d);
  expect_grad("table", table, dt, loss);
}

}  // namespace
}  // namespace solar::train
