#include "model/checkpoint.h"

#include "core/error.h"
#include "core/fs.h"
#include "core/log.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstring>
#include <filesystem>

namespace solar::model {

const TensorView& Checkpoint::get(const std::string& name) const {
  auto it = tensors.find(name);
  if (it == tensors.end()) fail(source, name, "missing tensor");
  return it->second;
}

const TensorView& Checkpoint::lm_head() const {
  if (config.tie_word_embeddings || !has("lm_head.weight")) return get("model.embed_tokens.weight");
  return get("lm_head.weight");
}

TensorView Checkpoint::adopt(std::string name, DType dt, std::vector<int64_t> shape, std::vector<uint8_t> data) {
  auto buf = std::make_shared<std::vector<uint8_t>>(std::move(data));
  owned.push_back(buf);
  TensorView v{std::move(name), dt, std::move(shape), buf->data(), buf->size()};
  return v;
}

std::string layer_tensor(int layer, const char* suffix) {
  return "model.layers." + std::to_string(layer) + "." + suffix;
}

static const char* kLayerSuffixes[] = {
    "input_layernorm.weight", "self_attn.q_proj.weight", "self_attn.k_proj.weight",
    "self_attn.v_proj.weight", "self_attn.o_proj.weight", "post_attention_layernorm.weight",
    "mlp.gate_proj.weight",   "mlp.up_proj.weight",      "mlp.down_proj.weight"};

std::vector<std::string> expected_tensor_names(const ModelConfig& c) {
  std::vector<std::string> n{"model.embed_tokens.weight"};
  for (int l = 0; l < c.num_hidden_layers; ++l)
    for (const char* s : kLayerSuffixes) n.push_back(layer_tensor(l, s));
  n.push_back("model.norm.weight");
  if (!c.tie_word_embeddings) n.push_back("lm_head.weight");
  return n;
}

std::vector<int64_t> expected_shape(const ModelConfig& c, const std::string& name) {
  int64_t d = c.hidden_size, f = c.intermediate_size, v = c.vocab_size, q = c.q_dim(), kv = c.kv_dim();
  auto ends = [&](const char* s) {
    size_t n = std::strlen(s);
    return name.size() >= n && name.compare(name.size() - n, n, s) == 0;
  };
  if (name == "model.embed_tokens.weight" || name == "lm_head.weight") return {v, d};
  if (name == "model.norm.weight" || ends("layernorm.weight")) return {d};
  if (ends("q_proj.weight")) return {q, d};
  if (ends("k_proj.weight") || ends("v_proj.weight")) return {kv, d};
  if (ends("o_proj.weight")) return {d, q};
  if (ends("gate_proj.weight") || ends("up_proj.weight")) return {f, d};
  if (ends("down_proj.weight")) return {d, f};
  return {};
}

// "model.layers.<N>.<suffix>" with N written canonically (no sign, no
// leading zero) and a known suffix; else false.
static bool layer_name(const std::string& name, int64_t* layer, std::string* suffix) {
  static const std::string kPrefix = "model.layers.";
  if (name.rfind(kPrefix, 0) != 0) return false;
  size_t dot = name.find('.', kPrefix.size());
  if (dot == std::string::npos) return false;
  std::string digits = name.substr(kPrefix.size(), dot - kPrefix.size());
  if (digits.empty() || digits.size() > 9 || digits.find_first_not_of("0123456789") != std::string::npos ||
      (digits.size() > 1 && digits[0] == '0'))
    return false;
  *layer = std::stoll(digits);
  *suffix = name.substr(dot + 1);
  for (const char* s : kLayerSuffixes)
    if (*suffix == s) return true;
  return false;
}

// Tied embeddings with an lm_head.weight beside them: HF ignores the copy;
// some exports store it identical, which is harmless. A different one
// means the file's head is not what would run, so it is refused.
void Checkpoint::check_tied_head() const {
  const TensorView& e = get("model.embed_tokens.weight");
  const TensorView& h = get("lm_head.weight");
  if (h.dtype == e.dtype && h.shape == e.shape && h.nbytes == e.nbytes && std::memcmp(h.data, e.data, h.nbytes) == 0) {
    log_info("model", source + ": lm_head.weight equals the tied model.embed_tokens.weight; using the embedding");
    return;
  }
  fail(source, "lm_head.weight", "differs from model.embed_tokens.weight but tie_word_embeddings is true (the head "
                                 "would be ignored): set tie_word_embeddings to false, or remove the tensor");
}

void Checkpoint::validate() const {
  config.validate(source);
  const int64_t L = config.num_hidden_layers;
  // Names first, over the tensors present: the work is bounded by the file,
  // never by what the config claims (2^31 layers beside a tiny model).
  bool tied_head = false;
  for (const auto& [name, t] : tensors) {
    if (name == "model.embed_tokens.weight" || name == "model.norm.weight") continue;
    if (name == "lm_head.weight") {
      tied_head = config.tie_word_embeddings;
      continue;
    }
    int64_t layer;
    std::string suffix;
    if (!layer_name(name, &layer, &suffix))
      fail(source, name, "unknown tensor (expected Llama names: model.embed_tokens.weight, model.layers.N.*, "
                         "model.norm.weight, lm_head.weight)");
    if (layer >= L)
      fail(source, name, "layer " + std::to_string(layer) + " is beyond num_hidden_layers (" + std::to_string(L) +
                             ") in the config");
  }
  if (tied_head) check_tied_head();
  // Every present name is an expected one, so a count short of the
  // expected means a tensor is missing: name the first.
  size_t count = size_t(L) * std::size(kLayerSuffixes) + 2 + (config.tie_word_embeddings ? 0 : 1);
  if (tensors.size() - (tied_head ? 1 : 0) < count) {
    for (const auto& name : expected_tensor_names(config))
      if (!has(name))
        fail(source, name, "missing tensor (the config's " + std::to_string(L) + " layers need " +
                               std::to_string(count) + " tensors, the file holds " + std::to_string(tensors.size()) + ")");
  }
  for (const auto& name : expected_tensor_names(config)) {
    const TensorView& t = get(name);
    auto want = expected_shape(config, name);
    if (t.shape != want)
      fail(source, name, "expected shape " + shape_str(want) + " from config, got " + shape_str(t.shape));
    // Weight matrices may be block-quantized along their rows; norms stay float.
    if (t.shape.size() == 1 && !is_float(t.dtype))
      fail(source, name, std::string("expected a norm weight in F32, F16 or BF16, got ") + dtype_name(t.dtype));
    if (!is_float(t.dtype) && !is_quantized(t.dtype))
      fail(source, name, std::string("expected F32, F16, BF16 or a GGML block type (Q4_0, Q8_0, Q4_K, …), got ") +
                             dtype_name(t.dtype));
    int64_t block = dtype_block_elems(t.dtype);
    if (t.shape.back() % block != 0)
      fail(source, name, std::string("expected a row length that is a multiple of ") + dtype_name(t.dtype) +
                             "'s " + std::to_string(block) + "-element block, got rows of " +
                             std::to_string(t.shape.back()) + " in " + shape_str(t.shape));
    size_t bytes = tensor_bytes(t);
    if (t.nbytes != bytes)
      fail(source, name, "byte size " + std::to_string(t.nbytes) + " does not match shape " + shape_str(t.shape) +
                             " x " + dtype_name(t.dtype) + " (" + std::to_string(bytes) + " bytes)");
  }
}

}  // namespace solar::model

namespace solar::model {
namespace {

// Where a tensor's possibly non-finite values sit: `width`-byte floats with
// exponent mask `mask`, at byte offsets `at` inside every `stride` bytes.
struct FloatLayout {
  size_t width = 0, stride = 0;
  uint32_t mask = 0;
  std::vector<size_t> at;
};

FloatLayout float_layout(DType t) {
  constexpr uint32_t kF16 = 0x7c00, kBF16 = 0x7f80, kF32 = 0x7f800000;
  switch (t) {
    case DType::F32: return {4, 4, kF32, {0}};
    case DType::F16: return {2, 2, kF16, {0}};
    case DType::BF16: return {2, 2, kBF16, {0}};
    // ggml-common.h block_q*: d (and m / dmin) are f16.
    case DType::Q4_0: case DType::Q5_0: case DType::Q8_0: case DType::Q4_1: case DType::Q5_1:
    case DType::Q4_K: case DType::Q5_K:
      return {2, dtype_block_bytes(t), kF16,
              t == DType::Q4_0 || t == DType::Q5_0 || t == DType::Q8_0 ? std::vector<size_t>{0} : std::vector<size_t>{0, 2}};
    case DType::Q2_K: return {2, 84, kF16, {80, 82}};
    case DType::Q3_K: return {2, 110, kF16, {108}};
    case DType::Q6_K: return {2, 210, kF16, {208}};
    default: return {};  // integer tensors: nothing to scan
  }
}

// True if any value in [b, e) (whole strides) is NaN or Inf. A branch-free
// OR over the range, which the compiler vectorises for the plain floats.
template <class U>
bool any_nonfinite(const uint8_t* b, size_t n, const FloatLayout& f) {
  const U mask = U(f.mask);
  bool bad = false;
  if (f.stride == sizeof(U)) {
    for (size_t i = 0; i < n; i += sizeof(U)) {
      U x;
      std::memcpy(&x, b + i, sizeof x);
      bad |= (x & mask) == mask;
    }
    return bad;
  }
  for (size_t i = 0; i < n; i += f.stride)
    for (size_t o : f.at) {
      U x;
      std::memcpy(&x, b + i + o, sizeof x);
      bad |= (x & mask) == mask;
    }
  return bad;
}

bool any_nonfinite(const uint8_t* b, size_t n, const FloatLayout& f) {
  return f.width == 4 ? any_nonfinite<uint32_t>(b, n, f) : any_nonfinite<uint16_t>(b, n, f);
}

}  // namespace

void Checkpoint::check_finite() const {
  // Work items of ~4 MiB (whole strides) across all tensors, so one big
  // embedding does not leave the other threads idle.
  struct Item {
    size_t tensor, begin, end;
  };
  std::vector<const TensorView*> ts;
  std::vector<FloatLayout> layouts;
  std::vector<Item> items;
  for (const auto& [name, t] : tensors) {
    FloatLayout f = float_layout(t.dtype);
    if (!f.width) continue;
    size_t chunk = std::max<size_t>(1, (size_t(4) << 20) / f.stride) * f.stride;
    size_t n = t.nbytes / f.stride * f.stride;
    for (size_t b = 0; b < n; b += chunk) items.push_back({ts.size(), b, std::min(n, b + chunk)});
    ts.push_back(&t);
    layouts.push_back(std::move(f));
  }
  std::atomic<size_t> first_bad{SIZE_MAX};
#pragma omp parallel for schedule(dynamic)
  for (size_t i = 0; i < items.size(); ++i) {
    const Item& it = items[i];
    if (it.tensor >= first_bad.load(std::memory_order_relaxed)) continue;
    const uint8_t* b = static_cast<const uint8_t*>(ts[it.tensor]->data) + it.begin;
    if (any_nonfinite(b, it.end - it.begin, layouts[it.tensor])) {
      size_t cur = first_bad.load();
      while (it.tensor < cur && !first_bad.compare_exchange_weak(cur, it.tensor)) {
      }
    }
  }
  if (first_bad == SIZE_MAX) return;
  // Name the element: a sequential pass over the one bad tensor.
  const TensorView& t = *ts[first_bad];
  const FloatLayout& f = layouts[first_bad];
  size_t stride_elems = size_t(dtype_block_elems(t.dtype));
  for (size_t i = 0; i < t.nbytes / f.stride; ++i)
    if (any_nonfinite(static_cast<const uint8_t*>(t.data) + i * f.stride, f.stride, f))
      fail(source, t.name,
           std::string(is_quantized(t.dtype) ? "a block scale of elements " + std::to_string(i * stride_elems) + ".." +
                                                   std::to_string((i + 1) * stride_elems - 1)
                                             : "element " + std::to_string(i)) +
               " is NaN or Inf (corrupt weights, or training diverged; --check-tensors off skips this check)");
}

}  // namespace solar::model
