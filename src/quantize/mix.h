// solar/quantize/mix.h — which type each tensor of a quantized model gets.
//
// llama.cpp's file types ("ftypes") are mixes, not single types: a Q4_K_M
// file holds Q4_K, Q6_K and F32 tensors. tensor_type() makes the choice
// llama.cpp's llama_tensor_get_type makes for a Llama model quantized
// without an importance matrix:
//   - 1-D tensors (the norms) are not quantized;
//   - output.weight — and token_embd.weight when the embeddings are tied,
//     since it then serves as the output — gets Q6_K, except in Q8_0 files
//     (Q8_0), or Q8_0 when its rows are not whole blocks of the base type;
//   - Q4_K_M gives attn_v and ffn_down Q6_K in the layers use_more_bits
//     picks (the first and last eighth, and every third layer between), and
//     in a 70B model (80 layers, grouped-query attention) the other attn_v
//     Q5_K; every other 2-D tensor gets the base type;
//   - a type whose block does not divide the row length falls back: Q4_K ->
//     Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0, and F16 when even a 32-element block
//     does not fit.
// `pure` skips the mix (every 2-D tensor the base type, before fallbacks);
// the overrides replace the choice for output.weight / token_embd.weight.
// Threads: pure functions.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace solar::quantize {

// llama_ftype values, written as general.file_type.
enum class Ftype : uint32_t { Q4_0 = 2, Q8_0 = 7, Q4_K_M = 15, Q6_K = 18 };

// "q8_0", "q4_0", "q4_k_m", "q6_k" (any case); throws solar::UsageError naming `flag`.
Ftype parse_ftype(const std::string& s, const std::string& flag);
const char* ftype_name(Ftype f);  // "Q4_K_M"
DType base_type(Ftype f);         // Q4_K for Q4_K_M
// A tensor type for --output-tensor-type / --token-embedding-type: any type
// core/quantize.h writes, as ggml names it ("q6_k", "f16"; any case).
DType parse_tensor_type(const std::string& s, const std::string& flag);

struct Mix {
  Ftype ftype = Ftype::Q8_0;
  bool pure = false;                      // llama-quantize --pure
  std::optional<DType> output_type;       // --output-tensor-type
  std::optional<DType> token_embd_type;   // --token-embedding-type
};

struct ModelInfo {
  int n_layers = 0;
  int n_heads = 0, n_kv_heads = 0;
  bool tied_embeddings = false;  // no output.weight: token_embd serves as the output
};

struct TypeChoice {
  DType type;
  std::string fallback;  // non-empty when the row length forced another type: why
};

// The type of tensor `name` (llama.cpp's GGUF name: blk.N.attn_v.weight, …)
// with row-major `shape`, stored now as `current`. Throws solar::UsageError
// when an override's block does not divide the rows.
TypeChoice tensor_type(const Mix& mix, const ModelInfo& m, const std::string& name, const std::vector<int64_t>& shape,
                       DType current);

// llama.cpp's order of tensors in a quantized file: tensors outside the
// blocks first, then block by block, by name within each.
bool tensor_order(const std::string& a, const std::string& b);

}  // namespace solar::quantize
