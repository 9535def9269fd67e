#include "upscale/upscale.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "core/fs.h"
#include "formats/hf.h"
#include "formats/load.h"
#include "testing/models.h"

using namespace solar;
using namespace solar::testing;

namespace {

struct UpscaleFixture : ::testing::Test {
  std::string dir, base, tok;
  void SetUp() override {
    dir = temp_dir("upscale");
    base = join_path(dir, "base");
    tok = join_path(dir, "tokenizer.model");
    write_file_atomic(tok, "not a real sentencepiece model, only carried over");
    write_random_model(base, tiny_config(6), 1, tok);
  }
  void TearDown() override { remove_all(dir); }
  std::string recipe(const std::string& name, const std::string& text) {
    std::string p = join_path(dir, name);
    write_file_atomic(p, text);
    return p;
  }
};

TEST(UpscaleTest, DusSlicesAndLayerMap) {
  auto s = upscale::dus_slices("m", 32, 8);
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].begin, 0);
  EXPECT_EQ(s[0].end, 24);
  EXPECT_EQ(s[1].begin, 8);
  EXPECT_EQ(s[1].end, 32);
  auto m = upscale::layer_map(s);
  ASSERT_EQ(m.size(), 48u);
  EXPECT_EQ(m[23], std::make_pair(0, 23));
  EXPECT_EQ(m[24], std::make_pair(1, 8));
  EXPECT_EQ(m[47], std::make_pair(1, 31));
  EXPECT_THROW(upscale::dus_slices("m", 32, 0), Error);
  EXPECT_THROW(upscale::dus_slices("m", 32, 32), Error);
  EXPECT_THROW(upscale::dus_slices("m", 32, 16), Error);  // 32 layers: no deeper than the base
  EXPECT_EQ(upscale::dus_slices("m", 32, 15)[0].end, 17);
  EXPECT_THROW(upscale::dus_slices("m", 32, -1), Error);
}

TEST(UpscaleTest, Mistral7BDryRunNumbers) {
  std::string d = temp_dir("upscale_dry");
  write_file_atomic(join_path(d, "config.json"), model::config_to_json(model::preset_config("mistral-7b")).dump());
  model::ModelConfig src = formats::read_model_config(d);
  EXPECT_EQ(src.num_parameters(), 7241732096);  // Mistral-7B-v0.1
  auto slices = upscale::dus_slices(d, src.num_hidden_layers, 8);
  model::ModelConfig c = upscale::upscaled_config(slices, {src, src}, "--drop");
  EXPECT_EQ(c.num_hidden_layers, 48);
  EXPECT_EQ(c.num_parameters(), 10731524096);  // SOLAR 10.7B
  // The CLI reads only config.json: there are no weights in this folder.
  std::string out;
  EXPECT_EQ(run_solar("upscale -m " + d + " --drop 8 --dry-run", &out), 0) << out;
  EXPECT_NE(out.find("layers: 48 (from 32)"), std::string::npos) << out;
  EXPECT_NE(out.find("parameters: 10731524096"), std::string::npos) << out;
  EXPECT_NE(out.find("hidden 4096, intermediate 14336, heads 32, kv heads 8"), std::string::npos) << out;
  remove_all(d);
}

TEST_F(UpscaleFixture, DropCopiesEveryLayerBytewise) {
  std::string out = join_path(dir, "up");
  std::string log;
  ASSERT_EQ(run_solar("upscale -m " + base + " --drop 2 -o " + out + " --shard-size 100KB", &log), 0) << log;
  model::Checkpoint a = formats::load_checkpoint(base), b = formats::load_checkpoint(out);
  EXPECT_EQ(b.config.num_hidden_layers, 8);
  EXPECT_GT(b.files.size(), 1u) << "expected several shards with an index";
  auto src_layer = [](int l) { return l < 4 ? l : l - 4 + 2; };  // [0,4) then [2,6)
  for (const auto& name : model::expected_tensor_names(b.config)) {
    std::string from = name;
    if (name.rfind("model.layers.", 0) == 0) {
      size_t dot = name.find('.', 13);
      from = model::layer_tensor(src_layer(std::stoi(name.substr(13))), name.c_str() + dot + 1);
    }
    EXPECT_TRUE(same_bytes(a.get(from), b.get(name))) << name << " != " << from;
  }
  EXPECT_EQ(read_file(join_path(out, "tokenizer.model")), read_file(tok));
  EXPECT_EQ(b.tokenizer_config, a.tokenizer_config);
  EXPECT_EQ(b.generation_config, a.generation_config);
  std::string card = read_file(join_path(out, "README.md"));
  EXPECT_NE(card.find("8 layers"), std::string::npos) << card;
  EXPECT_NE(card.find(std::to_string(b.config.num_parameters()) + " parameters"), std::string::npos) << card;
  EXPECT_NE(card.find("[2, 6)"), std::string::npos) << card;
  EXPECT_TRUE(no_leftovers(dir));
}

TEST_F(UpscaleFixture, RecipeWithOverlappingRangesAndTwoModels) {
  std::string other = join_path(dir, "other");
  write_random_model(other, tiny_config(6), 2);
  std::string r = recipe("r.yaml",
                         "slices:\n"
                         "  - sources:\n      - model: " + base + "\n        layer_range: [0, 4]\n"
                         "  - sources:\n      - model: " + other + "\n        layer_range: [2, 6]\n"
                         "  - sources:\n      - model: " + other + "\n        layer_range: [3, 5]\n"
                         "merge_method: passthrough\ndtype: float32\n");
  std::string out = join_path(dir, "up");
  std::string log;
  ASSERT_EQ(run_solar("upscale --recipe " + r + " -o " + out, &log), 0) << log;
  model::Checkpoint a = formats::load_checkpoint(base), o = formats::load_checkpoint(other), b = formats::load_checkpoint(out);
  ASSERT_EQ(b.config.num_hidden_layers, 10);
  const int src[10] = {0, 1, 2, 3, 2, 3, 4, 5, 3, 4};
  for (int l = 0; l < 10; ++l) {
    const model::Checkpoint& from = l < 4 ? a : o;
    for (const char* s : {"self_attn.q_proj.weight", "mlp.down_proj.weight", "input_layernorm.weight"}) {
      const TensorView &x = from.get(model::layer_tensor(src[l], s)), &y = b.get(model::layer_tensor(l, s));
      ASSERT_EQ(y.dtype, DType::F32);  // the recipe's dtype, converted exactly from BF16
      for (int64_t i = 0; i < x.numel(); ++i)
        ASSERT_EQ(load_f32(x.data, x.dtype, i), load_f32(y.data, y.dtype, i)) << l << " " << s;
    }
  }
  // Embeddings from the first slice's model, norm and head from the last's.
  auto eq = [](const TensorView& x, const TensorView& y) {
    for (int64_t i = 0; i < x.numel(); ++i)
      if (load_f32(x.data, x.dtype, i) != load_f32(y.data, y.dtype, i)) return false;
    return true;
  };
  EXPECT_TRUE(eq(a.get("model.embed_tokens.weight"), b.get("model.embed_tokens.weight")));
  EXPECT_TRUE(eq(o.get("model.norm.weight"), b.get("model.norm.weight")));
  EXPECT_TRUE(eq(o.get("lm_head.weight"), b.get("lm_head.weight")));
  EXPECT_EQ(b.config.torch_dtype, DType::F32);
}

TEST_F(UpscaleFixture, BadRecipesFailBeforeWriting) {
  std::string wide = join_path(dir, "wide");
  model::ModelConfig wc = tiny_config(6);
  wc.vocab_size = 600;
  write_random_model(wide, wc, 3);
  auto slice = [](const std::string& m, const std::string& range) {
    return "  - sources:\n      - model: " + m + "\n        layer_range: " + range + "\n";
  };
  struct Case {
    std::string text, expect;
  } cases[] = {
      {"slices:\n" + slice(base, "[4, 2]") + "merge_method: passthrough\n", "slices[0].sources[0].layer_range"},
      {"slices:\n" + slice(base, "[3, 3]") + "merge_method: passthrough\n", "slices[0].sources[0].layer_range"},
      {"slices:\n" + slice(base, "[0, 4]") + slice(base, "[2, 7]") + "merge_method: passthrough\n",
       "slices[1].layer_range"},
      {"slices:\n" + slice(base, "[0, 4]") + slice(wide, "[2, 6]") + "merge_method: passthrough\n",
       "slices[1]: vocab_size"},
      {"slices:\n" + slice(base, "[0, x]") + "merge_method: passthrough\n", "layer_range"},
      {"slices:\n" + slice(base, "[0, 4]") + "merge_method: ties\n", "merge_method"},
      {"slices:\n" + slice(base, "[0, 4]") + "merge_method: passthrough\ndtype: int8\n", "dtype"},
      {"slices:\n  - sources:\n      - layer_range: [0, 2]\nmerge_method: passthrough\n", "slices[0].sources[0].model"},
      {"slices:\n" + slice(base, "[0, 4]") + "  - sources: [\nmerge_method: passthrough\n", "line "},
      {"slices:\n  - sources:\n      - model: " + join_path(dir, "nope") + "\n        layer_range: [0, 2]\n"
       "merge_method: passthrough\n", "nope"},
      {"models:\n  - model: " + base + "\nmerge_method: passthrough\n", "slices"},
  };
  for (const auto& c : cases) {
    std::string r = recipe("bad.yaml", c.text), out = join_path(dir, "up");
    std::string log;
    EXPECT_EQ(run_solar("upscale --recipe " + r + " -o " + out, &log), 1) << c.text << log;
    EXPECT_NE(log.find("solar: error: "), std::string::npos) << log;
    EXPECT_NE(log.find(c.expect), std::string::npos) << "expected '" << c.expect << "' in: " << log;
    EXPECT_EQ(std::count(log.begin(), log.end(), '\n'), 1) << "one line, got: " << log;
    EXPECT_FALSE(path_exists(out)) << c.text;
    EXPECT_TRUE(no_leftovers(dir));
  }
  // JSON recipes go through nlohmann::json and name the file on syntax errors.
  std::string r = recipe("bad.json", "{\"slices\": [}");
  std::string log;
  EXPECT_EQ(run_solar("upscale --recipe " + r + " -o " + join_path(dir, "up"), &log), 1);
  EXPECT_NE(log.find("bad.json: JSON syntax error"), std::string::npos) << log;
}

TEST_F(UpscaleFixture, ExistingOutputNeedsForce) {
  std::string out = join_path(dir, "up");
  make_dirs(out);
  write_file_atomic(join_path(out, "keep"), "x");
  EXPECT_THROW(upscale::upscale(upscale::dus_slices(base, 6, 1), out, {}), Error);
  EXPECT_TRUE(path_exists(join_path(out, "keep")));
  upscale::UpscaleOptions o;
  o.force = true;
  upscale::upscale(upscale::dus_slices(base, 6, 1), out, o);
  EXPECT_FALSE(path_exists(join_path(out, "keep")));
  EXPECT_EQ(formats::load_checkpoint(out).config.num_hidden_layers, 10);
}

TEST_F(UpscaleFixture, JsonRecipeMatchesYaml) {
  std::string y = recipe("r.yaml", "slices:\n  - sources:\n      - model: " + base +
                                       "\n        layer_range: [1, 3]\nmerge_method: passthrough\n");
  std::string j = recipe("r.json", "{\"slices\": [{\"sources\": [{\"model\": \"" + base +
                                       "\", \"layer_range\": [1, 3]}]}], \"merge_method\": \"passthrough\"}");
  auto a = upscale::recipe_slices(merge::read_recipe(y)), b = upscale::recipe_slices(merge::read_recipe(j));
  ASSERT_EQ(a.size(), 1u);
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(a[0].model, b[0].model);
  EXPECT_EQ(a[0].begin, 1);
  EXPECT_EQ(b[0].end, 3);
}

}  // namespace

TEST(UpscaleTest, StackedDepthIsBounded) {
  // Issue 10: `upscale --dry-run` printed "layers: -4"; the sum is int64 and capped.
  model::ModelConfig src = model::preset_config("tiny");
  src.num_hidden_layers = model::kMaxLayers;
  std::vector<upscale::LayerSlice> slices{{"a", 0, model::kMaxLayers}, {"a", 0, model::kMaxLayers}};
  EXPECT_EQ(error_of([&] { upscale::upscaled_config(slices, {src, src}, "r.yaml"); }),
            "r.yaml: slices: expected at most 4096 layers in all, got 8192");
}
