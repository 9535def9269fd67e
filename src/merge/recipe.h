// solar/merge/recipe.h — mergekit-style recipes (YAML or JSON) for merge and upscale.
//
// The subset of mergekit's MergeConfiguration that solar implements:
//   slices:                       # passthrough (depth up-scaling)
//     - sources:
//         - model: PATH
//           layer_range: [0, 24]  # half-open
//   models:                       # or slices with several sources each
//     - model: PATH
//       parameters: {weight: 0.5, density: 0.7}
//   merge_method: passthrough | linear | slerp | task_arithmetic | ties |
//                 dare_linear | dare_ties | model_stock
//   base_model: PATH
//   parameters:
//     t: 0.5                      # a number, a gradient list [0, 0.5, 1], or
//     t:                          # {filter, value} cases, first match wins
//       - filter: self_attn       # (a substring of the tensor name)
//         value: [0, 0.5, 1]
//       - value: 0.5              # no filter: the default
//     normalize: true             # booleans are kept as 1 / 0
//   dtype: bfloat16
// Exactly one of slices / models. Every error names the file and the field
// ("r.yaml: slices[1].sources[0].layer_range: expected …"). Which parameters
// a method takes is checked by merge_spec_from_recipe, not here.
#pragma once
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace solar::merge {

// A parameter value: one number, or a gradient over layers (mergekit
// interpolates it piecewise-linearly, see gradient_at).
using Gradient = std::vector<double>;

// One case of a parameter setting: applies to tensors whose name contains
// `filter` ("" or "*": every tensor).
struct ParamCase {
  std::string filter;
  Gradient value;
};
// mergekit's ParameterSetting; a plain number or gradient is one unfiltered case.
using Param = std::vector<ParamCase>;
using Params = std::map<std::string, Param>;

struct RecipeSource {
  std::string model;
  int begin = -1, end = -1;  // layer_range; -1 when absent (models: entries)
  Params parameters;
};

struct Recipe {
  std::string path;  // the file, for messages
  std::string merge_method;
  std::vector<std::vector<RecipeSource>> slices;
  std::vector<RecipeSource> models;
  std::string base_model;
  Params parameters;
  std::optional<DType> dtype;
};

// Parses a .json file with nlohmann::json, anything else as YAML.
Recipe read_recipe(const std::string& path);
Recipe parse_recipe(const std::string& text, const std::string& path, bool json);

// The methods `solar merge` implements (passthrough is `solar upscale`'s).
bool known_merge_method(const std::string& name);
std::string merge_method_names();  // "linear, slerp, …", for messages

// mergekit's evaluation of a gradient at x in [0, 1]: x scaled onto the list
// index, linear between neighbours; a single value is constant.
double gradient_at(const Gradient& g, double x);
// mergekit's evaluate_setting: the first case whose filter matches `tensor`,
// evaluated at x; nullopt when none matches.
std::optional<double> param_at(const Param& p, const std::string& tensor, double x);

}  // namespace solar::merge
