#include "merge/merge.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "core/error.h"
#include "core/fs.h"
#include "formats/load.h"
#include "model/rope.h"
#include "merge/recipe.h"
#include "testing/models.h"

using namespace solar;
using namespace solar::testing;

namespace {

TEST(RecipeTest, GradientMatchesMergekit) {
  EXPECT_EQ(merge::gradient_at({0.3}, 0.7), 0.3);
  EXPECT_DOUBLE_EQ(merge::gradient_at({0, 0.5, 1}, 0.25), 0.25);
  EXPECT_DOUBLE_EQ(merge::gradient_at({0, 1}, 0.3), 0.3);
  EXPECT_DOUBLE_EQ(merge::gradient_at({1, 0.5, 0, 0.5, 1}, 0.6), 0.2);  // index 2.4
  EXPECT_EQ(merge::gradient_at({0.1, 0.9, 0.7}, 0.0), 0.1);
  EXPECT_EQ(merge::gradient_at({0.1, 0.9, 0.7}, 1.0), 0.7);
}

TEST(RecipeTest, ParsesMergekitYamlAndJson) {
  merge::Recipe y = merge::parse_recipe(
      "models:\n  - model: A\n    parameters:\n      weight: 0.25\n  - model: B\n    parameters:\n      weight: [1, 3]\n"
      "merge_method: linear\ndtype: bfloat16\nparameters:\n  t: 0.5\n",
      "r.yaml", false);
  merge::Recipe j = merge::parse_recipe(
      R"({"models": [{"model": "A", "parameters": {"weight": 0.25}}, {"model": "B", "parameters": {"weight": [1, 3]}}],
          "merge_method": "linear", "dtype": "bfloat16", "parameters": {"t": 0.5}})",
      "r.json", true);
  for (const merge::Recipe* r : {&y, &j}) {
    ASSERT_EQ(r->models.size(), 2u);
    EXPECT_EQ(r->models[1].model, "B");
    EXPECT_EQ(r->models[0].parameters.at("weight"), merge::Gradient{0.25});
    EXPECT_EQ(r->models[1].parameters.at("weight"), (merge::Gradient{1, 3}));
    EXPECT_EQ(r->parameters.at("t"), merge::Gradient{0.5});
    EXPECT_EQ(r->dtype, DType::BF16);
  }
  // A quoted number is a string, not a path-like model name turned into a number.
  EXPECT_EQ(merge::parse_recipe("models:\n  - model: '7'\nmerge_method: linear\n", "q.yaml", false).models[0].model, "7");
}

TEST(RecipeTest, ErrorsNameFileAndField) {
  auto msg = [](const std::string& text) {
    try {
      merge::parse_recipe(text, "r.yaml", false);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(msg("models:\n  - model: A\n"), "r.yaml: merge_method: missing (expected passthrough, linear or slerp)");
  EXPECT_NE(msg("models:\n  - model: A\nmerge_method: linear\nparameters:\n  t: [a]\n").find("r.yaml: parameters.t:"),
            std::string::npos);
  EXPECT_NE(msg("models:\n  - model: A\nmerge_method: linear\nfoo: 1\n").find("r.yaml: foo: unknown"),
            std::string::npos);
  EXPECT_NE(msg("merge_method: linear\n").find("r.yaml: slices: expected exactly one"), std::string::npos);
  EXPECT_NE(msg("models: [\n").find("r.yaml: line "), std::string::npos);
  EXPECT_NE(msg("- 1\n- 2\n").find("r.yaml: expected a mapping"), std::string::npos);
}

TEST(MergeTest, SpecFromRecipe) {
  merge::Recipe r = merge::parse_recipe("models:\n  - model: A\n  - model: B\nmerge_method: slerp\nbase_model: B\n"
                          "parameters:\n  t: [0, 1]\n", "s.yaml", false);
  merge::MergeSpec s = merge::merge_spec_from_recipe(r);
  EXPECT_EQ(s.method, merge::MergeMethod::Slerp);
  EXPECT_EQ(s.models, (std::vector<std::string>{"B", "A"}));  // base first
  EXPECT_EQ(s.t, (merge::Gradient{0, 1}));
  merge::Recipe bad = merge::parse_recipe("models:\n  - model: A\n  - model: B\nmerge_method: linear\n", "l.yaml", false);
  try {
    merge::merge_spec_from_recipe(bad);
    FAIL();
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "l.yaml: models[0].parameters.weight: missing (linear needs a weight per model)");
  }
  EXPECT_THROW(merge::merge_spec_from_recipe(merge::parse_recipe("models:\n  - model: A\nmerge_method: slerp\n", "x", false)), Error);
  try {
    merge::merge_spec_from_recipe(merge::parse_recipe("models:\n  - model: A\n    parameters: {weight: 1, density: 0.5}\n"
                                        "merge_method: linear\n", "d.yaml", false));
    FAIL();
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "d.yaml: models[0].parameters.density: unsupported parameter for linear (expected only weight)");
  }
}

TEST(MergeTest, LayerPositionLikeMergekit) {
  EXPECT_EQ(merge::layer_position("model.embed_tokens.weight", 6), 0.0);
  EXPECT_EQ(merge::layer_position("model.layers.0.mlp.up_proj.weight", 6), 0.0);
  EXPECT_DOUBLE_EQ(merge::layer_position("model.layers.2.mlp.up_proj.weight", 6), 0.4);
  EXPECT_EQ(merge::layer_position("model.layers.5.mlp.up_proj.weight", 6), 1.0);
  EXPECT_EQ(merge::layer_position("model.layers.0.mlp.up_proj.weight", 1), 1.0);
  EXPECT_EQ(merge::layer_position("model.norm.weight", 6), 1.0);
  EXPECT_EQ(merge::layer_position("lm_head.weight", 6), 1.0);
}

std::vector<float> randn(size_t n, uint32_t seed) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d;
  std::vector<float> v(n);
  for (auto& x : v) x = d(g);
  return v;
}

TEST(MergeTest, LinearNormalisesWeightsAndIsExactOnItself) {
  auto x = randn(1000, 1), y = randn(1000, 2);
  std::vector<float> o(1000);
  merge::linear_merge({x.data(), y.data()}, {1, 3}, o.data(), o.size());
  for (size_t i = 0; i < o.size(); ++i) EXPECT_NEAR(o[i], 0.25f * x[i] + 0.75f * y[i], 1e-6f);
  for (std::vector<double> w : {std::vector<double>{0.3, 0.7}, {1.0 / 3, 1.0 / 3, 1.0 / 3}, {0.1, 0.2, 5}}) {
    std::vector<const float*> in(w.size(), x.data());
    merge::linear_merge(in, w, o.data(), o.size());
    EXPECT_EQ(o, x);
  }
  EXPECT_THROW(merge::linear_merge({x.data(), y.data()}, {1, -1}, o.data(), o.size()), Error);
}

TEST(MergeTest, SlerpEndpointsParallelAndKnownValue) {
  auto a = randn(4096, 3), b = randn(4096, 4);
  std::vector<float> o(a.size());
  merge::slerp_merge(a.data(), b.data(), 0.0, o.data(), o.size());
  EXPECT_EQ(o, a);
  merge::slerp_merge(a.data(), b.data(), 1.0, o.data(), o.size());
  EXPECT_EQ(o, b);
  // Nearly parallel (cos > 0.9995): plain lerp.
  std::vector<float> c(a.size());
  for (size_t i = 0; i < a.size(); ++i) c[i] = 2 * a[i] + 1e-3f * b[i];
  merge::slerp_merge(a.data(), c.data(), 0.3, o.data(), o.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_FLOAT_EQ(o[i], float(0.7 * a[i] + 0.3 * c[i]));
  // Orthogonal unit vectors: the midpoint lies on the circle.
  float u[2] = {1, 0}, v[2] = {0, 1}, m[2];
  merge::slerp_merge(u, v, 0.5, m, 2);
  EXPECT_NEAR(m[0], std::sqrt(0.5), 1e-7);
  EXPECT_NEAR(m[1], std::sqrt(0.5), 1e-7);
  merge::slerp_merge(u, v, 1.0 / 3, m, 2);  // 30 degrees
  EXPECT_NEAR(m[0], std::cos(M_PI / 6), 1e-7);
  EXPECT_NEAR(m[1], std::sin(M_PI / 6), 1e-7);
  // Norms differ: mergekit interpolates unnormalised inputs with angle weights.
  float p[2] = {2, 0}, q[2] = {0, 4};
  merge::slerp_merge(p, q, 0.5, m, 2);
  EXPECT_NEAR(m[0], 2 * std::sqrt(0.5), 1e-6);
  EXPECT_NEAR(m[1], 4 * std::sqrt(0.5), 1e-6);
}

struct MergeFixture : ::testing::Test {
  std::string dir, a, b;
  void SetUp() override {
    dir = temp_dir("merge");
    a = join_path(dir, "a");
    b = join_path(dir, "b");
    write_random_model(a, tiny_config(6), 11);
    write_random_model(b, tiny_config(6), 12);
  }
  void TearDown() override { remove_all(dir); }
  model::Checkpoint run(const std::string& args) {
    std::string out = join_path(dir, "out"), log;
    remove_all(out);
    EXPECT_EQ(run_solar("merge " + args + " -o " + out, &log), 0) << log;
    return formats::load_checkpoint(out);
  }
};

TEST_F(MergeFixture, ModelWithItselfIsIdentity) {
  model::Checkpoint x = formats::load_checkpoint(a);
  for (const char* args : {"--method linear --weight 0.3 --weight 0.7", "--method slerp --t 0.4"}) {
    model::Checkpoint m = run(std::string(args) + " -m " + a + " -m " + a);
    for (const auto& name : model::expected_tensor_names(x.config)) {
      const TensorView &s = x.get(name), &t = m.get(name);
      if (std::string(args).find("linear") != std::string::npos)
        EXPECT_TRUE(same_bytes(s, t)) << args << " " << name;
      else  // slerp of parallel tensors is lerp: a·(1-t) + a·t, f32 rounding only
        for (int64_t i = 0; i < s.numel(); ++i)
          ASSERT_NEAR(load_f32(s.data, s.dtype, i), load_f32(t.data, t.dtype, i), 1e-2 * std::fabs(load_f32(s.data, s.dtype, i)) + 1e-7) << name;
    }
  }
}

TEST_F(MergeFixture, SlerpEndpointsAndGradient) {
  model::Checkpoint x = formats::load_checkpoint(a), y = formats::load_checkpoint(b);
  model::Checkpoint t0 = run("--method slerp --t 0 -m " + a + " -m " + b);
  model::Checkpoint t1 = run("--method slerp --t 1 -m " + a + " -m " + b);
  for (const auto& name : model::expected_tensor_names(x.config)) {
    EXPECT_TRUE(same_bytes(x.get(name), t0.get(name))) << name;
    EXPECT_TRUE(same_bytes(y.get(name), t1.get(name))) << name;
  }
  // t = [0, 1] over 6 layers: layer 0 and embeddings are A, layer 5, norm and
  // head are B, layer 2 sits at t = 0.4.
  model::Checkpoint g = run("--method slerp --t 0,1 -m " + a + " -m " + b);
  EXPECT_TRUE(same_bytes(x.get("model.embed_tokens.weight"), g.get("model.embed_tokens.weight")));
  EXPECT_TRUE(same_bytes(x.get("model.layers.0.mlp.up_proj.weight"), g.get("model.layers.0.mlp.up_proj.weight")));
  EXPECT_TRUE(same_bytes(y.get("model.layers.5.mlp.up_proj.weight"), g.get("model.layers.5.mlp.up_proj.weight")));
  EXPECT_TRUE(same_bytes(y.get("model.norm.weight"), g.get("model.norm.weight")));
  EXPECT_TRUE(same_bytes(y.get("lm_head.weight"), g.get("lm_head.weight")));
  const TensorView &p = x.get("model.layers.2.self_attn.o_proj.weight"), &q = y.get("model.layers.2.self_attn.o_proj.weight"),
                   &r = g.get("model.layers.2.self_attn.o_proj.weight");
  std::vector<float> fp(p.numel()), fq(p.numel()), fr(p.numel());
  convert(p.data, p.dtype, fp.data(), DType::F32, fp.size());
  convert(q.data, q.dtype, fq.data(), DType::F32, fq.size());
  merge::slerp_merge(fp.data(), fq.data(), 0.4, fr.data(), fr.size());
  for (size_t i = 0; i < fr.size(); ++i) ASSERT_EQ(f32_to_bf16(fr[i]), static_cast<const uint16_t*>(r.data)[i]);
}

TEST_F(MergeFixture, LinearMatchesManualAverageViaRecipe) {
  std::string c = join_path(dir, "c");
  write_random_model(c, tiny_config(6), 13);
  std::string r = join_path(dir, "r.yaml");
  write_file_atomic(r, "models:\n  - model: " + a + "\n    parameters:\n      weight: 1\n  - model: " + b +
                           "\n    parameters:\n      weight: 2\n  - model: " + c +
                           "\n    parameters:\n      weight: 1\nmerge_method: linear\ndtype: float32\n");
  model::Checkpoint m = run("--recipe " + r);
  model::Checkpoint x = formats::load_checkpoint(a), y = formats::load_checkpoint(b), z = formats::load_checkpoint(c);
  for (const auto& name : model::expected_tensor_names(x.config)) {
    const TensorView& o = m.get(name);
    ASSERT_EQ(o.dtype, DType::F32);
    for (int64_t i = 0; i < o.numel(); i += 7) {
      double want = (load_f32(x.get(name).data, DType::BF16, i) + 2.0 * load_f32(y.get(name).data, DType::BF16, i) +
                     load_f32(z.get(name).data, DType::BF16, i)) / 4;
      ASSERT_EQ(load_f32(o.data, DType::F32, i), float(want)) << name << " " << i;
    }
  }
  EXPECT_NE(read_file(join_path(join_path(dir, "out"), "README.md")).find("merge_method: linear"), std::string::npos);
}

TEST_F(MergeFixture, MismatchedModelsFailBeforeWriting) {
  std::string v = join_path(dir, "v"), l = join_path(dir, "l"), out = join_path(dir, "out"), log;
  model::ModelConfig cv = tiny_config(6);
  cv.vocab_size = 600;
  write_random_model(v, cv, 5);
  write_random_model(l, tiny_config(5), 6);
  struct {
    std::string args, expect;
  } cases[] = {
      {"--method linear -m " + a + " -m " + v, "vocab_size: expected 512"},
      {"--method slerp --t 0.5 -m " + a + " -m " + l, "num_hidden_layers: expected 6"},
      {"--method slerp --t 0.5 -m " + a, "expected exactly two models"},
      {"--method slerp -m " + a + " -m " + b, "--t: missing"},
      {"--method linear --weight 1 -m " + a + " -m " + b, "expected one weight per model"},
      {"--method linear --weight 1 --weight -1 -m " + a + " -m " + b, "non-zero sum"},
      {"--method slerp --t 0,x -m " + a + " -m " + b, "--t: expected a number"},
      {"--method ties -m " + a + " -m " + b, "--method: expected linear or slerp"},
  };
  for (const auto& c : cases) {
    // Each names a flag (--method, --t, --weight): a usage error.
    EXPECT_EQ(run_solar("merge " + c.args + " -o " + out, &log), 2) << c.args << "\n" << log;
    EXPECT_NE(log.find(c.expect), std::string::npos) << "expected '" << c.expect << "' in: " << log;
    EXPECT_FALSE(path_exists(out));
    EXPECT_TRUE(no_leftovers(dir));
  }
}

}  // namespace

namespace {

// A real llama2.c model merged with itself comes back unchanged as an HF
// folder (q/k rows in HF's rotate-half order, permuted exactly once).
TEST(MergeRealTest, Stories260KWithItselfIsIdentity) {
  std::string bin = std::string(SOLAR_SHARED_DATA) + "/models/stories260K/stories260K.bin";
  if (!path_exists(bin)) GTEST_SKIP() << "shared data absent: " << bin;
  std::string dir = temp_dir("merge_real"), out = join_path(dir, "m"), log;
  ASSERT_EQ(run_solar("merge -m " + bin + " -m " + bin + " --weight 0.3 --weight 0.7 -o " + out, &log), 0) << log;
  model::Checkpoint src = formats::load_checkpoint(bin), m = formats::load_checkpoint(out);
  ASSERT_TRUE(src.config.rope_interleaved);
  for (const auto& name : model::expected_tensor_names(src.config)) {
    const TensorView &s = src.get(name), &t = m.get(name);
    std::vector<uint8_t> want(static_cast<const uint8_t*>(s.data), static_cast<const uint8_t*>(s.data) + s.nbytes);
    bool q = name.find("q_proj") != std::string::npos, k = name.find("k_proj") != std::string::npos;
    if (q || k)
      model::permute_rope_rows(s.data, want.data(), q ? src.config.num_attention_heads : src.config.num_key_value_heads,
                        src.config.head_dim, s.nbytes / size_t(s.shape[0]), true);
    ASSERT_EQ(t.nbytes, want.size()) << name;
    EXPECT_EQ(std::memcmp(t.data, want.data(), want.size()), 0) << name;
  }
  remove_all(dir);
}

}  // namespace
