// solar/formats/llama2c.h — Karpathy's llama2.c checkpoints.
//
// Legacy: 7 int32 (dim, hidden_dim, n_layers, n_heads, n_kv_heads,
// vocab_size (negative = untied head), seq_len), then f32 weights in the
// order token_embedding, rms_att, wq, wk, wv, wo, rms_ffn, w1, w2, w3,
// rms_final, freq_cis_real, freq_cis_imag, [wcls].
// v1: magic "ak42", int version 1, the 7 ints, uint8 shared_classifier,
// padded to 256 bytes; f32 weights with norms first (rms_att, rms_ffn,
// rms_final), then embedding, wq, wk, wv, wo, w1, w2, w3, [wcls].
// Weights are used in place (views into the map) with rope_interleaved =
// true; tokenizer.bin beside the checkpoint becomes tokenizer_path.
// Threads: no shared state: concurrent reads are safe; one writer per file.
#pragma once
#include <string>

#include "model/checkpoint.h"

namespace solar::formats {

model::Checkpoint read_llama2c(const std::string& path);

}  // namespace solar::formats
