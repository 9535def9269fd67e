// solar/merge/merge.h — weight-space merging of same-shaped models (mergekit semantics).
//
// linear: out = Σ w_i·x_i / Σ w_i (normalize, the default) or Σ w_i·x_i.
// slerp:  two models, base (v0) and other (v1): spherical interpolation of
//         each whole tensor, flattened, at t; plain lerp when the normalised
//         tensors are nearly parallel (|cos| > 0.9995, mergekit's
//         DOT_THRESHOLD). t = 0 gives the base, t = 1 the other, exactly.
// task_arithmetic, ties, dare_linear, dare_ties: task vectors d_i = x_i - base,
//         sparsified (ties: top density·n by |d|; dare: kept with probability
//         density, rescaled to the same L1 norm), weighted by w_i; ties and
//         dare_ties keep only entries whose sign agrees with sign(Σ w_i·d_i);
//         out = base + λ·Σ w_i·d_i [/ Σ w_i over the kept entries if normalize].
// model_stock: base + k fine-tuned models; cosθ = mean pairwise cosine of the
//         d_i (per row when filter_wise), t = k·cosθ / (1 + (k-1)·cosθ),
//         out = t·mean(x_i) + (1-t)·base (the base where the denominator is 0).
// Parameters may be gradients over layers and per-tensor {filter, value}
// cases: layer i of a slice of n is evaluated at i/(n-1) (1 when n = 1);
// embeddings at 0, final norm and lm_head at 1 — mergekit's planner.
// Inputs in interleaved-RoPE layouts (GGUF, llama2.c) are permuted to HF
// layout first, so any mix of formats of one shape merges. Every tensor is
// computed in f32/f64 and streamed to HfWriter: one output tensor and its
// inputs in memory at a time.
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

enum class MergeMethod { Linear, Slerp, TaskArithmetic, Ties, DareLinear, DareTies, ModelStock };

MergeMethod parse_merge_method(const std::string& name, const std::string& where);
const char* merge_method_name(MergeMethod m);
// Methods with a base model (models[0]): all but linear.
bool has_base(MergeMethod m);

// An output layer of a `slices` recipe: layer `src[k]` of models[k], its
// gradient position x.
struct OutputLayer {
  std::vector<int> src;
  double x = 0;
};

struct MergeSpec {
  MergeMethod method = MergeMethod::Linear;
  std::vector<std::string> models;    // models[0] is the base when has_base
  std::vector<Params> model_params;   // one per model (weight, density, …)
  Params parameters;                  // global; a model's own value wins
  std::vector<OutputLayer> layers;    // empty: every layer of the models
  uint64_t seed = 0;                  // DARE masks
  std::optional<DType> dtype;         // default: the base model's dtype
  uint64_t max_shard_bytes = 5ull * 1000 * 1000 * 1000;
  bool force = false;
  std::string recipe_text;          // quoted in the model card
  std::string where = "merge";      // the recipe file or "merge", for messages
};

// A recipe as a MergeSpec: base_model first, then the other models of
// `models` (or of each slice's sources, which must name the same models in
// every slice). Unknown parameter names are listed. Throws naming the field.
MergeSpec merge_spec_from_recipe(const Recipe& r);

// Where a tensor sits for gradient evaluation: see the header comment.
double layer_position(const std::string& tensor, int n_layers);

// out[i] = Σ w_k·x_k[i] / Σ w_k (without the division unless normalize),
// accumulated in f64 (so merging a model with itself returns it unchanged).
// Throws if normalizing by Σ w_k = 0.
void linear_merge(const std::vector<const float*>& x, const std::vector<double>& w, float* out, size_t n,
                  bool normalize = true);
// mergekit's slerp of two flattened tensors, in two passes so callers can
// stream chunks: accumulate dot products, then out = s0·v0 + s1·v1.
struct SlerpStats {
  double dot = 0, n0 = 0, n1 = 0;  // v0·v1, |v0|², |v1|²
  void add(const float* v0, const float* v1, size_t n);
};
// (s0, s1); (1 - t, t) when the tensors are nearly parallel.
std::pair<double, double> slerp_coeffs(const SlerpStats& s, double t);
void slerp_merge(const float* v0, const float* v1, double t, float* out, size_t n);

// The task-arithmetic family, in place: x[0] is the base and becomes the
// result; x[1..] are the models (overwritten with their weighted deltas).
struct TaskOptions {
  enum Sparsify { None, Magnitude, Random } sparsify = None;
  bool consensus = false;           // ties sign election (mergekit's "sum")
  bool normalize = false, rescale = false;
  double lambda = 1;
  std::vector<double> weight, density;  // per model x[1..]
  std::vector<uint64_t> keys;           // per model: rng_key of the DARE mask
};
void task_merge(std::vector<std::vector<float>>& x, const TaskOptions& o);
// model_stock, in place: x[0] the base, x[1..] (at least two) the models;
// `row` = elements per filter (n for the whole tensor).
void model_stock_merge(std::vector<std::vector<float>>& x, size_t row);

// Checks that the models agree (architecture, shapes, vocabulary) and writes
// the merge as an HF folder at `out`; nothing is written when a check fails.
void merge(const MergeSpec& spec, const std::string& out);

}  // namespace solar::merge
