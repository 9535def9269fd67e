#include "formats/gguf.h"
#include "formats/gguf_impl.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <optional>
#include <set>
#include <tuple>

#include "core/error.h"
#include "core/fs.h"
#include "core/log.h"
#include "formats/hf.h"
#include "formats/load.h"

namespace solar::formats {

namespace {

// ggml_type values the reader takes (core/dtype.h maps them).
constexpr const char* kSupportedTypes =
    "F32=0, F16=1, BF16=30, Q4_0=2, Q4_1=3, Q5_0=6, Q5_1=7, Q8_0=8, Q2_K=10, Q3_K=11, Q4_K=12, Q5_K=13 or Q6_K=14";
constexpr uint32_t kMaxDims = 4;  // GGML_MAX_DIMS

size_t scalar_size(uint32_t t) {
  switch (t) {
    case kU8: case kI8: case kBool: return 1;
    case kU16: case kI16: return 2;
    case kU32: case kI32: case kF32: return 4;
    case kU64: case kI64: case kF64: return 8;
    default: return 0;
  }
}

struct Value {
  uint32_t type = 0;
  int64_t i = 0;  // integers and bool
  double f = 0;   // floats (and integers, converted)
  std::string s;
  uint32_t elem = 0;            // array element type
  uint64_t len = 0;             // array length
  std::vector<double> nums;     // numeric array elements
  std::vector<std::string> strs;  // string array elements
  bool is_int() const { return type != kF32 && type != kF64 && type != kStr && type != kArr && type != kBool; }
};

struct TensorInfo {
  std::string name;
  std::vector<uint64_t> ne;  // innermost first
  uint32_t type;
  DType dtype;
  uint64_t offset;  // relative to the data section
  size_t nbytes;
};

struct Parsed {
  uint32_t version = 0;
  std::map<std::string, Value> kv;
  std::vector<std::pair<size_t, size_t>> kv_spans;  // each entry's bytes in the file, in file order
  std::vector<std::string> keys;                    // file order
  std::vector<TensorInfo> tensors;
  uint64_t align = kDefaultAlignment;
  size_t data_off = 0;
};

// Bounds-checked little-endian cursor over the mapped file.
class Cursor {
 public:
  Cursor(const uint8_t* p, size_t n, const std::string& path) : p_(p), n_(n), path_(path) {}
  size_t off() const { return off_; }
  size_t left() const { return n_ - off_; }
  void need(uint64_t k, const std::string& field) const {
    if (k > left())
      fail(path_, field, "expected " + std::to_string(k) + " more bytes at offset " + std::to_string(off_) +
                             ", the file has " + std::to_string(left()) + " left (truncated?)");
  }
  template <class T>
  T get(const std::string& field) {
    need(sizeof(T), field);
    T v;
    std::memcpy(&v, p_ + off_, sizeof(T));
    off_ += sizeof(T);
    return v;
  }
  std::string str(const std::string& field) {
    uint64_t len = get<uint64_t>(field + " length");
    if (len > left())
      fail(path_, field, "string length " + std::to_string(len) + " exceeds the " + std::to_string(left()) +
                             " bytes left in the file");
    std::string s(reinterpret_cast<const char*>(p_ + off_), size_t(len));
    off_ += size_t(len);
    return s;
  }

 private:
  const uint8_t* p_;
  size_t n_;
  size_t off_ = 0;
  const std::string& path_;
};

void read_scalar(Cursor& c, uint32_t t, Value& v, const std::string& field) {
  v.type = t;
  switch (t) {
    case kU8: v.i = c.get<uint8_t>(field); break;
    case kI8: v.i = c.get<int8_t>(field); break;
    case kU16: v.i = c.get<uint16_t>(field); break;
    case kI16: v.i = c.get<int16_t>(field); break;
    case kU32: v.i = c.get<uint32_t>(field); break;
    case kI32: v.i = c.get<int32_t>(field); break;
    case kU64: v.i = int64_t(c.get<uint64_t>(field)); break;
    case kI64: v.i = c.get<int64_t>(field); break;
    case kBool: v.i = c.get<int8_t>(field) != 0; break;
    case kF32: v.f = c.get<float>(field); return;
    case kF64: v.f = c.get<double>(field); return;
  }
  v.f = double(v.i);
}

void read_value(Cursor& c, uint32_t t, Value& v, const std::string& field, const std::string& path, int depth) {
  if (t == kStr) {
    v.type = t;
    v.s = c.str(field);
  } else if (t == kArr) {
    if (depth > 2) fail(path, field, "expected arrays nested at most 2 deep");
    v.type = t;
    v.elem = c.get<uint32_t>(field + " element type");
    v.len = c.get<uint64_t>(field + " length");
    // Every element takes at least this many bytes: bounds huge lengths before allocating.
    uint64_t min_size = v.elem == kStr ? 8 : v.elem == kArr ? 12 : scalar_size(v.elem);
    if (min_size == 0) fail(path, field, "expected a gguf value type 0..12, got " + std::to_string(v.elem));
    if (v.len > c.left() / min_size)
      fail(path, field, "array of " + std::to_string(v.len) + " elements cannot fit in the " +
                            std::to_string(c.left()) + " bytes left");
    for (uint64_t k = 0; k < v.len; ++k) {
      if (v.elem == kStr) {
        v.strs.push_back(c.str(field));
      } else {
        Value e;
        read_value(c, v.elem, e, field, path, depth + 1);
        if (v.elem != kArr) v.nums.push_back(e.f);
      }
    }
  } else if (scalar_size(t)) {
    read_scalar(c, t, v, field);
  } else {
    fail(path, field, "expected a gguf value type 0..12, got " + std::to_string(t));
  }
}

Parsed parse(const uint8_t* p, size_t n, const std::string& path) {
  Cursor c(p, n, path);
  Parsed g;
  c.need(4, "magic");
  if (std::memcmp(p, "GGUF", 4) != 0) fail(path, "magic", "expected \"GGUF\"");
  c.get<uint32_t>("magic");
  uint32_t version = g.version = c.get<uint32_t>("version");
  if (version != 3) fail(path, "version", "expected 3, got " + std::to_string(version));
  uint64_t n_tensors = c.get<uint64_t>("tensor_count");
  uint64_t n_kv = c.get<uint64_t>("kv_count");
  // Smallest encodings: a KV is key length + type + 1 byte; a tensor info is
  // name length + n_dims + one dim + type + offset.
  if (n_kv > c.left() / 13)
    fail(path, "kv_count", "expected at most " + std::to_string(c.left() / 13) + " for a " + std::to_string(n) +
                               "-byte file, got " + std::to_string(n_kv));
  if (n_tensors > c.left() / 32)
    fail(path, "tensor_count", "expected at most " + std::to_string(c.left() / 32) + " for a " +
                                   std::to_string(n) + "-byte file, got " + std::to_string(n_tensors));
  for (uint64_t k = 0; k < n_kv; ++k) {
    const size_t begin = c.off();
    std::string key = c.str("kv[" + std::to_string(k) + "].key");
    Value v;
    read_value(c, c.get<uint32_t>(key + " type"), v, key, path, 0);
    g.kv_spans.emplace_back(begin, c.off());
    if (!g.kv.emplace(key, std::move(v)).second) fail(path, key, "duplicate metadata key");
    g.keys.push_back(key);
  }
  uint64_t& align = g.align;
  if (auto it = g.kv.find("general.alignment"); it != g.kv.end()) {
    const Value& v = it->second;
    if (v.type != kU32 || v.i == 0 || (v.i & (v.i - 1)) != 0)
      fail(path, "general.alignment", "expected a power-of-two uint32, got " + std::to_string(v.i));
    align = uint64_t(v.i);
  }
  std::set<std::string> names;
  for (uint64_t k = 0; k < n_tensors; ++k) {
    TensorInfo t;
    std::string field = "tensor[" + std::to_string(k) + "]";
    t.name = c.str(field + ".name");
    field = "tensor '" + t.name + "'";
    if (!names.insert(t.name).second) fail(path, field, "duplicate tensor name");
    uint32_t nd = c.get<uint32_t>(field + " n_dims");
    if (nd < 1 || nd > kMaxDims) fail(path, field + " n_dims", "expected 1.." + std::to_string(kMaxDims) + ", got " + std::to_string(nd));
    uint64_t numel = 1;
    for (uint32_t d = 0; d < nd; ++d) {
      uint64_t e = c.get<uint64_t>(field + " dims");
      if (e == 0 || e > (uint64_t(1) << 40) || numel > (uint64_t(1) << 40) / e)
        fail(path, field + " dims", "expected positive dims with at most 2^40 elements, got " + std::to_string(e));
      numel *= e;
      t.ne.push_back(e);
    }
    t.type = c.get<uint32_t>(field + " type");
    auto dt = dtype_from_ggml(t.type);
    if (!dt || !(is_float(*dt) || is_quantized(*dt)))
      fail(path, field + " type", "unsupported ggml type id " + std::to_string(t.type) + " (expected " + kSupportedTypes + ")");
    t.dtype = *dt;
    // Blocks run along ne[0], the innermost dimension.
    if (t.ne[0] % dtype_block_elems(t.dtype) != 0)
      fail(path, field + " dims", std::string("expected ne[0] a multiple of ") + dtype_name(t.dtype) + "'s " +
                                      std::to_string(dtype_block_elems(t.dtype)) + "-element block, got " +
                                      std::to_string(t.ne[0]));
    t.nbytes = size_t(numel / t.ne[0]) * row_bytes(t.dtype, int64_t(t.ne[0]));
    t.offset = c.get<uint64_t>(field + " offset");
    if (t.offset % align != 0)
      fail(path, field + " offset", "expected a multiple of alignment " + std::to_string(align) + ", got " +
                                        std::to_string(t.offset));
    g.tensors.push_back(std::move(t));
  }
  g.data_off = size_t((c.off() + align - 1) / align * align);
  size_t data_size = g.data_off <= n ? n - g.data_off : 0;
  for (const TensorInfo& t : g.tensors)
    if (g.data_off > n || t.offset > data_size || t.nbytes > data_size - t.offset)
      fail(path, "tensor '" + t.name + "' offset",
           "expected offset + " + std::to_string(t.nbytes) + " bytes within the " + std::to_string(data_size) +
               "-byte data section, got offset " + std::to_string(t.offset));
  // Two tensors sharing bytes would silently alias each other's weights (the
  // safetensors reader refuses the same).
  std::vector<const TensorInfo*> by_offset;
  for (const TensorInfo& t : g.tensors) by_offset.push_back(&t);
  std::sort(by_offset.begin(), by_offset.end(), [](auto* a, auto* b) { return a->offset < b->offset; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    const TensorInfo *a = by_offset[i - 1], *b = by_offset[i];
    if (a->offset + a->nbytes > b->offset)
      fail(path, "tensor '" + b->name + "' offset",
           "overlaps tensor '" + a->name + "' (bytes " + std::to_string(a->offset) + ".." +
               std::to_string(a->offset + a->nbytes) + " of the data section), got offset " + std::to_string(b->offset));
  }
  return g;
}

// llama.cpp tensor names <-> HF names.
const std::pair<const char*, const char*> kLayerNames[] = {
    {"attn_norm", "input_layernorm"}, {"attn_q", "self_attn.q_proj"},  {"attn_k", "self_attn.k_proj"},
    {"attn_v", "self_attn.v_proj"},   {"attn_output", "self_attn.o_proj"}, {"ffn_norm", "post_attention_layernorm"},
    {"ffn_gate", "mlp.gate_proj"},    {"ffn_up", "mlp.up_proj"},       {"ffn_down", "mlp.down_proj"}};
const std::pair<const char*, const char*> kGlobalNames[] = {
    {"token_embd", "model.embed_tokens"}, {"output_norm", "model.norm"}, {"output", "lm_head"}};

std::optional<std::string> hf_name(const std::string& g) {
  const std::string w = ".weight";
  if (g.size() <= w.size() || g.compare(g.size() - w.size(), w.size(), w) != 0) return std::nullopt;
  std::string stem = g.substr(0, g.size() - w.size());
  for (auto& [a, b] : kGlobalNames)
    if (stem == a) return std::string(b) + w;
  if (stem.rfind("blk.", 0) != 0) return std::nullopt;
  size_t dot = stem.find('.', 4);
  if (dot == std::string::npos || dot == 4 || dot > 10) return std::nullopt;
  std::string num = stem.substr(4, dot - 4), rest = stem.substr(dot + 1);
  for (char ch : num)
    if (ch < '0' || ch > '9') return std::nullopt;
  for (auto& [a, b] : kLayerNames)
    if (rest == a) return "model.layers." + std::to_string(std::stoi(num)) + "." + b + w;
  return std::nullopt;
}

}  // namespace

std::string gguf_tensor_name(const std::string& hf) {
  const std::string w = ".weight", pre = "model.layers.";
  std::string stem = hf.substr(0, hf.size() - w.size());
  for (auto& [a, b] : kGlobalNames)
    if (stem == b) return std::string(a) + w;
  size_t dot = stem.find('.', pre.size());
  std::string rest = stem.substr(dot + 1);
  for (auto& [a, b] : kLayerNames)
    if (rest == b) return "blk." + stem.substr(pre.size(), dot - pre.size()) + "." + a + w;
  fail(hf, "", "no GGUF name for this tensor");
}

namespace {

const Value* find(const Parsed& g, const std::string& key) {
  auto it = g.kv.find(key);
  return it == g.kv.end() ? nullptr : &it->second;
}

int64_t get_int(const Parsed& g, const std::string& path, const std::string& key, std::optional<int64_t> def) {
  const Value* v = find(g, key);
  if (!v) {
    if (!def) fail(path, key, "missing (expected an integer)");
    return *def;
  }
  if (!v->is_int()) fail(path, key, "expected an integer, got gguf type " + std::to_string(v->type));
  if (v->i < 0 || v->i > INT32_MAX) fail(path, key, "expected 0.." + std::to_string(INT32_MAX) + ", got " + std::to_string(v->i));
  return v->i;
}

double get_float(const Parsed& g, const std::string& path, const std::string& key, double def) {
  const Value* v = find(g, key);
  if (!v) return def;
  if (v->type != kF32 && v->type != kF64 && !v->is_int()) fail(path, key, "expected a number");
  return v->f;
}

// A "llama" (SentencePiece) vocabulary's tokenizer_config.json, as HF's
// Llama tokenizers read it; {} when the file has none.
nlohmann::json hf_tokenizer_config(const Parsed& g) {
  const Value* model = find(g, "tokenizer.ggml.model");
  const Value* tokens = find(g, "tokenizer.ggml.tokens");
  if (!model || model->type != kStr || model->s != "llama" || !tokens || tokens->type != kArr || tokens->elem != kStr)
    return nlohmann::json::object();
  // Optional fields of another type than llama.cpp writes are left out, not refused: the weights still load.
  nlohmann::json j = nlohmann::json::object();
  for (auto [key, def] : {std::pair{"add_bos_token", true}, {"add_eos_token", false}}) {  // llama.cpp's defaults
    const Value* v = find(g, std::string("tokenizer.ggml.") + key);
    j[key] = v && v->type == kBool ? v->i != 0 : def;
  }
  for (auto [key, name, def] : {std::tuple{"bos_token_id", "bos_token", 1}, {"eos_token_id", "eos_token", 2},
                                {"unknown_token_id", "unk_token", 0}, {"padding_token_id", "pad_token", -1}}) {
    const Value* v = find(g, std::string("tokenizer.ggml.") + key);
    int64_t id = v && v->is_int() ? v->i : def;
    if (id >= 0 && uint64_t(id) < tokens->strs.size()) j[name] = tokens->strs[size_t(id)];
  }
  if (const Value* t = find(g, "tokenizer.chat_template"); t && t->type == kStr) j["chat_template"] = t->s;
  j["clean_up_tokenization_spaces"] = false;
  j["tokenizer_class"] = "LlamaTokenizer";
  return j;
}

struct OpenGguf {
  std::shared_ptr<MappedFile> file;
  Parsed g;
};

OpenGguf open_gguf(const std::string& path) {
  auto f = MappedFile::open(path);
  return {f, parse(f->data(), f->size(), path)};
}

}  // namespace

model::Checkpoint read_gguf(const std::string& path) {
  auto [file, g] = open_gguf(path);
  model::Checkpoint ck;
  ck.source = path;
  ck.files.push_back(file);
  const Value* arch = find(g, "general.architecture");
  if (!arch || arch->type != kStr) fail(path, "general.architecture", "missing (expected \"llama\")");
  if (arch->s != "llama") fail(path, "general.architecture", "expected \"llama\", got \"" + arch->s + "\"");

  for (const TensorInfo& t : g.tensors) {
    auto name = hf_name(t.name);
    if (!name) fail(path, "tensor '" + t.name + "'", "unknown tensor name for the llama architecture");
    if (ck.has(*name)) fail(path, "tensor '" + t.name + "'", "another tensor also maps to " + *name);
    TensorView v{*name, t.dtype, {}, file->data() + g.data_off + t.offset, t.nbytes};
    for (auto it = t.ne.rbegin(); it != t.ne.rend(); ++it) v.shape.push_back(int64_t(*it));
    ck.tensors[*name] = v;
  }

  model::ModelConfig& c = ck.config;
  c.num_hidden_layers = int(get_int(g, path, "llama.block_count", {}));
  c.hidden_size = int(get_int(g, path, "llama.embedding_length", {}));
  // Bounded by the tensors present, so a corrupt count cannot make validate() enumerate billions of names.
  if (size_t(c.num_hidden_layers) * 9 > g.tensors.size())
    fail(path, "llama.block_count", "expected at most " + std::to_string(g.tensors.size() / 9) + " (9 tensors per block in the file), got " + std::to_string(c.num_hidden_layers));
  c.intermediate_size = int(get_int(g, path, "llama.feed_forward_length", {}));
  c.num_attention_heads = int(get_int(g, path, "llama.attention.head_count", {}));
  c.num_key_value_heads = int(get_int(g, path, "llama.attention.head_count_kv", c.num_attention_heads));
  if (c.num_attention_heads == 0) fail(path, "llama.attention.head_count", "expected a positive integer, got 0");
  c.head_dim = int(get_int(g, path, "llama.attention.key_length", c.hidden_size / c.num_attention_heads));
  int64_t rope_dims = get_int(g, path, "llama.rope.dimension_count", c.head_dim);
  if (rope_dims != c.head_dim)
    fail(path, "llama.rope.dimension_count",
         "expected head_dim " + std::to_string(c.head_dim) + " (partial RoPE is not supported), got " + std::to_string(rope_dims));
  c.max_position_embeddings = int(get_int(g, path, "llama.context_length", 2048));
  c.rope_theta = get_float(g, path, "llama.rope.freq_base", 10000.0);
  c.rms_norm_eps = float(get_float(g, path, "llama.attention.layer_norm_rms_epsilon", 1e-5));
  const Value* tokens = find(g, "tokenizer.ggml.tokens");
  if (tokens && tokens->type == kArr) c.vocab_size = int(std::min<uint64_t>(tokens->len, INT32_MAX));
  else if (find(g, "llama.vocab_size")) c.vocab_size = int(get_int(g, path, "llama.vocab_size", {}));
  else if (ck.has("model.embed_tokens.weight")) c.vocab_size = int(ck.get("model.embed_tokens.weight").shape[0]);
  c.bos_token_id = int(get_int(g, path, "tokenizer.ggml.bos_token_id", 1));
  c.eos_token_id = int(get_int(g, path, "tokenizer.ggml.eos_token_id", 2));
  c.tie_word_embeddings = !ck.has("lm_head.weight");
  c.rope_interleaved = true;
  // A quantized file's float type is F32: what writers dequantize it to by default.
  if (ck.has("model.embed_tokens.weight") && is_float(ck.get("model.embed_tokens.weight").dtype))
    c.torch_dtype = ck.get("model.embed_tokens.weight").dtype;
  else
    c.torch_dtype = DType::F32;
  if (tokens) ck.tokenizer_path = path;
  ck.tokenizer_config = hf_tokenizer_config(g);
  return ck;
}

namespace {

tokenizer::Vocab vocab_of(const Parsed& g, const std::string& path) {
  const Value* model = find(g, "tokenizer.ggml.model");
  if (!model || model->type != kStr) fail(path, "tokenizer.ggml.model", "missing (expected \"llama\")");
  if (model->s != "llama")
    fail(path, "tokenizer.ggml.model", "expected \"llama\" (SentencePiece BPE), got \"" + model->s + "\"");
  const Value* tokens = find(g, "tokenizer.ggml.tokens");
  if (!tokens || tokens->type != kArr || tokens->elem != kStr)
    fail(path, "tokenizer.ggml.tokens", "missing (expected an array of strings)");
  tokenizer::Vocab v;
  v.pieces = tokens->strs;
  size_t n = v.pieces.size();
  auto numbers = [&](const char* key, double def) {
    const Value* a = find(g, key);
    if (!a) return std::vector<double>(n, def);
    if (a->type != kArr || a->elem == kStr || a->elem == kArr || a->nums.size() != n)
      fail(path, key, "expected a numeric array of " + std::to_string(n) + " elements (one per token)");
    return a->nums;
  };
  for (double s : numbers("tokenizer.ggml.scores", 0.0)) v.scores.push_back(float(s));
  for (double t : numbers("tokenizer.ggml.token_type", 1.0)) v.types.push_back(int(t));
  auto id = [&](const char* key, int def) {
    int64_t i = get_int(g, path, key, def);
    if (uint64_t(i) >= n) fail(path, key, "expected a token id < " + std::to_string(n) + ", got " + std::to_string(i));
    return int(i);
  };
  v.bos = id("tokenizer.ggml.bos_token_id", 1);
  v.eos = id("tokenizer.ggml.eos_token_id", 2);
  v.unk = id("tokenizer.ggml.unknown_token_id", 0);
  if (find(g, "tokenizer.ggml.padding_token_id")) v.pad = id("tokenizer.ggml.padding_token_id", -1);
  return v;
}

}  // namespace

tokenizer::Vocab read_gguf_vocab(const std::string& path) { return vocab_of(open_gguf(path).g, path); }

std::string gguf_tokenizer_model(const std::string& path) {
  auto opened = open_gguf(path);
  const Parsed& g = opened.g;
  const Value* model = find(g, "tokenizer.ggml.model");
  std::string type = model && model->type == kStr ? model->s : "(none)";
  if (type != "llama") {
    log_warn("gguf", path + ": tokenizer.ggml.model is \"" + type +
                         "\", not \"llama\" (SentencePiece): no tokenizer.model can be made from it; continuing without",
             {{"file", path}, {"tokenizer_model", type}});
    return "";
  }
  try {
    return tokenizer::spm_model_proto(vocab_of(g, path));
  } catch (const Error& e) {
    fail(path, "tokenizer.ggml.tokens", e.what());
  }
}

uint64_t GgufTensor::numel() const {
  uint64_t n = 1;
  for (uint64_t e : ne) n *= e;
  return n;
}

namespace {

const char* value_type_name(uint32_t t) {
  static const char* const names[] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64"};
  return t < std::size(names) ? names[t] : "?";
}

nlohmann::ordered_json scalar_json(uint32_t t, int64_t i, double f) {
  if (t == kBool) return i != 0;
  if (t == kF32 || t == kF64) return f;
  if (t == kU64) return uint64_t(i);
  return i;
}

}  // namespace

GgufInfo read_gguf_info(const std::string& path, size_t max_items) {
  auto opened = open_gguf(path);
  const Parsed& g = opened.g;
  GgufInfo info;
  info.version = g.version;
  info.alignment = g.align;
  info.data_offset = g.data_off;
  for (const std::string& key : g.keys) {
    const Value& v = g.kv.at(key);
    GgufEntry kv{key, value_type_name(v.type), nullptr, 0};
    if (v.type == kStr) {
      kv.value = v.s;
    } else if (v.type == kArr) {
      kv.type = std::string("array[") + value_type_name(v.elem) + "]";
      kv.length = v.len;
      kv.value = nlohmann::ordered_json::array();
      for (size_t k = 0; k < std::min<size_t>(max_items, v.elem == kStr ? v.strs.size() : v.nums.size()); ++k)
        kv.value.push_back(v.elem == kStr ? nlohmann::ordered_json(v.strs[k])
                                          : scalar_json(v.elem, int64_t(v.nums[k]), v.nums[k]));
    } else {
      kv.value = scalar_json(v.type, v.i, v.f);
    }
    info.kv.push_back(std::move(kv));
  }
  for (const TensorInfo& t : g.tensors) info.tensors.push_back({t.name, t.dtype, t.ne, t.offset, t.nbytes});
  return info;
}

std::vector<GgufKv> read_gguf_metadata(const std::string& path) {
  auto [file, g] = open_gguf(path);
  std::vector<GgufKv> kv;
  for (auto [begin, end] : g.kv_spans) {
    std::string entry(reinterpret_cast<const char*>(file->data() + begin), end - begin);
    uint64_t key_len;
    std::memcpy(&key_len, entry.data(), 8);
    kv.push_back({entry.substr(8, size_t(key_len)), std::move(entry)});
  }
  return kv;
}

}  // namespace solar::formats
