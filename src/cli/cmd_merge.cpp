// solar merge — linear or slerp merge of same-shaped models (mergekit semantics).
#include <cmath>
#include <cstdio>
#include <sstream>

#include "cli/common.h"
#include "core/error.h"
#include "core/fs.h"
#include "formats/hf.h"
#include "merge/merge.h"

namespace {

// "0.5" or "0,0.5,1" (a gradient over layers).
solar::merge::Gradient parse_gradient(const std::string& s, const std::string& flag) {
  solar::merge::Gradient g;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    size_t used = 0;
    double v = 0;
    try {
      v = std::stod(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != item.size() || !std::isfinite(v))
      solar::fail(flag, "", "expected a number or a comma-separated list of numbers, got '" + s + "'");
    g.push_back(v);
  }
  if (g.empty()) solar::fail(flag, "", "expected a number or a comma-separated list of numbers, got '" + s + "'");
  return g;
}

int run(const std::vector<std::string>& argv) {
  using namespace solar;
  cli::Args a("merge",
              "solar merge --method linear -m A -m B [--weight 0.5 --weight 0.5] -o OUT\n"
              "       solar merge --method slerp -m BASE -m OTHER --t 0.5|0,0.5,1 -o OUT\n"
              "       solar merge --recipe FILE.yaml|.json -o OUT");
  auto& method = a.str("--method", "NAME", "linear or slerp", "linear");
  auto& models = a.list("-m,--model", "PATH", "input model (slerp: the first is the base, t = 0)");
  auto& weights = a.list("--weight", "W", "linear weight per model, or a gradient W0,W1,… (default: equal)");
  auto& t = a.str("--t", "T", "slerp factor, or a gradient over layers T0,T1,…");
  auto& recipe = a.str("--recipe", "FILE", "mergekit recipe (YAML or JSON) instead of the flags");
  auto& out = a.str("-o,--output", "DIR", "output HF folder");
  auto& outtype = a.str("--outtype", "TYPE", "output dtype: bf16, f16 or f32 (default: the base model's)");
  auto& shard = a.str("--shard-size", "SIZE", "maximum shard size", "5GB");
  auto& force = a.flag("--force", "replace OUT if it exists");
  if (!a.parse(argv)) return a.exit_code();

  merge::MergeSpec s;
  if (!recipe.empty()) {
    if (!models.empty()) fail("--recipe", "", "expected either --recipe or -m flags, not both");
    s = merge::merge_spec_from_recipe(merge::read_recipe(recipe));
    s.recipe_text = read_file(recipe);
  } else {
    if (method != "linear" && method != "slerp") fail("--method", "", "expected linear or slerp, got '" + method + "'");
    s.method = method == "linear" ? merge::MergeMethod::Linear : merge::MergeMethod::Slerp;
    s.models = models;
    if (s.method == merge::MergeMethod::Linear) {
      if (!t.empty()) fail("--t", "", "only for --method slerp");
      for (const auto& w : weights) s.weights.push_back(parse_gradient(w, "--weight"));
      if (weights.empty()) s.weights.assign(models.size(), merge::Gradient{1.0});
    } else {
      if (!weights.empty()) fail("--weight", "", "only for --method linear");
      if (t.empty()) fail("--t", "", "missing (slerp needs --t)");
      s.t = parse_gradient(t, "--t");
    }
    s.where = "--method " + method;
  }
  if (!outtype.empty()) {
    s.dtype = parse_dtype(outtype, "--outtype");
    if (!is_float(*s.dtype)) fail("--outtype", "", "expected bf16, f16 or f32, got '" + outtype + "'");
  }
  s.max_shard_bytes = formats::parse_size(shard, "--shard-size");
  s.force = force;
  if (out.empty()) fail("-o/--output", "", "missing (expected the output folder)");
  std::vector<std::string> inputs = s.models;
  inputs.push_back(recipe);
  cli::check_output_apart(out, inputs);
  merge::merge(s, out);
  std::printf("wrote %s\n", out.c_str());
  return 0;
}

solar::cli::Register reg("merge", "linear / slerp merge of same-shaped models (mergekit recipes)", run);

}  // namespace
