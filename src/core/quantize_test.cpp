#include "core/quantize.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "core/error.h"
#include "testing/testing.h"

namespace solar {
namespace {
using testing::error_of;

const DType kBlockTypes[] = {DType::Q4_0, DType::Q5_0, DType::Q5_1, DType::Q8_0, DType::Q4_K, DType::Q5_K, DType::Q6_K};

std::vector<uint8_t> quantize(const std::vector<float>& x, DType t) {
  std::vector<uint8_t> q(row_bytes(t, int64_t(x.size())));
  quantize_row(x.data(), t, q.data(), int64_t(x.size()));
  return q;
}

std::vector<float> round_trip(const std::vector<float>& x, DType t) {
  std::vector<float> y(x.size());
  dequantize_row(quantize(x, t).data(), t, y.data(), int64_t(x.size()));
  return y;
}

uint64_t fnv1a(const std::vector<uint8_t>& b) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (uint8_t c : b) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

// Exactly representable inputs, the same in any language: what the expected
// bytes below were computed from with llama.cpp's own quantize_row_*_ref
// (libggml-base of llama-cpp-python 0.3.36).
std::vector<float> known_input(int n) {
  std::vector<float> x{};
  x.resize(size_t(n));
  for (int i = 0; i < n; ++i) x[size_t(i)] = float((i * 37 % 101) - 50) / 64.0f * float(1 + i % 5);
  return x;
}

TEST(Quantize, MatchesLlamaCppKnownBlocks) {
  const std::vector<float> x = known_input(32);
  EXPECT_EQ(quantize(x, DType::Q8_0),
            (std::vector<uint8_t>{103, 39, 229, 242, 39, 170, 248, 18, 224, 11, 95, 202, 9, 205, 240, 58, 156, 0,
                                  40, 212, 22, 127, 247, 22, 185, 241, 81, 238, 3, 65, 204, 35, 27, 241}));
  EXPECT_EQ(quantize(x, DType::Q4_0),
            (std::vector<uint8_t>{88, 183, 90, 185, 118, 13, 153, 119, 202, 151, 50, 155, 135, 75, 185, 100, 110, 152}));
}

TEST(Quantize, MatchesLlamaCppKnownRows) {
  const std::vector<float> x = known_input(1024);
  const std::pair<DType, uint64_t> want[] = {
      {DType::Q4_0, 0x8b34a8af9c411a1bull}, {DType::Q5_0, 0x5a3c5cd66d10a6b5ull}, {DType::Q5_1, 0x33a6b5acf27dcd0dull},
      {DType::Q8_0, 0x5c7aeead38a5680eull}, {DType::Q4_K, 0xa52fe247d2b1c8ceull}, {DType::Q5_K, 0xd540503e68279e2aull},
      {DType::Q6_K, 0x3dcb967f91d65227ull}};
  for (auto [t, h] : want) EXPECT_EQ(fnv1a(quantize(x, t)), h) << dtype_name(t);
}

// Worst |x − x̂| per block, over the block's largest |x|: half a step (Q4_0
// and Q5_0: a whole one, at the extreme opposite the one that sets d = max/−8)
// plus the f16 rounding of the scale (2^-11 relative) times the largest quant.
TEST(Quantize, RoundTripErrorIsBounded) {
  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0.f, 0.02f);
  std::vector<float> x(4096);
  for (auto& v : x) v = nd(rng);
  const double f16 = std::ldexp(1.0, -11);
  const std::pair<DType, double> max_rel[] = {{DType::Q8_0, (0.5 + 127 * f16) / 127},
                                              {DType::Q4_0, (1 + 8 * f16) / 8},
                                              {DType::Q5_0, (1 + 16 * f16) / 16},
                                              {DType::Q5_1, 2 * (0.5 + 31 * f16) / 31 + f16}};
  for (auto [t, bound] : max_rel) {
    std::vector<float> y = round_trip(x, t);
    for (size_t b = 0; b < x.size(); b += 32) {
      float amax = 0, err = 0;
      for (size_t i = b; i < b + 32; ++i) amax = std::max(amax, std::fabs(x[i])), err = std::max(err, std::fabs(x[i] - y[i]));
      ASSERT_LE(err, bound * amax + 1e-7) << dtype_name(t) << " block " << b / 32;
    }
  }
  // RMS error over RMS of the row, normal weights (measured: Q4_K 0.071, Q5_K 0.036,
  // Q6_K 0.0175, Q8_0 0.0053, Q4_0 0.085: the K-quants' fitted scales and mins beat
  // Q4_0's max-based scale at about the same size).
  const std::pair<DType, double> rms_rel[] = {{DType::Q4_K, 0.08}, {DType::Q5_K, 0.04}, {DType::Q6_K, 0.02},
                                              {DType::Q8_0, 0.006}, {DType::Q4_0, 0.095}};
  double ss = 0;
  for (float v : x) ss += double(v) * v;
  for (auto [t, bound] : rms_rel) {
    std::vector<float> y = round_trip(x, t);
    double se = 0;
    for (size_t i = 0; i < x.size(); ++i) se += double(x[i] - y[i]) * (x[i] - y[i]);
    EXPECT_LE(std::sqrt(se / ss), bound) << dtype_name(t);
  }
}

TEST(Quantize, ZeroRowsStayZero) {
  const std::vector<float> x(512, 0.f);
  for (DType t : kBlockTypes)
    for (float v : round_trip(x, t)) ASSERT_EQ(v, 0.f) << dtype_name(t);
}

TEST(Quantize, ConstantRowsComeBackToF16Precision) {
  for (float c : {0.37f, -2.5f}) {
    const std::vector<float> x(512, c);
    for (DType t : kBlockTypes)
      for (float v : round_trip(x, t)) ASSERT_NEAR(v, c, std::fabs(c) * 2e-3) << dtype_name(t) << " c=" << c;
  }
}

// Large and tiny magnitudes: the f16 scales bound what survives. 1e3 keeps
// its relative error; 1e-30 underflows every scale to zero (as in llama.cpp):
// the row comes back as zeros, never NaN.
TEST(Quantize, HugeAndTinyValues) {
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0.f, 1.f);
  std::vector<float> big(512), tiny(512);
  for (size_t i = 0; i < big.size(); ++i) big[i] = nd(rng) * 1e3f, tiny[i] = nd(rng) * 1e-30f;
  for (DType t : kBlockTypes) {
    std::vector<float> y = round_trip(big, t);
    double se = 0, ss = 0;
    for (size_t i = 0; i < y.size(); ++i) se += double(big[i] - y[i]) * (big[i] - y[i]), ss += double(big[i]) * big[i];
    EXPECT_LE(std::sqrt(se / ss), 0.12) << dtype_name(t);
    for (float v : round_trip(tiny, t)) ASSERT_EQ(v, 0.f) << dtype_name(t);
  }
}

// One outlier in a block: it is kept (the scale follows the largest |x|).
TEST(Quantize, OutlierSetsTheScale) {
  std::vector<float> x(256, 0.01f);
  x[77] = 5.f;
  for (DType t : kBlockTypes) EXPECT_NEAR(round_trip(x, t)[77], 5.f, 5.f * 0.07) << dtype_name(t);
}

TEST(Quantize, FloatTypesConvert) {
  const std::vector<float> x = {1.f, -2.5f, 3.14159f, 65504.f};
  std::vector<uint16_t> h(4);
  quantize_row(x.data(), DType::F16, h.data(), 4);
  EXPECT_EQ(h[2], f32_to_f16(3.14159f));
  quantize_row(x.data(), DType::BF16, h.data(), 4);
  EXPECT_EQ(h[1], f32_to_bf16(-2.5f));
}

TEST(Quantize, RefusesPartialBlocksAndOtherTypes) {
  std::vector<float> x(48, 1.f);
  std::vector<uint8_t> out(1024);
  EXPECT_NE(error_of([&] { quantize_row(x.data(), DType::Q8_0, out.data(), 48); }).find("whole number of 32-element"),
            std::string::npos);
  EXPECT_NE(error_of([&] { quantize_row(x.data(), DType::Q4_K, out.data(), 32); }).find("256-element"), std::string::npos);
  EXPECT_NE(error_of([&] { quantize_row(x.data(), DType::Q2_K, out.data(), 256); }).find("expected F32"), std::string::npos);
  EXPECT_FALSE(can_quantize(DType::Q3_K));
  EXPECT_TRUE(can_quantize(DType::Q6_K));
}

// NaN and Inf are the caller's to refuse (quantize/ names the tensor); here
// they must only give deterministic bytes without crashing.
TEST(Quantize, NonFiniteInputIsDeterministic) {
  std::vector<float> x(256, 0.5f);
  x[3] = std::numeric_limits<float>::quiet_NaN();
  x[200] = std::numeric_limits<float>::infinity();
  for (DType t : kBlockTypes) EXPECT_EQ(quantize(x, t), quantize(x, t)) << dtype_name(t);
}

}  // namespace
}  // namespace solar
