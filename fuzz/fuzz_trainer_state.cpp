// libFuzzer target: the trainer_state.json a resume reads (train/checkpoints.h
// read_trainer_state): the state, or a solar::Error naming the file and field,
// never a crash, a hang or unbounded memory. What it accepts is what a resume
// indexes without further checks, so those reads are replayed here.
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "train/checkpoints.h"
#include "fuzz.h"

namespace solar::fuzz {

void write_seeds(const std::string& dir) {
  nlohmann::json st = {{"global_step", 20},     {"seed", 1337},         {"batch_size", 8},
                       {"seq_len", 128},        {"grad_accum", 2},      {"tokens_seen", 40960},
                       {"max_steps", 100},      {"lr_schedule", "wsd"}, {"warmup_steps", 5},
                       {"learning_rate", 1e-3}, {"min_lr_ratio", 0.1},
                       {"log_history", {{{"step", 1}, {"loss", 5.5}}, {{"step", 20}, {"loss", 3.25}}}},
                       {"eval_history", {{{"step", 0}, {"val_loss", 5.6}}, {{"step", 20}, {"val_loss", 3.5}}}}};
  write_text(dir + "/state.json", st.dump(1));
  write_text(dir + "/minimal.json", R"({"global_step": 20})");
  std::string deep_state = R"({"global_step": 20, "log_history": )" + nested_json(100000) + "}";
  write_text(deep(dir) + "/nested_history.json", deep_state);
}

}  // namespace solar::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string ck = [] {
    std::string d = solar::fuzz::scratch() + "/checkpoint-20";
    std::filesystem::create_directories(d);
    return d;
  }();
  solar::fuzz::put("checkpoint-20/trainer_state.json", data, size);
  try {
    nlohmann::json st = solar::train::read_trainer_state({20, ck, ""});
    // What Trainer::resume reads from an accepted state.
    (void)st["global_step"].get<int64_t>();
    (void)st.value("tokens_seen", int64_t(0));
    for (const char* k : {"seed", "batch_size", "seq_len", "grad_accum"}) (void)st.value(k, int64_t(0));
    for (const auto& [name, key] : {std::pair{"log_history", "loss"}, {"eval_history", "val_loss"}})
      for (const auto& e : st.value(name, nlohmann::json::array()))
        (void)e.at("step").get<int64_t>(), (void)e.at(key).get<double>();
  } catch (const solar::Error&) {
  }
  return 0;
}
