// solar/model/rope.h — the one RoPE row permutation of the model contract.
//
// Checkpoints hold q/k projections in Hugging Face rotate-half layout (pair
// (i, i + head_dim/2) rotates together). llama2.c and GGUF use interleaved
// pairs (2i, 2i+1). Readers, writers and training convert with this.
#pragma once
#include <cstddef>

namespace solar::model {

// Permutes q/k projection rows between interleaved-pair RoPE (llama2.c, GGUF)
// and HF rotate-half layout, per head. to_hf selects the direction.
// `rows` = n_heads * head_dim, each row `row_bytes` long; src != dst.
void permute_rope_rows(const void* src, void* dst, int n_heads, int head_dim, size_t row_bytes, bool to_hf);

}  // namespace solar::model
