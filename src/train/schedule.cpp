#include "train/schedule.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace solar::train {

void Schedule::validate(const std::string& where) const {
  if (kind != "cosine" && kind != "linear" && kind != "constant" && kind != "wsd")
    fail(where, "kind", "expected cosine, linear, constant or wsd, got '" + kind + "'");
  if (warmup < 0 || total < 1) fail(where, "steps", "expected warmup >= 0 and total >= 1");
  if (!(lr >= 0) || !(min_lr_ratio >= 0 && min_lr_ratio <= 1))
    fail(where, "lr", "expected lr >= 0 and min_lr_ratio in [0, 1]");
  if (!(decay_frac >= 0 && decay_frac <= 1)) fail(where, "decay_frac", "expected a value in [0, 1]");
}

float Schedule::at(int64_t step) const {
  if (step < warmup) return lr * float(step + 1) / float(warmup);
  const double min_lr = double(lr) * min_lr_ratio;
  if (kind == "constant") return lr;
  double r;  // progress of the decay, 0 → 1
  if (kind == "wsd") {
    const double start = double(total) * (1.0 - decay_frac);
    r = step < start ? 0.0 : (step - start) / std::max(1.0, total - start);
  } else {
    r = double(step - warmup) / double(std::max<int64_t>(1, total - warmup));
  }
  r = std::clamp(r, 0.0, 1.0);
  if (kind == "cosine") return float(min_lr + 0.5 * (1 + std::cos(M_PI * r)) * (lr - min_lr));
  return float(lr - r * (lr - min_lr));  // linear, wsd
}

}  // namespace solar::train
