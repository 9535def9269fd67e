#include "formats/llama2c.h"

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "core/error.h"
#include "core/fs.h"
#include "formats/load.h"

namespace solar::formats {

namespace {

constexpr uint32_t kMagicV1 = 0x616b3432;  // "ak42" as llama2.c's export.py packs it
constexpr size_t kV1HeaderBytes = 256;

struct Header {
  int32_t dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len;
};

// Hands out consecutive f32 arrays from the map; sizes are checked against
// the file up front, so this only slices.
struct Cursor {
  model::Checkpoint& ck;
  const uint8_t* base;
  size_t off;

  const uint8_t* skip(int64_t floats) {
    const uint8_t* p = base + off;
    off += size_t(floats) * 4;
    return p;
  }
  void add(const std::string& name, std::vector<int64_t> shape) {
    TensorView t{name, DType::F32, std::move(shape), nullptr, 0};
    t.nbytes = size_t(t.numel()) * 4;
    t.data = skip(t.numel());
    ck.tensors[name] = t;
  }
  // A [L, ...shape] array split into one view per layer.
  void add_layers(int L, const char* suffix, std::vector<int64_t> shape) {
    for (int l = 0; l < L; ++l) add(model::layer_tensor(l, suffix), shape);
  }
};

}  // namespace

model::Checkpoint read_llama2c(const std::string& path) {
  model::Checkpoint ck;
  ck.source = path;
  auto file = MappedFile::open(path);
  ck.files.push_back(file);
  const uint8_t* p = file->data();
  size_t size = file->size();

  // Detail only when the name claims llama2.c: for notes.txt it would be noise.
  // The magic always: a damaged GGUF ("GGUX…") must not read as a bad llama2.c field.
  auto not_model = [&](const std::string& why) {
    std::string_view head(reinterpret_cast<const char*>(p), std::min<size_t>(size, 4));
    fail_not_a_model(path, "magic " + magic_text(head) + " is none of GGUF, safetensors or llama2.c v1 \"ak42\"" +
                               (path.ends_with(".bin") ? "; " + why : ""));
  };
  if (size < sizeof(Header))
    not_model("as a llama2.c file, its " + std::to_string(size) + " bytes are shorter than the 28-byte header");
  uint32_t magic;
  std::memcpy(&magic, p, 4);
  bool v1 = magic == kMagicV1;
  Header h;
  bool shared;
  size_t data_off;
  if (v1) {
    if (size < kV1HeaderBytes)
      fail(path, "header", "expected a 256-byte v1 header, got a " + std::to_string(size) + "-byte file");
    int32_t version;
    std::memcpy(&version, p + 4, 4);
    if (version != 1)
      fail(path, "version", "expected 1 (fp32)" + std::string(version == 2 ? "; version 2 (int8 Q8_0) is not supported" : "") +
                                ", got " + std::to_string(version));
    std::memcpy(&h, p + 8, sizeof h);
    shared = p[8 + sizeof h] != 0;
    data_off = kV1HeaderBytes;
  } else {
    std::memcpy(&h, p, sizeof h);
    shared = h.vocab_size > 0;  // run.c: a negative vocab_size means an untied classifier follows
    if (h.vocab_size < 0 && h.vocab_size > INT32_MIN) h.vocab_size = -h.vocab_size;
    data_off = sizeof h;
  }

  // Far beyond any real checkpoint: a value outside means some other file
  // (text reads as ints near 2^30), not a llama2.c model with a bad field.
  const struct {
    const char* field;
    int32_t v, max;
  } fields[] = {{"dim", h.dim, 1 << 16},           {"hidden_dim", h.hidden_dim, 1 << 20},
                {"n_layers", h.n_layers, 1 << 12}, {"n_heads", h.n_heads, 1 << 12},
                {"n_kv_heads", h.n_kv_heads, 1 << 12}, {"vocab_size", h.vocab_size, 1 << 24},
                {"seq_len", h.seq_len, 1 << 24}};
  for (const auto& f : fields)
    if (f.v <= 0 || f.v > f.max)
      not_model(std::string("as a llama2.c header, ") + f.field + " is " + std::to_string(f.v) + " (expected 1.." +
                std::to_string(f.max) + ")");
  if (h.dim % h.n_heads != 0)
    fail(path, "n_heads", "expected a divisor of dim " + std::to_string(h.dim) + ", got " + std::to_string(h.n_heads));
  if (h.n_heads % h.n_kv_heads != 0)
    fail(path, "n_kv_heads",
         "expected a divisor of n_heads " + std::to_string(h.n_heads) + ", got " + std::to_string(h.n_kv_heads));

  model::ModelConfig& c = ck.config;
  c.hidden_size = h.dim;
  c.intermediate_size = h.hidden_dim;
  c.num_hidden_layers = h.n_layers;
  c.num_attention_heads = h.n_heads;
  c.num_key_value_heads = h.n_kv_heads;
  c.head_dim = h.dim / h.n_heads;
  c.vocab_size = h.vocab_size;
  c.max_position_embeddings = h.seq_len;
  c.rms_norm_eps = 1e-5f;
  c.rope_theta = 10000.0;
  c.tie_word_embeddings = shared;
  c.bos_token_id = 1;
  c.eos_token_id = 2;
  c.torch_dtype = DType::F32;
  c.rope_interleaved = true;

  // Header ints reach 2^31, so products can exceed 64 bits before the check.
  using u128 = unsigned __int128;
  u128 d = h.dim, f = h.hidden_dim, L = h.n_layers, V = h.vocab_size, kv = u128(c.kv_dim());
  u128 floats = V * d + L * (2 * d + 2 * d * d + 2 * kv * d + 3 * d * f) + d;
  if (!v1) floats += u128(h.seq_len) * c.head_dim;  // freq_cis_real + freq_cis_imag, seq_len × head_dim/2 each
  if (!shared) floats += V * d;
  u128 want = data_off + floats * 4;
  if (want != size) {
    auto s128 = [](u128 x) {
      std::string s;
      do s.insert(s.begin(), char('0' + int(x % 10))); while ((x /= 10) != 0);
      return s;
    };
    fail(path, "file size", "expected " + s128(want) + " bytes from the header (" + (v1 ? "v1" : "legacy") +
                                " dim " + std::to_string(h.dim) + ", " + std::to_string(h.n_layers) +
                                " layers, vocab " + std::to_string(h.vocab_size) + "), got " + std::to_string(size) +
                                " (truncated, or not a llama2.c checkpoint)");
  }

  int64_t D = h.dim, F = h.hidden_dim, KV = c.kv_dim(), Q = c.q_dim();
  int nl = h.n_layers;
  Cursor cur{ck, p, data_off};
  if (v1) {
    cur.add_layers(nl, "input_layernorm.weight", {D});
    cur.add_layers(nl, "post_attention_layernorm.weight", {D});
    cur.add("model.norm.weight", {D});
    cur.add("model.embed_tokens.weight", {h.vocab_size, D});
  } else {
    cur.add("model.embed_tokens.weight", {h.vocab_size, D});
    cur.add_layers(nl, "input_layernorm.weight", {D});
  }
  cur.add_layers(nl, "self_attn.q_proj.weight", {Q, D});
  cur.add_layers(nl, "self_attn.k_proj.weight", {KV, D});
  cur.add_layers(nl, "self_attn.v_proj.weight", {KV, D});
  cur.add_layers(nl, "self_attn.o_proj.weight", {D, Q});
  if (!v1) cur.add_layers(nl, "post_attention_layernorm.weight", {D});
  cur.add_layers(nl, "mlp.gate_proj.weight", {F, D});  // w1
  cur.add_layers(nl, "mlp.down_proj.weight", {D, F});  // w2
  cur.add_layers(nl, "mlp.up_proj.weight", {F, D});    // w3
  if (!v1) {
    cur.add("model.norm.weight", {D});
    cur.skip(int64_t(h.seq_len) * c.head_dim);  // precomputed RoPE tables: recomputed at run time
  }
  if (!shared) cur.add("lm_head.weight", {h.vocab_size, D});

  std::string tok = join_path(parent_dir(path), "tokenizer.bin");
  if (path_exists(tok)) ck.tokenizer_path = tok;
  return ck;
}

}  // namespace solar::formats
