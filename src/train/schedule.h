// solar/train/schedule.h — learning-rate schedules.
//
// Linear warmup from lr/warmup to lr over `warmup` steps, then:
//   cosine:   lr → min_lr along half a cosine by step `total`
//   linear:   lr → min_lr linearly by step `total`
//   constant: lr
//   wsd:      warmup-stable-decay: lr until the last decay_frac of `total`
//             steps, then linearly to min_lr
// min_lr = lr * min_lr_ratio; steps past `total` stay at the final value.
#pragma once
#include <cstdint>
#include <string>

namespace solar::train {

struct Schedule {
  std::string kind = "cosine";  // cosine|linear|constant|wsd
  int64_t warmup = 0, total = 1;
  float lr = 3e-4f, min_lr_ratio = 0.1f, decay_frac = 0.2f;
  float at(int64_t step) const;  // step counts from 0
  // Throws solar::Error naming `where` (e.g. "--lr-scheduler") on a bad kind or range.
  void validate(const std::string& where = "schedule") const;
};

}  // namespace solar::train
