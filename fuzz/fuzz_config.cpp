// libFuzzer target: config.json contents, valid JSON or not, must give a
// ModelConfig that passes validate() or a solar::Error.
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "model/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  nlohmann::json j = nlohmann::json::parse(data, data + size, nullptr, false);
  try {
    solar::model::ModelConfig c = solar::model::config_from_json(j, "config.json");
    c.validate("config.json");
    // What we accept we must be able to write back and read again.
    solar::model::ModelConfig back = solar::model::config_from_json(solar::model::config_to_json(c), "round-trip");
    if (back.hidden_size != c.hidden_size || back.head_dim != c.head_dim || back.vocab_size != c.vocab_size) std::abort();
  } catch (const solar::Error&) {
  }
  return 0;
}
