// `solar convert` end to end: llama2.c -> HF folder / GGUF, checked tensor by
// tensor and by greedy generation against run.c's output.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <sys/wait.h>

#include "core/fs.h"
#include "core/json.h"
#include "formats/gguf.h"
#include "formats/hf.h"
#include "formats/llama2c.h"
#include "formats/load.h"
#include "testing/tokenizers.h"

namespace solar::formats {
namespace {

const std::string kDir = std::string(SOLAR_SHARED_DATA) + "/models/stories260K";

std::string tmp(const std::string& name) { return join_path(::testing::TempDir(), name); }

// Runs the solar binary; returns stdout, sets *status to the exit code.
std::string solar(const std::string& args, int* status) {
  std::string out;
  FILE* p = popen((std::string(SOLAR_BIN) + " " + args + " 2>/dev/null").c_str(), "r");
  if (!p) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int st = pclose(p);
  *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return out;
}

void convert(const std::string& args) {
  int st = 0;
  solar("convert --force " + args, &st);
  ASSERT_EQ(st, 0) << "solar convert " << args;
}

bool same_bytes(const TensorView& a, const TensorView& b) {
  return a.nbytes == b.nbytes && std::memcmp(a.data, b.data, a.nbytes) == 0;
}

// HF rotate-half row j*hd/2 + i of a head is interleaved row 2i + j.
bool is_rotate_half_of(const TensorView& hf, const TensorView& il, int heads, int hd) {
  size_t row = size_t(il.cols()) * 4;
  for (int h = 0; h < heads; ++h)
    for (int i = 0; i < hd / 2; ++i)
      for (int j = 0; j < 2; ++j)
        if (std::memcmp(hf.row(h * hd + j * hd / 2 + i), il.row(h * hd + 2 * i + j), row) != 0) return false;
  return hf.nbytes == il.nbytes;
}

TEST(ConvertCli, Llama2cToHfPermutesQkOnly) {
  if (!path_exists(kDir)) GTEST_SKIP() << "shared data absent: " << kDir;
  std::string out = tmp("stories_hf");
  convert("-m " + kDir + "/stories260K.bin --tokenizer " + kDir + "/tok512.bin -o " + out);
  model::Checkpoint src = read_llama2c(kDir + "/stories260K.bin");
  model::Checkpoint hf = load_checkpoint(out);
  const model::ModelConfig &a = src.config, &b = hf.config;
  EXPECT_FALSE(b.rope_interleaved);
  EXPECT_EQ(model::config_to_json(b), model::config_to_json([&] {
              model::ModelConfig c = a;
              c.rope_interleaved = false;
              return c;
            }()));
  EXPECT_FALSE(hf.tokenizer_path.empty());
  ASSERT_EQ(hf.tensors.size(), src.tensors.size());
  for (auto& [name, t] : src.tensors) {
    const TensorView& h = hf.get(name);
    bool q = name.ends_with("q_proj.weight"), k = name.ends_with("k_proj.weight");
    if (q || k) {
      EXPECT_TRUE(is_rotate_half_of(h, t, q ? a.num_attention_heads : a.num_key_value_heads, a.head_dim)) << name;
      EXPECT_FALSE(same_bytes(h, t)) << name;
    } else {
      EXPECT_TRUE(same_bytes(h, t)) << name;
    }
  }
  // HF -> GGUF undoes the permutation: back to the llama2.c bytes.
  std::string g = tmp("stories_from_hf.gguf");
  convert("-m " + out + " -o " + g);
  model::Checkpoint gg = read_gguf(g);
  for (auto& [name, t] : src.tensors) EXPECT_TRUE(same_bytes(gg.get(name), t)) << name;
}

TEST(ConvertCli, FlagsAreChecked) {
  if (!path_exists(kDir)) GTEST_SKIP() << "shared data absent: " << kDir;
  int st = 0;
  solar("convert -m " + kDir + "/stories260K.bin -o " + tmp("x") + " --to onnx", &st);
  EXPECT_EQ(st, 2);  // usage error
  solar("convert -m " + kDir + "/stories260K.bin -o " + tmp("x.gguf") + " --outtype q4_0", &st);
  EXPECT_EQ(st, 2);
  std::string existing = tmp("exists.gguf");
  write_file_atomic(existing, "x");
  solar("convert -m " + kDir + "/stories260K.bin -o " + existing, &st);
  EXPECT_EQ(st, 1);
  EXPECT_EQ(read_file(existing), "x");
  solar("convert -m " + tmp("missing.bin") + " -o " + tmp("y.gguf"), &st);
  EXPECT_EQ(st, 1);
}

// run.c's greedy output, from the .bin, the converted HF folder and GGUFs.
TEST(ConvertCli, GreedyGoldenThroughEveryFormat) {
  if (!path_exists(kDir)) GTEST_SKIP() << "shared data absent: " << kDir;
  std::string want = read_file(kDir + "/expected_greedy_200.txt");
  std::string tok = kDir + "/tok512.bin", hf = tmp("golden_hf"), g32 = tmp("golden.gguf"), gbf = tmp("golden_bf16.gguf");
  convert("-m " + kDir + "/stories260K.bin --tokenizer " + tok + " -o " + hf);
  convert("-m " + hf + " -o " + g32);
  convert("-m " + kDir + "/stories260K.bin --tokenizer " + tok + " -o " + gbf + " --outtype bf16");
  // One thread: the test machine's cores are shared, and greedy output must not depend on it.
  const std::string gen = " -p \"\" -n 200 --temp 0 -t 1";
  int st = 0;
  EXPECT_EQ(solar("generate -m " + kDir + "/stories260K.bin --tokenizer " + tok + gen, &st), want);
  EXPECT_EQ(solar("generate -m " + hf + gen, &st), want) << "HF folder";
  EXPECT_EQ(solar("generate -m " + g32 + gen, &st), want) << "GGUF (tokenizer from its metadata)";
  // Back to HF: the GGUF's vocabulary becomes a SentencePiece tokenizer.model.
  std::string back = tmp("golden_back_hf");
  convert("-m " + g32 + " -o " + back);
  ASSERT_TRUE(path_exists(join_path(back, "tokenizer.model")));
  EXPECT_EQ(solar("generate -m " + back + gen, &st), want) << "HF folder from the GGUF";
  // BF16 weights drift from the f32 reference after a while; the opening must match.
  std::string bf = solar("generate -m " + gbf + gen, &st);
  EXPECT_EQ(st, 0);
  EXPECT_EQ(bf.substr(0, 60), want.substr(0, 60));
}

// HF (Meta's and Mistral's tokenizer.model) -> GGUF -> HF: the rebuilt
// tokenizer.model is the original piece for piece and encodes as it does;
// tokenizer_config.json keeps the special tokens and chat template; `solar
// upscale` from the GGUF writes the same tokenizer.
TEST(ConvertCli, GgufToHfRebuildsTheSentencePieceTokenizer) {
  const std::string data = SOLAR_SHARED_DATA;
  const std::string tmpl = "{% for m in messages %}[INST] {{ m['content'] }} [/INST]{% endfor %}";
  for (const std::string name : {"llama2.model", "mistral-v1.model"}) {
    const std::string model = data + "/tokenizers/" + name;
    if (!path_exists(model)) GTEST_SKIP() << "shared data absent: " << model;
    const std::string hf = tmp("spm_src_" + name), g = tmp("spm_" + name + ".gguf"), back = tmp("spm_back_" + name),
                      up = tmp("spm_up_" + name);
    int st = 0;
    solar("init --preset tiny --layers 3 --tokenizer " + model + " --force -o " + hf, &st);
    ASSERT_EQ(st, 0);
    write_file_atomic(join_path(hf, "tokenizer_config.json"),
                      nlohmann::json{{"add_bos_token", true}, {"add_eos_token", false}, {"chat_template", tmpl}}.dump());
    convert("-m " + hf + " -o " + g);
    convert("-m " + g + " -o " + back);
    auto orig = open_tokenizer(model), rebuilt = open_tokenizer(join_path(back, "tokenizer.model"));
    testing::expect_same_tokenizer(*orig, *rebuilt, name, data, name == "llama2.model");
    auto tc = read_json_file(join_path(back, "tokenizer_config.json"));
    EXPECT_EQ(tc["bos_token"], "<s>");
    EXPECT_EQ(tc["eos_token"], "</s>");
    EXPECT_EQ(tc["unk_token"], "<unk>");
    EXPECT_FALSE(tc.contains("pad_token"));
    EXPECT_EQ(tc["add_bos_token"], true);
    EXPECT_EQ(tc["add_eos_token"], false);
    EXPECT_EQ(tc["chat_template"], tmpl);

    solar("upscale -m " + g + " --drop 1 --force -o " + up, &st);
    ASSERT_EQ(st, 0) << "upscale from " << g;
    EXPECT_EQ(read_file(join_path(up, "tokenizer.model")), read_file(join_path(back, "tokenizer.model")));
    EXPECT_EQ(read_json_file(join_path(up, "tokenizer_config.json")), tc);
  }
}

}  // namespace
}  // namespace solar::formats
