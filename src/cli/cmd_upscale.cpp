// solar upscale — depth up-scaling (SOLAR 10.7B) or a mergekit passthrough recipe.
#include <cstdio>

#include "cli/common.h"
#include "core/error.h"
#include "core/fs.h"
#include "formats/hf.h"
#include "formats/load.h"
#include "upscale/upscale.h"

namespace {

int run(const std::vector<std::string>& argv) {
  using namespace solar;
  cli::Args a("upscale",
              "solar upscale -m BASE --drop M -o OUT [options]\n"
              "       solar upscale --recipe FILE.yaml|.json -o OUT [options]\n\n"
              "Stacks layers [0, n-M) and [M, n) of BASE (SOLAR depth up-scaling: 32 layers, M=8 -> 48),\n"
              "or the layer ranges of a mergekit passthrough recipe, into a new HF folder.");
  auto& model = a.str("-m,--model", "PATH", "base model: HF folder, .gguf or llama2.c .bin");
  auto& drop = a.integer("--drop", 0, "layers M dropped from the end of one copy and the start of the other "
                                    "(required with -m; 0 < M < n/2)", 0, INT32_MAX);
  auto& recipe = a.str("--recipe", "FILE", "mergekit passthrough recipe (YAML or JSON) instead of -m/--drop");
  auto& out = a.str("-o,--output", "DIR", "output HF folder");
  auto& outtype = a.str("--outtype", "TYPE", "output dtype: bf16, f16 or f32 (default: the source's)");
  auto& shard = a.str("--shard-size", "SIZE", "maximum shard size", "5GB");
  auto& force = a.flag("--force", "replace OUT if it exists");
  auto& dry = a.flag("--dry-run", "print the resulting shape and parameter count; read only config.json");
  if (!a.parse(argv)) return a.exit_code();

  std::vector<upscale::LayerSlice> slices;
  std::string where = "--drop", recipe_text;
  if (!recipe.empty()) {
    if (!model.empty() || a.given("--drop")) fail("--recipe", "", "expected either --recipe or -m/--drop, not both");
    merge::Recipe r = merge::read_recipe(recipe);
    slices = upscale::recipe_slices(r);
    where = recipe;
    recipe_text = read_file(recipe);
  } else {
    if (model.empty()) fail("-m/--model", "", "missing (expected -m BASE --drop M, or --recipe FILE)");
    if (!a.given("--drop")) fail("--drop", "", "missing (expected the number of layers M to drop)");
    slices = upscale::dus_slices(model, formats::read_model_config(model).num_hidden_layers, int(drop));
    recipe_text = upscale::dus_recipe_text(slices);
  }
  upscale::UpscaleOptions opt;
  if (!outtype.empty()) {
    opt.dtype = parse_dtype(outtype, "--outtype");
    if (!is_float(*opt.dtype)) fail("--outtype", "", "expected bf16, f16 or f32, got '" + outtype + "'");
  } else if (!recipe.empty()) {
    opt.dtype = merge::read_recipe(recipe).dtype;
  }
  opt.max_shard_bytes = formats::parse_size(shard, "--shard-size");
  opt.force = force;
  opt.recipe_text = recipe_text;

  if (dry) {
    std::vector<model::ModelConfig> configs;
    for (const auto& s : slices) configs.push_back(formats::read_model_config(s.model));
    model::ModelConfig c = upscale::upscaled_config(slices, configs, where);
    for (size_t i = 0; i < slices.size(); ++i)
      std::printf("slice %zu: %s layers [%d, %d)\n", i, slices[i].model.c_str(), slices[i].begin, slices[i].end);
    std::printf("layers: %d (from %d)\nshape: hidden %d, intermediate %d, heads %d, kv heads %d, head_dim %d, vocab %d\n"
                "parameters: %lld\n",
                c.num_hidden_layers, configs[0].num_hidden_layers, c.hidden_size, c.intermediate_size,
                c.num_attention_heads, c.num_key_value_heads, c.head_dim, c.vocab_size,
                (long long)c.num_parameters());
    return 0;
  }
  if (out.empty()) fail("-o/--output", "", "missing (expected the output folder)");
  std::vector<std::string> inputs{recipe};
  for (const auto& s : slices) inputs.push_back(s.model);
  cli::check_output_apart(out, inputs);
  upscale::upscale(slices, out, opt, where);
  std::printf("wrote %s\n", out.c_str());
  return 0;
}

solar::cli::Register reg("upscale", "depth up-scaling (SOLAR recipe) / mergekit passthrough stacking", run);

}  // namespace
