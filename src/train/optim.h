// solar/train/optim.h — AdamW with decoupled weight decay and global-norm clipping.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "train/net.h"

namespace solar::train {

struct AdamWConfig {
  float lr = 3e-4f, beta1 = 0.9f, beta2 = 0.95f, eps = 1e-8f, weight_decay = 0.1f;
  float grad_clip = 1.0f;  // max global L2 norm of the gradients; <= 0: no clipping
};

class AdamW {
 public:
  AdamW(Net& model, AdamWConfig cfg);
  // One update with learning rate lr (the schedule's value; cfg.lr is only
  // the default for callers). Clips the gradients by their global norm first
  // and returns the norm before clipping. Does not zero the gradients.
  float step(float lr);
  // m, v and the step count: binary, written atomically; load() checks that
  // names and shapes match the model and throws naming the file otherwise.
  void save(const std::string& path) const;
  void load(const std::string& path);
  int64_t step_count() const { return t_; }
  const AdamWConfig& config() const { return cfg_; }

 private:
  Net& model_;
  AdamWConfig cfg_;
  std::vector<std::vector<float>> m_, v_;
  int64_t t_ = 0;
};

// sqrt(sum of squares of every gradient), accumulated in double in a fixed order.
double grad_norm(const std::vector<Param>& params);

}  // namespace solar::train
