#include <gtest/gtest.h>

#include "core/json.h"
#include "model/config.h"
#include "testing/testing.h"

using namespace solar;
using solar::testing::error_of;

// config.json of mistralai/Mistral-7B-v0.1 and upstage/SOLAR-10.7B-v1.0, as published.
static const char* kMistral7B = R"({
  "architectures": ["MistralForCausalLM"], "bos_token_id": 1, "eos_token_id": 2, "hidden_act": "silu",
  "hidden_size": 4096, "initializer_range": 0.02, "intermediate_size": 14336, "max_position_embeddings": 32768,
  "model_type": "mistral", "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8,
  "rms_norm_eps": 1e-05, "rope_theta": 10000.0, "sliding_window": 4096, "tie_word_embeddings": false,
  "torch_dtype": "bfloat16", "transformers_version": "4.34.0.dev0", "use_cache": true, "vocab_size": 32000})";
static const char* kSolar107B = R"({
  "_name_or_path": "upstage/SOLAR-10.7B-v1.0", "architectures": ["LlamaForCausalLM"], "bos_token_id": 1,
  "eos_token_id": 2, "hidden_act": "silu", "hidden_size": 4096, "initializer_range": 0.02,
  "intermediate_size": 14336, "max_position_embeddings": 4096, "model_type": "llama", "num_attention_heads": 32,
  "num_hidden_layers": 48, "num_key_value_heads": 8, "pretraining_tp": 1, "rms_norm_eps": 1e-05,
  "rope_scaling": null, "rope_theta": 10000.0, "tie_word_embeddings": false, "torch_dtype": "float16",
  "transformers_version": "4.35.2", "use_cache": false, "vocab_size": 32000})";

static model::ModelConfig parse(const std::string& text) {
  return model::config_from_json(parse_json(text, "config.json"), "config.json");
}
// kSolar107B with `key` set to `value` (raw JSON).
static std::string solar_with(const std::string& key, const std::string& value) {
  auto j = nlohmann::json::parse(kSolar107B);
  j[key] = nlohmann::json::parse(value);
  return j.dump();
}

TEST(ConfigJson, RealMistralAndSolarConfigsLoad) {
  auto m = parse(kMistral7B);
  EXPECT_EQ(m.architecture, "MistralForCausalLM");
  EXPECT_EQ(m.sliding_window, 4096);
  EXPECT_EQ(m.head_dim, 128);
  EXPECT_EQ(m.num_parameters(), 7241732096);  // the published 7.24B
  auto s = parse(kSolar107B);
  EXPECT_EQ(s.num_hidden_layers, 48);
  EXPECT_EQ(s.torch_dtype, DType::F16);
  EXPECT_EQ(s.num_parameters(), 10731524096);  // the published 10.7B
  // Mistral-7B-Instruct-v0.2: sliding_window null (full attention), rope_theta 1e6.
  auto j = nlohmann::json::parse(kMistral7B);
  j["sliding_window"] = nullptr;
  j["rope_theta"] = 1e6;
  EXPECT_EQ(parse(j.dump()).sliding_window, 0);
  // What config_to_json writes reads back (converters, init, train).
  EXPECT_EQ(model::config_to_json(parse(model::config_to_json(s).dump())).dump(), model::config_to_json(s).dump());
  EXPECT_EQ(model::config_to_json(parse(model::config_to_json(m).dump())).dump(), model::config_to_json(m).dump());
}

TEST(ConfigJson, UnimplementedFieldsAreRefusedByName) {
  struct Case {
    const char *key, *value, *want;
  } cases[] = {
      {"hidden_act", "\"gelu\"", "config.json: hidden_act: unsupported activation string \"gelu\" (this engine implements silu only)"},
      {"hidden_act", "[1]", "config.json: hidden_act: unsupported activation array [1]"},
      {"attention_bias", "true", "config.json: attention_bias: unsupported: boolean true"},
      {"mlp_bias", "true", "config.json: mlp_bias: unsupported: boolean true"},
      {"rope_scaling", "{\"type\": \"linear\", \"factor\": 2.0}", "config.json: rope_scaling.rope_type: unsupported RoPE variant 'linear'"},
      {"bos_token_id", "-1", "config.json: bos_token_id: expected 0 <= id < vocab_size (32000), got -1"},
      {"eos_token_id", "-5", "config.json: eos_token_id: expected 0 <= id < vocab_size (32000), got -5"},
      {"eos_token_id", "32000", "config.json: eos_token_id: expected 0 <= id < vocab_size (32000), got 32000"},
      {"num_hidden_layers", "2147483647", "config.json: num_hidden_layers: expected at most 4096, got 2147483647"},
      {"hidden_size", "1048576", "config.json: hidden_size: expected at most 131072, got 1048576"},
      {"vocab_size", "2147483647", "config.json: vocab_size: expected at most 16777216"},
      {"max_position_embeddings", "2000000000", "config.json: max_position_embeddings: expected at most 16777216"},
      {"num_attention_heads", "0", "config.json: num_attention_heads: expected a positive integer, got 0"},
      {"rope_theta", "1e308", ""},  // finite: accepted
      {"rms_norm_eps", "2", "config.json: rms_norm_eps: expected 0 < eps < 1"},
      {"rope_theta", "-1", "config.json: rope_theta: expected a finite number > 0"},
      {"rope_parameters", "{\"rope_type\": \"default\", \"rope_theta\": 500000.0}",
       "config.json: rope_parameters.rope_theta: expected the top-level rope_theta (number 10000.0), got a different number 500000.0"},
  };
  for (const auto& c : cases) {
    std::string e = error_of([&] { parse(solar_with(c.key, c.value)); });
    if (*c.want == 0) EXPECT_EQ(e, "") << c.key;
    else EXPECT_EQ(e.rfind(c.want, 0), 0u) << c.key << " = " << c.value << ": " << e;
  }
  // Explicitly off is fine: what transformers 5 writes for every Llama.
  EXPECT_NO_THROW(parse(solar_with("attention_bias", "false")));
  EXPECT_NO_THROW(parse(solar_with("mlp_bias", "false")));
  EXPECT_NO_THROW(parse(solar_with("hidden_act", "\"swish\"")));
}

// Before: a RoPE type of another JSON type escaped as nlohmann's
// "[json.exception.type_error.302] …" naming neither file nor field, and a
// torch_dtype that is no string was ignored.
TEST(ConfigJson, FieldsOfTheWrongJsonTypeAreNamed) {
  struct Case {
    const char *key, *value, *want;
  } cases[] = {
      {"rope_scaling", "{\"rope_type\": 5}", "config.json: rope_scaling.rope_type: expected a string, got number 5"},
      {"rope_scaling", "{\"type\": true}", "config.json: rope_scaling.type: expected a string, got boolean true"},
      {"rope_parameters", "{\"rope_type\": [\"default\"]}", "config.json: rope_parameters.rope_type: expected a string, got array"},
      {"torch_dtype", "5", "config.json: torch_dtype: expected a string such as \"bfloat16\", got number 5"},
      {"torch_dtype", "{}", "config.json: torch_dtype: expected a string such as \"bfloat16\", got object"},
  };
  for (const auto& c : cases) {
    std::string e;
    try {
      e = error_of([&] { parse(solar_with(c.key, c.value)); });
    } catch (const std::exception& x) {
      e = std::string("not a solar::Error: ") + x.what();
    }
    EXPECT_EQ(e.rfind(c.want, 0), 0u) << c.key << " = " << c.value << ": " << e;
  }
  EXPECT_NO_THROW(parse(solar_with("torch_dtype", "null")));
  EXPECT_NO_THROW(parse(solar_with("rope_scaling", "{\"rope_type\": \"default\", \"type\": null}")));
}

TEST(ConfigJson, ParameterCountNeverWraps) {
  model::ModelConfig c = model::preset_config("solar-10.7b");
  c.num_hidden_layers = 2147483647;  // not validated: num_parameters still must not print negative
  c.vocab_size = 2147483647;
  c.hidden_size = 2147483647;
  std::string e = error_of([&] { c.num_parameters(); });
  EXPECT_NE(e.find("num_parameters: overflows int64"), std::string::npos) << e;
  c = model::preset_config("solar-10.7b");
  c.num_hidden_layers = model::kMaxLayers;  // the largest accepted shape still fits
  c.vocab_size = model::kMaxVocab;
  EXPECT_GT(c.num_parameters(), 0);
}
