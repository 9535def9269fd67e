// solar/train/net.h — a Llama model with FP32 master weights and gradients:
// the trainable counterpart of the inference engine (engine/engine.h).
//
// Parameters keep Hugging Face names and layout, in the canonical order of
// expected_tensor_names(). Activations are laid out [B*T, d] so every linear
// is one big GEMM; they live in an arena reused across steps.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "kernels/kernels.h"
#include "model/checkpoint.h"
#include "model/config.h"
#include "train/batch.h"

namespace solar::train {

// decay=false for norms (and embeddings unless TrainOptions::decay_embeddings).
struct Param {
  std::string name;
  std::vector<int64_t> shape;
  std::vector<float> w, g;
  bool decay;
};

struct TrainOptions {
  kernels::Precision precision = kernels::fastest_precision();  // of the GEMMs; norms, softmax, loss stay FP32
  bool decay_embeddings = false;
};

struct Workspace;  // activation arena (net.cpp)

class Net {
 public:
  // model/init.h init_tensor: what `solar init` writes for the same seed.
  static Net init(const model::ModelConfig& cfg, uint64_t seed);
  // Continued pretraining: copies (and converts to F32) every tensor; q/k rows
  // are permuted to the HF rotate-half layout if the checkpoint is interleaved.
  static Net from_checkpoint(const model::Checkpoint& ck);

  Net(Net&&) noexcept;
  Net& operator=(Net&&) noexcept;
  ~Net();

  const model::ModelConfig& config() const { return cfg_; }
  std::vector<Param>& params() { return params_; }
  const std::vector<Param>& params() const { return params_; }
  int64_t num_parameters() const;

  // The parts. tokens: B rows of T+1 ids (inputs = [0,T), targets = [1,T]).
  // forward → logits [B*T, V] (also logits()); targets() [B*T] are the shifted
  // ids. for_backward=false is the forward-only path (evaluation, a frozen
  // reference model): backward() is then refused and no gradient is touched.
  const float* forward(const int32_t* tokens, int B, int T, bool for_backward);
  // The same for a train/batch.h micro-batch: RoPE at batch.pos, attention
  // within batch.seg (packed examples never see each other). The weights are
  // the objective's business; targets() are still the shifted tokens.
  const float* forward(const Batch& batch, bool for_backward);
  // An objective (layers.h cross_entropy, sequence_logprob) turns logits()
  // into dloss/dlogits, in place or elsewhere; backward ADDS
  // d(loss)/d(param) · grad_scale into Param::g. dlogits [B*T, V].
  void backward(const float* dlogits, float grad_scale = 1.0f);
  float* logits();  // [B*T, V] of the last forward (objectives overwrite it with dlogits)
  const float* logits() const;
  const int32_t* targets() const;  // [B*T] of the last forward
  int batch() const;               // B, T of the last forward
  int seq_len() const;

  // Compositions with next-token cross-entropy; weight [B*T] (nullptr: all
  // 1) masks tokens, the loss is the mean over unmasked ones. Returns the
  // loss and ADDS its gradient times grad_scale into Param::g
  // (grad_scale = 1/accumulation_steps for gradient accumulation).
  float forward_backward(const int32_t* tokens, int B, int T, float grad_scale = 1.0f, const float* weight = nullptr);
  float loss(const int32_t* tokens, int B, int T, const float* weight = nullptr);  // forward only
  void zero_grad();
  std::vector<TensorView> views() const;  // HF names, F32, pointing at the master weights
  void set_options(const TrainOptions& o);
  const TrainOptions& options() const { return opt_; }

 private:
  Net() = default;
  void build_params();
  model::ModelConfig cfg_;
  TrainOptions opt_;
  std::vector<Param> params_;
  std::unique_ptr<Workspace> ws_;
};

// The same computation in double precision (gradient checks): w[i] are the
// values of params()[i] in order, g[i] receives their gradients (overwritten;
// pass g == nullptr for the value only). The objective is the (weighted) mean
// cross-entropy, or with dlogp [B] given, Σ_b dlogp[b]·logp[b] of
// sequence_logprob (the pair-loss path). weight [B*T] or nullptr; pos and
// seg [B*T] as in Batch (nullptr: 0..T-1, one example per row).
double forward_backward_f64(const model::ModelConfig& cfg, const std::vector<std::vector<double>>& w,
                            std::vector<std::vector<double>>* g, const int32_t* tokens, int B, int T,
                            const double* weight = nullptr, const double* dlogp = nullptr,
                            const int32_t* pos = nullptr, const int32_t* seg = nullptr);

}  // namespace solar::train
