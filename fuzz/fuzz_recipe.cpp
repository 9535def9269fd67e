// libFuzzer target: merge / upscale recipes, each input read both as YAML and
// as JSON (src/merge/recipe.cpp), then as an up-scaling recipe: a Recipe or a
// solar::Error, with bounded memory (issue 10: YAML alias bombs, 100,000-deep
// JSON).
#include "core/error.h"
#include "fuzz.h"
#include "merge/recipe.h"
#include "upscale/upscale.h"

namespace solar::fuzz {

void write_seeds(const std::string& dir) {
  write_text(dir + "/dus.yaml",
             "slices:\n"
             "  - sources:\n      - model: base\n        layer_range: [0, 24]\n"
             "  - sources:\n      - model: base\n        layer_range: [8, 32]\n"
             "merge_method: passthrough\ndtype: bfloat16\n");
  write_text(dir + "/slerp.yaml",
             "slices:\n  - sources:\n      - model: a\n        layer_range: [0, 4]\n"
             "      - model: b\n        layer_range: [0, 4]\n"
             "merge_method: slerp\nbase_model: a\nparameters:\n  t:\n"
             "    - filter: self_attn\n      value: [0, 0.5, 0.3, 0.7, 1]\n    - value: 0.5\ndtype: float16\n");
  write_text(dir + "/ties.json",
             R"({"models":[{"model":"a","parameters":{"density":0.5,"weight":0.5}},)"
             R"({"model":"b","parameters":{"density":0.5,"weight":[0.1,0.9]}}],)"
             R"("merge_method":"ties","base_model":"a","parameters":{"normalize":true},"dtype":"float32"})");
  write_text(deep(dir) + "/nested.json", R"({"merge_method":"passthrough","slices":)" + nested_json(100000) + "}");
  write_text(deep(dir) + "/nested_flow.yaml", "merge_method: passthrough\nslices: " + nested_json(100000) + "\n");
  // Ten levels of aliases, each ten times the one before: 10^10 nodes expanded.
  std::string bomb = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n";
  for (int i = 1; i <= 10; i++) {
    std::string p = "*a" + std::to_string(i - 1);
    bomb += "a" + std::to_string(i) + ": &a" + std::to_string(i) + " [" + p;
    for (int k = 1; k < 10; k++) bomb += ", " + p;
    bomb += "]\n";
  }
  write_text(deep(dir) + "/alias_bomb.yaml", bomb + "merge_method: passthrough\nslices: *a10\n");
}

}  // namespace solar::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  for (bool json : {false, true}) {
    try {
      solar::merge::Recipe r = solar::merge::parse_recipe(text, json ? "recipe.json" : "recipe.yaml", json);
      for (const auto& [name, p] : r.parameters) (void)solar::merge::param_at(p, "model.layers.0.self_attn.q_proj.weight", 0.5);
      (void)solar::upscale::recipe_slices(r);
    } catch (const solar::Error&) {
    }
  }
  return 0;
}
