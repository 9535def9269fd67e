// solar/testing/models.h — test helper: small random HF checkpoints whose
// every tensor (norms included) has distinct bytes, so a misplaced layer shows.
#pragma once
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "core/fs.h"
#include "testing/testing.h"
#include "formats/hf.h"
#include "model/checkpoint.h"

namespace solar::testing {

using testing::temp_dir;

// A small config with grouped-query attention (4 heads, 2 KV heads, head_dim
// hidden/4) for unit tests that build weights by hand.
inline model::ModelConfig small_config(int hidden, int intermediate, int vocab, bool tied = false, int layers = 2,
                                       int max_positions = 2048) {
  model::ModelConfig c;
  c.hidden_size = hidden;
  c.intermediate_size = intermediate;
  c.num_hidden_layers = layers;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = hidden / 4;
  c.vocab_size = vocab;
  c.max_position_embeddings = max_positions;
  c.tie_word_embeddings = tied;
  return c;
}

inline model::ModelConfig tiny_config(int layers = 6, bool tie = false) {
  model::ModelConfig c = model::preset_config("tiny");
  c.num_hidden_layers = layers;
  c.tie_word_embeddings = tie;
  c.torch_dtype = DType::BF16;
  return c;
}

// Writes a random BF16 model; `seed` makes different models of one shape.
inline void write_random_model(const std::string& dir, const model::ModelConfig& c, uint64_t seed,
                               const std::string& tokenizer = "") {
  std::vector<std::vector<uint16_t>> data;
  std::vector<TensorView> views;
  for (const auto& name : model::expected_tensor_names(c)) {
    auto shape = model::expected_shape(c, name);
    int64_t n = 1;
    for (auto d : shape) n *= d;
    uint64_t s = seed * 0x9E3779B97F4A7C15ull;
    for (char ch : name) s = (s ^ uint8_t(ch)) * 0x100000001B3ull;
    std::vector<uint16_t> v(static_cast<size_t>(n));
    for (auto& x : v) {
      s = s * 6364136223846793005ull + 1442695040888963407ull;
      float f = float(int32_t(s >> 32)) / 2147483648.0f * 0.1f;
      x = f32_to_bf16(f);
    }
    data.push_back(std::move(v));
    views.push_back({name, DType::BF16, shape, data.back().data(), data.back().size() * 2});
  }
  formats::HfWriteOptions o;
  o.tokenizer_path = tokenizer;
  o.tokenizer_config = {{"add_bos_token", true}, {"model_max_length", 512}};
  o.generation_config = {{"bos_token_id", 1}, {"eos_token_id", 2}};
  formats::write_hf(dir, c, views, o);
}

inline bool same_bytes(const TensorView& a, const TensorView& b) {
  return a.dtype == b.dtype && a.shape == b.shape && a.nbytes == b.nbytes &&
         std::memcmp(a.data, b.data, a.nbytes) == 0;
}

// Runs the solar binary; returns its exit status, stdout+stderr in *out.
// `shell_prefix` runs first in the same shell ("ulimit -v 4000000; "); with
// timeout_s > 0 the binary is killed after that long and the status is 124.
inline int run_solar(const std::string& args, std::string* out, const std::string& shell_prefix = "",
                     int timeout_s = 0) {
  std::string cmd = shell_prefix + (timeout_s > 0 ? "timeout " + std::to_string(timeout_s) + " " : std::string()) +
                    std::string(SOLAR_BIN) + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  char buf[4096];
  size_t n;
  out->clear();
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out->append(buf, n);
  int st = pclose(p);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

// True when dir holds no leftover temporary folders next to `out`.
inline bool no_leftovers(const std::string& parent) {
  for (const auto& e : std::filesystem::directory_iterator(parent))
    if (e.path().filename().string().find(".tmp-") != std::string::npos) return false;
  return true;
}

}  // namespace solar::testing
