#include "model/checkpoint.h"

#include "core/error.h"
#include "core/fs.h"
#include "formats/gguf.h"
#include "formats/hf.h"
#include "formats/llama2c.h"

#include <cctype>
#include <cstring>
#include <filesystem>

namespace solar {

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
    if (!is_float(t.dtype)) fail(source, name, std::string("expected F32, F16 or BF16, got ") + dtype_name(t.dtype));
    if (t.nbytes != size_t(t.numel()) * dtype_size(t.dtype))
      fail(source, name, "byte size " + std::to_string(t.nbytes) + " does not match shape " + shape_str(t.shape));
  }
}

void fail_not_a_model(const std::string& path, const std::string& why) {
  fail(path, "",
       "not a model file (expected a Hugging Face folder with config.json and safetensors, a GGUF file or a "
       "llama2.c .bin)" + (why.empty() ? "" : ": " + why));
}

ModelFormat detect_model_format(const std::string& path) {
  if (!path_exists(path)) fail(path, "", "no such file or folder");
  if (is_dir(path)) return ModelFormat::Hf;
  std::string head = read_file_prefix(path, 10);
  if (head.starts_with("GGUF")) return ModelFormat::Gguf;
  // safetensors: u64 little-endian header length, then the JSON header.
  if (head.size() == 10 && head[6] == 0 && head[7] == 0 && head[8] == '{' &&
      (head[9] == '"' || std::isspace(uint8_t(head[9])))) {
    std::string dir = std::filesystem::path(path).parent_path().string();
    if (dir.empty()) dir = ".";
    bool beside = path_exists(join_path(dir, "config.json"));
    fail(path, "", "a safetensors file on its own: expected the Hugging Face folder that holds it and config.json" +
                       (beside ? " (" + dir + ")" : ""));
  }
  if (path.ends_with(".gguf")) {
    std::string magic;
    for (char c : head.substr(0, 4)) magic += std::isprint(uint8_t(c)) ? std::string(1, c) : "?";
    fail_not_a_model(path, "a .gguf file starts with the magic \"GGUF\", this one with \"" + magic + "\"");
  }
  return ModelFormat::Llama2c;
}

const char* model_format_name(ModelFormat f) {
  return f == ModelFormat::Hf ? "hf" : f == ModelFormat::Gguf ? "gguf" : "llama2c";
}

Checkpoint load_checkpoint(const std::string& path, const LoadOptions& opt) {
  Checkpoint ck;
  switch (detect_model_format(path)) {
    case ModelFormat::Hf: ck = read_hf(path); break;
    case ModelFormat::Gguf: ck = read_gguf(path); break;
    case ModelFormat::Llama2c: ck = read_llama2c(path); break;
  }
  if (!opt.tokenizer.empty()) {
    if (!path_exists(opt.tokenizer)) fail(opt.tokenizer, "", "tokenizer not found");
    ck.tokenizer_path = opt.tokenizer;
  }
  ck.validate();
  return ck;
}

}  // namespace solar
