// fuzz/models.h — the tiny model the model-file targets start from (seeds, and
// the tensors config.json is validated against): 1 layer, hidden 8, vocab 16.
#pragma once
#include <string>

#include "core/error.h"
#include "formats/load.h"
#include "fuzz.h"
#include "testing/models.h"

namespace solar::fuzz {

inline model::ModelConfig tiny_model_config() { return testing::small_config(8, 16, 16, false, 1, 64); }

// An HF folder with random weights; returns its path.
inline std::string tiny_hf_model(const std::string& dir) {
  if (!std::filesystem::exists(dir + "/config.json")) testing::write_random_model(dir, tiny_model_config(), 1);
  return dir;
}

// The model targets' check: a model file loads (validated) with every tensor
// view readable (ASan), or throws solar::Error.
inline void load_model_file(const std::string& path) {
  try {
    model::Checkpoint ck = formats::load_checkpoint(path);
    for (const auto& [name, t] : ck.tensors)
      if (t.nbytes) (void)static_cast<const volatile uint8_t*>(t.data)[t.nbytes - 1];
  } catch (const Error&) {
  }
}

}  // namespace solar::fuzz
