// solar/train/batch.h — what the trainer feeds an objective, and where it comes from.
//
// A Batch is one micro-batch with everything beyond plain next-token windows
// that SFT (loss masks, packed examples) and DPO (pairs, cached reference
// log-probs) need. A BatchSource is a pure function of the micro-batch index,
// so a resumed run sees the same batches as an uninterrupted one. The token
// shards of `solar tokenize` are one source (the Trainer's default); `solar
// sft` and `solar dpo` bring their own.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace solar::train {

class Net;

// One micro-batch: B rows of T+1 tokens (inputs [0,T), targets [1,T]).
struct Batch {
  int B = 0, T = 0;
  std::vector<int32_t> tokens;  // [B*(T+1)]
  std::vector<float> weight;    // [B*T] loss weight of each target; empty = all 1 (0 on prompts, padding)
  std::vector<int32_t> pos;     // [B*T] RoPE position of each input; empty = 0..T-1 per row (packing restarts it per example)
  std::vector<int32_t> seg;     // [B*T] example number within its row; position t attends s<=t only when seg equal; empty = one example per row
  std::vector<int64_t> ids;     // free for the objective (e.g. DPO: the pair index of each row); may be empty

  // Throws solar::Error naming `what` and the field when the sizes disagree
  // with B and T (Net::forward calls it).
  void validate(const std::string& what = "batch") const;
};

// Where micro-batches come from: a pure function of the index, so resume is
// exact. Called from one thread at a time.
class BatchSource {
 public:
  virtual ~BatchSource() = default;
  virtual int vocab_size() const = 0;
  virtual void train_batch(uint64_t index, Batch& out) const = 0;  // index = step*grad_accum + micro
  virtual uint64_t val_batches() const { return 0; }              // held-out micro-batches (0: none)
  virtual void val_batch(uint64_t i, Batch& out) const;           // i < val_batches(); the default throws
};

// Extra per-step metrics an objective reports (averaged over micro-batches,
// logged in metrics.jsonl by name, e.g. "rewards/chosen"; evals log them as
// "eval_" + name).
using Metrics = std::map<std::string, double>;

// Loss of one micro-batch; ADDS d(loss)/d(param)·grad_scale into Param::g
// when grad_scale != 0 (grad_scale == 0: evaluation, forward only).
using Objective = std::function<double(Net& model, const Batch& batch, float grad_scale, Metrics* metrics)>;

// The default objective: next-token cross-entropy, Σ weight·loss / Σ weight
// over the batch (0 when every weight is 0), honouring pos and seg.
double next_token_loss(Net& model, const Batch& batch, float grad_scale, Metrics* metrics = nullptr);

}  // namespace solar::train
