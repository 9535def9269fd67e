#include "quantize/mix.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "core/error.h"
#include "testing/testing.h"

namespace solar::quantize {
namespace {
using testing::error_of;

const ModelInfo kLlama8{8, 32, 8, false};  // 8 layers, GQA, untied head

Mix mix_of(Ftype f, bool pure = false) {
  Mix m;
  m.ftype = f;
  m.pure = pure;
  return m;
}

DType type_of(const Mix& mix, const ModelInfo& m, const std::string& name, std::vector<int64_t> shape,
              DType current = DType::F32) {
  return tensor_type(mix, m, name, shape, current).type;
}

TEST(Mix, ParsesFtypes) {
  EXPECT_EQ(parse_ftype("Q4_K_M", "--type"), Ftype::Q4_K_M);
  EXPECT_EQ(parse_ftype("q8_0", "--type"), Ftype::Q8_0);
  EXPECT_EQ(uint32_t(parse_ftype("q6_k", "--type")), 18u);  // LLAMA_FTYPE_MOSTLY_Q6_K
  EXPECT_EQ(uint32_t(parse_ftype("q4_0", "--type")), 2u);
  EXPECT_EQ(uint32_t(Ftype::Q4_K_M), 15u);
  EXPECT_EQ(uint32_t(Ftype::Q8_0), 7u);
  try {
    parse_ftype("q3_k_s", "--type");
    FAIL();
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("expected q8_0, q4_0, q4_k_m or q6_k"), std::string::npos);
  }
  EXPECT_EQ(parse_tensor_type("Q6_K", "--output-tensor-type"), DType::Q6_K);
  EXPECT_NE(error_of([] { parse_tensor_type("iq2_xs", "--output-tensor-type"); }).find("--output-tensor-type"),
            std::string::npos);
}

TEST(Mix, NormsAreNotQuantized) {
  for (Ftype f : {Ftype::Q8_0, Ftype::Q4_0, Ftype::Q4_K_M, Ftype::Q6_K}) {
    EXPECT_EQ(type_of(mix_of(f), kLlama8, "blk.0.attn_norm.weight", {4096}), DType::F32);
    EXPECT_EQ(type_of(mix_of(f), kLlama8, "output_norm.weight", {4096}, DType::F16), DType::F16);
  }
}

// llama.cpp's Q4_K_M: Q6_K for attn_v and ffn_down where use_more_bits picks
// (8 layers: 0, 3, 6, 7), Q6_K output, Q4_K for the rest (token_embd included).
TEST(Mix, Q4KMGivesMoreBitsToSomeLayers) {
  const Mix m = mix_of(Ftype::Q4_K_M);
  for (int l = 0; l < 8; ++l) {
    const bool more = l == 0 || l == 3 || l == 6 || l == 7;
    const std::string b = "blk." + std::to_string(l) + ".";
    EXPECT_EQ(type_of(m, kLlama8, b + "attn_v.weight", {1024, 4096}), more ? DType::Q6_K : DType::Q4_K) << l;
    EXPECT_EQ(type_of(m, kLlama8, b + "ffn_down.weight", {4096, 14336}), more ? DType::Q6_K : DType::Q4_K) << l;
    for (const char* n : {"attn_q", "attn_k", "attn_output", "ffn_gate", "ffn_up"})
      EXPECT_EQ(type_of(m, kLlama8, b + n + ".weight", {4096, 4096}), DType::Q4_K) << b << n;
  }
  EXPECT_EQ(type_of(m, kLlama8, "output.weight", {32000, 4096}), DType::Q6_K);
  EXPECT_EQ(type_of(m, kLlama8, "token_embd.weight", {32000, 4096}), DType::Q4_K);
  // 32 layers (Llama 2 7B): 0-3, 28-31 and every third from 6.
  const ModelInfo l32{32, 32, 32, false};
  std::vector<int> picked;
  for (int l = 0; l < 32; ++l)
    if (type_of(m, l32, "blk." + std::to_string(l) + ".attn_v.weight", {4096, 4096}) == DType::Q6_K) picked.push_back(l);
  EXPECT_EQ(picked, (std::vector<int>{0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31}));
}

TEST(Mix, OutputAndTiedEmbeddings) {
  const ModelInfo tied{8, 32, 8, true};
  EXPECT_EQ(type_of(mix_of(Ftype::Q4_0), kLlama8, "output.weight", {32000, 4096}), DType::Q6_K);
  EXPECT_EQ(type_of(mix_of(Ftype::Q4_0), tied, "token_embd.weight", {32000, 4096}), DType::Q6_K);
  EXPECT_EQ(type_of(mix_of(Ftype::Q4_0), kLlama8, "token_embd.weight", {32000, 4096}), DType::Q4_0);
  EXPECT_EQ(type_of(mix_of(Ftype::Q8_0), kLlama8, "output.weight", {32000, 4096}), DType::Q8_0);
  EXPECT_EQ(type_of(mix_of(Ftype::Q8_0), tied, "token_embd.weight", {32000, 4096}), DType::Q8_0);
  EXPECT_EQ(type_of(mix_of(Ftype::Q6_K), kLlama8, "output.weight", {32000, 4096}), DType::Q6_K);
  // Rows of 64 fit Q4_0's blocks but not Q6_K's: Q6_K falls back to Q8_0.
  EXPECT_EQ(type_of(mix_of(Ftype::Q4_0), tied, "token_embd.weight", {512, 64}), DType::Q8_0);
}

TEST(Mix, RowsThatAreNotWholeBlocksFallBack) {
  TypeChoice c = tensor_type(mix_of(Ftype::Q4_K_M), kLlama8, "blk.1.attn_q.weight", {64, 64}, DType::F32);
  EXPECT_EQ(c.type, DType::Q5_0);
  EXPECT_NE(c.fallback.find("rows of 64"), std::string::npos);
  EXPECT_EQ(type_of(mix_of(Ftype::Q4_K_M), kLlama8, "blk.0.attn_v.weight", {64, 64}), DType::Q8_0);  // Q6_K -> Q8_0
  EXPECT_EQ(type_of(mix_of(Ftype::Q6_K), kLlama8, "blk.1.attn_q.weight", {64, 64}), DType::Q8_0);
  for (Ftype f : {Ftype::Q8_0, Ftype::Q4_0, Ftype::Q4_K_M, Ftype::Q6_K})
    EXPECT_EQ(type_of(mix_of(f), kLlama8, "blk.1.ffn_down.weight", {64, 172}), DType::F16) << ftype_name(f);
  EXPECT_TRUE(tensor_type(mix_of(Ftype::Q4_K_M), kLlama8, "blk.1.attn_q.weight", {256, 256}, DType::F32).fallback.empty());
}

// A 70B Llama (80 layers, grouped-query attention): attn_v Q5_K where Q4_K_M would give Q4_K.
TEST(Mix, SeventyBGivesAttnVQ5K) {
  const ModelInfo l80{80, 64, 8, false};
  EXPECT_EQ(type_of(mix_of(Ftype::Q4_K_M), l80, "blk.20.attn_v.weight", {1024, 8192}), DType::Q5_K);
  EXPECT_EQ(type_of(mix_of(Ftype::Q4_K_M), l80, "blk.0.attn_v.weight", {1024, 8192}), DType::Q6_K);
  EXPECT_EQ(type_of(mix_of(Ftype::Q4_0), l80, "blk.20.attn_v.weight", {1024, 8192}), DType::Q4_0);
  EXPECT_EQ(type_of(mix_of(Ftype::Q4_K_M), {80, 64, 64, false}, "blk.20.attn_v.weight", {8192, 8192}), DType::Q4_K);  // 65B
}

TEST(Mix, PureAndOverrides) {
  Mix pure = mix_of(Ftype::Q4_K_M, true);
  EXPECT_EQ(type_of(pure, kLlama8, "output.weight", {32000, 4096}), DType::Q4_K);
  EXPECT_EQ(type_of(pure, kLlama8, "blk.0.attn_v.weight", {1024, 4096}), DType::Q4_K);
  EXPECT_EQ(type_of(pure, kLlama8, "blk.0.attn_v.weight", {64, 64}), DType::Q5_0);  // fallbacks still apply
  Mix o = mix_of(Ftype::Q4_0);
  o.output_type = DType::F16;
  o.token_embd_type = DType::Q8_0;
  EXPECT_EQ(type_of(o, kLlama8, "output.weight", {32000, 4096}), DType::F16);
  EXPECT_EQ(type_of(o, kLlama8, "token_embd.weight", {32000, 4096}), DType::Q8_0);
  // Tied: the output override reaches the embedding unless it has its own.
  Mix t = mix_of(Ftype::Q4_0);
  t.output_type = DType::Q5_0;
  EXPECT_EQ(type_of(t, {8, 32, 8, true}, "token_embd.weight", {32000, 4096}), DType::Q5_0);
  o.output_type = DType::Q6_K;
  try {
    tensor_type(o, kLlama8, "output.weight", {512, 64}, DType::F32);
    FAIL();
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("--output-tensor-type: Q6_K needs rows of whole 256-element blocks"),
              std::string::npos);
  }
}

TEST(Mix, TensorOrderIsLlamaCpps) {
  std::vector<std::string> names = {"blk.10.attn_q.weight", "token_embd.weight", "blk.2.ffn_up.weight",
                                    "blk.2.attn_k.weight", "output.weight", "output_norm.weight"};
  std::sort(names.begin(), names.end(), tensor_order);
  EXPECT_EQ(names, (std::vector<std::string>{"output.weight", "output_norm.weight", "token_embd.weight",
                                             "blk.2.attn_k.weight", "blk.2.ffn_up.weight", "blk.10.attn_q.weight"}));
}

}  // namespace
}  // namespace solar::quantize
