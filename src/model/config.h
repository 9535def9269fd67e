// solar/model/config.h — the shape of a Llama-architecture model.
//
// Mirrors Hugging Face's LlamaConfig / MistralConfig field names so that
// config.json round-trips. Every format reader fills one of these.
// Threads: a ModelConfig is a plain value; its functions touch no shared state.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "core/dtype.h"

namespace solar::model {

// Upper bounds validate() enforces: far above any released Llama or Mistral
// (Llama-3.1-405B: hidden 16384, intermediate 53248, 126 layers, 128 heads,
// vocab 128256), low enough that every size derived from them (parameters,
// tensor bytes) fits in int64 with room to spare, so a config claiming
// 2^31 layers fails in validate() before anything is sized from it.
constexpr int kMaxHiddenSize = 1 << 17;
constexpr int kMaxIntermediateSize = 1 << 20;
constexpr int kMaxLayers = 1 << 12;
constexpr int kMaxHeads = 1 << 12;
constexpr int kMaxHeadDim = 1 << 12;
constexpr int kMaxVocab = 1 << 24;
constexpr int kMaxPositions = 1 << 24;

struct ModelConfig {
  std::string architecture = "LlamaForCausalLM";  // or MistralForCausalLM
  std::string model_type = "llama";               // or "mistral"
  int hidden_size = 0;
  int intermediate_size = 0;
  int num_hidden_layers = 0;
  int num_attention_heads = 0;
  int num_key_value_heads = 0;
  int head_dim = 0;  // 0 until resolved; always hidden_size / heads unless given
  int vocab_size = 0;
  int max_position_embeddings = 2048;
  float rms_norm_eps = 1e-5f;
  double rope_theta = 10000.0;
  bool tie_word_embeddings = false;
  int bos_token_id = 1;
  int eos_token_id = 2;
  int sliding_window = 0;  // 0 = none (full causal attention)
  DType torch_dtype = DType::F32;
  // true: RoPE rotates adjacent pairs (x0,x1),(x2,x3)… with q/k rows as
  // llama2.c and GGUF store them; false: HF "rotate_half" on split halves.
  // Checkpoints are run in place in either layout; converters permute rows.
  bool rope_interleaved = false;

  int kv_dim() const { return num_key_value_heads * head_dim; }
  int q_dim() const { return num_attention_heads * head_dim; }
  // Overflow-checked (throws solar::Error naming the product), so it never
  // prints negative for a config that skipped validate().
  int64_t num_parameters() const;
  // Throws solar::Error "<source>: <field>: expected …" on the first problem:
  // bounds above, divisibility, and ids inside the vocabulary.
  void validate(const std::string& source) const;
};

// config.json <-> ModelConfig. from_json names `source` (the file) in errors
// and requires the fields a Llama model cannot run without. Fields that
// change the model in ways the engine does not implement are refused by
// name (hidden_act other than silu, attention_bias/mlp_bias true, scaled
// RoPE) rather than silently run as plain Llama; fields with no effect on
// the forward pass (pretraining_tp, initializer_range, pad_token_id, …) are
// ignored.
ModelConfig config_from_json(const nlohmann::json& j, const std::string& source);
nlohmann::json config_to_json(const ModelConfig& c);

// Fails "<where>: <field_prefix><field>: expected X like <ref_name>, got Y in
// <name>" unless c has ref's architecture and tensor shapes (and, when
// `layers`, its layer count): models that merge or stack layer for layer.
void require_same_shape(const ModelConfig& ref, const ModelConfig& c, bool layers, const std::string& where,
                        const std::string& field_prefix, const std::string& ref_name, const std::string& name);

// Named shapes for `solar init --preset` and benchmarks:
// "tiny", "10m", "50m", "110m", "1b", "mistral-7b", "solar-10.7b".
ModelConfig preset_config(const std::string& name);
std::string preset_names();

}  // namespace solar::model
