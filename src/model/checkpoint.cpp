#include "model/checkpoint.h"

#include "core/error.h"
#include "core/fs.h"

#include <cctype>
#include <cstring>
#include <filesystem>

namespace solar::model {

const TensorView& Checkpoint::get(const std::string& name) const {
  auto it = tensors.find(name);
  if (it == tensors.end()) fail(source, name, "missing tensor");
  return it->second;
}

const TensorView& Checkpoint::lm_head() const {
  if (config.tie_word_embeddings || !has("lm_head.weight")) return get("model.embed_tokens.weight");
  return get("lm_head.weight");
}

TensorView Checkpoint::adopt(std::string name, DType dt, std::vector<int64_t> shape, std::vector<uint8_t> data) {
  auto buf = std::make_shared<std::vector<uint8_t>>(std::move(data));
  owned.push_back(buf);
  TensorView v{std::move(name), dt, std::move(shape), buf->data(), buf->size()};
  return v;
}

std::string layer_tensor(int layer, const char* suffix) {
  return "model.layers." + std::to_string(layer) + "." + suffix;
}

static const char* kLayerSuffixes[] = {
    "input_layernorm.weight", "self_attn.q_proj.weight", "self_attn.k_proj.weight",
    "self_attn.v_proj.weight", "self_attn.o_proj.weight", "post_attention_layernorm.weight",
    "mlp.gate_proj.weight",   "mlp.up_proj.weight",      "mlp.down_proj.weight"};

std::vector<std::string> expected_tensor_names(const ModelConfig& c) {
  std::vector<std::string> n{"model.embed_tokens.weight"};
  for (int l = 0; l < c.num_hidden_layers; ++l)
    for (const char* s : kLayerSuffixes) n.push_back(layer_tensor(l, s));
  n.push_back("model.norm.weight");
  if (!c.tie_word_embeddings) n.push_back("lm_head.weight");
  return n;
}

std::vector<int64_t> expected_shape(const ModelConfig& c, const std::string& name) {
  int64_t d = c.hidden_size, f = c.intermediate_size, v = c.vocab_size, q = c.q_dim(), kv = c.kv_dim();
  auto ends = [&](const char* s) {
    size_t n = std::strlen(s);
    return name.size() >= n && name.compare(name.size() - n, n, s) == 0;
  };
  if (name == "model.embed_tokens.weight" || name == "lm_head.weight") return {v, d};
  if (name == "model.norm.weight" || ends("layernorm.weight")) return {d};
  if (ends("q_proj.weight")) return {q, d};
  if (ends("k_proj.weight") || ends("v_proj.weight")) return {kv, d};
  if (ends("o_proj.weight")) return {d, q};
  if (ends("gate_proj.weight") || ends("up_proj.weight")) return {f, d};
  if (ends("down_proj.weight")) return {d, f};
  return {};
}

void Checkpoint::validate() const {
  config.validate(source);
  for (const auto& name : expected_tensor_names(config)) {
    const TensorView& t = get(name);
    auto want = expected_shape(config, name);
    if (t.shape != want)
      fail(source, name, "expected shape " + shape_str(want) + " from config, got " + shape_str(t.shape));
    // Weight matrices may be block-quantized along their rows; norms stay float.
    if (t.shape.size() == 1 && !is_float(t.dtype))
      fail(source, name, std::string("expected a norm weight in F32, F16 or BF16, got ") + dtype_name(t.dtype));
    if (!is_float(t.dtype) && !is_quantized(t.dtype))
      fail(source, name, std::string("expected F32, F16, BF16 or a GGML block type (Q4_0, Q8_0, Q4_K, …), got ") +
                             dtype_name(t.dtype));
    int64_t block = dtype_block_elems(t.dtype);
    if (t.shape.back() % block != 0)
      fail(source, name, std::string("expected a row length that is a multiple of ") + dtype_name(t.dtype) +
                             "'s " + std::to_string(block) + "-element block, got rows of " +
                             std::to_string(t.shape.back()) + " in " + shape_str(t.shape));
    size_t bytes = tensor_bytes(t);
    if (t.nbytes != bytes)
      fail(source, name, "byte size " + std::to_string(t.nbytes) + " does not match shape " + shape_str(t.shape) +
                             " x " + dtype_name(t.dtype) + " (" + std::to_string(bytes) + " bytes)");
  }
}

}  // namespace solar::model
