#include "quantize/quantize.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "core/error.h"
#include "core/fs.h"
#include "core/quantize.h"
#include "formats/gguf.h"
#include "formats/hf.h"
#include "testing/models.h"
#include "testing/testing.h"

namespace solar::quantize {
namespace {
using testing::error_of;

// 2 layers, hidden 256 (K-quant rows), ffn 512, GQA, head_dim 64, HF RoPE layout.
model::Checkpoint random_model(bool tied = false, float nan_at_ffn_up = 0) {
  model::Checkpoint ck;
  ck.source = "random";
  ck.config = testing::small_config(256, 512, 64, tied, 2);
  ck.config.torch_dtype = DType::F32;
  std::mt19937 rng(11);
  std::normal_distribution<float> nd(0.f, 0.02f);
  for (const auto& name : model::expected_tensor_names(ck.config)) {
    auto shape = model::expected_shape(ck.config, name);
    std::vector<float> v(size_t(shape.size() == 1 ? shape[0] : shape[0] * shape[1]));
    for (auto& x : v) x = shape.size() == 1 ? 1.f : nd(rng);
    if (nan_at_ffn_up != 0 && name == "model.layers.1.mlp.up_proj.weight") v[3 * 256 + 5] = nan_at_ffn_up;
    std::vector<uint8_t> bytes(v.size() * 4);
    std::memcpy(bytes.data(), v.data(), bytes.size());
    ck.tensors[name] = ck.adopt(name, DType::F32, shape, std::move(bytes));
  }
  return ck;
}

std::string file_bytes(const std::string& p) { return read_file(p); }

Options opts(Ftype f) {
  Options o;
  o.mix.ftype = f;
  o.threads = 2;
  return o;
}

TEST(QuantizeModel, Q4KMFromGgufHasTheMixAndSmallError) {
  testing::SinkGuard quiet;
  const std::string dir = testing::temp_dir("quantize_q4km"), in = join_path(dir, "in.gguf"), out = join_path(dir, "out.gguf");
  model::Checkpoint ck = random_model();
  formats::write_gguf(in, ck, DType::F32);
  Summary s = quantize_model(in, out, opts(Ftype::Q4_K_M));
  model::Checkpoint q = formats::read_gguf(out), f = formats::read_gguf(in);
  // 2 layers: use_more_bits picks layer 1 (the last eighth), not 0 (2/8 rounds to 0).
  EXPECT_EQ(q.get("model.layers.0.self_attn.v_proj.weight").dtype, DType::Q4_K);
  EXPECT_EQ(q.get("model.layers.1.self_attn.v_proj.weight").dtype, DType::Q6_K);
  EXPECT_EQ(q.get("model.layers.0.mlp.down_proj.weight").dtype, DType::Q4_K);
  EXPECT_EQ(q.get("model.layers.1.mlp.down_proj.weight").dtype, DType::Q6_K);
  EXPECT_EQ(q.get("model.layers.1.self_attn.q_proj.weight").dtype, DType::Q4_K);
  EXPECT_EQ(q.get("lm_head.weight").dtype, DType::Q6_K);
  EXPECT_EQ(q.get("model.embed_tokens.weight").dtype, DType::Q4_K);
  EXPECT_EQ(q.get("model.norm.weight").dtype, DType::F32);
  EXPECT_EQ(s.tensors.size(), f.tensors.size());
  EXPECT_EQ(s.tensors.front().name, "output.weight");  // llama.cpp's order
  EXPECT_LT(s.bpw_out(), 6.0);
  EXPECT_EQ(s.bpw_in(), 32.0);
  EXPECT_EQ(uint64_t(std::filesystem::file_size(out)) > s.bytes_out, true);
  // Every weight within its type's error of the original (interleaved q/k in both files).
  for (const auto& [name, t] : f.tensors) {
    const TensorView& g = q.get(name);
    double se = 0, ss = 0;
    for (int64_t i = 0; i < t.numel(); ++i) {
      const double a = load_f32(t.data, t.dtype, size_t(i)), b = load_f32(g.data, g.dtype, size_t(i));
      se += (a - b) * (a - b), ss += a * a;
    }
    EXPECT_LT(std::sqrt(se / ss), 0.1) << name;
  }
  // Metadata: the input's, plus what llama.cpp sets.
  std::vector<formats::GgufKv> md = formats::read_gguf_metadata(out);
  auto find = [&](const std::string& k) -> std::string {
    for (const auto& e : md)
      if (e.key == k) return e.encoded;
    return "";
  };
  EXPECT_EQ(find("general.file_type"), formats::gguf_kv_u32("general.file_type", 15).encoded);
  EXPECT_EQ(find("general.quantization_version"), formats::gguf_kv_u32("general.quantization_version", 2).encoded);
  EXPECT_NE(find("llama.block_count"), "");
}

// An HF folder (rotate-half q/k) gives the file its `solar convert` GGUF gives, byte for byte.
TEST(QuantizeModel, HfFolderEqualsItsConvertedGguf) {
  testing::SinkGuard quiet;
  const std::string dir = testing::temp_dir("quantize_hf"), hf = join_path(dir, "model");
  model::Checkpoint ck = random_model(true);
  ck.config.torch_dtype = DType::BF16;
  formats::HfWriteOptions w;
  w.dtype = DType::BF16;
  formats::write_hf(hf, ck, w);
  const std::string conv = join_path(dir, "model.gguf");
  formats::write_gguf(conv, formats::read_hf(hf), DType::BF16);
  for (Ftype f : {Ftype::Q8_0, Ftype::Q4_K_M}) {
    const std::string a = join_path(dir, "a.gguf"), b = join_path(dir, "b.gguf");
    quantize_model(hf, a, opts(f));
    quantize_model(conv, b, opts(f));
    EXPECT_EQ(file_bytes(a), file_bytes(b)) << ftype_name(f);
    EXPECT_EQ(formats::read_gguf(a).get("model.embed_tokens.weight").dtype, f == Ftype::Q8_0 ? DType::Q8_0 : DType::Q6_K);
  }
}

// Entries solar does not interpret carry over unchanged; the thread count changes no byte.
TEST(QuantizeModel, CarriesMetadataOverAndIsDeterministic) {
  testing::SinkGuard quiet;
  const std::string dir = testing::temp_dir("quantize_kv"), in = join_path(dir, "in.gguf");
  model::Checkpoint ck = random_model();
  std::vector<formats::GgufKv> kv = formats::gguf_metadata(ck, 0);
  kv.push_back(formats::gguf_kv_u32("custom.answer", 42));
  kv.push_back(formats::gguf_kv_u32("split.count", 1));
  kv.push_back(formats::gguf_kv_u32("general.alignment", 64));
  std::vector<formats::GgufTensorDecl> decls;
  for (const auto& n : model::expected_tensor_names(ck.config)) decls.push_back({formats::gguf_tensor_name(n), ck.get(n).shape, DType::F32});
  formats::GgufWriter w(in, kv, decls);
  for (const auto& n : model::expected_tensor_names(ck.config)) w.write(ck.get(n));
  w.finish();
  const std::string a = join_path(dir, "a.gguf"), b = join_path(dir, "b.gguf");
  Options o = opts(Ftype::Q6_K);
  quantize_model(in, a, o);
  o.threads = 1;
  quantize_model(in, b, o);
  EXPECT_EQ(file_bytes(a), file_bytes(b));
  bool custom = false, split = false, aligned = false;
  for (const auto& e : formats::read_gguf_metadata(a))
    aligned |= e.encoded == formats::gguf_kv_u32("general.alignment", 64).encoded, custom |= e.encoded == formats::gguf_kv_u32("custom.answer", 42).encoded, split |= e.key == "split.count";
  EXPECT_TRUE(custom);
  EXPECT_TRUE(aligned);
  EXPECT_FALSE(split);
  for (const auto& [name, t] : formats::read_gguf(a).tensors)  // data at 64-byte boundaries
    EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data) % 64, 0u) << name;
  EXPECT_EQ(formats::read_gguf(a).get("model.layers.0.mlp.up_proj.weight").dtype, DType::Q6_K);
}

TEST(QuantizeModel, NonFiniteWeightIsNamedAndNothingIsWritten) {
  testing::SinkGuard quiet;
  for (float bad : {std::numeric_limits<float>::quiet_NaN(), -std::numeric_limits<float>::infinity()}) {
    const std::string dir = testing::temp_dir("quantize_nan"), in = join_path(dir, "in.gguf"), out = join_path(dir, "out.gguf");
    formats::write_gguf(in, random_model(false, bad), DType::F32);
    const std::string e = error_of([&] { quantize_model(in, out, opts(Ftype::Q4_0)); });
    EXPECT_NE(e.find(in + ": tensor 'blk.1.ffn_up.weight': weight [3, 5] is " + (std::isnan(bad) ? "NaN" : "-Inf")),
              std::string::npos)
        << e;
    EXPECT_FALSE(path_exists(out));
    EXPECT_TRUE(testing::no_leftovers(dir));
  }
}

TEST(QuantizeModel, RequantizingNeedsTheFlag) {
  testing::SinkGuard quiet;
  const std::string dir = testing::temp_dir("quantize_requant"), in = join_path(dir, "in.gguf"),
                    q4 = join_path(dir, "q4.gguf"), out = join_path(dir, "out.gguf");
  formats::write_gguf(in, random_model(), DType::F32);
  quantize_model(in, q4, opts(Ftype::Q4_0));
  const std::string e = error_of([&] { quantize_model(q4, out, opts(Ftype::Q4_K_M)); });
  EXPECT_NE(e.find("is already quantized (Q4_0); quantizing it again to Q4_K"), std::string::npos) << e;
  EXPECT_NE(e.find("--allow-requantize"), std::string::npos);
  EXPECT_FALSE(path_exists(out));
  // The same type needs no flag: tensors already of their target type are copied.
  quantize_model(q4, out, opts(Ftype::Q4_0));
  Options o = opts(Ftype::Q4_K_M);
  o.allow_requantize = true;
  quantize_model(q4, out, o);
  EXPECT_EQ(formats::read_gguf(out).get("model.layers.0.mlp.gate_proj.weight").dtype, DType::Q4_K);
}

TEST(QuantizeModel, DryRunWritesNothingAndTellsTheSizes) {
  testing::SinkGuard quiet;
  const std::string dir = testing::temp_dir("quantize_dry"), in = join_path(dir, "in.gguf"), out = join_path(dir, "out.gguf");
  formats::write_gguf(in, random_model(), DType::F32);
  Options o = opts(Ftype::Q8_0);
  o.dry_run = true;
  Summary s = quantize_model(in, out, o);
  EXPECT_FALSE(path_exists(out));
  EXPECT_NEAR(s.bpw_out(), 8.5, 0.1);  // Q8_0: 34 bytes per 32 weights; the F32 norms add a little
  uint64_t progress_calls = 0;
  o.dry_run = false;
  o.progress = [&](uint64_t done, uint64_t total, const std::string&) {
    ++progress_calls;
    EXPECT_LE(done, total);
  };
  quantize_model(in, out, o);
  EXPECT_GT(progress_calls, 0u);
}

}  // namespace
}  // namespace solar::quantize
