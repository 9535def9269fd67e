// solar/upscale/upscale.h — depth up-scaling (SOLAR 10.7B) and passthrough stacking.
//
// Depth up-scaling: take an n-layer model, keep layers [0, n-m) of one copy
// and [m, n) of another, stack them: 2(n-m) layers (Mistral 7B, n=32, m=8 ->
// 48 layers, 10,731,524,096 parameters). The general form is mergekit's
// passthrough recipe: a list of half-open layer ranges, each from one model,
// concatenated; ranges may overlap. Embeddings come from the first slice's
// model, final norm and head from the last slice's (as mergekit does).
//
// The output is streamed tensor by tensor from the mapped sources to
// HfWriter; source pages are dropped behind the writer, so peak RSS stays
// near one tensor whatever the model size.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "merge/recipe.h"
#include "model/config.h"

namespace solar::upscale {

struct LayerSlice {
  std::string model;
  int begin = 0, end = 0;  // half-open
};

// SOLAR's recipe for `model` with n layers: [0, n-drop) then [drop, n).
// Throws naming --drop unless 0 < drop < n/2, i.e. the result is deeper than the base.
std::vector<LayerSlice> dus_slices(const std::string& model, int n_layers, int drop);
// The mergekit passthrough recipe (YAML) that `slices` are, for the model card.
std::string dus_recipe_text(const std::vector<LayerSlice>& slices);
// A passthrough recipe's slices; throws naming the recipe field unless
// merge_method is passthrough and every slice has exactly one source.
std::vector<LayerSlice> recipe_slices(const merge::Recipe& r);

// The stacked model's config: the first source's, with num_hidden_layers set.
// Throws (nothing written yet) when a range is outside its model or the
// sources disagree on architecture, widths, heads or vocabulary. configs[i]
// belongs to slices[i]; `where` names the recipe or flag in messages.
model::ModelConfig upscaled_config(const std::vector<LayerSlice>& slices, const std::vector<model::ModelConfig>& configs,
                            const std::string& where);

// Output layer i comes from (slice, source layer): the flattened slices.
std::vector<std::pair<int, int>> layer_map(const std::vector<LayerSlice>& slices);

struct UpscaleOptions {
  std::optional<DType> dtype;  // default: keep the source dtype
  uint64_t max_shard_bytes = 5ull * 1000 * 1000 * 1000;
  bool force = false;
  std::string recipe_text;  // quoted in the model card
};

// A model card recording the recipe, the result and the date.
std::string upscale_card(const std::vector<LayerSlice>& slices, const model::ModelConfig& out, const std::string& recipe_text);

// Writes the stacked model as an HF folder at `out` (atomically). Checks
// everything, including free disk, before the first byte is written.
void upscale(const std::vector<LayerSlice>& slices, const std::string& out, const UpscaleOptions& opt,
             const std::string& where = "upscale");

}  // namespace solar::upscale
