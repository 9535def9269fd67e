#include "testing/testing.h"
#include "formats/llama2c.h"

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>

#include "core/error.h"
#include "core/fs.h"

namespace solar::formats {
namespace {
using solar::testing::error_of;


std::string stories_bin() {
  std::string p = std::string(SOLAR_SHARED_DATA) + "/models/stories260K/stories260K.bin";
  return path_exists(p) ? p : "";
}

float at(const TensorView& t, int64_t r, int64_t c) {
  return static_cast<const float*>(t.data)[r * t.cols() + c];
}

// The error message of f(), or "" when it does not throw solar::Error.
std::string tmp(const std::string& name) { return join_path(::testing::TempDir(), name); }

// Plain write: tests write hundreds of corrupt files, and fsync would dominate.
void put(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(bytes.data(), std::streamsize(bytes.size()));
}

TEST(Llama2c, Stories260KConfigAndShapes) {
  std::string p = stories_bin();
  if (p.empty()) GTEST_SKIP() << "shared data absent: " << SOLAR_SHARED_DATA;
  model::Checkpoint ck = read_llama2c(p);
  const model::ModelConfig& c = ck.config;
  EXPECT_EQ(c.hidden_size, 64);
  EXPECT_EQ(c.intermediate_size, 172);
  EXPECT_EQ(c.num_hidden_layers, 5);
  EXPECT_EQ(c.num_attention_heads, 8);
  EXPECT_EQ(c.num_key_value_heads, 4);
  EXPECT_EQ(c.head_dim, 8);
  EXPECT_EQ(c.vocab_size, 512);
  EXPECT_EQ(c.max_position_embeddings, 512);
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_TRUE(c.rope_interleaved);
  EXPECT_FLOAT_EQ(c.rms_norm_eps, 1e-5f);
  EXPECT_EQ(c.rope_theta, 10000.0);
  EXPECT_EQ(c.torch_dtype, DType::F32);
  EXPECT_FALSE(ck.has("lm_head.weight"));
  EXPECT_EQ(ck.tensors.size(), model::expected_tensor_names(c).size());
  EXPECT_NO_THROW(ck.validate());
  EXPECT_EQ(ck.get("model.layers.4.self_attn.k_proj.weight").shape, (std::vector<int64_t>{32, 64}));
  EXPECT_EQ(ck.get("model.layers.0.mlp.down_proj.weight").shape, (std::vector<int64_t>{64, 172}));
  EXPECT_TRUE(ck.tokenizer_path.empty());  // tok512.bin is not named tokenizer.bin
}

TEST(Llama2c, Stories260KViewsPointAtFileOffsets) {
  std::string p = stories_bin();
  if (p.empty()) GTEST_SKIP() << "shared data absent: " << SOLAR_SHARED_DATA;
  model::Checkpoint ck = read_llama2c(p);
  const uint8_t* base = ck.files[0]->data();
  auto float_off = [&](const std::string& n) {
    return (static_cast<const uint8_t*>(ck.get(n).data) - base - 28) / 4;
  };
  // Offsets in floats after the 28-byte header, from run.c's weight order.
  int64_t emb = 512 * 64, rms = 5 * 64, wq = 5 * 64 * 64, wk = 5 * 32 * 64, ff = 5 * 172 * 64;
  EXPECT_EQ(float_off("model.embed_tokens.weight"), 0);
  EXPECT_EQ(float_off("model.layers.3.input_layernorm.weight"), emb + 3 * 64);
  EXPECT_EQ(float_off("model.layers.2.self_attn.k_proj.weight"), emb + rms + wq + 2 * 32 * 64);
  EXPECT_EQ(float_off("model.layers.1.mlp.up_proj.weight"), emb + rms + 2 * wq + 2 * wk + rms + 2 * ff + 172 * 64);
  EXPECT_EQ(float_off("model.norm.weight"), emb + 2 * rms + 2 * wq + 2 * wk + 3 * ff);
  // Golden values (python struct.unpack on the file).
  EXPECT_EQ(at(ck.get("model.embed_tokens.weight"), 0, 0), -0.29474878311157227f);
  EXPECT_EQ(at(ck.get("model.embed_tokens.weight"), 3, 5), 0.2313426434993744f);
  EXPECT_EQ(at(ck.get("model.layers.2.self_attn.k_proj.weight"), 7, 9), -0.05503120645880699f);
  EXPECT_EQ(at(ck.get("model.norm.weight"), 0, 0), 2.4583089351654053f);
}

TEST(Llama2c, TruncatedOrPaddedFileNamesExpectedSize) {
  std::string p = stories_bin();
  if (p.empty()) GTEST_SKIP() << "shared data absent: " << SOLAR_SHARED_DATA;
  std::string all = read_file(p);
  for (size_t n : {all.size() - 1, all.size() - 4096, size_t(100), all.size() + 4}) {
    std::string bad = tmp("stories_cut.bin");
    std::string bytes = n <= all.size() ? all.substr(0, n) : all + std::string(n - all.size(), '\0');
    put(bad, bytes);
    std::string e = error_of([&] { read_llama2c(bad); });
    EXPECT_NE(e.find(bad), std::string::npos) << e;
    EXPECT_NE(e.find("expected 1056540 bytes"), std::string::npos) << e;
    EXPECT_NE(e.find("got " + std::to_string(n)), std::string::npos) << e;
  }
  std::string tiny = tmp("stories_tiny.bin");
  put(tiny, all.substr(0, 10));
  EXPECT_NE(error_of([&] { read_llama2c(tiny); }).find("header"), std::string::npos);
}

void put_i32(std::string& s, int32_t v) { s.append(reinterpret_cast<const char*>(&v), 4); }
void put_f32(std::string& s, float v) { s.append(reinterpret_cast<const char*>(&v), 4); }

// A synthetic model whose float i holds the value i, so every view's first
// element tells where it starts.
std::string synthetic(bool v1, int version, bool shared, int64_t* n_floats) {
  int d = 8, f = 12, L = 2, H = 2, KV = 1, V = 16, S = 4;
  std::string s;
  if (v1) {
    put_i32(s, 0x616b3432);
    put_i32(s, version);
  }
  for (int v : {d, f, L, H, KV, (v1 || shared) ? V : -V, S}) put_i32(s, v);
  if (v1) {
    s.push_back(shared ? 1 : 0);
    s.resize(256, '\0');
  }
  int kv = d * KV / H;
  int64_t n = int64_t(V) * d + L * (2 * d + 2 * d * d + 2 * kv * d + 3 * d * f) + d + (shared ? 0 : V * d);
  if (!v1) n += S * (d / H);
  for (int64_t i = 0; i < n; ++i) put_f32(s, float(i));
  *n_floats = n;
  return s;
}

float first(const model::Checkpoint& ck, const std::string& n) { return at(ck.get(n), 0, 0); }

TEST(Llama2c, LegacyUntiedClassifierFollowsFreqCis) {
  int64_t n;
  std::string p = tmp("legacy_untied.bin");
  put(p, synthetic(false, 0, false, &n));
  model::Checkpoint ck = read_llama2c(p);
  EXPECT_FALSE(ck.config.tie_word_embeddings);
  EXPECT_EQ(ck.config.vocab_size, 16);
  EXPECT_NO_THROW(ck.validate());
  EXPECT_EQ(first(ck, "lm_head.weight"), float(n - 16 * 8));
  EXPECT_EQ(first(ck, "model.norm.weight"), float(n - 16 * 8 - 4 * 4 - 8));
}

TEST(Llama2c, V1NormsFirstThenWeights) {
  for (bool shared : {true, false}) {
    int64_t n;
    std::string p = tmp("v1.bin");
    put(p, synthetic(true, 1, shared, &n));
    model::Checkpoint ck = read_llama2c(p);
    EXPECT_EQ(ck.config.tie_word_embeddings, shared);
    EXPECT_NO_THROW(ck.validate());
    int d = 8, f = 12, kv = 4;
    EXPECT_EQ(first(ck, "model.layers.1.input_layernorm.weight"), float(d));
    EXPECT_EQ(first(ck, "model.layers.0.post_attention_layernorm.weight"), float(2 * d));
    EXPECT_EQ(first(ck, "model.norm.weight"), float(4 * d));
    EXPECT_EQ(first(ck, "model.embed_tokens.weight"), float(5 * d));
    int64_t q0 = 5 * d + 16 * d;
    EXPECT_EQ(first(ck, "model.layers.1.self_attn.q_proj.weight"), float(q0 + d * d));
    EXPECT_EQ(first(ck, "model.layers.0.self_attn.k_proj.weight"), float(q0 + 2 * d * d));
    EXPECT_EQ(first(ck, "model.layers.0.mlp.down_proj.weight"), float(q0 + 4 * d * d + 4 * kv * d + 2 * f * d));
    EXPECT_EQ(ck.has("lm_head.weight"), !shared);
    if (!shared) {
      EXPECT_EQ(first(ck, "lm_head.weight"), float(n - 16 * d));
    }
  }
}

TEST(Llama2c, V1Int8IsRejected) {
  int64_t n;
  std::string p = tmp("v2.bin");
  put(p, synthetic(true, 2, true, &n));
  std::string e = error_of([&] { read_llama2c(p); });
  EXPECT_NE(e.find("version"), std::string::npos) << e;
  EXPECT_NE(e.find("int8"), std::string::npos) << e;
}

TEST(Llama2c, BadHeaderFieldsAreNamed) {
  std::string p = tmp("bad_heads.bin");
  std::string s;
  for (int v : {64, 172, 5, 7, 4, 512, 512}) put_i32(s, v);
  put(p, s);
  EXPECT_NE(error_of([&] { read_llama2c(p); }).find("n_heads"), std::string::npos);
  s.clear();
  for (int v : {64, 172, 0, 8, 4, 512, 512}) put_i32(s, v);
  put(p, s);
  EXPECT_NE(error_of([&] { read_llama2c(p); }).find("n_layers"), std::string::npos);
}

TEST(Llama2c, TokenizerBinBesideIsFound) {
  int64_t n;
  std::string dir = tmp("l2c_tok");
  remove_all(dir);
  make_dirs(dir);
  put(join_path(dir, "model.bin"), synthetic(false, 0, true, &n));
  EXPECT_TRUE(read_llama2c(join_path(dir, "model.bin")).tokenizer_path.empty());
  put(join_path(dir, "tokenizer.bin"), "x");
  EXPECT_EQ(read_llama2c(join_path(dir, "model.bin")).tokenizer_path, join_path(dir, "tokenizer.bin"));
}

}  // namespace
}  // namespace solar::formats
