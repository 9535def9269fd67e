#include "model/config.h"

#include <cmath>
#include <sstream>

#include "core/error.h"
#include "core/json.h"

namespace solar::model {

// int64 arithmetic that throws instead of wrapping.
static int64_t mul(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_mul_overflow(a, b, &r)) fail("model config", "num_parameters", "overflows int64 (shape too large)");
  return r;
}
static int64_t add(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_add_overflow(a, b, &r)) fail("model config", "num_parameters", "overflows int64 (shape too large)");
  return r;
}

int64_t ModelConfig::num_parameters() const {
  int64_t d = hidden_size, f = intermediate_size, v = vocab_size;
  int64_t q = mul(num_attention_heads, head_dim), kv = mul(num_key_value_heads, head_dim);
  int64_t per_layer = add(add(mul(2, mul(d, q)), mul(2, mul(d, kv))), add(mul(3, mul(d, f)), mul(2, d)));
  return add(add(mul(v, d), mul(num_hidden_layers, per_layer)), add(d, tie_word_embeddings ? 0 : mul(v, d)));
}

void ModelConfig::validate(const std::string& src) const {
  auto pos = [&](const char* field, int64_t v, int64_t max) {
    if (v <= 0) fail(src, field, "expected a positive integer, got " + std::to_string(v));
    if (v > max) fail(src, field, "expected at most " + std::to_string(max) + ", got " + std::to_string(v));
  };
  pos("hidden_size", hidden_size, kMaxHiddenSize);
  pos("intermediate_size", intermediate_size, kMaxIntermediateSize);
  pos("num_hidden_layers", num_hidden_layers, kMaxLayers);
  pos("num_attention_heads", num_attention_heads, kMaxHeads);
  pos("num_key_value_heads", num_key_value_heads, kMaxHeads);
  pos("head_dim", head_dim, kMaxHeadDim);
  pos("vocab_size", vocab_size, kMaxVocab);
  pos("max_position_embeddings", max_position_embeddings, kMaxPositions);
  if (num_attention_heads % num_key_value_heads != 0)
    fail(src, "num_key_value_heads", "expected a divisor of num_attention_heads (" +
                                         std::to_string(num_attention_heads) + "), got " +
                                         std::to_string(num_key_value_heads));
  if (head_dim % 2 != 0) fail(src, "head_dim", "expected an even number for RoPE, got " + std::to_string(head_dim));
  if (!(rms_norm_eps > 0 && rms_norm_eps < 1)) fail(src, "rms_norm_eps", "expected 0 < eps < 1");
  if (!(rope_theta > 0 && std::isfinite(rope_theta))) fail(src, "rope_theta", "expected a finite number > 0");
  if (sliding_window < 0) fail(src, "sliding_window", "expected >= 0 or null");
  for (auto [field, id] : {std::pair{"bos_token_id", bos_token_id}, {"eos_token_id", eos_token_id}})
    if (id < 0 || id >= vocab_size)
      fail(src, field, "expected 0 <= id < vocab_size (" + std::to_string(vocab_size) + "), got " + std::to_string(id));
}

static int get_int(const nlohmann::json& j, const char* k, const std::string& src, bool required, int def) {
  if (!j.contains(k) || j[k].is_null()) {
    if (required) fail(src, k, "missing (expected an integer)");
    return def;
  }
  if (!j[k].is_number_integer()) fail(src, k, "expected an integer, got " + json_brief(j[k]));
  int64_t v = j[k].get<int64_t>();
  if (v < INT32_MIN || v > INT32_MAX) fail(src, k, "out of range: " + json_brief(j[k]));
  return int(v);
}
static double get_num(const nlohmann::json& j, const char* k, const std::string& src, double def) {
  if (!j.contains(k) || j[k].is_null()) return def;
  if (!j[k].is_number()) fail(src, k, "expected a number, got " + json_brief(j[k]));
  return j[k].get<double>();
}

// What HF's LlamaConfig / MistralConfig can say that this engine does not
// compute. Running such a model as plain Llama gives wrong outputs with no
// error, so each is refused by name. (pretraining_tp only splits HF's matmuls,
// attention_dropout acts in HF training only: both are ignored.)
static void refuse_unimplemented(const nlohmann::json& j, const std::string& src) {
  if (j.contains("hidden_act") && !j["hidden_act"].is_null()) {
    const auto& a = j["hidden_act"];
    if (!a.is_string() || (a != "silu" && a != "swish"))
      fail(src, "hidden_act", "unsupported activation " + json_brief(a) + " (this engine implements silu only)");
  }
  for (const char* k : {"attention_bias", "mlp_bias"}) {
    if (!j.contains(k) || j[k].is_null() || j[k] == false) continue;
    fail(src, k, "unsupported: " + json_brief(j[k]) + " (this engine implements bias-free projections only; expected false)");
  }
}

ModelConfig config_from_json(const nlohmann::json& j, const std::string& src) {
  if (!j.is_object()) fail(src, "", "expected a JSON object");
  ModelConfig c;
  std::string arch;
  if (j.contains("architectures")) {
    if (!j["architectures"].is_array() || j["architectures"].empty() || !j["architectures"][0].is_string())
      fail(src, "architectures", "expected a list of strings");
    arch = j["architectures"][0].get<std::string>();
  }
  std::string mt = j.contains("model_type") && j["model_type"].is_string() ? j["model_type"].get<std::string>() : "";
  if (arch.empty()) arch = mt == "mistral" ? "MistralForCausalLM" : mt == "llama" ? "LlamaForCausalLM" : "";
  if (arch != "LlamaForCausalLM" && arch != "MistralForCausalLM")
    fail(src, "architectures", "unsupported architecture '" + arch +
                                   "' (expected LlamaForCausalLM or MistralForCausalLM)");
  c.architecture = arch;
  c.model_type = arch == "MistralForCausalLM" ? "mistral" : "llama";
  c.hidden_size = get_int(j, "hidden_size", src, true, 0);
  c.intermediate_size = get_int(j, "intermediate_size", src, true, 0);
  c.num_hidden_layers = get_int(j, "num_hidden_layers", src, true, 0);
  c.num_attention_heads = get_int(j, "num_attention_heads", src, true, 0);
  c.num_key_value_heads = get_int(j, "num_key_value_heads", src, false, c.num_attention_heads);
  c.vocab_size = get_int(j, "vocab_size", src, true, 0);
  c.max_position_embeddings = get_int(j, "max_position_embeddings", src, false, 2048);
  c.head_dim = get_int(j, "head_dim", src, false, 0);
  if (c.head_dim == 0 && c.num_attention_heads > 0) {
    if (c.hidden_size % c.num_attention_heads != 0)
      fail(src, "hidden_size", "expected a multiple of num_attention_heads when head_dim is absent");
    c.head_dim = c.hidden_size / c.num_attention_heads;
  }
  c.rms_norm_eps = float(get_num(j, "rms_norm_eps", src, 1e-6));
  c.rope_theta = get_num(j, "rope_theta", src, 10000.0);
  // transformers >= 5 nests RoPE settings in rope_parameters; older configs
  // use rope_scaling (null or {"rope_type": "default"}). Scaled RoPE variants
  // (linear, dynamic, yarn, llama3) change the model: refuse them clearly.
  for (const char* key : {"rope_parameters", "rope_scaling"}) {
    if (!j.contains(key) || j[key].is_null()) continue;
    const auto& rp = j[key];
    if (!rp.is_object()) fail(src, key, "expected an object or null");
    std::string type = "default";
    for (const char* tk : {"type", "rope_type"}) {  // rope_type wins, as in HF
      if (!rp.contains(tk) || rp[tk].is_null()) continue;
      if (!rp[tk].is_string()) fail(src, std::string(key) + "." + tk, "expected a string, got " + json_brief(rp[tk]));
      type = rp[tk].get<std::string>();
    }
    if (type != "default") fail(src, std::string(key) + ".rope_type", "unsupported RoPE variant '" + type + "' (expected default)");
    if (rp.contains("rope_theta")) {
      double theta = get_num(rp, "rope_theta", src + ": " + key, c.rope_theta);
      // Both spellings present and different: no way to tell which one the model was trained with.
      if (j.contains("rope_theta") && !j["rope_theta"].is_null() && theta != c.rope_theta)
        fail(src, std::string(key) + ".rope_theta", "expected the top-level rope_theta (" + json_brief(j["rope_theta"]) +
                                                        "), got a different " + json_brief(rp["rope_theta"]));
      c.rope_theta = theta;
    }
  }
  refuse_unimplemented(j, src);
  if (j.contains("tie_word_embeddings")) {
    if (!j["tie_word_embeddings"].is_boolean()) fail(src, "tie_word_embeddings", "expected true or false");
    c.tie_word_embeddings = j["tie_word_embeddings"].get<bool>();
  }
  c.bos_token_id = get_int(j, "bos_token_id", src, false, 1);
  c.eos_token_id = get_int(j, "eos_token_id", src, false, 2);
  c.sliding_window = get_int(j, "sliding_window", src, false, 0);
  if (j.contains("torch_dtype") && !j["torch_dtype"].is_null()) {
    if (!j["torch_dtype"].is_string())
      fail(src, "torch_dtype", "expected a string such as \"bfloat16\", got " + json_brief(j["torch_dtype"]));
    c.torch_dtype = parse_dtype(j["torch_dtype"].get<std::string>(), src + ": torch_dtype");
  }
  c.validate(src);
  return c;
}

nlohmann::json config_to_json(const ModelConfig& c) {
  nlohmann::json j;
  j["architectures"] = {c.architecture};
  j["model_type"] = c.model_type;
  j["hidden_size"] = c.hidden_size;
  j["intermediate_size"] = c.intermediate_size;
  j["num_hidden_layers"] = c.num_hidden_layers;
  j["num_attention_heads"] = c.num_attention_heads;
  j["num_key_value_heads"] = c.num_key_value_heads;
  j["head_dim"] = c.head_dim;
  j["vocab_size"] = c.vocab_size;
  j["max_position_embeddings"] = c.max_position_embeddings;
  j["rms_norm_eps"] = c.rms_norm_eps;
  j["rope_theta"] = c.rope_theta;
  j["rope_scaling"] = nullptr;
  j["rope_parameters"] = {{"rope_theta", c.rope_theta}, {"rope_type", "default"}};
  j["tie_word_embeddings"] = c.tie_word_embeddings;
  j["bos_token_id"] = c.bos_token_id;
  j["eos_token_id"] = c.eos_token_id;
  j["hidden_act"] = "silu";
  j["attention_bias"] = false;
  j["attention_dropout"] = 0.0;
  j["initializer_range"] = 0.02;
  if (c.model_type == "mistral") j["sliding_window"] = c.sliding_window ? nlohmann::json(c.sliding_window) : nlohmann::json(nullptr);
  j["torch_dtype"] = c.torch_dtype == DType::BF16 ? "bfloat16" : c.torch_dtype == DType::F16 ? "float16" : "float32";
  j["use_cache"] = true;
  return j;
}

static ModelConfig make(int d, int f, int L, int h, int kv, int v, int ctx, bool tie) {
  ModelConfig c;
  c.hidden_size = d;
  c.intermediate_size = f;
  c.num_hidden_layers = L;
  c.num_attention_heads = h;
  c.num_key_value_heads = kv;
  c.head_dim = d / h;
  c.vocab_size = v;
  c.max_position_embeddings = ctx;
  c.tie_word_embeddings = tie;
  return c;
}

ModelConfig preset_config(const std::string& n) {
  ModelConfig c;
  if (n == "tiny") c = make(64, 172, 5, 8, 4, 512, 512, true);
  else if (n == "10m") c = make(256, 688, 8, 8, 4, 8192, 1024, true);
  else if (n == "50m") c = make(512, 1376, 10, 8, 4, 16384, 1024, true);
  else if (n == "110m") c = make(768, 2048, 12, 12, 12, 32000, 1024, true);
  else if (n == "1b") c = make(2048, 5632, 16, 32, 4, 32000, 2048, false);
  else if (n == "mistral-7b" || n == "solar-10.7b") {
    c = make(4096, 14336, n == "mistral-7b" ? 32 : 48, 32, 8, 32000, n == "mistral-7b" ? 32768 : 4096, false);
    c.architecture = n == "mistral-7b" ? "MistralForCausalLM" : "LlamaForCausalLM";
    c.model_type = n == "mistral-7b" ? "mistral" : "llama";
    c.rope_theta = 10000.0;
    c.sliding_window = n == "mistral-7b" ? 4096 : 0;
    c.torch_dtype = DType::BF16;
  } else {
    fail("--preset", "", "unknown preset '" + n + "' (expected one of: " + preset_names() + ")");
  }
  return c;
}

std::string preset_names() { return "tiny, 10m, 50m, 110m, 1b, mistral-7b, solar-10.7b"; }

void require_same_shape(const ModelConfig& ref, const ModelConfig& c, bool layers, const std::string& where,
                        const std::string& field_prefix, const std::string& ref_name, const std::string& name) {
  auto same = [&](const char* field, auto x, auto want) {
    if (x == want) return;
    std::ostringstream ss;
    ss << "expected " << want << " like " << ref_name << ", got " << x << " in " << name;
    fail(where, field_prefix + field, ss.str());
  };
  same("architecture", c.architecture, ref.architecture);
  same("hidden_size", c.hidden_size, ref.hidden_size);
  same("intermediate_size", c.intermediate_size, ref.intermediate_size);
  if (layers) same("num_hidden_layers", c.num_hidden_layers, ref.num_hidden_layers);
  same("num_attention_heads", c.num_attention_heads, ref.num_attention_heads);
  same("num_key_value_heads", c.num_key_value_heads, ref.num_key_value_heads);
  same("head_dim", c.head_dim, ref.head_dim);
  same("vocab_size", c.vocab_size, ref.vocab_size);
  same("tie_word_embeddings", c.tie_word_embeddings, ref.tie_word_embeddings);
  same("rope_interleaved", c.rope_interleaved, ref.rope_interleaved);
}

}  // namespace solar::model
