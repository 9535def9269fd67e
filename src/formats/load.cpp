#include "formats/load.h"

#include <atomic>
#include <cctype>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/fs.h"
#include "core/json.h"
#include "formats/gguf.h"
#include "formats/hf.h"
#include "formats/llama2c.h"

namespace solar::formats {

void fail_not_a_model(const std::string& path, const std::string& why) {
  fail(path, "",
       "not a model file (expected a Hugging Face folder with config.json and safetensors, a GGUF file or a "
       "llama2.c .bin)" + (why.empty() ? "" : ": " + why));
}

std::string magic_text(std::string_view head) {
  static const char* hex = "0123456789abcdef";
  std::string m = "\"";
  for (char c : head.substr(0, 4)) {
    if (std::isprint(uint8_t(c)) && c != '"' && c != '\\') m += c;
    else m += std::string("\\x") + hex[uint8_t(c) >> 4] + hex[uint8_t(c) & 15];
  }
  return m + "\"";
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
  if (path.ends_with(".gguf"))
    fail_not_a_model(path, "a .gguf file starts with the magic \"GGUF\", this one with " + magic_text(head));
  return ModelFormat::Llama2c;
}

const char* model_format_name(ModelFormat f) {
  return f == ModelFormat::Hf ? "hf" : f == ModelFormat::Gguf ? "gguf" : "llama2c";
}

model::Checkpoint load_checkpoint(const std::string& path, const LoadOptions& opt) {
  model::Checkpoint ck;
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
  if (opt.check_tensors) ck.check_finite();
  return ck;
}

namespace {
std::atomic<bool> g_check_tensors{true};
}
void set_check_tensors_default(bool on) { g_check_tensors = on; }
bool check_tensors_default() { return g_check_tensors; }

model::ModelConfig read_model_config(const std::string& path) {
  if (is_dir(path)) {
    std::string f = join_path(path, "config.json");
    if (!path_exists(f)) fail(f, "", "missing (expected a Hugging Face model folder)");
    return model::config_from_json(read_json_file(f), f);
  }
  LoadOptions headers_only;
  headers_only.check_tensors = false;
  return load_checkpoint(path, headers_only).config;  // maps, but reads only headers
}

std::unique_ptr<tokenizer::Tokenizer> open_tokenizer(const std::string& path, int vocab_size_hint) {
  if (!is_dir(path) && read_file_prefix(path, 4) == "GGUF") return tokenizer::tokenizer_from_vocab(read_gguf_vocab(path));
  return tokenizer::load_tokenizer(path, vocab_size_hint);
}

}  // namespace solar::formats
