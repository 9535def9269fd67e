// solar/engine/engine.h — the inference engine for Llama-architecture models.
//
// Model holds a Checkpoint's weights in place (mmapped F32/BF16/F16; only
// the small norm vectors are copied to F32). A Context owns one sequence's
// KV cache and runs tokens through the model: a batch of n tokens is one
// prefill (every linear layer is an [n, d] × Wᵀ GEMM), n == 1 is decode
// (GEMV, memory-bound). Forward of one block, shapes for n tokens:
//   h = rmsnorm(x) [n,d] → q [n,Hq·hd], k,v [n,Hkv·hd] → RoPE(q,k)
//   → causal GQA attention over the cache (sliding window if configured)
//   → o_proj [n,d] + x → rmsnorm → down(silu(gate) ⊙ up) [n,d] + residual.
//
// Ownership: a Model shares ownership of its Checkpoint, a Context of its
// Model, so neither can dangle. Threads: a Model is immutable after
// construction and may be shared by any number of threads and Contexts; a
// Context is mutable state (its KV cache) and belongs to one thread at a time.
#pragma once
#include <deque>
#include <memory>
#include <vector>

#include "model/checkpoint.h"

namespace solar::kernels {
struct PackedWeight;
}

namespace solar::engine {

class Model {
 public:
  // Shares ownership of ck (the weights it views stay mapped while any
  // Model or Context holds it). Throws solar::Error if ck is null.
  explicit Model(std::shared_ptr<const model::Checkpoint> ck);
  // Takes the checkpoint over (moves it into a shared_ptr).
  explicit Model(model::Checkpoint ck);
  Model(const Model&) = delete;  // its Layers point into its own weights_
  Model& operator=(const Model&) = delete;
  const model::ModelConfig& config() const { return cfg_; }
  const model::Checkpoint& checkpoint() const { return *ck_; }
  const std::shared_ptr<const model::Checkpoint>& checkpoint_ptr() const { return ck_; }
  // Bytes of weights read per decoded token (for bandwidth figures).
  uint64_t weight_bytes_per_token() const;

  // A weight matrix of a linear layer: the checkpoint's tensor, and a copy
  // repacked at load when the kernels have a faster layout for its type
  // (kernels::can_pack: every type on a CPU with AVX2, FMA and F16C —
  // AVX-512 / VNNI / AVX512-BF16 kernels where present; SOLAR_REPACK=0 turns it off).
  // Decode and prefill both read the copy; the file's pages are released.
  struct Weight {
    const TensorView* t = nullptr;
    std::shared_ptr<const kernels::PackedWeight> packed;  // null: t in place
  };
  struct Layer {
    const Weight *wq, *wk, *wv, *wo, *w_gate, *w_up, *w_down;
    std::vector<float> attn_norm, ffn_norm;
  };

 private:
  friend class Context;
  std::shared_ptr<const model::Checkpoint> ck_;
  model::ModelConfig cfg_;
  const TensorView* embed_;
  const Weight* head_;
  std::deque<Weight> weights_;  // what the Layers and head_ point to
  const Weight* weight(const TensorView& t);
  std::vector<float> final_norm_;
  std::vector<Layer> layers_;
  std::vector<float> inv_freq_;
};

class Context;

// One sequence's share of a batched step (Context::eval_batch): as
// ctx->eval(tokens, n, logits).
struct BatchItem {
  Context* ctx;
  const int* tokens;
  int n;
  float* logits;  // the last token's logits [vocab], or null
};

class Context {
 public:
  // n_ctx <= 0: the model's max_position_embeddings. tree_slots: room for
  // eval_tree's tokens past n_ctx. Shares ownership of m; throws
  // solar::Error if m is null.
  explicit Context(std::shared_ptr<const Model> m, int n_ctx = 0, int tree_slots = 0);
  int n_ctx() const { return n_ctx_; }
  int n_past() const { return n_past_; }
  const Model& model() const { return *m_; }
  const std::shared_ptr<const Model>& model_ptr() const { return m_; }
  // Drops cached positions >= n (for re-using a shared prompt prefix).
  void truncate(int n);
  // Runs n tokens at positions n_past..n_past+n-1 and appends them to the
  // cache. Writes the last token's logits [vocab] into `logits` (if non-null)
  // and every token's logits [n, vocab] into `all_logits` (if non-null).
  // Throws solar::Error if the context would overflow.
  void eval(const int* tokens, int n, float* logits, float* all_logits = nullptr);
  // Runs a tree of n tokens hanging off the cached sequence in one pass (the
  // choices of a multiple-choice item share their context this way, and many
  // items share one GEMM). Token i follows parents[i] (< i), or the last
  // cached token when parents[i] < 0; it sits at position n_past + its depth
  // and attends to the cache and its own ancestors only. The cache is left as
  // it was: the tree's keys and values live in tree_slots scratch slots.
  // Writes the logits of tokens rows[0..n_rows) into logits [n_rows, vocab].
  // Throws solar::Error if n exceeds tree_slots or a position n_ctx.
  void eval_tree(const int* tokens, const int* parents, int n, const int* rows, int n_rows, float* logits);
  // Continuous batching: the tokens of several sequences (distinct Contexts
  // over one Model) in one forward. Every linear layer runs once over all
  // their rows, so the weights are read once per step however many sequences
  // decode; attention runs per sequence over its own cache. Each item ends as
  // its own eval() would leave it, up to rounding: a GEMM over many rows sums
  // in another order than the single row's GEMV. Scratch is the first item's
  // context's. Throws solar::Error (and runs nothing) if an item would
  // overflow its context, a token is out of range, or the contexts are not
  // distinct or not of one Model.
  static void eval_batch(const BatchItem* items, int n_items);

 private:
  // A sequence's rows [row0, row0+n) of a forward (see eval_tree for parents).
  struct Part {
    Context* ctx;
    int row0, n;
    const int* parents;
  };
  // The blocks over n rows of several sequences; this context holds the scratch.
  void forward_parts(const int* tokens, int n, const int* pos, const Part* parts, int n_parts);
  // One layer's RoPE, cache store and attention for the n rows of q/k/v of
  // every part (each its own context's cache), written to att.
  void attend(int l, float* q, float* k, const float* v, float* att, int n, const int* pos, const Part* parts,
              int n_parts);
  // attend()'s tree case for this context's n rows (RoPE'd, keys and values stored).
  void attend_tree(int l, const float* q, float* att, int n, const int* pos, const int* parents);
  void ensure_scratch(int n);
  void check_tokens(const int* tokens, int n) const;
  // The blocks over n tokens at positions pos[], keys/values stored at slots
  // n_past_.. (see eval_tree for parents; null: a plain continuation).
  void forward(const int* tokens, int n, const int* pos, const int* parents);
  std::shared_ptr<const Model> m_;
  int n_ctx_, n_past_ = 0, tree_slots_ = 0;
  std::vector<float> kcache_, vcache_;  // [layer][n_ctx][kv_dim]
  std::vector<float> x_, h_, q_, k_, v_, att_, gate_, up_;
  std::vector<float> head_out_;  // [items wanting logits, vocab] of eval_batch, reused (2 MB a step at 16 × 32K)
  // Plain continuations: query rows in blocks of kQueryBlock.
  static constexpr int kQueryBlock = 16;
  int scratch_n_ = 0;
};

}  // namespace solar::engine
