// solar/model/init.h — random-weight checkpoints of any shape.
//
// For tests, benchmarks and training from scratch: weights ~ uniform with
// std 0.02 (output projections scaled by 1/sqrt(2·layers) as GPT-2 / llm.c
// do), norms 1. Values depend only on (seed, tensor name, index), so the
// same command writes the same bytes with any thread count.
// Threads: functions are reentrant (no shared state); each writes only its output.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "model/config.h"

namespace solar {

// Fills `out` (n elements of dtype dt) with tensor `name`'s initial values.
void init_tensor(const ModelConfig& c, const std::string& name, uint64_t seed, void* out, DType dt, size_t n);

}  // namespace solar
