// GGUF writing (formats/gguf.h): metadata entries, the streaming GgufWriter,
// and write_gguf on top of them.
#include <cstring>

#include "core/error.h"
#include "core/fs.h"
#include "formats/gguf.h"
#include "formats/gguf_impl.h"
#include "formats/load.h"
#include "formats/safetensors.h"
#include "model/rope.h"

namespace solar::formats {

namespace {

// Metadata entries under construction: key() starts one, the rest append to it.
struct KvList {
  std::vector<GgufKv> kv;
  template <class T>
  void raw(T v) { kv.back().encoded.append(reinterpret_cast<const char*>(&v), sizeof v); }
  void str(const std::string& s) {
    raw(uint64_t(s.size()));
    kv.back().encoded += s;
  }
  void key(const std::string& k, uint32_t type) {
    kv.push_back({k, ""});
    str(k);
    raw(type);
  }
  void u32(const std::string& k, uint32_t v) { key(k, kU32); raw(v); }
  void f32(const std::string& k, float v) { key(k, kF32); raw(v); }
  void boolean(const std::string& k, bool v) { key(k, kBool); raw(int8_t(v)); }
  void string(const std::string& k, const std::string& v) { key(k, kStr); str(v); }
  void array_header(const std::string& k, uint32_t elem, uint64_t n) {
    key(k, kArr);
    raw(elem);
    raw(n);
  }
};

std::string model_name(const std::string& source) {
  std::string s = source;
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  s = base_name(s);
  size_t dot = s.rfind('.');
  return dot == std::string::npos || dot == 0 ? s : s.substr(0, dot);
}

uint64_t pad_to(uint64_t n, uint64_t align) { return (n + align - 1) / align * align; }

}  // namespace

GgufKv gguf_kv_u32(const std::string& key, uint32_t v) {
  KvList l;
  l.u32(key, v);
  return l.kv.back();
}

std::vector<GgufKv> gguf_metadata(const model::Checkpoint& ck, uint32_t file_type) {
  const model::ModelConfig& c = ck.config;
  KvList kv;
  kv.string("general.architecture", "llama");
  kv.string("general.name", model_name(ck.source));
  kv.u32("general.file_type", file_type);
  kv.u32("llama.context_length", c.max_position_embeddings);
  kv.u32("llama.embedding_length", c.hidden_size);
  kv.u32("llama.block_count", c.num_hidden_layers);
  kv.u32("llama.feed_forward_length", c.intermediate_size);
  kv.u32("llama.rope.dimension_count", c.head_dim);
  kv.u32("llama.attention.head_count", c.num_attention_heads);
  kv.u32("llama.attention.head_count_kv", c.num_key_value_heads);
  if (c.head_dim * c.num_attention_heads != c.hidden_size) {
    kv.u32("llama.attention.key_length", c.head_dim);
    kv.u32("llama.attention.value_length", c.head_dim);
  }
  kv.f32("llama.attention.layer_norm_rms_epsilon", c.rms_norm_eps);
  kv.f32("llama.rope.freq_base", float(c.rope_theta));
  kv.u32("llama.vocab_size", c.vocab_size);
  // Without a tokenizer the file still loads here (vocab from llama.vocab_size)
  // but llama.cpp will refuse it.
  if (!ck.tokenizer_path.empty()) {
    tokenizer::Vocab v = open_tokenizer(ck.tokenizer_path, c.vocab_size)->vocab();
    if (v.pieces.size() != size_t(c.vocab_size))
      fail(ck.tokenizer_path, "vocab", "expected " + std::to_string(c.vocab_size) + " tokens (the model's vocab_size), got " +
                                           std::to_string(v.pieces.size()));
    kv.string("tokenizer.ggml.model", "llama");
    kv.array_header("tokenizer.ggml.tokens", kStr, v.pieces.size());
    for (auto& p : v.pieces) kv.str(p);
    kv.array_header("tokenizer.ggml.scores", kF32, v.scores.size());
    for (float s : v.scores) kv.raw(s);
    kv.array_header("tokenizer.ggml.token_type", kI32, v.types.size());
    for (int t : v.types) kv.raw(int32_t(t));
    kv.u32("tokenizer.ggml.bos_token_id", v.bos);
    kv.u32("tokenizer.ggml.eos_token_id", v.eos);
    kv.u32("tokenizer.ggml.unknown_token_id", v.unk);
    if (v.pad >= 0) kv.u32("tokenizer.ggml.padding_token_id", v.pad);
    const auto& tc = ck.tokenizer_config;
    auto flag = [&](const char* key, bool def) {
      return tc.contains(key) && tc[key].is_boolean() ? tc[key].get<bool>() : def;
    };
    kv.boolean("tokenizer.ggml.add_bos_token", flag("add_bos_token", true));
    kv.boolean("tokenizer.ggml.add_eos_token", flag("add_eos_token", false));
    if (tc.contains("chat_template") && tc["chat_template"].is_string())
      kv.string("tokenizer.chat_template", tc["chat_template"].get<std::string>());
  }
  return std::move(kv.kv);
}

struct GgufWriter::Impl {
  std::string path;
  uint64_t align;
  std::vector<GgufTensorDecl> decls;
  std::vector<uint64_t> bytes;  // per tensor
  AtomicFile file;
  size_t next = 0;       // tensor being written
  uint64_t done = 0;     // its bytes written so far
  Impl(const std::string& p, uint64_t a) : path(p), align(a), file(p) {}
  void pad() {
    static const std::string zeros(256, '\0');
    for (uint64_t n = (align - file.written() % align) % align; n > 0;) {
      const size_t k = size_t(std::min<uint64_t>(n, zeros.size()));
      file.write(zeros.data(), k);
      n -= k;
    }
  }
  // Skips tensors of no bytes and pads after each complete one.
  void advance() {
    while (next < decls.size() && done == bytes[next]) {
      pad();
      ++next;
      done = 0;
    }
  }
};

namespace {

// Header bytes and tensor sizes, checked before anything is written.
std::string header(const std::string& path, const std::vector<GgufKv>& kv, const std::vector<GgufTensorDecl>& decls,
                   uint64_t align, std::vector<uint64_t>& bytes) {
  std::string h = "GGUF", infos;
  auto raw = [](std::string& s, auto v) { s.append(reinterpret_cast<const char*>(&v), sizeof v); };
  raw(h, uint32_t(3));
  raw(h, uint64_t(decls.size()));
  raw(h, uint64_t(kv.size()));
  for (const GgufKv& e : kv) h += e.encoded;
  uint64_t off = 0;
  for (const GgufTensorDecl& d : decls) {
    if (d.shape.empty() || d.shape.size() > 4)
      fail(path, "tensor '" + d.name + "'", "expected 1 to 4 dimensions, got " + std::to_string(d.shape.size()));
    raw(infos, uint64_t(d.name.size()));
    infos += d.name;
    raw(infos, uint32_t(d.shape.size()));
    for (auto it = d.shape.rbegin(); it != d.shape.rend(); ++it) raw(infos, uint64_t(*it));
    raw(infos, ggml_type_id(d.dtype));
    raw(infos, off);
    bytes.push_back(tensor_bytes(d.dtype, d.shape));
    off += pad_to(bytes.back(), align);
  }
  return h + infos;
}

}  // namespace

GgufWriter::GgufWriter(const std::string& path, const std::vector<GgufKv>& kv, std::vector<GgufTensorDecl> tensors) {
  uint64_t alignment = kDefaultAlignment;
  for (const GgufKv& e : kv)
    if (e.key == "general.alignment") {
      // Readers take it only as a u32: the same entry as gguf_kv_u32 writes, up to the value.
      const std::string u32 = gguf_kv_u32(e.key, 0).encoded;
      const size_t head = u32.size() - 4;
      uint32_t a = 0;
      if (e.encoded.size() == u32.size() && e.encoded.compare(0, head, u32, 0, head) == 0)
        std::memcpy(&a, e.encoded.data() + head, 4);
      if (a == 0 || (a & (a - 1)) != 0) fail(path, "general.alignment", "expected a power-of-two uint32");
      alignment = a;
    }
  std::vector<uint64_t> bytes;
  const std::string head = header(path, kv, tensors, alignment, bytes);
  uint64_t total = pad_to(head.size(), alignment);
  for (uint64_t b : bytes) total += pad_to(b, alignment);
  const uint64_t free_b = free_disk_bytes(parent_dir(path));
  if (free_b < total + (16u << 20))
    fail(path, "", "not enough free disk: needs " + std::to_string(total >> 20) + " MiB, " +
                       std::to_string(free_b >> 20) + " MiB available");
  impl_ = std::make_unique<Impl>(path, alignment);
  impl_->decls = std::move(tensors);
  impl_->bytes = std::move(bytes);
  impl_->file.write(head);
  impl_->pad();
  impl_->advance();
}

GgufWriter::~GgufWriter() = default;

void GgufWriter::write(const void* data, size_t n) {
  Impl& m = *impl_;
  if (m.next == m.decls.size() || n > m.bytes[m.next] - m.done)
    fail(m.path, m.next < m.decls.size() ? "tensor '" + m.decls[m.next].name + "'" : "",
         "more bytes written than the tensors declared");
  m.file.write(data, n);
  m.done += n;
  m.advance();
}

void GgufWriter::write(const TensorView& t) {
  Impl& m = *impl_;
  if (m.next == m.decls.size()) fail(m.path, t.name, "more tensors written than declared");
  const GgufTensorDecl& d = m.decls[m.next];
  if (m.done != 0 || t.shape != d.shape)
    fail(m.path, "tensor '" + d.name + "'", "expected " + shape_str(d.shape) + " whole, got " + t.name + " " + shape_str(t.shape));
  write_tensor_data(m.file, t, d.dtype);
  m.done = m.bytes[m.next];
  m.advance();
}

void GgufWriter::finish() {
  Impl& m = *impl_;
  if (m.next != m.decls.size())
    fail(m.path, "tensor '" + m.decls[m.next].name + "'",
         "declared " + std::to_string(m.bytes[m.next]) + " bytes, " + std::to_string(m.done) + " written");
  m.file.commit();
}

void write_gguf(const std::string& path, const model::Checkpoint& ck, DType dtype) {
  if (dtype != DType::F32 && dtype != DType::F16 && dtype != DType::BF16)
    fail(path, "dtype", std::string("expected F32, F16 or BF16, got ") + dtype_name(dtype));
  ck.validate();
  const model::ModelConfig& c = ck.config;
  const uint32_t file_type = dtype == DType::F32 ? 0 : dtype == DType::F16 ? 1 : 32;  // llama_ftype
  std::vector<GgufTensorDecl> decls;
  std::vector<const TensorView*> src;
  for (const std::string& name : model::expected_tensor_names(c)) {
    const TensorView& t = ck.get(name);
    decls.push_back({gguf_tensor_name(name), t.shape, t.shape.size() == 1 ? DType::F32 : dtype});  // llama.cpp keeps norms in F32
    src.push_back(&t);
  }
  GgufWriter w(path, gguf_metadata(ck, file_type), decls);
  std::vector<uint8_t> permuted;
  for (const TensorView* s : src) {
    TensorView t = *s;
    bool q = t.name.ends_with("q_proj.weight"), k = t.name.ends_with("k_proj.weight");
    if ((q || k) && !c.rope_interleaved) {
      // llama.cpp keeps q/k rows in the interleaved-pair order of Meta's checkpoints.
      permuted.resize(t.nbytes);
      model::permute_rope_rows(t.data, permuted.data(), q ? c.num_attention_heads : c.num_key_value_heads, c.head_dim,
                               t.nbytes / size_t(t.rows()), false);
      t.data = permuted.data();
    }
    w.write(t);
  }
  w.finish();
}

}  // namespace solar::formats
