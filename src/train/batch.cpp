#include "train/batch.h"

#include "core/error.h"
#include "train/layers.h"
#include "train/net.h"

namespace solar::train {

void Batch::validate(const std::string& what) const {
  if (B <= 0 || T <= 0)
    fail(what, "B/T", "expected B > 0 and T > 0, got B=" + std::to_string(B) + " T=" + std::to_string(T));
  const size_t n = size_t(B) * T;
  if (tokens.size() != n + B)
    fail(what, "tokens", "expected B*(T+1) = " + std::to_string(n + B) + " ids, got " + std::to_string(tokens.size()));
  auto sized = [&](const char* field, size_t got) {
    if (got != 0 && got != n)
      fail(what, field, "expected empty or B*T = " + std::to_string(n) + " entries, got " + std::to_string(got));
  };
  sized("weight", weight.size());
  sized("pos", pos.size());
  sized("seg", seg.size());
  for (int32_t p : pos)
    if (p < 0) fail(what, "pos", "expected positions >= 0, got " + std::to_string(p));
}

void BatchSource::val_batch(uint64_t i, Batch&) const {
  fail("batch source", "val_batch", "this source has no validation batches (asked for " + std::to_string(i) + ")");
}

double next_token_loss(Net& model, const Batch& batch, float grad_scale, Metrics*) {
  const bool train = grad_scale != 0;
  model.forward(batch, train);
  const double loss = cross_entropy<float>(model.logits(), model.targets(), int64_t(batch.B) * batch.T,
                                           model.config().vocab_size, grad_scale,
                                           batch.weight.empty() ? nullptr : batch.weight.data());
  if (train) model.backward(model.logits(), 1.0f);
  return loss;
}

}  // namespace solar::train
