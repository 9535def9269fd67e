// libFuzzer target: config.json beside a tiny model's weights, through the
// whole load (ModelConfig parse, validate, Checkpoint::validate against the
// tensors present): a checkpoint or a solar::Error, never a crash, a hang or
// unbounded memory (issue 10: 2^31 layers, 100,000-deep JSON).
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "formats/load.h"
#include "models.h"

namespace solar::fuzz {

void write_seeds(const std::string& dir) {
  nlohmann::json j = model::config_to_json(tiny_model_config());
  write_text(dir + "/tiny.json", j.dump(1));
  nlohmann::json huge = j;
  huge["num_hidden_layers"] = 2147483647;
  write_text(deep(dir) + "/huge_layers.json", huge.dump());
  j["hidden_size"] = "@deep@";
  std::string s = j.dump();
  s.replace(s.find("\"@deep@\""), 8, nested_json(100000));
  write_text(deep(dir) + "/nested_hidden_size.json", s);
}

}  // namespace solar::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string dir = solar::fuzz::tiny_hf_model(solar::fuzz::scratch() + "/model");
  solar::fuzz::put("model/config.json", data, size);
  try {
    solar::model::Checkpoint ck = solar::formats::load_checkpoint(dir);
    // What we accept we must be able to write back and read again.
    const auto& c = ck.config;
    auto back = solar::model::config_from_json(solar::model::config_to_json(c), "round-trip");
    if (back.hidden_size != c.hidden_size || back.head_dim != c.head_dim || back.vocab_size != c.vocab_size)
      std::abort();
  } catch (const solar::Error&) {
  }
  return 0;
}
