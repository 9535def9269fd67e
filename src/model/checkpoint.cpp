#include "model/checkpoint.h"

#include "core/error.h"
#include "core/fs.h"
#include "core/log.h"

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

// "model.layers.<N>.<suffix>" with N written canonically (no sign, no
// leading zero) and a known suffix; else false.
static bool layer_name(const std::string& name, int64_t* layer, std::string* suffix) {
  static const std::string kPrefix = "model.layers.";
  if (name.rfind(kPrefix, 0) != 0) return false;
  size_t dot = name.find('.', kPrefix.size());
  if (dot == std::string::npos) return false;
  std::string digits = name.substr(kPrefix.size(), dot - kPrefix.size());
  if (digits.empty() || digits.size() > 9 || digits.find_first_not_of("0123456789") != std::string::npos ||
      (digits.size() > 1 && digits[0] == '0'))
    return false;
  *layer = std::stoll(digits);
  *suffix = name.substr(dot + 1);
  for (const char* s : kLayerSuffixes)
    if (*suffix == s) return true;
  return false;
}

// Tied embeddings with an lm_head.weight beside them: HF ignores the copy;
// some exports store it identical, which is harmless. A different one
// means the file's head is not what would run, so it is refused.
void Checkpoint::check_tied_head() const {
  const TensorView& e = get("model.embed_tokens.weight");
  const TensorView& h = get("lm_head.weight");
  if (h.dtype == e.dtype && h.shape == e.shape && h.nbytes == e.nbytes && std::memcmp(h.data, e.data, h.nbytes) == 0) {
    log_info("model", source + ": lm_head.weight equals the tied model.embed_tokens.weight; using the embedding");
    return;
  }
  fail(source, "lm_head.weight", "differs from model.embed_tokens.weight but tie_word_embeddings is true (the head "
                                 "would be ignored): set tie_word_embeddings to false, or remove the tensor");
}

void Checkpoint::validate() const {
  config.validate(source);
  const int64_t L = config.num_hidden_layers;
  // Names first, over the tensors present: the work is bounded by the file,
  // never by what the config claims (2^31 layers beside a tiny model).
  bool tied_head = false;
  for (const auto& [name, t] : tensors) {
    if (name == "model.embed_tokens.weight" || name == "model.norm.weight") continue;
    if (name == "lm_head.weight") {
      tied_head = config.tie_word_embeddings;
      continue;
    }
    int64_t layer;
    std::string suffix;
    if (!layer_name(name, &layer, &suffix))
      fail(source, name, "unknown tensor (expected Llama names: model.embed_tokens.weight, model.layers.N.*, "
                         "model.norm.weight, lm_head.weight)");
    if (layer >= L)
      fail(source, name, "layer " + std::to_string(layer) + " is beyond num_hidden_layers (" + std::to_string(L) +
                             ") in the config");
  }
  if (tied_head) check_tied_head();
  // Every present name is an expected one, so a count short of the
  // expected means a tensor is missing: name the first.
  size_t count = size_t(L) * std::size(kLayerSuffixes) + 2 + (config.tie_word_embeddings ? 0 : 1);
  if (tensors.size() - (tied_head ? 1 : 0) < count) {
    for (const auto& name : expected_tensor_names(config))
      if (!has(name))
        fail(source, name, "missing tensor (the config's " + std::to_string(L) + " layers need " +
                               std::to_string(count) + " tensors, the file holds " + std::to_string(tensors.size()) + ")");
  }
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
