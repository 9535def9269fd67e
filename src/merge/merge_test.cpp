#include "merge/merge.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "core/error.h"
#include "core/fs.h"
#include "core/rng.h"
#include "formats/gguf.h"
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
    EXPECT_EQ(r->models[0].parameters.at("weight")[0].value, merge::Gradient{0.25});
    EXPECT_EQ(r->models[1].parameters.at("weight")[0].value, (merge::Gradient{1, 3}));
    EXPECT_EQ(r->parameters.at("t")[0].value, merge::Gradient{0.5});
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
  EXPECT_EQ(msg("models:\n  - model: A\n"),
            "r.yaml: merge_method: missing (expected passthrough, linear, slerp, task_arithmetic, ties, dare_linear, "
            "dare_ties, model_stock)");
  EXPECT_NE(msg("models:\n  - model: A\nmerge_method: della\n").find("r.yaml: merge_method: expected passthrough"),
            std::string::npos);
  EXPECT_NE(msg("models:\n  - model: A\nmerge_method: ties\nparameters:\n  t:\n    - filter: mlp\n      valu: 1\n")
                .find("r.yaml: parameters.t[0].valu: unknown"),
            std::string::npos);
  EXPECT_NE(msg("models:\n  - model: A\nmerge_method: linear\nparameters:\n  t: [a]\n").find("r.yaml: parameters.t:"),
            std::string::npos);
  EXPECT_NE(msg("models:\n  - model: A\nmerge_method: linear\nfoo: 1\n").find("r.yaml: foo: unknown"),
            std::string::npos);
  EXPECT_NE(msg("merge_method: linear\n").find("r.yaml: slices: expected exactly one"), std::string::npos);
  EXPECT_NE(msg("models: [\n").find("r.yaml: line "), std::string::npos);
  EXPECT_NE(msg("- 1\n- 2\n").find("r.yaml: expected a mapping"), std::string::npos);
}

TEST(RecipeTest, FilteredParametersLikeMergekit) {
  // mergekit's standard SLERP recipe, as its README writes it.
  merge::Recipe r = merge::parse_recipe(
      "slices:\n  - sources:\n      - model: A\n        layer_range: [0, 6]\n      - model: B\n        layer_range: [0, 6]\n"
      "merge_method: slerp\nbase_model: A\nparameters:\n  t:\n    - filter: self_attn\n      value: [0, 0.5, 0.3, 0.7, 1]\n"
      "    - filter: mlp\n      value: [1, 0.5, 0.7, 0.3, 0]\n    - value: 0.5\ndtype: bfloat16\n",
      "s.yaml", false);
  const merge::Param& t = r.parameters.at("t");
  ASSERT_EQ(t.size(), 3u);
  EXPECT_DOUBLE_EQ(*merge::param_at(t, "model.layers.3.self_attn.q_proj.weight", 0.6), 0.3 * 0.6 + 0.7 * 0.4);  // index 2.4
  EXPECT_DOUBLE_EQ(*merge::param_at(t, "model.layers.3.mlp.up_proj.weight", 0.25), 0.5);
  EXPECT_EQ(*merge::param_at(t, "model.norm.weight", 1.0), 0.5);
  EXPECT_FALSE(merge::param_at({{"mlp", {1}}}, "lm_head.weight", 1.0));
  EXPECT_EQ(*merge::param_at({{"*", {2}}}, "lm_head.weight", 1.0), 2);
  merge::MergeSpec s = merge::merge_spec_from_recipe(r);
  EXPECT_EQ(s.method, merge::MergeMethod::Slerp);
  EXPECT_EQ(s.models, (std::vector<std::string>{"A", "B"}));
  ASSERT_EQ(s.layers.size(), 6u);
  EXPECT_EQ(s.layers[2].src, (std::vector<int>{2, 2}));
  EXPECT_DOUBLE_EQ(s.layers[2].x, 0.4);
  // Booleans become 1 / 0.
  merge::Recipe n = merge::parse_recipe("models:\n  - model: A\nmerge_method: ties\nparameters:\n  normalize: true\n"
                                        "  int8_mask: false\n", "n.yaml", false);
  EXPECT_EQ(n.parameters.at("normalize")[0].value, merge::Gradient{1});
  EXPECT_EQ(n.parameters.at("int8_mask")[0].value, merge::Gradient{0});
}

TEST(MergeTest, SpecFromRecipe) {
  merge::Recipe r = merge::parse_recipe("models:\n  - model: A\n  - model: B\nmerge_method: slerp\nbase_model: B\n"
                          "parameters:\n  t: [0, 1]\n", "s.yaml", false);
  merge::MergeSpec s = merge::merge_spec_from_recipe(r);
  EXPECT_EQ(s.method, merge::MergeMethod::Slerp);
  EXPECT_EQ(s.models, (std::vector<std::string>{"B", "A"}));  // base first
  EXPECT_EQ(s.parameters.at("t")[0].value, (merge::Gradient{0, 1}));
  merge::MergeSpec t = merge::merge_spec_from_recipe(merge::parse_recipe(
      "models:\n  - model: A\n  - model: B\n    parameters: {weight: 0.5, density: 0.3}\n  - model: C\n"
      "merge_method: ties\nbase_model: A\nparameters: {weight: 1, normalize: true}\n", "t.yaml", false));
  EXPECT_EQ(t.models, (std::vector<std::string>{"A", "B", "C"}));
  EXPECT_EQ(t.model_params[1].at("density")[0].value, merge::Gradient{0.3});
  auto err = [](const std::string& text) {
    try {
      merge::merge_spec_from_recipe(merge::parse_recipe(text, "d.yaml", false));
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(err("models:\n  - model: A\n    parameters: {weight: 1, density: 0.5}\nmerge_method: linear\n"),
            "d.yaml: models[0].parameters.density: unsupported parameter for linear (expected weight, normalize)");
  EXPECT_EQ(err("models:\n  - model: A\nmerge_method: slerp\n"), "d.yaml: base_model: missing (slerp needs a base model)");
  EXPECT_EQ(err("models:\n  - model: A\n  - model: B\nmerge_method: model_stock\nbase_model: A\n"),
            "d.yaml: models: expected at least 3 models for model_stock (base_model included), got 2");
  EXPECT_EQ(err("models:\n  - model: A\nmerge_method: ties\nbase_model: B\nparameters: {densty: 1}\n"),
            "d.yaml: parameters.densty: unsupported parameter for ties (expected weight, density, normalize, rescale, "
            "lambda, int8_mask)");
  EXPECT_NE(err("slices:\n  - sources:\n      - {model: A, layer_range: [0, 2]}\n      - {model: B, layer_range: [0, 3]}\n"
                "merge_method: slerp\nbase_model: A\nparameters: {t: 0.5}\n")
                .find("d.yaml: slices[0].sources[1].layer_range: expected 2 layers"),
            std::string::npos);
}

// Base 0 so the deltas are the models. Signs elected by the weighted sum;
// entries of the losing sign and pruned ones drop out of sum and divisor.
TEST(MergeTest, TiesSignElectionAndMagnitudeByHand) {
  auto run = [](double density, bool normalize) {
    std::vector<std::vector<float>> x = {{0, 0, 0, 0}, {1, -2, 3, 0.5f}, {-3, 1.5f, 1, -0.1f}};
    merge::TaskOptions o;
    o.sparsify = merge::TaskOptions::Magnitude;
    o.consensus = true;
    o.normalize = normalize;
    o.weight = {1, 1};
    o.density = {density, density};
    merge::task_merge(x, o);
    return x[0];
  };
  // Dense: sums [-2, -0.5, 4, 0.4] elect [-, -, +, +].
  EXPECT_EQ(run(1, true), (std::vector<float>{-3, -2, 2, 0.5f}));
  EXPECT_EQ(run(1, false), (std::vector<float>{-3, -2, 4, 0.5f}));
  // density 0.5 keeps the two largest |d|: [0, -2, 3, 0] and [-3, 1.5, 0, 0].
  EXPECT_EQ(run(0.5, true), (std::vector<float>{-3, -2, 3, 0}));
  // Task arithmetic: base + λ·Σ w·d; weights scale each delta.
  std::vector<std::vector<float>> x = {{1, 1}, {2, 0}, {1, 3}};
  merge::TaskOptions o;
  o.weight = {0.5, 2};
  o.density = {1, 1};
  o.lambda = 2;
  merge::task_merge(x, o);
  EXPECT_EQ(x[0], (std::vector<float>{1 + 2 * 0.5f, 1 + 2 * (-0.5f + 4)}));
}

TEST(MergeTest, DareMaskRescaleAndSeed) {
  const size_t n = 200000;
  auto run = [&](uint64_t key, bool rescale) {
    std::vector<std::vector<float>> x = {std::vector<float>(n, 1.0f), std::vector<float>(n, 3.0f)};
    merge::TaskOptions o;
    o.sparsify = merge::TaskOptions::Random;
    o.rescale = rescale;
    o.weight = {1};
    o.density = {0.3};
    o.keys = {key};
    merge::task_merge(x, o);
    return x[0];
  };
  std::vector<float> a = run(rng_key(7, "w#1"), true);
  size_t kept = 0;
  double sum = 0;
  for (float v : a) {
    kept += v != 1.0f;
    sum += v - 1.0;
  }
  EXPECT_NEAR(double(kept) / n, 0.3, 0.005);  // Bernoulli(0.3): sd 0.001
  EXPECT_NEAR(sum, 2.0 * n, 1e-3 * n);        // L1 rescale keeps Σ|d|: the expectation of the delta
  for (float v : a) {
    if (v == 1.0f) continue;
    ASSERT_NEAR(v - 1.0, 2.0 * n / double(kept), 1e-3);
  }
  EXPECT_EQ(run(rng_key(7, "w#1"), true), a);  // same seed and name: same mask
  EXPECT_NE(run(rng_key(8, "w#1"), true), a);
  std::vector<float> plain = run(rng_key(7, "w#1"), false);  // without rescale the kept entries are the raw delta
  for (size_t i = 0; i < n; ++i) ASSERT_EQ(plain[i], a[i] == 1.0f ? 1.0f : 3.0f);
}

TEST(MergeTest, ModelStockAngleFormula) {
  // Two unit deltas 60 degrees apart: cos = 0.5, t = 2·0.5 / (1 + 0.5) = 2/3.
  float c = 0.5f, s = std::sqrt(3.0f) / 2;
  std::vector<std::vector<float>> x = {{1, 1}, {2, 1}, {1 + c, 1 + s}};
  merge::model_stock_merge(x, 2);
  EXPECT_NEAR(x[0][0], 1 + 2.0 / 3 * (1 + c) / 2, 1e-6);
  EXPECT_NEAR(x[0][1], 1 + 2.0 / 3 * s / 2, 1e-6);
  // Opposite deltas (cos = -1): denominator 0, the base is kept; per row with filter_wise.
  std::vector<std::vector<float>> y = {{0, 0, 5, 5}, {1, 0, 6, 5}, {-1, 0, 6, 5}};
  merge::model_stock_merge(y, 2);
  EXPECT_EQ(y[0][0], 0);
  EXPECT_EQ(y[0][1], 0);
  EXPECT_FLOAT_EQ(y[0][2], 6);  // parallel deltas: cos = 1, t = 1, the mean
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

std::vector<float> f32_of(const model::Checkpoint& c, const std::string& name) {
  const TensorView& t = c.get(name);
  std::vector<float> v(size_t(t.numel()));
  convert(t.data, t.dtype, v.data(), DType::F32, v.size());
  return v;
}

// A recipe through the CLI equals the kernels applied tensor by tensor:
// mergekit's standard SLERP recipe as written, TIES with filters, model_stock.
TEST_F(MergeFixture, RecipesMatchKernels) {
  std::string c = join_path(dir, "c"), r = join_path(dir, "r.yaml");
  write_random_model(c, tiny_config(6), 13);
  model::Checkpoint x = formats::load_checkpoint(a), y = formats::load_checkpoint(b), z = formats::load_checkpoint(c);
  write_file_atomic(r, "slices:\n  - sources:\n      - model: " + a + "\n        layer_range: [0, 6]\n      - model: " + b +
                           "\n        layer_range: [0, 6]\nmerge_method: slerp\nbase_model: " + a +
                           "\nparameters:\n  t:\n    - filter: self_attn\n      value: [0, 0.5, 0.3, 0.7, 1]\n"
                           "    - filter: mlp\n      value: [1, 0.5, 0.7, 0.3, 0]\n    - value: 0.5\ndtype: float32\n");
  model::Checkpoint m = run("--recipe " + r);
  for (const char* name : {"model.layers.2.self_attn.k_proj.weight", "model.layers.4.mlp.down_proj.weight", "lm_head.weight"}) {
    double pos = merge::layer_position(name, 6);
    double t = std::string(name).find("self_attn") != std::string::npos ? merge::gradient_at({0, 0.5, 0.3, 0.7, 1}, pos)
               : std::string(name).find("mlp") != std::string::npos ? merge::gradient_at({1, 0.5, 0.7, 0.3, 0}, pos)
                                                                   : 0.5;
    auto p = f32_of(x, name), q = f32_of(y, name);
    std::vector<float> want(p.size());
    merge::slerp_merge(p.data(), q.data(), t, want.data(), want.size());
    EXPECT_EQ(f32_of(m, name), want) << name;
  }
  write_file_atomic(r, "models:\n  - model: " + b + "\n    parameters:\n      weight: 0.7\n      density: 0.4\n  - model: " +
                           c + "\n    parameters:\n      weight:\n        - filter: mlp\n          value: [0.2, 1]\n"
                           "        - value: 0.5\n      density: 0.6\nmerge_method: ties\nbase_model: " + a +
                           "\nparameters:\n  normalize: true\n  int8_mask: true\ndtype: float32\n");
  m = run("--recipe " + r);
  for (const char* name : {"model.layers.3.mlp.gate_proj.weight", "model.layers.1.self_attn.q_proj.weight"}) {
    double pos = merge::layer_position(name, 6);
    std::vector<std::vector<float>> in = {f32_of(x, name), f32_of(y, name), f32_of(z, name)};
    merge::TaskOptions o;
    o.sparsify = merge::TaskOptions::Magnitude;
    o.consensus = o.normalize = true;
    o.weight = {0.7, std::string(name).find("mlp") != std::string::npos ? merge::gradient_at({0.2, 1}, pos) : 0.5};
    o.density = {0.4, 0.6};
    merge::task_merge(in, o);
    EXPECT_EQ(f32_of(m, name), in[0]) << name;
  }
  write_file_atomic(r, "models:\n  - model: " + b + "\n  - model: " + c + "\nmerge_method: model_stock\nbase_model: " + a +
                           "\ndtype: float32\n");
  m = run("--recipe " + r);
  std::vector<std::vector<float>> in = {f32_of(x, "lm_head.weight"), f32_of(y, "lm_head.weight"), f32_of(z, "lm_head.weight")};
  merge::model_stock_merge(in, in[0].size());
  EXPECT_EQ(f32_of(m, "lm_head.weight"), in[0]);
}

// HF, GGUF (interleaved RoPE rows) and llama2.c inputs of one shape merge:
// a model with its own GGUF copy is the model.
TEST_F(MergeFixture, MixedFormatsMerge) {
  model::Checkpoint x = formats::load_checkpoint(a);
  std::string g = join_path(dir, "a.gguf");
  formats::write_gguf(g, x, DType::F32);
  ASSERT_TRUE(formats::load_checkpoint(g).config.rope_interleaved);
  model::Checkpoint m = run("--method linear -m " + a + " -m " + g + " --outtype f32");
  for (const auto& name : model::expected_tensor_names(x.config)) EXPECT_EQ(f32_of(m, name), f32_of(x, name)) << name;
  m = run("--method task_arithmetic --base-model " + g + " -m " + b + " --weight 1 --outtype f32");
  model::Checkpoint y = formats::load_checkpoint(b);
  for (const auto& name : model::expected_tensor_names(x.config)) {  // a + (b - a): f32 rounding only
    auto got = f32_of(m, name), want = f32_of(y, name);
    for (size_t i = 0; i < got.size(); ++i) ASSERT_NEAR(got[i], want[i], 1e-7) << name;
  }
}

// DARE through the CLI: the masks follow --seed, nothing else.
TEST_F(MergeFixture, DareSeeded) {
  std::string args = "--base-model " + a + " -m " + b + " --weight 1 --density 0.5 --outtype f32 --method ";
  for (const char* method : {"dare_linear", "dare_ties"}) {
    auto x = f32_of(run(args + method + " --seed 3"), "model.layers.1.mlp.up_proj.weight");
    auto y = f32_of(run(args + method + " --seed 3"), "model.layers.1.mlp.up_proj.weight");
    auto z = f32_of(run(args + method + " --seed 4"), "model.layers.1.mlp.up_proj.weight");
    EXPECT_EQ(x, y) << method;
    EXPECT_NE(x, z) << method;
  }
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
      {"--method slerp --t 0.5 -m " + a, "expected exactly 2 models for slerp"},
      {"--method slerp -m " + a + " -m " + b, "--t: missing"},
      {"--method linear --weight 1 -m " + a + " -m " + b, "expected one per model (2), got 1"},
      {"--method linear --weight 1 --weight -1 -m " + a + " -m " + b, "non-zero sum"},
      {"--method slerp --t 0,x -m " + a + " -m " + b, "--t: expected a number"},
      {"--method ties -m " + a + " -m " + b, "--base-model: missing"},
      {"--method della -m " + a + " -m " + b, "--method: expected linear, slerp, task_arithmetic"},
      {"--method ties --base-model " + a + " -m " + b + " --weight 1 --density 1.5", "density: expected a value in (0, 1]"},
      {"--method ties --base-model " + a + " -m " + b, "parameters.weight: missing"},
      {"--method model_stock --base-model " + a + " -m " + b + " -m " + b + " --weight 1 --weight 1",
       "--weight: not used by --method model_stock"},
      {"--method linear -m " + a + " -m " + b + " --density 0.5 --density 0.5", "--density: not used by --method linear"},
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

// Same shape, different vocabularies: refused before anything is written.
TEST(MergeRealTest, DifferentTokenizersRefused) {
  std::string tok = std::string(SOLAR_SHARED_DATA) + "/models/stories260K/tok512.bin";
  if (!path_exists(tok)) GTEST_SKIP() << "shared data absent: " << tok;
  std::string dir = temp_dir("merge_tok"), other = join_path(dir, "tok512.bin"), a = join_path(dir, "a"),
              b = join_path(dir, "b"), c = join_path(dir, "c"), out = join_path(dir, "out"), log;
  std::string bytes = read_file(tok);
  bytes.back() = bytes.back() == 'x' ? 'y' : 'x';  // the last piece's last character
  write_file_atomic(other, bytes);
  write_random_model(a, tiny_config(2), 1, tok);
  write_random_model(b, tiny_config(2), 2, other);
  write_random_model(c, tiny_config(2), 3, tok);
  EXPECT_EQ(run_solar("merge -m " + a + " -m " + c + " -o " + out, &log), 0) << log;
  remove_all(out);
  EXPECT_NE(run_solar("merge --method slerp --t 0.5 -m " + a + " -m " + b + " -o " + out, &log), 0);
  EXPECT_NE(log.find("tokenizer: expected the vocabulary of " + a), std::string::npos) << log;
  EXPECT_NE(log.find("token 511 differs in " + b), std::string::npos) << log;
  EXPECT_FALSE(path_exists(out));
  remove_all(dir);
}

// The issue's case: llama2.c + HF + GGUF of one model, averaged, is the model.
TEST(MergeRealTest, Llama2cHfGgufMix) {
  std::string bin = std::string(SOLAR_SHARED_DATA) + "/models/stories260K/stories260K.bin";
  if (!path_exists(bin)) GTEST_SKIP() << "shared data absent: " << bin;
  std::string dir = temp_dir("merge_mix"), hf = join_path(dir, "hf"), g = join_path(dir, "m.gguf"),
              out = join_path(dir, "out"), log;
  ASSERT_EQ(run_solar("convert -m " + bin + " -o " + hf, &log), 0) << log;
  ASSERT_EQ(run_solar("convert -m " + bin + " --to gguf -o " + g, &log), 0) << log;
  ASSERT_EQ(run_solar("merge -m " + bin + " -m " + hf + " -m " + g + " --outtype f32 -o " + out, &log), 0) << log;
  model::Checkpoint want = formats::load_checkpoint(hf), m = formats::load_checkpoint(out);
  for (const auto& name : model::expected_tensor_names(want.config)) {
    const TensorView &w = want.get(name), &t = m.get(name);
    for (int64_t i = 0; i < w.numel(); ++i)
      ASSERT_NEAR(load_f32(t.data, t.dtype, i), load_f32(w.data, w.dtype, i), 1e-6 * std::fabs(load_f32(w.data, w.dtype, i)) + 1e-9) << name;
  }
  remove_all(dir);
}

}  // namespace
