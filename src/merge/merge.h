// solar/merge/merge.h — weight-space merging of same-shaped models (mergekit semantics).
//
// linear: out = Σ w_i·x_i / Σ w_i, any number of models (weights normalised).
// slerp:  two models, base (v0) and other (v1): spherical interpolation of
//         each whole tensor, flattened, at t; plain lerp when the normalised
//         tensors are nearly parallel (|cos| > 0.9995, mergekit's
//         DOT_THRESHOLD). t = 0 gives the base, t = 1 the other, exactly.
// Parameters may be gradients over layers: layer i of n is evaluated at
// i/(n-1) (1 when n = 1); embeddings at 0, final norm and lm_head at 1 —
// the same as mergekit's planner. Everything is computed in f32/f64 per
// tensor and streamed to HfWriter, one output tensor in memory at a time.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "merge/recipe.h"
#include "model/config.h"

namespace solar::merge {

enum class MergeMethod { Linear, Slerp };

struct MergeSpec {
  MergeMethod method = MergeMethod::Linear;
  std::vector<std::string> models;  // slerp: models[0] is the base (t = 0)
  std::vector<Gradient> weights;    // linear: one per model
  Gradient t;                       // slerp
  std::optional<DType> dtype;       // default: the base model's dtype
  uint64_t max_shard_bytes = 5ull * 1000 * 1000 * 1000;
  bool force = false;
  std::string recipe_text;          // quoted in the model card
  std::string where = "merge";      // the recipe file or "merge", for messages
};

// A linear/slerp recipe as a MergeSpec (weights from models[i].parameters,
// t from parameters; base_model first for slerp). Throws naming the field.
MergeSpec merge_spec_from_recipe(const Recipe& r);

// Where a tensor sits for gradient evaluation: see the header comment.
double layer_position(const std::string& tensor, int n_layers);

// out[i] = Σ w_k·x_k[i] / Σ w_k, accumulated in f64 (so merging a model with
// itself returns it unchanged). Throws if Σ w_k is 0.
void linear_merge(const std::vector<const float*>& x, const std::vector<double>& w, float* out, size_t n);
// mergekit's slerp of two flattened tensors, in two passes so callers can
// stream chunks: accumulate dot products, then out = s0·v0 + s1·v1.
struct SlerpStats {
  double dot = 0, n0 = 0, n1 = 0;  // v0·v1, |v0|², |v1|²
  void add(const float* v0, const float* v1, size_t n);
};
// (s0, s1); (1 - t, t) when the tensors are nearly parallel.
std::pair<double, double> slerp_coeffs(const SlerpStats& s, double t);
void slerp_merge(const float* v0, const float* v1, double t, float* out, size_t n);

// Checks that the models agree (architecture, shapes, vocabulary) and writes
// the merge as an HF folder at `out`; nothing is written when a check fails.
void merge(const MergeSpec& spec, const std::string& out);

}  // namespace solar::merge
