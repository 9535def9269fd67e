#include "formats/hf.h"
#include "formats/load.h"
#include "model/rope.h"
#include "testing/testing.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <functional>
#include <random>
#include <set>

#include "core/error.h"
#include "core/fs.h"
#include "formats/safetensors.h"

namespace solar::formats {
namespace {
using solar::testing::error_of;


std::string tmp_dir(const std::string& name) {
  std::string d = ::testing::TempDir() + "solar_hf_" + std::to_string(getpid());
  make_dirs(d);
  std::string p = join_path(d, name);
  remove_all(p);
  return p;
}

// preset "tiny" with random f32 tensors for every expected name.
struct Model {
  model::ModelConfig c = model::preset_config("tiny");
  std::vector<std::vector<float>> bufs;
  std::vector<TensorView> ts;
  explicit Model(uint32_t seed = 3) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd(0, 1);
    for (const auto& n : model::expected_tensor_names(c)) {
      TensorView t{n, DType::F32, model::expected_shape(c, n)};
      bufs.emplace_back(size_t(t.numel()));
      for (auto& v : bufs.back()) v = nd(rng);
      t.data = bufs.back().data();
      t.nbytes = bufs.back().size() * 4;
      ts.push_back(t);
    }
  }
  uint64_t bytes() const {
    uint64_t n = 0;
    for (auto& t : ts) n += t.nbytes;
    return n;
  }
};

void expect_same(const Model& m, const model::Checkpoint& ck) {
  ASSERT_EQ(ck.tensors.size(), m.ts.size());
  for (const auto& t : m.ts) {
    const TensorView& g = ck.get(t.name);
    EXPECT_EQ(g.dtype, t.dtype) << t.name;
    EXPECT_EQ(g.shape, t.shape) << t.name;
    ASSERT_EQ(g.nbytes, t.nbytes) << t.name;
    EXPECT_EQ(std::memcmp(g.data, t.data, t.nbytes), 0) << t.name;
  }
}

TEST(Hf, RoundTripSingleFileWithTokenizerAndJson) {
  Model m;
  std::string tok = tmp_dir("tok.model");
  write_file_atomic(tok, std::string("\x0a\x05hello", 7));
  HfWriteOptions opt;
  opt.tokenizer_path = tok;
  opt.tokenizer_config = {{"add_bos_token", true}};
  opt.generation_config = {{"max_length", 77}};
  opt.model_card = "# tiny\n";
  std::string dir = tmp_dir("single");
  write_hf(dir, m.c, m.ts, opt);
  EXPECT_TRUE(path_exists(join_path(dir, "model.safetensors")));
  EXPECT_FALSE(path_exists(join_path(dir, "model.safetensors.index.json")));
  EXPECT_EQ(read_file(join_path(dir, "README.md")), "# tiny\n");
  EXPECT_FALSE(path_exists(dir + ".tmp-" + std::to_string(getpid())));

  model::Checkpoint ck = load_checkpoint(dir);  // read_hf + validate()
  expect_same(m, ck);
  EXPECT_EQ(ck.config.hidden_size, m.c.hidden_size);
  EXPECT_EQ(ck.config.num_key_value_heads, m.c.num_key_value_heads);
  EXPECT_EQ(ck.config.tie_word_embeddings, m.c.tie_word_embeddings);
  EXPECT_EQ(ck.config.torch_dtype, DType::F32);
  EXPECT_EQ(ck.tokenizer_path, join_path(dir, "tokenizer.model"));
  EXPECT_EQ(read_file(ck.tokenizer_path), read_file(tok));
  EXPECT_EQ(ck.tokenizer_config["add_bos_token"], true);
  EXPECT_EQ(ck.generation_config["max_length"], 77);

  // The Checkpoint form carries tokenizer and JSON over.
  std::string dir2 = tmp_dir("again");
  write_hf(dir2 + "/", ck, HfWriteOptions{});  // a trailing slash names the same folder
  model::Checkpoint ck2 = load_checkpoint(dir2);
  expect_same(m, ck2);
  EXPECT_EQ(ck2.generation_config["max_length"], 77);
  EXPECT_EQ(read_file(ck2.tokenizer_path), read_file(tok));
}

TEST(Hf, ShardsWithIndexAndBf16) {
  Model m;
  HfWriteOptions opt;
  opt.max_shard_bytes = 100'000;  // bf16 tiny model is ~0.3 MB: several shards
  opt.dtype = DType::BF16;
  std::string dir = tmp_dir("sharded");
  write_hf(dir, m.c, m.ts, opt);
  EXPECT_FALSE(path_exists(join_path(dir, "model.safetensors")));
  nlohmann::json idx = nlohmann::json::parse(read_file(join_path(dir, "model.safetensors.index.json")));
  EXPECT_EQ(idx["metadata"]["total_size"].get<uint64_t>(), m.bytes() / 2);
  std::set<std::string> shards;
  for (auto& [n, s] : idx["weight_map"].items()) shards.insert(s.get<std::string>());
  ASSERT_GE(shards.size(), 3u);
  for (size_t i = 1; i <= shards.size(); ++i) {
    char name[64];
    std::snprintf(name, sizeof name, "model-%05zu-of-%05zu.safetensors", i, shards.size());
    EXPECT_TRUE(shards.count(name)) << name;
  }
  for (auto& s : shards) {
    EXPECT_TRUE(path_exists(join_path(dir, s))) << s;
    // Only an oversized single tensor may exceed the limit.
    SafetensorsFile f = read_safetensors(join_path(dir, s));
    uint64_t data = 0;
    for (auto& t : f.tensors) data += t.nbytes;
    EXPECT_TRUE(data <= opt.max_shard_bytes || f.tensors.size() == 1) << s;
  }
  EXPECT_EQ(nlohmann::json::parse(read_file(join_path(dir, "config.json")))["torch_dtype"], "bfloat16");

  model::Checkpoint ck = load_checkpoint(dir);
  EXPECT_EQ(ck.config.torch_dtype, DType::BF16);
  ASSERT_EQ(ck.tensors.size(), m.ts.size());
  for (const auto& t : m.ts) {
    const TensorView& g = ck.get(t.name);
    ASSERT_EQ(g.dtype, DType::BF16);
    ASSERT_EQ(g.shape, t.shape);
    const float* x = static_cast<const float*>(t.data);
    for (int64_t i = 0; i < t.numel(); ++i)
      ASSERT_LE(std::fabs(load_f32(g.data, DType::BF16, i) - x[i]), std::fabs(x[i]) / 256) << t.name << " " << i;
  }
}

TEST(Hf, ExistingFolderRefusedUnlessForce) {
  Model m;
  std::string dir = tmp_dir("exists");
  make_dirs(dir);
  write_file_atomic(join_path(dir, "keep.txt"), "x");
  std::string err = error_of([&] { write_hf(dir, m.c, m.ts, HfWriteOptions{}); });
  EXPECT_NE(err.find(dir + ": already exists"), std::string::npos) << err;
  EXPECT_TRUE(path_exists(join_path(dir, "keep.txt")));
  HfWriteOptions force;
  force.force = true;
  write_hf(dir, m.c, m.ts, force);
  EXPECT_FALSE(path_exists(join_path(dir, "keep.txt")));
  expect_same(m, read_hf(dir));
}

TEST(Hf, InterruptedWriteLeavesNoFolder) {
  Model m;
  std::string dir = tmp_dir("interrupted");
  std::vector<TensorDecl> decls;
  for (auto& t : m.ts) decls.push_back({t.name, t.shape, t.dtype});
  HfWriteOptions opt;
  opt.max_shard_bytes = 50'000;
  {
    HfWriter w(dir, m.c, decls, opt);
    for (size_t i = 0; i < 20; ++i) w.write(m.ts[i]);  // several shards committed inside the temp folder
    EXPECT_NE(error_of([&] { w.write(m.ts[21]); }).find("expected tensor '" + m.ts[20].name + "' next"), std::string::npos);
    EXPECT_NE(error_of([&] { w.finish(); }).find("never written"), std::string::npos);
  }
  EXPECT_FALSE(path_exists(dir));
  EXPECT_FALSE(path_exists(dir + ".tmp-" + std::to_string(getpid())));
}

TEST(Hf, FreeDiskCheckedBeforeWriting) {
  model::ModelConfig c = model::preset_config("tiny");
  std::string dir = tmp_dir("huge");
  std::vector<TensorDecl> decls{{"model.embed_tokens.weight", {int64_t(1) << 40, int64_t(1) << 20}, DType::F32}};
  std::string err = error_of([&] { HfWriter w(dir, c, decls, HfWriteOptions{}); });
  EXPECT_NE(err.find("free disk"), std::string::npos) << err;
  EXPECT_FALSE(path_exists(dir + ".tmp-" + std::to_string(getpid())));
}

TEST(Hf, PermuteRopeRowsKnownExampleAndInverse) {
  // 2 heads of head_dim 6, one byte per row: interleaved pairs (0,1)(2,3)(4,5)
  // become halves [0,2,4 | 1,3,5] per head, as HF's convert_llama_weights does.
  uint8_t src[12], dst[12], back[12];
  for (int i = 0; i < 12; ++i) src[i] = uint8_t(i);
  model::permute_rope_rows(src, dst, 2, 6, 1, true);
  const uint8_t want[12] = {0, 2, 4, 1, 3, 5, 6, 8, 10, 7, 9, 11};
  EXPECT_EQ(std::memcmp(dst, want, 12), 0);
  model::permute_rope_rows(dst, back, 2, 6, 1, false);
  EXPECT_EQ(std::memcmp(back, src, 12), 0);

  std::vector<float> a(4 * 8 * 5), b(a.size()), c(a.size());
  std::mt19937 rng(5);
  for (auto& v : a) v = float(rng());
  model::permute_rope_rows(a.data(), b.data(), 4, 8, 5 * 4, false);
  model::permute_rope_rows(b.data(), c.data(), 4, 8, 5 * 4, true);
  EXPECT_EQ(a, c);
  EXPECT_NE(a, b);
}

TEST(Hf, InterleavedRopeIsPermutedToHfLayout) {
  Model m;
  m.c.rope_interleaved = true;
  std::string dir = tmp_dir("rope");
  write_hf(dir, m.c, m.ts, HfWriteOptions{});
  EXPECT_FALSE(nlohmann::json::parse(read_file(join_path(dir, "config.json"))).contains("rope_interleaved"));
  model::Checkpoint ck = load_checkpoint(dir);
  EXPECT_FALSE(ck.config.rope_interleaved);
  for (const auto& t : m.ts) {
    const TensorView& g = ck.get(t.name);
    bool q = t.name.find("q_proj") != std::string::npos, k = t.name.find("k_proj") != std::string::npos;
    if (!q && !k) {
      EXPECT_EQ(std::memcmp(g.data, t.data, t.nbytes), 0) << t.name;
      continue;
    }
    std::vector<uint8_t> want(t.nbytes);
    model::permute_rope_rows(t.data, want.data(), q ? m.c.num_attention_heads : m.c.num_key_value_heads, m.c.head_dim,
                      t.nbytes / size_t(t.shape[0]), true);
    EXPECT_EQ(std::memcmp(g.data, want.data(), t.nbytes), 0) << t.name;
    EXPECT_NE(std::memcmp(g.data, t.data, t.nbytes), 0) << t.name;
  }
}

TEST(Hf, ParseSize) {
  EXPECT_EQ(parse_size("5GB", "--shard-size"), 5'000'000'000ull);
  EXPECT_EQ(parse_size("500MB", "--shard-size"), 500'000'000ull);
  EXPECT_EQ(parse_size("2GiB", "--shard-size"), 2ull << 30);
  EXPECT_EQ(parse_size("123", "--shard-size"), 123ull);
  EXPECT_EQ(parse_size("1.5kb", "--shard-size"), 1500ull);
  for (const char* bad : {"", "GB", "5XB", "-1GB", "0", "1..2MB", "5 GB", "99999999999TB"}) {
    std::string err = error_of([&] { parse_size(bad, "--shard-size"); });
    EXPECT_NE(err.find("--shard-size"), std::string::npos) << "'" << bad << "' -> " << err;
  }
}

// Writes a valid folder, then lets `spoil` break it; returns read_hf's error.
std::string read_spoiled(const std::string& name, const std::function<void(const std::string&)>& spoil,
                         uint64_t shard = 5'000'000'000) {
  Model m;
  HfWriteOptions opt;
  opt.max_shard_bytes = shard;
  std::string dir = tmp_dir(name);
  write_hf(dir, m.c, m.ts, opt);
  spoil(dir);
  return error_of([&] { read_hf(dir); });
}

TEST(Hf, BadFoldersNameFileAndField) {
  std::string e;
  e = read_spoiled("nocfg", [](const std::string& d) { remove_all(join_path(d, "config.json")); });
  EXPECT_NE(e.find("config.json: missing"), std::string::npos) << e;
  e = read_spoiled("badcfg", [](const std::string& d) { write_file_atomic(join_path(d, "config.json"), "{\"hidden_size\": "); });
  EXPECT_NE(e.find("config.json: JSON syntax error"), std::string::npos) << e;
  // Issue 10: hidden_size nested 100,000 deep crashed inside the serializer
  // building the message; now the read refuses the depth, and a value within
  // the depth limit is described in a few characters, not dumped.
  for (size_t depth : {size_t(100000), size_t(100)}) {
    e = read_spoiled("deepcfg", [&](const std::string& d) {
      auto j = nlohmann::json::parse(read_file(join_path(d, "config.json")));
      j.erase("hidden_size");
      std::string s = j.dump();
      s.pop_back();
      write_file_atomic(join_path(d, "config.json"),
                        s + ", \"hidden_size\": " + std::string(depth, '[') + std::string(depth, ']') + "}");
    });
    EXPECT_NE(e.find(depth > 128 ? "config.json: nesting deeper than 128 levels"
                                 : "config.json: hidden_size: expected an integer, got array [[[["),
              std::string::npos) << e;
    EXPECT_LT(e.size(), 200u + join_path("x", "config.json").size() + e.find("config.json")) << e;
  }
  e = read_spoiled("cfgfield", [](const std::string& d) {
    auto j = nlohmann::json::parse(read_file(join_path(d, "config.json")));
    j["num_hidden_layers"] = "five";
    write_file_atomic(join_path(d, "config.json"), j.dump());
  });
  EXPECT_NE(e.find("config.json: num_hidden_layers"), std::string::npos) << e;
  e = read_spoiled("badtokcfg", [](const std::string& d) { write_file_atomic(join_path(d, "tokenizer_config.json"), "{,}"); });
  EXPECT_NE(e.find("tokenizer_config.json: JSON syntax error"), std::string::npos) << e;
  e = read_spoiled("badgencfg", [](const std::string& d) { write_file_atomic(join_path(d, "generation_config.json"), "[1]"); });
  EXPECT_NE(e.find("generation_config.json: expected a JSON object"), std::string::npos) << e;
  e = read_spoiled("noweights", [](const std::string& d) { remove_all(join_path(d, "model.safetensors")); });
  EXPECT_NE(e.find("model.safetensors: missing"), std::string::npos) << e;
  e = read_spoiled("badshard", [](const std::string& d) { write_file_atomic(join_path(d, "model.safetensors"), "1234567"); });
  EXPECT_NE(e.find("model.safetensors: header.len"), std::string::npos) << e;

  const uint64_t small = 100'000;
  auto edit_index = [](const std::function<void(nlohmann::json&)>& f) {
    return [f](const std::string& d) {
      std::string p = join_path(d, "model.safetensors.index.json");
      auto j = nlohmann::json::parse(read_file(p));
      f(j);
      write_file_atomic(p, j.dump());
    };
  };
  e = read_spoiled("listed-missing", edit_index([](nlohmann::json& j) {
    j["weight_map"]["model.extra.weight"] = j["weight_map"]["model.norm.weight"];
  }), small);
  EXPECT_NE(e.find("index.json: weight_map.model.extra.weight: tensor missing from shard"), std::string::npos) << e;
  e = read_spoiled("wrong-shard", edit_index([](nlohmann::json& j) {
    j["weight_map"]["model.norm.weight"] = j["weight_map"]["model.embed_tokens.weight"];
  }), small);
  EXPECT_NE(e.find("weight_map.model.norm.weight"), std::string::npos) << e;
  e = read_spoiled("escape", edit_index([](nlohmann::json& j) { j["weight_map"]["model.norm.weight"] = "../x.safetensors"; }), small);
  EXPECT_NE(e.find("weight_map.model.norm.weight: expected a file name inside the folder"), std::string::npos) << e;
  e = read_spoiled("no-map", edit_index([](nlohmann::json& j) { j.erase("weight_map"); }), small);
  EXPECT_NE(e.find("index.json: weight_map: missing"), std::string::npos) << e;
  e = read_spoiled("two-shards", [](const std::string& d) {
    // The last shard also gets a copy of the embedding from the first.
    auto j = nlohmann::json::parse(read_file(join_path(d, "model.safetensors.index.json")));
    std::string first = join_path(d, j["weight_map"]["model.embed_tokens.weight"].get<std::string>());
    std::string last = join_path(d, j["weight_map"]["model.norm.weight"].get<std::string>());
    SafetensorsFile a = read_safetensors(first), b = read_safetensors(last);
    std::vector<TensorToWrite> ts{{a.tensors[0], a.tensors[0].dtype}};
    for (auto& t : b.tensors) ts.push_back({t, t.dtype});
    write_safetensors(last + ".new", ts);
    std::rename((last + ".new").c_str(), last.c_str());
  }, small);
  EXPECT_NE(e.find("model.embed_tokens.weight: tensor also stored in model-00001-of-"),
            std::string::npos) << e;
}

TEST(Hf, ExtraInvFreqTensorsIgnored) {
  Model m;
  std::vector<float> inv(m.c.head_dim / 2, 1.0f);
  auto ts = m.ts;
  ts.push_back({"model.layers.0.self_attn.rotary_emb.inv_freq", DType::F32, {int64_t(inv.size())}, inv.data(), inv.size() * 4});
  std::string dir = tmp_dir("invfreq");
  write_hf(dir, m.c, ts, HfWriteOptions{});
  expect_same(m, load_checkpoint(dir));
}

std::string run(const std::string& cmd, int* rc) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  *rc = WEXITSTATUS(pclose(p));
  return out;
}

TEST(HfInspect, CliPrintsTableAndJson) {
  Model m;
  std::string dir = tmp_dir("inspect");
  HfWriteOptions opt;
  opt.dtype = DType::BF16;
  write_hf(dir, m.c, m.ts, opt);
  int rc = -1;
  std::string out = run(std::string(SOLAR_BIN) + " inspect " + dir, &rc);
  ASSERT_EQ(rc, 0) << out;
  uint64_t params = 0;
  for (auto& t : m.ts) params += uint64_t(t.numel());
  EXPECT_EQ(params, uint64_t(m.c.num_parameters()));
  char want[64];
  std::snprintf(want, sizeof want, "%llu,%03llu (%.2fK)", (unsigned long long)params / 1000,
                (unsigned long long)params % 1000, params / 1000.0);
  EXPECT_NE(out.find(want), std::string::npos) << want << "\n" << out;
  EXPECT_NE(out.find("LlamaForCausalLM"), std::string::npos) << out;
  size_t row = out.find("  model.layers.4.mlp.down_proj.weight ");
  ASSERT_NE(row, std::string::npos) << out;
  std::string line = out.substr(row, out.find('\n', row) - row);
  EXPECT_NE(line.find(" BF16 "), std::string::npos) << line;
  EXPECT_NE(line.find(" [64, 172] "), std::string::npos) << line;
  EXPECT_EQ(line.substr(line.size() - 7), " 22,016") << line;
  // Layers in numeric order, not string order.
  EXPECT_LT(out.find("model.layers.1.input"), out.find("model.layers.4.input"));

  out = run(std::string(SOLAR_BIN) + " inspect --json " + dir, &rc);
  ASSERT_EQ(rc, 0) << out;
  auto j = nlohmann::json::parse(out);
  EXPECT_EQ(j["format"], "hf");
  EXPECT_EQ(j["parameters"].get<uint64_t>(), params);
  EXPECT_EQ(j["total_bytes"].get<uint64_t>(), params * 2);
  EXPECT_EQ(j["config"]["hidden_size"], 64);
  EXPECT_EQ(j["config"]["torch_dtype"], "bfloat16");
  ASSERT_EQ(j["tensors"].size(), m.ts.size());
  EXPECT_EQ(j["tensors"][0]["name"], "model.embed_tokens.weight");
  EXPECT_EQ(j["tensors"][0]["shape"], nlohmann::json({512, 64}));
  EXPECT_EQ(j["tensors"][0]["bytes"], 512 * 64 * 2);

  out = run(std::string(SOLAR_BIN) + " inspect " + dir + "-nope 2>&1", &rc);
  EXPECT_EQ(rc, 1);
  EXPECT_NE(out.find("solar: error: " + dir + "-nope: no such file"), std::string::npos) << out;
}

}  // namespace
}  // namespace solar::formats
