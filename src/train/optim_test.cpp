// AdamW, clipping, optimizer state files, schedules, determinism, overfitting.
#include "testing/models.h"
#include "testing/testing.h"
#include "train/optim.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <random>

#include "core/error.h"
#include "core/fs.h"
#include "train/schedule.h"

namespace solar::train {
namespace {
using solar::testing::random_tokens;

model::ModelConfig small_config() { return testing::small_config(32, 64, 64, true); }

TEST(TrainOptim, AdamWOneStepByHand) {
  Net m = Net::init(small_config(), 1);
  AdamWConfig cfg;
  cfg.weight_decay = 0.1f;
  cfg.grad_clip = 0;  // no clipping
  AdamW opt(m, cfg);
  Param& q = m.params()[2];  // layer 0 q_proj: decayed
  Param& n = m.params()[1];  // layer 0 input_layernorm: not decayed
  ASSERT_TRUE(q.decay);
  ASSERT_FALSE(n.decay);
  q.g[0] = 0.5f, q.g[1] = -2.0f, n.g[0] = 0.25f;
  float w0 = q.w[0], w1 = q.w[1], w2 = q.w[2], n0 = n.w[0];
  const float lr = 0.01f;
  opt.step(lr);
  // Step 1: m̂ = g, v̂ = g², so the update is lr·g/(|g|+eps) + lr·wd·w.
  EXPECT_NEAR(q.w[0], w0 - lr * (0.5f / (0.5f + 1e-8f) + 0.1f * w0), 1e-7);
  EXPECT_NEAR(q.w[1], w1 - lr * (-1.0f + 0.1f * w1), 1e-7);
  EXPECT_NEAR(q.w[2], w2 - lr * 0.1f * w2, 1e-9);  // zero gradient: decay only
  EXPECT_NEAR(n.w[0], n0 - lr * 1.0f, 1e-7);       // no decay on norms
  EXPECT_EQ(opt.step_count(), 1);
  // Step 2 with g = 0.5 again: m = 0.5·(1−β1²)… both bias-corrected to 0.5.
  float w0b = q.w[0];
  q.g[1] = 0, q.g[0] = 0.5f;
  opt.step(lr);
  double m2 = 0.9 * 0.05 + 0.1 * 0.5, v2 = 0.95 * 0.05 * 0.25 + 0.05 * 0.25;
  double mh = m2 / (1 - 0.81), vh = v2 / (1 - 0.9025);
  EXPECT_NEAR(q.w[0], w0b - lr * (mh / (std::sqrt(vh) + 1e-8) + 0.1 * w0b), 1e-7);
}

TEST(TrainOptim, ClipsByGlobalNorm) {
  Net m = Net::init(small_config(), 1);
  AdamWConfig cfg;
  cfg.grad_clip = 1.0f;
  cfg.weight_decay = 0;
  AdamW opt(m, cfg);
  m.params()[0].g[0] = 3.0f, m.params()[3].g[5] = 4.0f;  // global norm 5
  EXPECT_NEAR(grad_norm(m.params()), 5.0, 1e-12);
  float w = m.params()[0].w[0];
  EXPECT_NEAR(opt.step(1e-3f), 5.0f, 1e-6);
  EXPECT_NEAR(m.params()[0].w[0], w - 1e-3f, 1e-7);  // Adam's first step is lr·sign(g) regardless of clipping
}

TEST(TrainOptim, StateSaveLoadRoundTrip) {
  auto c = small_config();
  auto tokens = random_tokens(2, 8, c.vocab_size, 1);
  Net a = Net::init(c, 1), b = Net::init(c, 1);
  AdamW oa(a, {}), ob(b, {});
  for (int i = 0; i < 2; ++i) {
    a.zero_grad();
    a.forward_backward(tokens.data(), 2, 8);
    oa.step(1e-3f);
  }
  std::string path = solar::testing::temp_dir("optim_test") + "/adam.bin";
  oa.save(path);
  ob.load(path);
  EXPECT_EQ(ob.step_count(), 2);
  for (size_t k = 0; k < a.params().size(); ++k) b.params()[k].w = a.params()[k].w;
  a.zero_grad(), b.zero_grad();
  a.forward_backward(tokens.data(), 2, 8), b.forward_backward(tokens.data(), 2, 8);
  oa.step(1e-3f), ob.step(1e-3f);
  for (size_t k = 0; k < a.params().size(); ++k) EXPECT_EQ(a.params()[k].w, b.params()[k].w);

  // A state for another shape, a truncated file and garbage are refused.
  auto c2 = c;
  c2.intermediate_size = 72;
  Net other = Net::init(c2, 1);
  AdamW oo(other, {});
  EXPECT_THROW(oo.load(path), Error);
  std::string s = read_file(path);
  write_file_atomic(path, s.substr(0, s.size() - 3));
  try {
    ob.load(path);
    FAIL() << "truncated state accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
  write_file_atomic(path, "not an optimizer state");
  EXPECT_THROW(ob.load(path), Error);
  EXPECT_EQ(ob.step_count(), 3);  // a failed load changes nothing
  remove_all(path);
}

TEST(TrainSchedule, ValuesAtKeySteps) {
  Schedule s{"cosine", 10, 110, 1.0f, 0.1f, 0.2f};
  EXPECT_FLOAT_EQ(s.at(0), 0.1f);
  EXPECT_FLOAT_EQ(s.at(4), 0.5f);
  EXPECT_FLOAT_EQ(s.at(9), 1.0f);
  EXPECT_FLOAT_EQ(s.at(10), 1.0f);
  EXPECT_NEAR(s.at(60), 0.55f, 1e-6);  // halfway: (1 + 0.1) / 2
  EXPECT_FLOAT_EQ(s.at(110), 0.1f);
  EXPECT_FLOAT_EQ(s.at(500), 0.1f);
  s.kind = "linear";
  EXPECT_NEAR(s.at(35), 1.0f - 0.25f * 0.9f, 1e-6);
  EXPECT_FLOAT_EQ(s.at(110), 0.1f);
  s.kind = "constant";
  EXPECT_FLOAT_EQ(s.at(5), 0.6f);
  EXPECT_FLOAT_EQ(s.at(1000), 1.0f);
  s.kind = "wsd";  // stable until step 88 (last 20% of 110), then linear to 0.1
  EXPECT_FLOAT_EQ(s.at(50), 1.0f);
  EXPECT_FLOAT_EQ(s.at(88), 1.0f);
  EXPECT_NEAR(s.at(99), 1.0f - 0.5f * 0.9f, 1e-6);
  EXPECT_FLOAT_EQ(s.at(110), 0.1f);
  Schedule none{"cosine", 0, 100, 3e-4f, 0.0f};
  EXPECT_FLOAT_EQ(none.at(0), 3e-4f);
  EXPECT_NEAR(none.at(100), 0.0f, 1e-12);
  s.kind = "exp";
  EXPECT_THROW(s.validate("--lr-scheduler"), Error);
}

std::vector<float> train_losses(uint64_t seed, int steps) {
  auto c = small_config();
  Net m = Net::init(c, seed);
  m.set_options({kernels::Precision::BF16, false});
  AdamW opt(m, {});
  Schedule sched{"cosine", 2, steps, 1e-2f};
  std::vector<float> losses;
  for (int s = 0; s < steps; ++s) {
    auto tokens = random_tokens(4, 16, c.vocab_size, 100 + s);
    m.zero_grad();
    losses.push_back(m.forward_backward(tokens.data(), 4, 16));
    opt.step(sched.at(s));
  }
  return losses;
}

TEST(TrainOptim, BitIdenticalAcrossRuns) {
  auto a = train_losses(11, 3), b = train_losses(11, 3), c = train_losses(12, 3);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
}

// The global norm (and with it clipping) must not depend on the order in
// which threads finish: 8 threads on this machine's 2 cores vary it.
TEST(TrainOptim, GradNormIdenticalAtManyThreads) {
  const int threads = kernels::num_threads();
  kernels::set_num_threads(8);
  std::vector<Param> ps(1);
  ps[0].g.resize(1 << 18);
  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0.f, 1e-3f);
  for (float& x : ps[0].g) x = nd(rng);
  const double first = grad_norm(ps);
  int differ = 0;
  for (int i = 0; i < 300; ++i) differ += grad_norm(ps) != first;
  EXPECT_EQ(differ, 0);
  kernels::set_num_threads(threads);
}

// A fixed batch of 4×32 random tokens is memorised: loss from ln 64 to < 0.05.
TEST(TrainOptim, OverfitsOneBatch) {
  const int threads = kernels::num_threads();
  kernels::set_num_threads(1);  // tiny GEMMs: fork/join would dominate
  auto c = small_config();
  Net m = Net::init(c, 3);
  m.set_options({kernels::Precision::F32, false});
  AdamWConfig cfg;
  cfg.weight_decay = 0;
  AdamW opt(m, cfg);
  auto tokens = random_tokens(4, 32, c.vocab_size, 5);
  Schedule sched{"constant", 10, 300, 1e-2f};
  float first = 0, loss = 0;
  int s = 0;
  for (; s < 300; ++s) {
    m.zero_grad();
    loss = m.forward_backward(tokens.data(), 4, 32);
    if (s == 0) first = loss;
    if (loss < 0.05f) break;
    opt.step(sched.at(s));
  }
  EXPECT_NEAR(first, std::log(64.0), 0.1);
  EXPECT_LT(loss, 0.05f) << "after " << s << " steps";
  EXPECT_LT(s, 300);
  kernels::set_num_threads(threads);
}

}  // namespace
}  // namespace solar::train
