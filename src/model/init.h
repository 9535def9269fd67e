// solar/model/init.h — the one weight initialisation: what `solar init`
// writes and what training from scratch (train::Net::init, `solar train
// --preset`) starts from, bit for bit for the same seed (`solar init
// --outtype f32 --seed S` = `solar train --seed S`; other dtypes round them).
//
// Weights ~ normal(0, 0.02) (core/rng.h rng_normal), o_proj/down_proj scaled
// by 1/sqrt(2·layers) as GPT-2 / llm.c do, norms 1. Values depend only on
// (seed, tensor name, index), so the same command writes the same bytes with
// any thread count.
// Threads: functions are reentrant (no shared state); each writes only its output.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "model/config.h"

namespace solar::model {

// Fills `out` (n elements of dtype dt) with tensor `name`'s initial values.
void init_tensor(const ModelConfig& c, const std::string& name, uint64_t seed, void* out, DType dt, size_t n);

}  // namespace solar::model
