// Whole-model checks: double-precision gradients against finite differences
// for every parameter, the float path against the double one, precision,
// checkpoint round trips.
#include "formats/load.h"
#include "testing/models.h"
#include "testing/testing.h"
#include "train/net.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>

#include "core/error.h"
#include "core/fs.h"
#include "model/init.h"
#include "train/layers.h"
#include "engine/engine.h"

namespace solar::train {
namespace {
using solar::testing::random_tokens;

model::ModelConfig tiny_config(bool tied) { return testing::small_config(16, 24, 32, tied, 2, 64); }

std::vector<std::vector<double>> to_double(const Net& m) {
  std::vector<std::vector<double>> w;
  for (const Param& p : m.params()) w.emplace_back(p.w.begin(), p.w.end());
  return w;
}

// Central differences of the f64 objective (weighted cross-entropy, or with
// dlogp Σ dlogp·logp; optionally packed rows: pos/seg) against its analytic gradient.
void grad_check(bool tied, const std::vector<double>& weight = {}, const std::vector<double>& dlogp = {},
                const std::vector<int32_t>& pos = {}, const std::vector<int32_t>& seg = {}) {
  model::ModelConfig c = tiny_config(tied);
  Net m = Net::init(c, 42);
  auto w = to_double(m);
  // Larger weights than init so that every path carries signal.
  std::mt19937_64 rng(7);
  std::normal_distribution<double> nd(0.0, 0.3);
  for (size_t i = 0; i < w.size(); ++i)
    for (double& x : w[i]) x = m.params()[i].shape.size() == 1 ? 1.0 + nd(rng) : nd(rng);
  const int B = 2, T = 6;
  auto tokens = random_tokens(B, T, c.vocab_size, 3);
  const double* wt = weight.empty() ? nullptr : weight.data();
  const double* dl = dlogp.empty() ? nullptr : dlogp.data();
  const int32_t* ps = pos.empty() ? nullptr : pos.data();
  const int32_t* sg = seg.empty() ? nullptr : seg.data();
  std::vector<std::vector<double>> g;
  forward_backward_f64(c, w, &g, tokens.data(), B, T, wt, dl, ps, sg);
  ASSERT_EQ(g.size(), m.params().size());
  const double eps = 1e-6;
  double worst = 0;
  std::string worst_name;
  int checked = 0;
  for (size_t k = 0; k < w.size(); ++k) {
    size_t n = w[k].size(), stride = std::max<size_t>(1, n / 10);  // ~10 sampled entries per parameter
    for (size_t i = k % stride; i < n; i += stride) {
      double x0 = w[k][i];
      w[k][i] = x0 + eps;
      double lp = forward_backward_f64(c, w, nullptr, tokens.data(), B, T, wt, dl, ps, sg);
      w[k][i] = x0 - eps;
      double lm = forward_backward_f64(c, w, nullptr, tokens.data(), B, T, wt, dl, ps, sg);
      w[k][i] = x0;
      double num = (lp - lm) / (2 * eps), ana = g[k][i];
      double err = std::abs(num - ana) / std::max({std::abs(num), std::abs(ana), 1e-3});
      if (err > worst) worst = err, worst_name = m.params()[k].name + "[" + std::to_string(i) + "]";
      ++checked;
    }
  }
  EXPECT_GT(checked, 150);
  // The log-prob objective is a sum over tokens (not a mean): larger values,
  // so more cancellation in the differences.
  EXPECT_LT(worst, dlogp.empty() ? 1e-6 : 1e-5) << worst_name;
}

TEST(TrainModel, GradCheckTied) { grad_check(true); }
TEST(TrainModel, GradCheckUntied) { grad_check(false); }
// B=2, T=6: a completion-only style mask (prompt tokens 0) and one fractional weight.
const std::vector<double> kMask = {0, 0, 1, 1, 0.5, 1, 0, 1, 1, 1, 1, 0};
TEST(TrainModel, GradCheckMaskedLoss) {
  grad_check(true, kMask);
  grad_check(false, kMask);
}
TEST(TrainModel, GradCheckSequenceLogprob) {
  grad_check(true, kMask, {0.7, -1.3});
  grad_check(false, {}, {1.0, 0.25});
}
// Packed rows (train/batch.h): row 0 holds two examples, row 1 three;
// positions restart per example, the targets that cross examples weigh 0.
const std::vector<int32_t> kPos = {0, 1, 2, 3, 0, 1, 0, 1, 0, 1, 0, 1};
const std::vector<int32_t> kSeg = {0, 0, 0, 0, 1, 1, 0, 0, 1, 1, 2, 2};
const std::vector<double> kPackedMask = {1, 1, 1, 0, 1, 1, 1, 0, 1, 0, 1, 1};
TEST(TrainModel, GradCheckPackedRows) {
  grad_check(true, kPackedMask, {}, kPos, kSeg);
  grad_check(false, kPackedMask, {0.7, -1.3}, kPos, kSeg);
}

// Net's float parts (forward → objective → backward) against the f64
// reference, for the masked cross-entropy and the sequence log-probability.
TEST(TrainModel, FloatPartsMatchDoubleMaskedAndLogprob) {
  model::ModelConfig c = tiny_config(false);
  const int B = 2, T = 6;
  auto tokens = random_tokens(B, T, c.vocab_size, 11);
  std::vector<float> mask(kMask.begin(), kMask.end());
  const std::vector<double> dlogp = {0.7, -1.3};
  const std::vector<float> dlogpf(dlogp.begin(), dlogp.end());
  for (bool logprob : {false, true}) {
    Net m = Net::init(c, 3);
    m.set_options({kernels::Precision::F32, false});
    std::vector<std::vector<double>> g;
    double ref = forward_backward_f64(c, to_double(m), &g, tokens.data(), B, T, kMask.data(),
                                      logprob ? dlogp.data() : nullptr);
    m.forward(tokens.data(), B, T, true);
    const int64_t N = int64_t(B) * T;
    double got = 0;
    if (logprob) {
      std::vector<double> lp(B);
      sequence_logprob<float>(m.logits(), m.targets(), mask.data(), B, T, c.vocab_size, lp.data(), dlogpf.data());
      got = dlogp[0] * lp[0] + dlogp[1] * lp[1];
    } else {
      got = cross_entropy<float>(m.logits(), m.targets(), N, c.vocab_size, 1.f, mask.data());
    }
    m.backward(m.logits(), 1.f);
    EXPECT_NEAR(got, ref, 1e-5 * std::max(1.0, std::abs(ref)));
    for (size_t k = 0; k < g.size(); ++k) {
      double num = 0, den = 0;
      for (size_t i = 0; i < g[k].size(); ++i) {
        double d = m.params()[k].g[i] - g[k][i];
        num += d * d, den += g[k][i] * g[k][i];
      }
      EXPECT_LT(std::sqrt(num / std::max(den, 1e-30)), 1e-4) << m.params()[k].name << (logprob ? " logprob" : " masked");
    }
  }
}

// All-ones weight = no mask; all-zero weight = loss 0 and no gradient, no NaN;
// the forward-only path touches no gradient and refuses backward.
TEST(TrainModel, MaskEdgesAndForwardOnly) {
  model::ModelConfig c = tiny_config(true);
  Net m = Net::init(c, 4);
  const int B = 2, T = 5;
  auto tokens = random_tokens(B, T, c.vocab_size, 2);
  std::vector<float> ones(B * T, 1.f), zeros(B * T, 0.f);
  const float plain = m.loss(tokens.data(), B, T);
  EXPECT_FLOAT_EQ(m.loss(tokens.data(), B, T, ones.data()), plain);
  const float l0 = m.forward_backward(tokens.data(), B, T, 1.f, zeros.data());
  EXPECT_EQ(l0, 0.f);
  for (const Param& p : m.params())
    for (float x : p.g) ASSERT_EQ(x, 0.f) << p.name;
  m.forward(tokens.data(), B, T, false);
  EXPECT_THROW(m.backward(m.logits()), Error);
  for (const Param& p : m.params())
    for (float x : p.g) ASSERT_EQ(x, 0.f) << p.name;
  // Masking tokens out equals the mean over the kept ones.
  std::vector<float> first(B * T, 0.f);
  for (int t = 0; t < T; ++t) first[t] = 1.f;
  m.forward(tokens.data(), B, T, false);
  std::vector<float> lg(m.logits(), m.logits() + size_t(B) * T * c.vocab_size);
  const double want = cross_entropy<float>(lg.data(), m.targets(), T, c.vocab_size, 0.f);  // row 0 only
  EXPECT_NEAR(m.loss(tokens.data(), B, T, first.data()), want, 1e-6);
}

// One initialisation: Net::init holds exactly the bytes init_tensor (what
// `solar init` writes) gives, with the documented statistics.
TEST(TrainModel, InitIsInitTensor) {
  model::ModelConfig c = tiny_config(false);
  c.hidden_size = 64, c.intermediate_size = 128;
  Net m = Net::init(c, 1234);
  for (const Param& p : m.params()) {
    std::vector<float> want(p.w.size());
    model::init_tensor(c, p.name, 1234, want.data(), DType::F32, want.size());
    ASSERT_EQ(0, std::memcmp(want.data(), p.w.data(), want.size() * 4)) << p.name;
    double s = 0, s2 = 0;
    for (float x : p.w) s += x, s2 += double(x) * x;
    const double n = double(p.w.size()), mean = s / n, sd = std::sqrt(s2 / n - mean * mean);
    if (p.shape.size() == 1) {
      EXPECT_EQ(mean, 1.0) << p.name;
      continue;
    }
    bool out = p.name.ends_with("o_proj.weight") || p.name.ends_with("down_proj.weight");
    const double want_sd = 0.02 / (out ? std::sqrt(2.0 * c.num_hidden_layers) : 1.0);
    EXPECT_NEAR(sd, want_sd, 0.1 * want_sd) << p.name;
  }
}

// The float training path (kernels::gemm at F32) agrees with the double reference.
TEST(TrainModel, FloatMatchesDouble) {
  for (bool tied : {true, false}) {
    model::ModelConfig c = tiny_config(tied);
    Net m = Net::init(c, 5);
    m.set_options({kernels::Precision::F32, false});
    const int B = 3, T = 7;
    auto tokens = random_tokens(B, T, c.vocab_size, 9);
    std::vector<std::vector<double>> g;
    double ref = forward_backward_f64(c, to_double(m), &g, tokens.data(), B, T);
    float loss = m.forward_backward(tokens.data(), B, T, 0.5f);
    EXPECT_NEAR(loss, ref, 1e-5);
    EXPECT_NEAR(loss, std::log(32.0), 0.05);  // small init: near-uniform predictions
    for (size_t k = 0; k < g.size(); ++k) {
      double num = 0, den = 0;
      for (size_t i = 0; i < g[k].size(); ++i) {
        double d = m.params()[k].g[i] - 0.5 * g[k][i];
        num += d * d, den += 0.25 * g[k][i] * g[k][i];
      }
      EXPECT_LT(std::sqrt(num / den), 1e-4) << m.params()[k].name;
    }
    // Gradients add up across calls (accumulation), and zero_grad clears them.
    float g0 = m.params()[1].g[3];
    m.forward_backward(tokens.data(), B, T, 0.5f);
    EXPECT_NEAR(m.params()[1].g[3], 2 * g0, 1e-6 + 1e-5 * std::abs(g0));
    m.zero_grad();
    EXPECT_EQ(m.params()[1].g[3], 0.f);
  }
}

// BF16 GEMM inputs (8-bit mantissa) move the loss of the 10m shape by well
// under 1% and keep the whole gradient aligned (cosine > 0.99). Single small
// tensors are a poor probe: at initialisation q/k gradients are differences
// of near-uniform attention weights and lose most of their bits in BF16.
TEST(TrainModel, Bf16CloseToF32) {
  model::ModelConfig c = model::preset_config("10m");
  c.num_hidden_layers = 2;
  c.vocab_size = 512;
  Net m = Net::init(c, 1);
  const int B = 2, T = 32;
  auto tokens = random_tokens(B, T, c.vocab_size, 2);
  auto grads = [&] {
    std::vector<float> g;
    for (auto& p : m.params()) g.insert(g.end(), p.g.begin(), p.g.end());
    return g;
  };
  m.set_options({kernels::Precision::F32, false});
  float l32 = m.forward_backward(tokens.data(), B, T);
  std::vector<float> g32 = grads();
  m.zero_grad();
  m.set_options({kernels::Precision::BF16, false});
  float l16 = m.forward_backward(tokens.data(), B, T);
  std::vector<float> g16 = grads();
  EXPECT_NEAR(l16, l32, 0.01 * l32);
  double dot = 0, a = 0, b = 0;
  for (size_t i = 0; i < g32.size(); ++i) dot += double(g32[i]) * g16[i], a += double(g32[i]) * g32[i], b += double(g16[i]) * g16[i];
  EXPECT_GT(dot / std::sqrt(a * b), 0.99);
}

TEST(TrainModel, InitAndParams) {
  model::ModelConfig c = tiny_config(false);
  Net m = Net::init(c, 1);
  EXPECT_EQ(m.num_parameters(), c.num_parameters());
  EXPECT_EQ(m.params().front().name, "model.embed_tokens.weight");
  EXPECT_EQ(m.params().back().name, "lm_head.weight");
  for (const Param& p : m.params()) {
    EXPECT_EQ(p.decay, p.shape.size() == 2 && p.name != "model.embed_tokens.weight" && p.name != "lm_head.weight") << p.name;
    if (p.shape.size() == 1) {
      for (float x : p.w) ASSERT_EQ(x, 1.f);
    } else {
      double s = 0;
      for (float x : p.w) s += double(x) * x;
      double want = p.name.ends_with("o_proj.weight") || p.name.ends_with("down_proj.weight") ? 0.01 : 0.02;
      EXPECT_NEAR(std::sqrt(s / p.w.size()), want, 0.25 * want) << p.name;
    }
  }
  Net m2 = Net::init(c, 1);
  EXPECT_EQ(m.params()[3].w, m2.params()[3].w);
  m.set_options({kernels::Precision::BF16, true});
  EXPECT_TRUE(m.params().front().decay);
}

TEST(TrainModel, RejectsBadTokens) {
  Net m = Net::init(tiny_config(true), 1);
  std::vector<int32_t> t{1, 2, 32, 4};
  EXPECT_THROW(m.loss(t.data(), 1, 3), Error);
  t[2] = -1;
  EXPECT_THROW(m.forward_backward(t.data(), 1, 3), Error);
}

// views() → Checkpoint → from_checkpoint gives the same model; an interleaved
// (llama2.c/GGUF) q/k layout is permuted back and gives the same loss.
TEST(TrainModel, CheckpointRoundTrip) {
  model::ModelConfig c = tiny_config(false);
  Net m = Net::init(c, 3);
  m.set_options({kernels::Precision::F32, false});
  auto tokens = random_tokens(2, 8, c.vocab_size, 4);
  float ref = m.loss(tokens.data(), 2, 8);
  for (bool interleaved : {false, true}) {
    model::Checkpoint ck;
    ck.source = "test";
    ck.config = c;
    ck.config.rope_interleaved = interleaved;
    for (const TensorView& v : m.views()) {
      std::vector<uint8_t> bytes((const uint8_t*)v.data, (const uint8_t*)v.data + v.nbytes);
      bool qk = v.name.ends_with("q_proj.weight") || v.name.ends_with("k_proj.weight");
      if (interleaved && qk) {  // HF row j*hd/2+i → interleaved row 2i+j
        const int hd = c.head_dim, d = c.hidden_size;
        const float* src = (const float*)v.data;
        float* dst = (float*)bytes.data();
        for (int h = 0; h < v.shape[0] / hd; ++h)
          for (int i = 0; i < hd / 2; ++i)
            for (int j = 0; j < 2; ++j)
              std::copy_n(src + (h * hd + j * hd / 2 + i) * d, d, dst + (h * hd + 2 * i + j) * d);
        EXPECT_NE(bytes, std::vector<uint8_t>((const uint8_t*)v.data, (const uint8_t*)v.data + v.nbytes));
      }
      ck.tensors[v.name] = ck.adopt(v.name, DType::F32, v.shape, std::move(bytes));
    }
    Net m2 = Net::from_checkpoint(ck);
    m2.set_options({kernels::Precision::F32, false});
    EXPECT_FALSE(m2.config().rope_interleaved);
    for (size_t k = 0; k < m.params().size(); ++k) EXPECT_EQ(m.params()[k].w, m2.params()[k].w) << m.params()[k].name;
    EXPECT_EQ(m2.loss(tokens.data(), 2, 8), ref);
  }
}

}  // namespace
}  // namespace solar::train

namespace solar::train {
namespace {

// Mean cross-entropy of rows of T+1 tokens from the inference engine's logits.
double inference_loss(const model::Checkpoint& ck, const std::vector<int32_t>& tokens, int B, int T) {
  auto im = std::make_shared<const solar::engine::Model>(ck);
  const int V = ck.config.vocab_size;
  double total = 0;
  for (int r = 0; r < B; ++r) {
    solar::engine::Context ctx(im, T);
    std::vector<int> in(tokens.begin() + r * (T + 1), tokens.begin() + r * (T + 1) + T);
    std::vector<float> logits(size_t(T) * V);
    ctx.eval(in.data(), T, nullptr, logits.data());
    for (int t = 0; t < T; ++t) {
      const float* l = &logits[size_t(t) * V];
      double mx = *std::max_element(l, l + V), s = 0;
      for (int j = 0; j < V; ++j) s += std::exp(l[j] - mx);
      total += std::log(s) + mx - l[tokens[r * (T + 1) + t + 1]];
    }
  }
  return total / (B * T);
}

// The training forward pass equals the inference engine on the same weights.
TEST(TrainModel, LossMatchesInferenceEngine) {
  for (bool tied : {true, false}) {
    model::ModelConfig c = tiny_config(tied);
    Net m = Net::init(c, 8);
    for (Param& p : m.params())  // larger weights: a peaked, non-trivial distribution
      for (float& x : p.w) x *= p.shape.size() == 2 ? 10.f : 1.f;
    m.set_options({kernels::Precision::F32, false});
    model::Checkpoint ck;
    ck.source = "train";
    ck.config = c;
    for (const TensorView& v : m.views()) ck.tensors[v.name] = v;
    auto tokens = random_tokens(2, 12, c.vocab_size, 6);
    float loss = m.loss(tokens.data(), 2, 12);
    EXPECT_GT(std::abs(loss - std::log(32.0)), 0.1);
    EXPECT_NEAR(loss, inference_loss(ck, tokens, 2, 12), 1e-4 * loss);
  }
}

// Continued pretraining from a real llama2.c checkpoint (interleaved RoPE):
// the permuted training model gives the inference engine's loss on stories260K.
TEST(TrainModel, Stories260KFromCheckpoint) {
  std::string path = std::string(SOLAR_SHARED_DATA) + "/models/stories260K/stories260K.bin";
  if (!path_exists(path)) GTEST_SKIP() << "needs " << path;
  model::Checkpoint ck = formats::load_checkpoint(path);
  Net m = Net::from_checkpoint(ck);
  m.set_options({kernels::Precision::F32, false});
  const int B = 2, T = 32;
  auto tokens = random_tokens(B, T, ck.config.vocab_size, 1);
  float train_loss = m.loss(tokens.data(), B, T);
  EXPECT_NEAR(train_loss, inference_loss(ck, tokens, B, T), 2e-4 * train_loss);
}

}  // namespace
}  // namespace solar::train

namespace solar::train {
namespace {

// The activation arena follows changes of batch shape and thread count.
TEST(TrainModel, ReusesArenaAcrossShapesAndThreads) {
  model::ModelConfig c = tiny_config(true);
  Net m = Net::init(c, 2);
  m.set_options({kernels::Precision::F32, false});
  auto small = random_tokens(1, 5, c.vocab_size, 1), big = random_tokens(3, 40, c.vocab_size, 2);
  const int threads = kernels::num_threads();
  kernels::set_num_threads(1);
  float a = m.forward_backward(big.data(), 3, 40);
  kernels::set_num_threads(2);  // same shape, more threads: more attention scratch
  float b = m.forward_backward(big.data(), 3, 40);
  float s1 = m.forward_backward(small.data(), 1, 5);
  kernels::set_num_threads(1);
  float s2 = m.forward_backward(small.data(), 1, 5);
  kernels::set_num_threads(threads);
  EXPECT_NEAR(a, b, 1e-5);
  EXPECT_NEAR(s1, s2, 1e-5);
}

}  // namespace
}  // namespace solar::train
