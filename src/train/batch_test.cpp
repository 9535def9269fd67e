// Packing (train/batch.h): examples packed into one row, with positions that
// restart and attention kept within each example, give the loss and the
// gradients of the same examples run one by one — in the f64 reference and
// in the float Net, and through the Trainer's default objective.
#include "train/batch.h"

#include <gtest/gtest.h>

#include <cmath>

#include "core/error.h"
#include "testing/models.h"
#include "testing/testing.h"
#include "train/layers.h"
#include "train/net.h"

namespace solar::train {
namespace {

using Grads = std::vector<std::vector<double>>;

model::ModelConfig config() { return testing::small_config(16, 24, 32, false, 2, 64); }

// Three examples of 5, 3 and 6 tokens packed into one row of T+1 = 16, padded by 2.
struct Packed {
  std::vector<std::vector<int32_t>> examples;
  Batch batch;
};

Packed make_packed(int V) {
  Packed p;
  auto all = testing::random_tokens(1, 13, V, 5);
  p.examples = {{all.begin(), all.begin() + 5}, {all.begin() + 5, all.begin() + 8}, {all.begin() + 8, all.end()}};
  Batch& b = p.batch;
  b.B = 1, b.T = 15;
  for (size_t e = 0; e < p.examples.size(); ++e) {
    const auto& x = p.examples[e];
    for (size_t i = 0; i < x.size(); ++i) {
      b.tokens.push_back(x[i]);
      b.pos.push_back(int32_t(i));
      b.seg.push_back(int32_t(e));
      b.weight.push_back(i + 1 < x.size() ? 1.f : 0.f);  // the last token's target is the next example's
    }
  }
  b.tokens.push_back(0);  // padding: one more input (its own example, weight 0) and its target
  b.pos.push_back(0), b.seg.push_back(3), b.weight.push_back(0.f);
  b.tokens.push_back(0);
  return p;
}

// Σ over examples of (its token count / all tokens) · its mean loss and gradient = the packed mean.
double separate_f64(const model::ModelConfig& c, const Grads& w, Grads* g, const Packed& p) {
  double n = 0, loss = 0;
  for (const auto& x : p.examples) n += double(x.size() - 1);
  if (g) g->clear();
  for (const auto& x : p.examples) {
    Grads ge;
    const double share = double(x.size() - 1) / n;
    loss += share * forward_backward_f64(c, w, g ? &ge : nullptr, x.data(), 1, int(x.size()) - 1);
    if (!g) continue;
    if (g->empty()) g->assign(ge.size(), {});
    for (size_t k = 0; k < ge.size(); ++k) {
      (*g)[k].resize(ge[k].size());
      for (size_t i = 0; i < ge[k].size(); ++i) (*g)[k][i] += share * ge[k][i];
    }
  }
  return loss;
}

double rel_diff(const std::vector<double>& a, const std::vector<double>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) num += (a[i] - b[i]) * (a[i] - b[i]), den += b[i] * b[i];
  return std::sqrt(num / std::max(den, 1e-300));
}

TEST(Packing, PackedRowEqualsExamplesOneByOneF64) {
  const model::ModelConfig c = config();
  Net m = Net::init(c, 9);
  Grads w;
  for (const Param& p : m.params()) w.emplace_back(p.w.begin(), p.w.end());
  const Packed p = make_packed(c.vocab_size);
  std::vector<double> wt(p.batch.weight.begin(), p.batch.weight.end());
  Grads gp, gs;
  const double packed = forward_backward_f64(c, w, &gp, p.batch.tokens.data(), 1, p.batch.T, wt.data(), nullptr,
                                             p.batch.pos.data(), p.batch.seg.data());
  const double separate = separate_f64(c, w, &gs, p);
  EXPECT_NEAR(packed, separate, 1e-12);
  for (size_t k = 0; k < gp.size(); ++k) EXPECT_LT(rel_diff(gp[k], gs[k]), 1e-10) << m.params()[k].name;

  // Without seg the examples see each other: the loss changes (the test can fail).
  const double leaky = forward_backward_f64(c, w, nullptr, p.batch.tokens.data(), 1, p.batch.T, wt.data(), nullptr,
                                            p.batch.pos.data(), nullptr);
  EXPECT_GT(std::abs(leaky - separate), 1e-6);
}

TEST(Packing, FloatNetPackedEqualsExamplesOneByOne) {
  const model::ModelConfig c = config();
  Net m = Net::init(c, 9);
  m.set_options({kernels::Precision::F32, false});
  Grads w;
  for (const Param& p : m.params()) w.emplace_back(p.w.begin(), p.w.end());
  const Packed p = make_packed(c.vocab_size);
  Grads gs;
  const double separate = separate_f64(c, w, &gs, p);
  m.zero_grad();
  const double loss = next_token_loss(m, p.batch, 1.0f);
  EXPECT_NEAR(loss, separate, 1e-5);
  for (size_t k = 0; k < gs.size(); ++k) {
    const std::vector<double> g(m.params()[k].g.begin(), m.params()[k].g.end());
    EXPECT_LT(rel_diff(g, gs[k]), 1e-4) << m.params()[k].name;
  }
  // Forward only (evaluation): the same loss, no gradient touched.
  m.zero_grad();
  EXPECT_NEAR(next_token_loss(m, p.batch, 0.0f), loss, 1e-6);
  for (const Param& q : m.params())
    for (float x : q.g) ASSERT_EQ(x, 0.f);
}

// attention_forward with seg against the definition, for examples kept
// contiguous (the packing layout) and interleaved (the gathered path).
TEST(Packing, AttentionWithinSegmentsMatchesDefinition) {
  const int T = 7, H = 2, KV = 1, hd = 4;
  std::vector<double> q(T * H * hd), k(T * KV * hd), v(T * KV * hd);
  uint64_t x = 11;
  for (auto* a : {&q, &k, &v})
    for (double& e : *a) x = x * 6364136223846793005ull + 1442695040888963407ull, e = double(x >> 40) / (1 << 24) - 0.5;
  for (const std::vector<int32_t>& seg : {std::vector<int32_t>{0, 0, 1, 1, 1, 2, 2}, {0, 1, 0, 1, 1, 0, 2}}) {
    std::vector<double> out(T * H * hd), att(H * T * T);
    attention_forward<double>(out.data(), att.data(), q.data(), k.data(), v.data(), 1, T, H, KV, hd,
                              kernels::Precision::F32, seg.data());
    for (int h = 0; h < H; ++h)
      for (int i = 0; i < T; ++i) {
        std::vector<double> p(T, 0.0);
        double mx = -1e300, sum = 0;
        for (int s = 0; s <= i; ++s) {
          if (seg[s] != seg[i]) continue;
          double dot = 0;
          for (int j = 0; j < hd; ++j) dot += q[(i * H + h) * hd + j] * k[s * hd + j];
          p[s] = dot / 2.0;  // 1/sqrt(hd)
          mx = std::max(mx, p[s]);
        }
        for (int s = 0; s <= i; ++s) sum += seg[s] == seg[i] ? (p[s] = std::exp(p[s] - mx)) : (p[s] = 0);
        for (int j = 0; j < hd; ++j) {
          double o = 0;
          for (int s = 0; s <= i; ++s) o += p[s] / sum * v[s * hd + j];
          EXPECT_NEAR(out[(i * H + h) * hd + j], o, 1e-12) << "seg " << seg[1] << " h " << h << " i " << i;
        }
        for (int s = 0; s <= i; ++s) EXPECT_NEAR(att[(h * T + i) * T + s], p[s] / sum, 1e-12);
      }
  }
}

TEST(Packing, MalformedBatchesAreRefused) {
  Net m = Net::init(config(), 1);
  Batch b;
  b.B = 1, b.T = 4, b.tokens.assign(5, 1);
  b.seg = {0, 0, 1};
  EXPECT_NE(testing::error_of([&] { m.forward(b, false); }).find("seg"), std::string::npos);
  b.seg.clear(), b.pos = {0, 1, -1, 0};
  EXPECT_NE(testing::error_of([&] { m.forward(b, false); }).find("pos"), std::string::npos);
  b.pos = {0, 1, 2, 100000};
  EXPECT_NE(testing::error_of([&] { m.forward(b, false); }).find("max_position_embeddings"), std::string::npos);
  b.pos.clear(), b.tokens.pop_back();
  EXPECT_NE(testing::error_of([&] { m.forward(b, false); }).find("tokens"), std::string::npos);
}

}  // namespace
}  // namespace solar::train
