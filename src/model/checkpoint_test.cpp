#include <gtest/gtest.h>

#include <chrono>
#include <cstring>

#include "core/json.h"
#include "model/checkpoint.h"
#include "testing/models.h"

using namespace solar;
using solar::testing::error_of;

// Every tensor the config implies, zero-filled F32.
static model::Checkpoint zeros(const model::ModelConfig& c) {
  model::Checkpoint ck;
  ck.source = "m";
  ck.config = c;
  for (const auto& n : model::expected_tensor_names(c)) {
    auto shape = model::expected_shape(c, n);
    ck.tensors[n] = ck.adopt(n, DType::F32, shape, std::vector<uint8_t>(tensor_bytes(DType::F32, shape)));
  }
  return ck;
}

TEST(CheckpointValidate, ClaimsAreCheckedAgainstTheTensorsPresent) {
  auto ck = zeros(solar::testing::small_config(16, 32, 64));
  EXPECT_EQ(error_of([&] { ck.validate(); }), "");
  // Issue 10: 2^31 layers beside a 2-layer model grew to 14 GB listing names.
  ck.config.num_hidden_layers = 2147483647;
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(error_of([&] { ck.validate(); }), "m: num_hidden_layers: expected at most 4096, got 2147483647");
  ck.config.num_hidden_layers = 4096;
  std::string e = error_of([&] { ck.validate(); });
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 1.0);
  EXPECT_EQ(e, "m: model.layers.2.input_layernorm.weight: missing tensor (the config's 4096 layers need 36867 "
               "tensors, the file holds 21)");
  // Fewer layers in the config than in the file: the extra one is named.
  ck.config.num_hidden_layers = 1;
  EXPECT_EQ(error_of([&] { ck.validate(); }),
            "m: model.layers.1.input_layernorm.weight: layer 1 is beyond num_hidden_layers (1) in the config");
}

TEST(CheckpointValidate, UnknownTensorsAreRefusedByName) {
  auto c = solar::testing::small_config(16, 32, 64);
  for (const char* name : {"model.layers.0.self_attn.q_proj.bias", "model.layers.01.mlp.up_proj.weight",
                           "model.layers.-1.mlp.up_proj.weight", "model.rotary.weight", "model.layers.0"}) {
    auto ck = zeros(c);
    ck.tensors[name] = ck.adopt(name, DType::F32, {16}, std::vector<uint8_t>(64));
    std::string e = error_of([&] { ck.validate(); });
    EXPECT_EQ(e.rfind(std::string("m: ") + name + ": unknown tensor (expected Llama names", 0), 0u) << e;
  }
}

TEST(CheckpointValidate, LmHeadBesideTiedEmbeddingsOnlyAsACopy) {
  auto c = solar::testing::small_config(16, 32, 64, /*tied=*/true);
  auto ck = zeros(c);
  const TensorView& emb = ck.get("model.embed_tokens.weight");
  std::vector<uint8_t> copy(static_cast<const uint8_t*>(emb.data), static_cast<const uint8_t*>(emb.data) + emb.nbytes);
  ck.tensors["lm_head.weight"] = ck.adopt("lm_head.weight", DType::F32, emb.shape, copy);
  EXPECT_EQ(error_of([&] { ck.validate(); }), "");
  copy[5] = 1;
  ck.tensors["lm_head.weight"] = ck.adopt("lm_head.weight", DType::F32, emb.shape, copy);
  EXPECT_EQ(error_of([&] { ck.validate(); }).rfind("m: lm_head.weight: differs from model.embed_tokens.weight but "
                                                   "tie_word_embeddings is true",
                                                   0),
            0u);
}

// Every command that reads a model's shape, against a tiny model whose
// config.json claims 2^31 layers, under a 4 GB address-space limit: each
// failed with "out of memory" (or grew to 17 GB) before.
TEST(CheckpointValidate, HugeLayerCountFailsFastInEveryCommand) {
  std::string dir = solar::testing::temp_dir("ck_huge");
  std::string m = join_path(dir, "m");
  // 4 GB of address space makes a run that sizes anything by the layer count
  // die; ASan reserves terabytes of shadow up front, so there the time bound
  // alone has to show it.
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SOLAR_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(SOLAR_ASAN)
  const std::string kMemLimit;
#else
  const std::string kMemLimit = "ulimit -v 4000000; ";
#endif
  solar::testing::write_random_model(m, solar::testing::tiny_config(2), 1);
  auto j = read_json_file(join_path(m, "config.json"));
  j["num_hidden_layers"] = 2147483647;
  write_file_atomic(join_path(m, "config.json"), j.dump());
  write_file_atomic(join_path(dir, "c.json"), j.dump());
  write_file_atomic(join_path(dir, "r.yaml"),
                    "slices:\n  - sources:\n      - model: " + m + "\n        layer_range: [0, 1]\nmerge_method: passthrough\n");
  write_file_atomic(join_path(dir, "l.yaml"), "models:\n  - model: " + m + "\n    parameters: {weight: 0.5}\n  - model: " + m +
                                                  "\n    parameters: {weight: 0.5}\nmerge_method: linear\n");
  const std::string o = " -o " + join_path(dir, "out");
  for (const std::string& cmd :
       {"inspect " + m, "generate -m " + m + " -p hi -n 1", "convert -m " + m + o, "upscale -m " + m + " --drop 1" + o,
        "upscale --recipe " + join_path(dir, "r.yaml") + " --dry-run", "merge --recipe " + join_path(dir, "l.yaml") + o,
        "init --config " + join_path(dir, "c.json") + o, "logits -m " + m + " -p hi"}) {
    std::string log;
    auto t0 = std::chrono::steady_clock::now();
    EXPECT_EQ(solar::testing::run_solar(cmd, &log, kMemLimit), 1) << cmd << "\n" << log;
    EXPECT_NE(log.find("num_hidden_layers: expected at most 4096, got 2147483647"), std::string::npos) << cmd << "\n" << log;
    EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 10.0) << cmd;
  }
  // init --layers is bounded by the same limit.
  std::string log;
  EXPECT_EQ(solar::testing::run_solar("init --preset tiny --layers 2147483647" + o, &log, kMemLimit), 2) << log;
  // train needs token shards: made with the shared llama2.c tokenizer.
  std::string tok = std::string(SOLAR_SHARED_DATA) + "/models/stories260K/tok512.bin";
  if (!path_exists(tok)) GTEST_SKIP() << "shared data absent: " << tok << " (train --config/--init-from not run)";
  std::string text;
  for (int i = 0; i < 40; ++i) text += "One day, a little girl named Lily found a needle in her room.\n\n";
  write_file_atomic(join_path(dir, "t.txt"), text);
  std::string data = join_path(dir, "tok");
  ASSERT_EQ(solar::testing::run_solar("tokenize -m " + tok + " -i " + join_path(dir, "t.txt") + " -o " + data, &log), 0) << log;
  for (const std::string& from : {"--config " + join_path(dir, "c.json"), "--init-from " + m}) {
    EXPECT_EQ(solar::testing::run_solar("train --steps 1 --data " + data + o + " " + from, &log, kMemLimit), 1) << log;
    EXPECT_NE(log.find("num_hidden_layers: expected at most 4096, got 2147483647"), std::string::npos) << from << "\n" << log;
  }
}

// One non-finite value in each float type and in a block scale of each GGML
// block type, at the start, middle and end of a multi-chunk tensor.
TEST(CheckpointValidate, NonFiniteWeightsAreFoundAndNamed) {
  struct Case {
    DType dt;
    size_t offset;  // of the poisoned 2- or 4-byte float inside a block
    uint32_t value;
  } cases[] = {{DType::F32, 0, 0x7fc00000},  {DType::F32, 0, 0xff800000}, {DType::F16, 0, 0x7e00},
               {DType::BF16, 0, 0x7f80},     {DType::Q8_0, 0, 0x7c00},    {DType::Q4_1, 2, 0xfc00},
               {DType::Q2_K, 82, 0x7c01},    {DType::Q3_K, 108, 0x7c00},  {DType::Q4_K, 2, 0x7c00},
               {DType::Q5_K, 0, 0x7e00},     {DType::Q6_K, 208, 0xfc00},  {DType::Q5_0, 0, 0x7c00}};
  for (const auto& c : cases) {
    const int64_t rows = 8192, cols = 512;  // > one 4 MiB work item for every type
    size_t row = row_bytes(c.dt, cols), bytes = size_t(rows) * row;
    for (size_t block_at : {size_t(0), bytes / 2 / dtype_block_bytes(c.dt) * dtype_block_bytes(c.dt),
                            bytes - dtype_block_bytes(c.dt)}) {
      model::Checkpoint ck;
      ck.source = "m";
      ck.tensors["a"] = ck.adopt("a", c.dt, {rows, cols}, std::vector<uint8_t>(bytes));  // zeros: finite
      ck.tensors["b"] = ck.adopt("b", DType::F32, {4}, std::vector<uint8_t>(16));
      EXPECT_EQ(error_of([&] { ck.check_finite(); }), "") << dtype_name(c.dt);
      auto* p = const_cast<uint8_t*>(static_cast<const uint8_t*>(ck.tensors["a"].data)) + block_at + c.offset;
      std::memcpy(p, &c.value, c.dt == DType::F32 ? 4 : 2);
      std::string e = error_of([&] { ck.check_finite(); });
      size_t elem = block_at / dtype_block_bytes(c.dt) * size_t(dtype_block_elems(c.dt));
      EXPECT_EQ(e.rfind("m: a: " + std::string(is_quantized(c.dt) ? "a block scale of elements " : "element ") +
                            std::to_string(elem),
                        0),
                0u)
          << dtype_name(c.dt) << " at " << block_at << ": " << e;
      EXPECT_NE(e.find("is NaN or Inf"), std::string::npos) << e;
    }
  }
}

TEST(CheckpointValidate, NanWeightsFailLoadingUnlessTheCheckIsOff) {
  std::string dir = solar::testing::temp_dir("ck_nan");
  std::string m = join_path(dir, "m");
  auto c = solar::testing::tiny_config(2);
  solar::testing::write_random_model(m, c, 1);  // BF16 tensors
  // Poison one BF16 value of layer 1's down_proj inside model.safetensors.
  std::string st = join_path(m, "model.safetensors");
  std::string bytes = read_file(st);
  uint64_t hlen;
  std::memcpy(&hlen, bytes.data(), 8);
  auto h = nlohmann::json::parse(bytes.substr(8, hlen));
  uint64_t at = 8 + hlen + h["model.layers.1.mlp.down_proj.weight"]["data_offsets"][0].get<uint64_t>() + 2 * 7;
  bytes[at] = char(0xc0);
  bytes[at + 1] = char(0x7f);  // bf16 NaN
  write_file_atomic(st, bytes);
  std::string log;
  EXPECT_EQ(solar::testing::run_solar("inspect " + m, &log), 1) << log;
  EXPECT_NE(log.find(m + ": model.layers.1.mlp.down_proj.weight: element 7 is NaN or Inf"), std::string::npos) << log;
  EXPECT_EQ(solar::testing::run_solar("--check-tensors off inspect " + m, &log), 0) << log;
  EXPECT_EQ(solar::testing::run_solar("inspect --check-tensors off " + m, &log), 0) << log;
  EXPECT_EQ(solar::testing::run_solar("inspect --check-tensors maybe " + m, &log), 2) << log;
}
