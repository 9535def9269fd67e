// solar merge — merge same-shaped models with mergekit's methods and recipes.
#include <cmath>
#include <cstdio>
#include <optional>
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

// One value per model from a repeated flag, as parameters; none: `def`.
// `first` skips the base model.
void per_model(std::vector<solar::merge::Params>& out, size_t first, const std::vector<std::string>& vals,
               const char* key, const std::string& flag, std::optional<double> def) {
  using namespace solar;
  if (!vals.empty() && vals.size() != out.size() - first)
    fail(flag, "", "expected one per model (" + std::to_string(out.size() - first) + "), got " + std::to_string(vals.size()));
  for (size_t i = first; i < out.size(); ++i) {
    if (!vals.empty()) out[i][key] = {{"", parse_gradient(vals[i - first], flag)}};
    else if (def) out[i][key] = {{"", {*def}}};
  }
}

int run(const std::vector<std::string>& argv) {
  using namespace solar;
  cli::Args a("merge",
              "solar merge --method linear -m A -m B [--weight 0.5 --weight 0.5] -o OUT\n"
              "       solar merge --method slerp -m BASE -m OTHER --t 0.5|0,0.5,1 -o OUT\n"
              "       solar merge --method ties|dare_ties|… --base-model BASE -m A -m B --weight 1 --weight 1 "
              "[--density 0.5 …] -o OUT\n"
              "       solar merge --recipe FILE.yaml|.json -o OUT");
  auto& method = a.str("--method", "NAME", merge::merge_method_names(), "linear");
  auto& models = a.list("-m,--model", "PATH", "input model (slerp: the first is the base, t = 0)");
  auto& base = a.str("--base-model", "PATH", "base model of task_arithmetic, ties, dare_*, model_stock (slerp: t = 0)");
  auto& weights = a.list("--weight", "W", "weight per (non-base) model, or a gradient W0,W1,… (linear default: equal)");
  auto& density = a.list("--density", "D", "fraction of each task vector kept, in (0, 1] (ties, dare_*)");
  auto& t = a.str("--t", "T", "slerp factor, or a gradient over layers T0,T1,…");
  auto& seed = a.integer("--seed", 0, "seed of the DARE masks");
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
    s.method = merge::parse_merge_method(method, "--method");
    bool slerp = s.method == merge::MergeMethod::Slerp, linear = s.method == merge::MergeMethod::Linear;
    if (!base.empty() && linear) fail("--base-model", "", "not used by --method linear");
    if (!base.empty()) s.models.push_back(base);
    else if (merge::has_base(s.method) && !slerp) fail("--base-model", "", "missing (--method " + method + " needs it)");
    for (const auto& m : models) s.models.push_back(m);
    s.model_params.resize(s.models.size());
    bool stock = s.method == merge::MergeMethod::ModelStock;
    if (!weights.empty() && (slerp || stock)) fail("--weight", "", "not used by --method " + method);
    if (!density.empty() && (slerp || stock || linear)) fail("--density", "", "not used by --method " + method);
    if (!t.empty() && !slerp) fail("--t", "", "only for --method slerp");
    size_t first = base.empty() ? 0 : 1;
    if (slerp) {
      if (t.empty()) fail("--t", "", "missing (slerp needs --t)");
      s.parameters["t"] = {{"", parse_gradient(t, "--t")}};
    } else if (!stock) {
      per_model(s.model_params, first, weights, "weight", "--weight", linear ? std::optional<double>(1.0) : std::nullopt);
      per_model(s.model_params, first, density, "density", "--density", std::nullopt);
    }
    s.where = "--method " + method;
  }
  if (!outtype.empty()) {
    s.dtype = parse_dtype(outtype, "--outtype");
    if (!is_float(*s.dtype)) fail("--outtype", "", "expected bf16, f16 or f32, got '" + outtype + "'");
  }
  s.seed = uint64_t(seed);
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

solar::cli::Register reg("merge", "merge same-shaped models: linear, slerp, ties, dare, model_stock (mergekit recipes)", run);

}  // namespace
