// Tensor type choice (quantize/mix.h), written from llama.cpp's
// llama_tensor_get_type and tensor_type_fallback (src/llama-quant.cpp).
#include "quantize/mix.h"

#include <algorithm>
#include <cctype>
#include <cstdio>

#include "core/error.h"
#include "core/quantize.h"

namespace solar::quantize {

namespace {

std::string lower(std::string s) {
  for (char& c : s) c = char(std::tolower(uint8_t(c)));
  return s;
}

// blk.N.… -> N; -1 for tensors outside the blocks.
int layer_of(const std::string& name) {
  int layer = -1;
  if (std::sscanf(name.c_str(), "blk.%d.", &layer) != 1) return -1;
  return layer;
}

bool has(const std::string& name, const char* part) { return name.find(part) != std::string::npos; }

// Q4_K_M's "more bits" layers: the first and last eighth, and every third one between.
bool use_more_bits(int i, int n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

bool fits(DType t, int64_t ncols) { return ncols % dtype_block_elems(t) == 0; }

}  // namespace

Ftype parse_ftype(const std::string& s, const std::string& flag) {
  const std::string l = lower(s);
  if (l == "q8_0") return Ftype::Q8_0;
  if (l == "q4_0") return Ftype::Q4_0;
  if (l == "q4_k_m") return Ftype::Q4_K_M;
  if (l == "q6_k") return Ftype::Q6_K;
  fail(flag, "", "expected q8_0, q4_0, q4_k_m or q6_k, got '" + s + "'");
}

const char* ftype_name(Ftype f) {
  switch (f) {
    case Ftype::Q4_0: return "Q4_0";
    case Ftype::Q8_0: return "Q8_0";
    case Ftype::Q4_K_M: return "Q4_K_M";
    case Ftype::Q6_K: return "Q6_K";
  }
  return "?";
}

DType base_type(Ftype f) {
  switch (f) {
    case Ftype::Q4_0: return DType::Q4_0;
    case Ftype::Q8_0: return DType::Q8_0;
    case Ftype::Q4_K_M: return DType::Q4_K;
    case Ftype::Q6_K: return DType::Q6_K;
  }
  fail("quantize", "ftype", "unknown file type " + std::to_string(uint32_t(f)));
}

DType parse_tensor_type(const std::string& s, const std::string& flag) {
  const std::string l = lower(s);
  for (DType t : {DType::F32, DType::F16, DType::BF16, DType::Q4_0, DType::Q5_0, DType::Q5_1, DType::Q8_0, DType::Q4_K,
                  DType::Q5_K, DType::Q6_K})
    if (l == lower(dtype_name(t))) return t;
  fail(flag, "", "expected one of f32, f16, bf16, q4_0, q5_0, q5_1, q8_0, q4_k, q5_k, q6_k, got '" + s + "'");
}

TypeChoice tensor_type(const Mix& mix, const ModelInfo& m, const std::string& name, const std::vector<int64_t>& shape,
                       DType current) {
  // llama.cpp quantizes 2-D (and 3-D expert) "…weight" tensors, never norms.
  if (shape.size() < 2 || !name.ends_with("weight") || has(name, "_norm.weight")) return {current, ""};
  const int64_t ncols = shape.back();
  const bool is_output = name == "output.weight", is_embd = name == "token_embd.weight";
  // The overrides bypass the mix and the fallbacks (as llama.cpp's do), so a
  // type that does not fit is the user's to fix.
  auto forced = [&](DType t, const char* flag) -> TypeChoice {
    if (!fits(t, ncols))
      fail(flag, "", std::string(dtype_name(t)) + " needs rows of whole " + std::to_string(dtype_block_elems(t)) +
                         "-element blocks; " + name + " has rows of " + std::to_string(ncols));
    return {t, ""};
  };
  if (is_embd && mix.token_embd_type) return forced(*mix.token_embd_type, "--token-embedding-type");
  if (is_output && mix.output_type) return forced(*mix.output_type, "--output-tensor-type");

  const DType base = base_type(mix.ftype);
  DType t = base;
  if (!mix.pure) {
    const int layer = layer_of(name);
    if (is_output || (m.tied_embeddings && is_embd)) {
      // The tensor that produces the logits: more bits.
      if (mix.output_type) t = *mix.output_type;
      else if (!fits(base, ncols)) t = DType::Q8_0;
      else if (base != DType::Q8_0) t = DType::Q6_K;
    } else if (has(name, "attn_v.weight")) {
      if (mix.ftype == Ftype::Q4_K_M && use_more_bits(layer, m.n_layers)) t = DType::Q6_K;
      // A 70B model's attn_v is 8x smaller than attn_q (8 heads share it): more bits cost little.
      const bool is_70b = m.n_layers == 80 && m.n_heads != m.n_kv_heads;
      if (is_70b && t == DType::Q4_K) t = DType::Q5_K;
    } else if (has(name, "ffn_down")) {
      if (mix.ftype == Ftype::Q4_K_M && use_more_bits(layer, m.n_layers)) t = DType::Q6_K;
    }
  }
  if (fits(t, ncols)) return {t, ""};
  const DType wanted = t;
  switch (t) {
    case DType::Q4_K: t = DType::Q5_0; break;
    case DType::Q5_K: t = DType::Q5_1; break;
    case DType::Q6_K: t = DType::Q8_0; break;
    default: break;  // 32-element blocks: only F16 is left
  }
  if (!fits(t, ncols)) t = DType::F16;
  return {t, "rows of " + std::to_string(ncols) + " are not whole " + std::to_string(dtype_block_elems(wanted)) +
                 "-element blocks of " + dtype_name(wanted)};
}

bool tensor_order(const std::string& a, const std::string& b) {
  const int la = layer_of(a), lb = layer_of(b);
  return la != lb ? la < lb : a < b;
}

}  // namespace solar::quantize
