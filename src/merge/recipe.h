// solar/merge/recipe.h — mergekit-style recipes (YAML or JSON) for merge and upscale.
//
// The subset of mergekit's MergeConfiguration that solar implements:
//   slices:                       # passthrough (depth up-scaling)
//     - sources:
//         - model: PATH
//           layer_range: [0, 24]  # half-open
//   models:                       # linear / slerp
//     - model: PATH
//       parameters: {weight: 0.5}
//   merge_method: passthrough | linear | slerp
//   base_model: PATH
//   parameters: {t: 0.5}          # or a gradient list [0, 0.5, 1]
//   dtype: bfloat16
// Exactly one of slices / models. Every error names the file and the field
// ("r.yaml: slices[1].sources[0].layer_range: expected …").
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

struct RecipeSource {
  std::string model;
  int begin = -1, end = -1;  // layer_range; -1 when absent (models: entries)
  std::map<std::string, Gradient> parameters;
};

struct Recipe {
  std::string path;  // the file, for messages
  std::string merge_method;
  std::vector<std::vector<RecipeSource>> slices;
  std::vector<RecipeSource> models;
  std::string base_model;
  std::map<std::string, Gradient> parameters;
  std::optional<DType> dtype;
};

// Parses a .json file with nlohmann::json, anything else as YAML.
Recipe read_recipe(const std::string& path);
Recipe parse_recipe(const std::string& text, const std::string& path, bool json);

// mergekit's evaluation of a gradient at x in [0, 1]: x scaled onto the list
// index, linear between neighbours; a single value is constant.
double gradient_at(const Gradient& g, double x);

}  // namespace solar::merge
