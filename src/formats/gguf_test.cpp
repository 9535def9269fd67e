#include "formats/gguf.h"
#include "formats/load.h"
#include "testing/gguf.h"
#include "testing/quant.h"
#include "testing/models.h"
#include "testing/testing.h"

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <random>

#include "core/error.h"
#include "core/fs.h"
#include "core/json.h"
#include "formats/hf.h"
#include "formats/llama2c.h"
#include "tokenizer/tokenizer.h"

namespace solar::formats {
namespace {
using solar::testing::error_of;


std::string tmp(const std::string& name) { return join_path(::testing::TempDir(), name); }

// Plain write: tests write hundreds of corrupt files, and fsync would dominate.
void put(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(bytes.data(), std::streamsize(bytes.size()));
}

// A small random model: GQA, untied or tied head, either RoPE layout.
model::Checkpoint tiny_model(bool interleaved, bool tied, int layers = 2) {
  model::Checkpoint ck;
  ck.source = "tiny";
  model::ModelConfig& c = ck.config;
  c = testing::small_config(32, 24, 32, false, layers, 64);  // head_dim 8 > 4: at 4 the two permutation directions coincide
  c.rms_norm_eps = 1e-6f;
  c.rope_theta = 500000.0;
  c.tie_word_embeddings = tied;
  c.rope_interleaved = interleaved;
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.f, 1.f);
  for (const auto& name : model::expected_tensor_names(c)) {
    auto shape = model::expected_shape(c, name);
    int64_t n = 1;
    for (auto d : shape) n *= d;
    std::vector<uint8_t> bytes(n * 4);
    for (int64_t i = 0; i < n; ++i) {
      float v = nd(rng);
      std::memcpy(&bytes[i * 4], &v, 4);
    }
    ck.tensors[name] = ck.adopt(name, DType::F32, shape, std::move(bytes));
  }
  return ck;
}

// Reference for llama.cpp's permute(): interleaved row 2i+j of a head is
// HF row j*head_dim/2 + i.
std::vector<float> to_interleaved(const TensorView& t, int heads, int hd) {
  const float* src = static_cast<const float*>(t.data);
  int64_t cols = t.cols();
  std::vector<float> out(t.numel());
  for (int h = 0; h < heads; ++h)
    for (int i = 0; i < hd / 2; ++i)
      for (int j = 0; j < 2; ++j)
        std::memcpy(&out[(h * hd + 2 * i + j) * cols], &src[(h * hd + j * hd / 2 + i) * cols], cols * 4);
  return out;
}

bool same_bytes(const TensorView& a, const TensorView& b) {
  return a.nbytes == b.nbytes && std::memcmp(a.data, b.data, a.nbytes) == 0;
}

void expect_same_config(const model::ModelConfig& a, const model::ModelConfig& b) {
  EXPECT_EQ(a.hidden_size, b.hidden_size);
  EXPECT_EQ(a.intermediate_size, b.intermediate_size);
  EXPECT_EQ(a.num_hidden_layers, b.num_hidden_layers);
  EXPECT_EQ(a.num_attention_heads, b.num_attention_heads);
  EXPECT_EQ(a.num_key_value_heads, b.num_key_value_heads);
  EXPECT_EQ(a.head_dim, b.head_dim);
  EXPECT_EQ(a.vocab_size, b.vocab_size);
  EXPECT_EQ(a.max_position_embeddings, b.max_position_embeddings);
  EXPECT_EQ(a.rms_norm_eps, b.rms_norm_eps);
  EXPECT_EQ(a.rope_theta, b.rope_theta);
  EXPECT_EQ(a.tie_word_embeddings, b.tie_word_embeddings);
  EXPECT_EQ(a.bos_token_id, b.bos_token_id);
  EXPECT_EQ(a.eos_token_id, b.eos_token_id);
}

TEST(Gguf, F32RoundTripIsExact) {
  for (bool tied : {false, true}) {
    model::Checkpoint ck = tiny_model(true, tied);
    std::string p = tmp("tiny_f32.gguf");
    write_gguf(p, ck, DType::F32);
    model::Checkpoint back = read_gguf(p);
    EXPECT_NO_THROW(back.validate());
    expect_same_config(ck.config, back.config);
    EXPECT_TRUE(back.config.rope_interleaved);
    EXPECT_EQ(back.tensors.size(), ck.tensors.size());
    for (auto& [name, t] : ck.tensors) {
      ASSERT_TRUE(back.has(name)) << name;
      EXPECT_EQ(back.get(name).shape, t.shape) << name;
      EXPECT_TRUE(same_bytes(back.get(name), t)) << name;
      // 32-byte aligned data, as mmap users expect.
      EXPECT_EQ(reinterpret_cast<uintptr_t>(back.get(name).data) % 32, 0u) << name;
    }
  }
}

TEST(Gguf, HalfPrecisionWithinRoundingNormsStayF32) {
  model::Checkpoint ck = tiny_model(true, false);
  for (DType dt : {DType::F16, DType::BF16}) {
    std::string p = tmp("tiny_half.gguf");
    write_gguf(p, ck, dt);
    model::Checkpoint back = read_gguf(p);
    EXPECT_EQ(back.config.torch_dtype, dt);
    for (auto& [name, t] : ck.tensors) {
      const TensorView& b = back.get(name);
      ASSERT_EQ(b.dtype, t.shape.size() == 1 ? DType::F32 : dt) << name;
      for (int64_t i = 0; i < t.numel(); ++i) {
        float x = static_cast<const float*>(t.data)[i];
        float want = dt == DType::F16 ? f16_to_f32(f32_to_f16(x)) : bf16_to_f32(f32_to_bf16(x));
        if (b.dtype == DType::F32) want = x;
        ASSERT_EQ(load_f32(b.data, b.dtype, i), want) << name << "[" << i << "]";
      }
    }
  }
}

TEST(Gguf, HfLayoutQkRowsArePermutedForLlamaCpp) {
  model::Checkpoint ck = tiny_model(false, false);
  std::string p = tmp("tiny_hf.gguf");
  write_gguf(p, ck, DType::F32);
  model::Checkpoint back = read_gguf(p);
  const model::ModelConfig& c = ck.config;
  for (int l = 0; l < c.num_hidden_layers; ++l) {
    for (const char* s : {"self_attn.q_proj.weight", "self_attn.k_proj.weight"}) {
      std::string n = model::layer_tensor(l, s);
      int heads = s[10] == 'q' ? c.num_attention_heads : c.num_key_value_heads;
      auto want = to_interleaved(ck.get(n), heads, c.head_dim);
      ASSERT_EQ(back.get(n).nbytes, want.size() * 4);
      EXPECT_EQ(std::memcmp(back.get(n).data, want.data(), want.size() * 4), 0) << n;
      EXPECT_FALSE(same_bytes(back.get(n), ck.get(n))) << n;
    }
    EXPECT_TRUE(same_bytes(back.get(model::layer_tensor(l, "self_attn.v_proj.weight")),
                           ck.get(model::layer_tensor(l, "self_attn.v_proj.weight"))));
  }
}

TEST(Gguf, HfLayoutRoundTripsBackToSameHfTensors) {
  model::Checkpoint ck = tiny_model(false, false);
  std::string p = tmp("tiny_rt.gguf"), dir = tmp("tiny_rt_hf");
  write_gguf(p, ck, DType::F32);
  model::Checkpoint g = read_gguf(p);
  HfWriteOptions opt;
  opt.force = true;
  write_hf(dir, g, opt);
  model::Checkpoint hf = read_hf(dir);
  EXPECT_FALSE(hf.config.rope_interleaved);
  expect_same_config(ck.config, hf.config);
  for (auto& [name, t] : ck.tensors) EXPECT_TRUE(same_bytes(hf.get(name), t)) << name;
}

TEST(Gguf, Stories260KRoundTripWithTokenizer) {
  std::string dir = std::string(SOLAR_SHARED_DATA) + "/models/stories260K";
  if (!path_exists(dir)) GTEST_SKIP() << "shared data absent: " << SOLAR_SHARED_DATA;
  model::Checkpoint ck = read_llama2c(dir + "/stories260K.bin");
  ck.tokenizer_path = dir + "/tok512.bin";
  std::string p = tmp("stories.gguf");
  write_gguf(p, ck, DType::F32);
  model::Checkpoint back = load_checkpoint(p);
  expect_same_config(ck.config, back.config);
  EXPECT_EQ(back.tokenizer_path, p);
  for (auto& [name, t] : ck.tensors) EXPECT_TRUE(same_bytes(back.get(name), t)) << name;
  tokenizer::Vocab want = open_tokenizer(ck.tokenizer_path, 512)->vocab(), got = read_gguf_vocab(p);
  EXPECT_EQ(got.pieces, want.pieces);
  EXPECT_EQ(got.scores, want.scores);
  EXPECT_EQ(got.types, want.types);
  EXPECT_EQ(got.bos, 1);
  EXPECT_EQ(got.eos, 2);
  EXPECT_EQ(got.pieces.size(), 512u);
  // The GGUF's own tokenizer encodes like the original.
  auto a = open_tokenizer(ck.tokenizer_path, 512), b = open_tokenizer(p);
  EXPECT_EQ(a->encode("Once upon a time, Lily saw a ball.", true), b->encode("Once upon a time, Lily saw a ball.", true));
  // tokenizer.ggml.add_bos_token reads back where HF keeps it (true by default; false kept).
  EXPECT_EQ(back.tokenizer_config.value("add_bos_token", false), true);
  ck.tokenizer_config["add_bos_token"] = false;
  write_gguf(p, ck, DType::F32);
  EXPECT_EQ(load_checkpoint(p).tokenizer_config.value("add_bos_token", true), false);
}

// A hand-built GGUF with one F32 tensor token_embd.weight [2, 4] (ne {4, 2})
// and a partial config, for corrupting one field at a time.
struct Handmade {
  uint32_t version = 3;
  uint64_t n_tensors = 1, n_kv = 5, str_len = 5, offset = 0;
  uint32_t type = 0;
  uint64_t ne0 = 4;
  std::string data;  // the tensor's bytes; empty: 8 f32s 0..7
  std::string bytes() const {
    std::string s = "GGUF";
    auto raw = [&](auto v) { s.append(reinterpret_cast<const char*>(&v), sizeof v); };
    auto key = [&](const std::string& k, uint32_t type) {
      raw(uint64_t(k.size()));
      s += k;
      raw(type);
    };
    raw(version);
    raw(n_tensors);
    raw(n_kv);
    key("general.architecture", 8);
    raw(str_len);
    s += "llama";
    for (auto [k, v] : {std::pair<const char*, uint32_t>{"llama.block_count", 0},
                        {"llama.embedding_length", 4},
                        {"llama.feed_forward_length", 8},
                        {"llama.attention.head_count", 2}}) {
      key(k, 4);
      raw(v);
    }
    raw(uint64_t(17));
    s += "token_embd.weight";
    raw(uint32_t(2));
    raw(ne0);
    raw(uint64_t(2));
    raw(type);
    raw(offset);
    s.resize((s.size() + 31) / 32 * 32, '\0');
    if (!data.empty()) return s + data;
    for (int i = 0; i < 8; ++i) raw(float(i));
    return s;
  }
};

std::string read_error(const std::string& bytes) {
  std::string p = tmp("bad.gguf");
  put(p, bytes);
  std::string e = error_of([&] { read_gguf(p); });
  EXPECT_NE(e.find(p), std::string::npos) << "error does not name the file: " << e;
  return e;
}

TEST(Gguf, HandmadeFileReadsItsTensor) {
  std::string p = tmp("ok.gguf");
  put(p, Handmade{}.bytes());
  model::Checkpoint ck = read_gguf(p);
  EXPECT_EQ(ck.config.hidden_size, 4);
  EXPECT_EQ(ck.config.head_dim, 2);
  EXPECT_EQ(ck.config.vocab_size, 2);  // from token_embd: no tokenizer or llama.vocab_size
  ASSERT_TRUE(ck.has("model.embed_tokens.weight"));
  const TensorView& t = ck.get("model.embed_tokens.weight");
  EXPECT_EQ(t.shape, (std::vector<int64_t>{2, 4}));
  EXPECT_EQ(static_cast<const float*>(t.data)[5], 5.f);
  EXPECT_TRUE(ck.config.tie_word_embeddings);
  EXPECT_NE(error_of([&] { load_checkpoint(p); }).find("num_hidden_layers"), std::string::npos);
}

TEST(Gguf, MalformedFilesNameTheField) {
  Handmade ok;
  std::string good = ok.bytes();
  EXPECT_NE(read_error(good.substr(0, good.size() - 1)).find("offset"), std::string::npos);
  int truncated = 0;
  for (size_t n = 0; n < good.size(); ++n) truncated += read_error(good.substr(0, n)).find("(truncated?)") != std::string::npos;
  EXPECT_GT(truncated, 50);
  EXPECT_NE(read_error(good.substr(0, 3)).find("magic"), std::string::npos);
  EXPECT_NE(read_error("GGML" + good.substr(4)).find("magic"), std::string::npos);
  Handmade h = ok;
  h.version = 2;
  EXPECT_NE(read_error(h.bytes()).find("version: expected 3, got 2"), std::string::npos);
  h = ok;
  h.n_tensors = uint64_t(1) << 60;
  EXPECT_NE(read_error(h.bytes()).find("tensor_count"), std::string::npos);
  h = ok;
  h.n_kv = ~uint64_t(0);
  EXPECT_NE(read_error(h.bytes()).find("kv_count"), std::string::npos);
  h = ok;
  h.str_len = uint64_t(1) << 62;
  EXPECT_NE(read_error(h.bytes()).find("general.architecture: string length"), std::string::npos);
  h = ok;
  h.offset = 64;
  EXPECT_NE(read_error(h.bytes()).find("token_embd.weight' offset"), std::string::npos);
  h.offset = 4;
  EXPECT_NE(read_error(h.bytes()).find("multiple of alignment"), std::string::npos);
  h = ok;
  h.type = 2;  // Q4_0: rows of 4 are not whole 32-element blocks
  EXPECT_NE(read_error(h.bytes()).find("token_embd.weight' dims: expected ne[0] a multiple of Q4_0's 32-element block, got 4"),
            std::string::npos);
  for (uint32_t id : {16u, 9u, 99u}) {  // IQ2_XXS, Q8_1 (never stored), unknown
    h.type = id;
    EXPECT_NE(read_error(h.bytes()).find("tensor 'token_embd.weight' type: unsupported ggml type id " + std::to_string(id)),
              std::string::npos);
  }
}

// Two Q8_0 rows of 32 (two 34-byte blocks): scale 0.5 then −2, quants j − 16.
TEST(Gguf, QuantizedTensorReadsInPlaceAndDequantizes) {
  Handmade h;
  h.type = 8;
  h.ne0 = 32;
  for (float d : {0.5f, -2.0f}) {
    uint16_t f = f32_to_f16(d);
    h.data += char(f & 0xff);
    h.data += char(f >> 8);
    for (int j = 0; j < 32; ++j) h.data += char(int8_t(j - 16));
  }
  std::string p = tmp("q8.gguf");
  put(p, h.bytes());
  model::Checkpoint ck = read_gguf(p);
  const TensorView& t = ck.get("model.embed_tokens.weight");
  EXPECT_EQ(t.dtype, DType::Q8_0);
  EXPECT_EQ(t.shape, (std::vector<int64_t>{2, 32}));
  EXPECT_EQ(t.nbytes, 68u);
  EXPECT_EQ(t.row_nbytes(), 34u);
  EXPECT_EQ(ck.config.torch_dtype, DType::F32);  // what writers dequantize to by default
  std::vector<float> row(32);
  dequantize_row(t.row(1), t.dtype, row.data(), 32);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(row[j], -2.0f * float(j - 16)) << j;
  // One byte short: the size comes from blocks, not elements.
  put(p, h.bytes().substr(0, h.bytes().size() - 1));
  EXPECT_NE(error_of([&] { read_gguf(p); }).find("expected offset + 68 bytes"), std::string::npos);
}

TEST(Gguf, QuantizedViewsRowsAndBytes) {
  std::vector<uint8_t> buf(3 * 2 * 34);
  TensorView v{"w", DType::Q8_0, {3, 64}, buf.data(), buf.size()};
  EXPECT_EQ(v.row_nbytes(), 68u);
  EXPECT_EQ(v.row(2), buf.data() + 136);
  EXPECT_EQ(tensor_bytes(v), buf.size());
  EXPECT_EQ(tensor_bytes(DType::Q4_K, {2, 512}), 2u * 2 * 144);
  EXPECT_EQ(tensor_bytes(DType::BF16, {3, 5}), 30u);
  EXPECT_EQ(tensor_bytes(DType::F32, {}), 4u);
  EXPECT_NE(error_of([] { tensor_bytes(DType::Q8_0, {3, 48}); }).find("innermost dimension 48 is not a multiple of the 32-element block"),
            std::string::npos);
}

TEST(Gguf, ValidateAcceptsQuantizedMatricesOnly) {
  model::Checkpoint q = testing::quantize_checkpoint(tiny_model(true, false), DType::Q8_0);
  ASSERT_NO_THROW(q.validate());
  EXPECT_EQ(q.get("lm_head.weight").dtype, DType::Q8_0);
  EXPECT_EQ(q.get("model.layers.1.mlp.down_proj.weight").dtype, DType::F32);  // rows of 24 stay float
  auto error_with = [&](const std::string& name, DType dt, size_t nbytes) {
    model::Checkpoint c = testing::quantize_checkpoint(tiny_model(true, false), DType::Q8_0);
    c.tensors[name].dtype = dt;
    c.tensors[name].nbytes = nbytes;
    return error_of([&] { c.validate(); });
  };
  std::string e = error_with("model.norm.weight", DType::Q8_0, 34);
  EXPECT_NE(e.find("tiny (Q8_0): model.norm.weight: expected a norm weight in F32, F16 or BF16, got Q8_0"), std::string::npos) << e;
  e = error_with("model.layers.1.mlp.down_proj.weight", DType::Q4_0, 0);
  EXPECT_NE(e.find("model.layers.1.mlp.down_proj.weight: expected a row length that is a multiple of Q4_0's 32-element block, got rows of 24"),
            std::string::npos) << e;
  e = error_with("model.layers.0.self_attn.q_proj.weight", DType::Q8_0, 32 * 34 - 1);
  EXPECT_NE(e.find("q_proj.weight: byte size 1087 does not match shape [32, 32] x Q8_0 (1088 bytes)"), std::string::npos) << e;
  e = error_with("model.embed_tokens.weight", DType::I8, 32 * 32);
  EXPECT_NE(e.find("expected F32, F16, BF16 or a GGML block type"), std::string::npos) << e;
}

// Writing a quantized checkpoint to a float GGUF or HF folder writes what
// its dequantized F32 twin writes.
TEST(Gguf, QuantizedCheckpointWritesDequantized) {
  model::Checkpoint q = testing::quantize_checkpoint(tiny_model(true, false), DType::Q4_0);
  model::Checkpoint f = testing::dequantize_checkpoint(q);
  HfWriteOptions opt;
  opt.force = true;
  std::vector<model::Checkpoint> out;
  for (const model::Checkpoint* c : {&q, &f}) {
    std::string p = tmp(c == &q ? "from_q4.gguf" : "from_f32.gguf"), dir = tmp(c == &q ? "from_q4_hf" : "from_f32_hf");
    write_gguf(p, *c, DType::F32);
    out.push_back(read_gguf(p));
    write_hf(dir, *c, opt);
    out.push_back(load_checkpoint(dir));
  }
  for (const auto& name : model::expected_tensor_names(q.config))
    for (int k = 0; k < 2; ++k) {
      EXPECT_EQ(out[k].get(name).dtype, DType::F32) << name;
      EXPECT_TRUE(same_bytes(out[k].get(name), out[k + 2].get(name))) << name << (k ? " (HF)" : " (GGUF)");
    }
  EXPECT_NE(error_of([&] { write_gguf(tmp("q4.gguf"), q, DType::Q4_0); }).find("expected F32, F16 or BF16, got Q4_0"),
            std::string::npos);
}

TEST(Gguf, RandomCorruptionNeverCrashes) {
  model::Checkpoint ck = tiny_model(false, true);
  std::string p = tmp("fuzz_src.gguf");
  write_gguf(p, ck, DType::F16);
  std::string good = read_file(p);
  std::mt19937 rng(1);
  int errors = 0;
  for (int it = 0; it < 300; ++it) {
    std::string s = good;
    if (it % 3 == 0) s.resize(rng() % s.size());
    // Flip bytes in the header and metadata, where the structure is.
    for (int k = 0; k < 4 && !s.empty(); ++k) s[rng() % std::min<size_t>(s.size(), 700)] ^= char(1 + rng() % 255);
    std::string q = tmp("fuzz.gguf");
    put(q, s);
    try {
      load_checkpoint(q);
    } catch (const Error&) {
      ++errors;
    }
  }
  EXPECT_GT(errors, 100);
}

TEST(Gguf, VocabMetadataIsValidated) {
  model::Checkpoint ck = tiny_model(true, true);
  std::string p = tmp("novocab.gguf");
  write_gguf(p, ck, DType::F32);
  EXPECT_NE(error_of([&] { read_gguf_vocab(p); }).find("tokenizer.ggml.model"), std::string::npos);
  EXPECT_EQ(read_gguf(p).config.vocab_size, 32);  // from llama.vocab_size
  EXPECT_TRUE(read_gguf(p).tokenizer_path.empty());
}

// The tensor-info record of `name` in a written GGUF: the byte offset of its
// data-offset field.
size_t offset_field(const std::string& bytes, const std::string& name) {
  size_t at = bytes.find(name);
  EXPECT_NE(at, std::string::npos) << name;
  at += name.size();
  uint32_t nd;
  std::memcpy(&nd, bytes.data() + at, 4);
  return at + 4 + 8 * nd + 4;
}

TEST(Gguf, TensorsSharingBytesAreRefused) {
  std::string p = tmp("overlap.gguf");
  write_gguf(p, tiny_model(true, false), DType::F32);
  std::string bytes = read_file(p);
  // output_norm.weight pointed into token_embd.weight's bytes, then at the very same offset.
  size_t emb = offset_field(bytes, "token_embd.weight"), norm = offset_field(bytes, "output_norm.weight");
  uint64_t emb_off;
  std::memcpy(&emb_off, bytes.data() + emb, 8);
  for (uint64_t off : {emb_off + 32, emb_off}) {
    std::memcpy(bytes.data() + norm, &off, 8);
    std::string e = read_error(bytes);
    EXPECT_NE(e.find(off == emb_off ? "offset: overlaps tensor '" : "tensor 'output_norm.weight' offset: overlaps tensor 'token_embd.weight'"),
              std::string::npos) << e;
  }
  // Two names for one HF tensor ("blk.01" and "blk.1") are refused, not one silently dropped.
  write_gguf(p, tiny_model(true, false, 11), DType::F32);
  bytes = read_file(p);
  size_t at = bytes.find("blk.10.attn_q.weight");
  ASSERT_NE(at, std::string::npos);
  bytes.replace(at, 6, "blk.01");
  std::string e = read_error(bytes);
  EXPECT_NE(e.find("another tensor also maps to model.layers.1.self_attn.q_proj.weight"), std::string::npos) << e;
}

TEST(Gguf, WrongMagicIsNotReadAsLlama2c) {
  // Issue 10: a GGUF with a damaged magic, not named .gguf, was parsed as a
  // llama2.c header ("n_heads: expected a positive integer, got 0").
  std::string good = Handmade{}.bytes();
  for (const std::string name : {"model.bin", "model"}) {
    std::string p = tmp(name);
    put(p, "GGUX" + good.substr(4));
    std::string e = error_of([&] { load_checkpoint(p); });
    EXPECT_NE(e.find(p + ": not a model file"), std::string::npos) << e;
    EXPECT_NE(e.find("magic \"GGUX\""), std::string::npos) << e;
    EXPECT_EQ(e.find("n_heads"), std::string::npos) << e;
  }
}

// A one-layer llama GGUF (hidden 256, GQA) whose matrices are of nine GGML
// types, with a 16-piece tokenizer of model `tok_model` and a chat template
// in its metadata. Tensor bytes are random with every byte & 0x3B, which
// keeps every float and block scale finite; `edit` changes a tensor's type
// or ne first (for malformed files).
struct MixedTensor {
  std::string name;
  uint32_t type;
  std::vector<uint64_t> ne;
};
std::vector<MixedTensor> mixed_tensors() {
  return {{"token_embd.weight", 8, {256, 16}},         {"output_norm.weight", 0, {256}},
          {"output.weight", 14, {256, 16}},            {"blk.0.attn_norm.weight", 0, {256}},
          {"blk.0.attn_q.weight", 12, {256, 256}},     {"blk.0.attn_k.weight", 13, {256, 128}},
          {"blk.0.attn_v.weight", 11, {256, 128}},     {"blk.0.attn_output.weight", 10, {256, 256}},
          {"blk.0.ffn_norm.weight", 0, {256}},         {"blk.0.ffn_gate.weight", 2, {256, 256}},
          {"blk.0.ffn_up.weight", 7, {256, 256}},      {"blk.0.ffn_down.weight", 30, {256, 256}}};
}
const std::string kChatTemplate = "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}{{ 'assistant:' }} plus padding to be cut";

std::string mixed_gguf(const std::vector<MixedTensor>& ts = mixed_tensors(), const std::string& tok_model = "llama") {
  const std::string sp = "\xE2\x96\x81";  // "▁"
  std::vector<std::string> pieces = {"<unk>", "<s>", "</s>", sp, "a", "b", "c", sp + "a", sp + "b", "ab", "bc", "abc",
                                     sp + "ab", "ca", "cb", "<pad>"};
  std::vector<float> scores;
  std::vector<int32_t> types;
  for (size_t i = 0; i < pieces.size(); ++i) {
    scores.push_back(-float(i));
    types.push_back(i == 0 ? 2 : i < 3 || i == 15 ? 3 : 1);
  }
  testing::GgufBuilder b;
  b.string("general.architecture", "llama").string("general.name", "mixed");
  b.u32("llama.context_length", 64).u32("llama.embedding_length", 256).u32("llama.block_count", 1);
  b.u32("llama.feed_forward_length", 256).u32("llama.attention.head_count", 4).u32("llama.attention.head_count_kv", 2);
  b.string("tokenizer.ggml.model", tok_model).strings("tokenizer.ggml.tokens", pieces);
  b.numbers("tokenizer.ggml.scores", scores).numbers("tokenizer.ggml.token_type", types);
  b.u32("tokenizer.ggml.bos_token_id", 1).u32("tokenizer.ggml.eos_token_id", 2).u32("tokenizer.ggml.padding_token_id", 15);
  b.boolean("tokenizer.ggml.add_bos_token", true).boolean("tokenizer.ggml.add_eos_token", true);
  b.string("tokenizer.chat_template", kChatTemplate);
  b.string("general.description", "not UTF-8: \xFF\xFE");  // metadata is bytes; inspect must still print it
  std::mt19937 rng(3);
  for (const MixedTensor& t : ts) {
    auto dt = dtype_from_ggml(t.type);
    uint64_t rows = 1;
    for (size_t d = 1; d < t.ne.size(); ++d) rows *= t.ne[d];
    size_t row = dt && t.ne[0] % dtype_block_elems(*dt) == 0 ? row_bytes(*dt, int64_t(t.ne[0])) : t.ne[0] * 4;
    std::string data(size_t(rows) * row, '\0');
    for (char& c : data) c = char(rng() & 0x3B);
    b.tensor(t.name, t.type, t.ne, data);
  }
  return b.bytes();
}

TEST(GgufInfo, QuantizedFileInItsOwnTerms) {
  std::string p = tmp("mixed.gguf");
  put(p, mixed_gguf());
  GgufInfo g = read_gguf_info(p);
  EXPECT_EQ(g.version, 3u);
  EXPECT_EQ(g.alignment, 32u);
  ASSERT_EQ(g.kv.size(), 19u);
  EXPECT_EQ(g.kv[0].key, "general.architecture");  // file order
  EXPECT_EQ(g.kv[0].type, "string");
  EXPECT_EQ(g.kv[0].value, "llama");
  EXPECT_EQ(g.kv[2].type, "u32");
  EXPECT_EQ(g.kv[2].value, 64);
  const GgufEntry& tokens = g.kv[9];
  EXPECT_EQ(tokens.key, "tokenizer.ggml.tokens");
  EXPECT_EQ(tokens.type, "array[string]");
  EXPECT_EQ(tokens.length, 16u);
  ASSERT_EQ(tokens.value.size(), 8u);  // the first values only
  EXPECT_EQ(tokens.value[1], "<s>");
  EXPECT_EQ(g.kv[10].type, "array[f32]");
  EXPECT_EQ(g.kv[10].value[2], -2.0);
  EXPECT_EQ(g.kv[11].type, "array[i32]");
  EXPECT_EQ(g.kv[11].value[0], 2);
  EXPECT_EQ(g.kv[15].type, "bool");
  EXPECT_EQ(g.kv[15].value, true);
  ASSERT_EQ(g.tensors.size(), mixed_tensors().size());
  std::vector<std::string> types;
  for (const auto& t : g.tensors) types.push_back(dtype_name(t.dtype));
  EXPECT_EQ(types, (std::vector<std::string>{"Q8_0", "F32", "Q6_K", "F32", "Q4_K", "Q5_K", "Q3_K", "Q2_K", "F32", "Q4_0",
                                             "Q5_1", "BF16"}));
  EXPECT_EQ(g.tensors[5].ne, (std::vector<uint64_t>{256, 128}));
  EXPECT_EQ(g.tensors[5].numel(), 256u * 128);
  EXPECT_EQ(g.tensors[5].nbytes, 128u * 176);  // one 176-byte Q5_K block per row
  EXPECT_EQ(g.tensors[2].nbytes, 16u * 210);   // Q6_K
  // The same file loads as a model, every check on.
  model::Checkpoint ck = load_checkpoint(p);
  EXPECT_EQ(ck.get("model.layers.0.self_attn.k_proj.weight").dtype, DType::Q5_K);
  EXPECT_EQ(ck.get("model.layers.0.self_attn.k_proj.weight").shape, (std::vector<int64_t>{128, 256}));
}

TEST(GgufInspect, CliShowsMetadataTypesAndBitsPerWeight) {
  std::string p = tmp("inspect_mixed.gguf"), out;
  put(p, mixed_gguf());
  ASSERT_EQ(testing::run_solar("inspect " + p, &out), 0) << out;
  for (const std::string& want : std::vector<std::string>{"format:        gguf\ngguf:          version 3, alignment 32", "metadata (19):", "  general.description              string         \"not UTF-8: \xEF\xBF\xBD\xEF\xBF\xBD\"",
        "  general.architecture             string         \"llama\"",
        "  tokenizer.ggml.tokens            array[string]  16 × [\"<unk>\", \"<s>\", \"</s>\", \"▁\", \"a\", \"b\", \"c\", \"▁a\", …]",
        "  tokenizer.ggml.scores            array[f32]     16 × [-0.0, -1.0,", "  tokenizer.ggml.add_bos_token     bool           true",
        "\"{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\\n{% endfor %}{\"… (112 bytes)",
        "gguf tensors (12, ne innermost first):", "  blk.0.attn_k.weight       Q5_K   [256, 128]        22,528\n",
        "  Q6_K         1            4,096            3,360  6.56\n", "  Q4_K         1           65,536           36,864  4.50\n",
        "  F32          3              768            3,072  32.00\n", "architecture:  LlamaForCausalLM (llama)",
        "tokenizer:     " + p})
    EXPECT_NE(out.find(want), std::string::npos) << want << "\n" << out;
  EXPECT_EQ(out.find("model.layers.0.self_attn.k_proj.weight"), std::string::npos) << "one tensor table, the file's";

  ASSERT_EQ(testing::run_solar("inspect --json " + p + " 2>/dev/null", &out), 0) << out;
  auto j = nlohmann::json::parse(out);
  EXPECT_EQ(j["format"], "gguf");
  EXPECT_EQ(j["tensors"].size(), 12u);  // the HF view, as for every format
  const auto& g = j["gguf"];
  EXPECT_EQ(g["version"], 3);
  EXPECT_EQ(g["metadata"][9]["key"], "tokenizer.ggml.tokens");
  EXPECT_EQ(g["metadata"][9]["length"], 16);
  EXPECT_EQ(g["metadata"][9]["first"].size(), 8u);
  EXPECT_EQ(g["metadata"][17]["value"], kChatTemplate);  // whole, in JSON
  EXPECT_EQ(g["metadata"][18]["value"], "not UTF-8: \xEF\xBF\xBD\xEF\xBF\xBD");  // U+FFFD for each bad byte
  EXPECT_EQ(g["tensors"][6]["type"], "Q3_K");
  EXPECT_EQ(g["tensors"][6]["ne"], nlohmann::json({256, 128}));
  EXPECT_EQ(g["types"]["Q4_K"]["bits_per_weight"], 4.5);
  EXPECT_EQ(g["types"]["F32"]["tensors"], 3);
  uint64_t bytes = 0, numel = 0;
  for (const auto& t : read_gguf_info(p).tensors) bytes += t.nbytes, numel += t.numel();
  EXPECT_DOUBLE_EQ(g["bits_per_weight"].get<double>(), 8.0 * double(bytes) / double(numel));
}

// The reader's errors, through inspect: each names the tensor.
TEST(GgufInspect, BadTensorsAreNamed) {
  auto inspect = [](const std::string& bytes) {
    std::string p = tmp("inspect_bad.gguf"), out;
    put(p, bytes);
    EXPECT_EQ(testing::run_solar("inspect " + p, &out), 1) << out;
    return out;
  };
  auto ts = mixed_tensors();
  ts[6].type = 99;
  std::string e = inspect(mixed_gguf(ts));
  EXPECT_NE(e.find("tensor 'blk.0.attn_v.weight' type: unsupported ggml type id 99 (expected F32=0"), std::string::npos) << e;
  ts = mixed_tensors();
  ts[4].ne = {200, 256};  // Q4_K rows of 200: not whole 256-element blocks
  e = inspect(mixed_gguf(ts));
  EXPECT_NE(e.find("tensor 'blk.0.attn_q.weight' dims: expected ne[0] a multiple of Q4_K's 256-element block, got 200"),
            std::string::npos) << e;
  std::string good = mixed_gguf();
  e = inspect(good.substr(0, good.size() - 100));
  EXPECT_NE(e.find("tensor 'blk.0.ffn_down.weight' offset: expected offset + 131072 bytes within the"), std::string::npos) << e;
  // Another architecture: the file's own view, then why solar cannot run it.
  std::string qwen = good;
  size_t at = qwen.find("general.architecture") + 20 + 4 + 8;
  ASSERT_EQ(qwen.substr(at, 5), "llama");
  qwen.replace(at, 5, "qwen2");
  e = inspect(qwen);
  EXPECT_NE(e.find("  general.architecture             string         \"qwen2\""), std::string::npos) << e;
  EXPECT_NE(e.find("  Q6_K         1"), std::string::npos) << e;
  EXPECT_NE(e.find("general.architecture: expected \"llama\", got \"qwen2\""), std::string::npos) << e;
}

// A GGUF's SentencePiece vocabulary becomes an HF folder's tokenizer.model
// and tokenizer_config.json; another tokenizer type is named and skipped.
TEST(GgufTokenizer, HfFolderGetsTokenizerModelAndConfig) {
  std::string p = tmp("tok_mixed.gguf"), dir = tmp("tok_mixed_hf");
  put(p, mixed_gguf());
  HfWriteOptions opt;
  opt.force = true;
  write_hf(dir, read_gguf(p), opt);
  auto tok = tokenizer::load_tokenizer(join_path(dir, "tokenizer.model"));
  tokenizer::Vocab want = read_gguf_vocab(p), got = tok->vocab();
  EXPECT_EQ(got.pieces, want.pieces);
  EXPECT_EQ(got.scores, want.scores);
  EXPECT_EQ(got.types, want.types);
  EXPECT_EQ(got.pad, 15);
  EXPECT_EQ(tok->encode("ab abc", true), (std::vector<int>{1, 12, 7, 10}));  // ▁ab ▁a bc: "▁a" outscores "ab"
  EXPECT_EQ(tok->encode("ab abc", true), tokenizer::tokenizer_from_vocab(want)->encode("ab abc", true));
  auto tc = read_json_file(join_path(dir, "tokenizer_config.json"));
  EXPECT_EQ(tc["bos_token"], "<s>");
  EXPECT_EQ(tc["eos_token"], "</s>");
  EXPECT_EQ(tc["unk_token"], "<unk>");
  EXPECT_EQ(tc["pad_token"], "<pad>");
  EXPECT_EQ(tc["add_bos_token"], true);
  EXPECT_EQ(tc["add_eos_token"], true);
  EXPECT_EQ(tc["chat_template"], kChatTemplate);
  EXPECT_EQ(tc["tokenizer_class"], "LlamaTokenizer");
  // Back to GGUF: the same tokenizer metadata.
  std::string p2 = tmp("tok_mixed_back.gguf");
  write_gguf(p2, load_checkpoint(dir), DType::F32);
  tokenizer::Vocab back = read_gguf_vocab(p2);
  EXPECT_EQ(back.pieces, want.pieces);
  EXPECT_EQ(back.types, want.types);
  EXPECT_EQ(back.pad, 15);
  EXPECT_EQ(read_gguf(p2).tokenizer_config, read_gguf(p).tokenizer_config);

  // "gpt2" (byte-level BPE): solar has no writer for it; a warning names it.
  put(p, mixed_gguf(mixed_tensors(), "gpt2"));
  testing::SinkGuard guard;
  std::string warned;
  set_log_sink([&](const LogRecord& r) { warned += std::string(r.message) + "\n"; });
  write_hf(dir, read_gguf(p), opt);
  EXPECT_NE(warned.find("tokenizer.ggml.model is \"gpt2\", not \"llama\""), std::string::npos) << warned;
  EXPECT_FALSE(path_exists(join_path(dir, "tokenizer.model")));
  EXPECT_FALSE(path_exists(join_path(dir, "tokenizer_config.json")));
}

// A vocabulary SentencePiece refuses costs the folder its tokenizer, with a
// warning that names the file and why; the weights are still written.
TEST(GgufTokenizer, BadVocabularyIsNamedAndSkipped) {
  std::string p = tmp("tok_dup.gguf"), dir = tmp("tok_dup_hf");
  std::string bytes = mixed_gguf();
  size_t at = bytes.find(std::string("\x02\0\0\0\0\0\0\0", 8) + "ca");  // piece "ca" -> "ab", a duplicate
  ASSERT_NE(at, std::string::npos);
  bytes.replace(at + 8, 2, "ab");
  put(p, bytes);
  EXPECT_NE(error_of([&] { gguf_tokenizer_model(p); }).find(p + ": tokenizer.ggml.tokens: SentencePiece refuses it as a tokenizer.model: "),
            std::string::npos);
  testing::SinkGuard guard;
  std::string warned;
  set_log_sink([&](const LogRecord& r) { warned += std::string(r.message) + "\n"; });
  HfWriteOptions opt;
  opt.force = true;
  write_hf(dir, read_gguf(p), opt);
  EXPECT_NE(warned.find(p + ": tokenizer.ggml.tokens: SentencePiece refuses it as a tokenizer.model: Internal: ab is already defined"),
            std::string::npos) << warned;
  EXPECT_NE(warned.find(dir + " gets no tokenizer.model"), std::string::npos) << warned;
  EXPECT_FALSE(path_exists(join_path(dir, "tokenizer.model")));
  EXPECT_TRUE(path_exists(join_path(dir, "model.safetensors")));
}

}  // namespace
}  // namespace solar::formats
