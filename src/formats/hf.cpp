#include "formats/hf.h"


#include <cmath>
#include <cstring>
#include <filesystem>
#include <set>

#include "core/error.h"
#include "core/fs.h"
#include "core/json.h"
#include "core/log.h"
#include "formats/gguf.h"
#include "formats/safetensors.h"
#include "model/rope.h"

namespace solar::formats {

static nlohmann::json read_json(const std::string& path) {
  nlohmann::json j = read_json_file(path);
  if (!j.is_object()) fail(path, "", std::string("expected a JSON object, got ") + j.type_name());
  return j;
}

static bool ends_with(const std::string& s, const char* suf) {
  size_t n = std::strlen(suf);
  return s.size() >= n && s.compare(s.size() - n, n, suf) == 0;
}

// Adds every tensor of one shard; a name already seen in another shard is an error.
static void add_shard(model::Checkpoint& ck, const std::string& path, std::map<std::string, std::string>& owner) {
  SafetensorsFile f = read_safetensors(path);
  for (auto& t : f.tensors) {
    // Old HF exports carry RoPE buffers; they are recomputed, never read.
    if (ends_with(t.name, "rotary_emb.inv_freq")) continue;
    auto [it, fresh] = owner.emplace(t.name, base_name(path));
    if (!fresh) fail(path, t.name, "tensor also stored in " + it->second);
    ck.tensors[t.name] = t;
  }
  ck.files.push_back(f.file);
}

model::Checkpoint read_hf(const std::string& dir) {
  model::Checkpoint ck;
  ck.source = dir;
  std::string cfg = join_path(dir, "config.json");
  if (!path_exists(cfg)) fail(dir, "config.json", "missing (expected a Hugging Face model folder)");
  ck.config = model::config_from_json(read_json(cfg), cfg);

  std::map<std::string, std::string> owner;  // tensor -> shard file name
  std::string index = join_path(dir, "model.safetensors.index.json");
  std::string single = join_path(dir, "model.safetensors");
  if (path_exists(index)) {
    nlohmann::json j = read_json(index);
    if (!j.contains("weight_map") || !j["weight_map"].is_object())
      fail(index, "weight_map", "missing (expected an object of tensor name -> shard file)");
    std::set<std::string> shards;
    for (auto& [name, shard] : j["weight_map"].items()) {
      if (!shard.is_string()) fail(index, "weight_map." + name, "expected a shard file name");
      std::string s = shard.get<std::string>();
      // Shards live in the folder: no absolute paths or escapes.
      if (s.empty() || s[0] == '/' || s.find("..") != std::string::npos)
        fail(index, "weight_map." + name, "expected a file name inside the folder, got '" + s + "'");
      shards.insert(s);
    }
    for (auto& s : shards) add_shard(ck, join_path(dir, s), owner);
    for (auto& [name, shard] : j["weight_map"].items()) {
      auto it = owner.find(name);
      if (ends_with(name, "rotary_emb.inv_freq")) continue;
      if (it == owner.end())
        fail(index, "weight_map." + name, "tensor missing from shard " + shard.get<std::string>());
      if (it->second != shard.get<std::string>())
        fail(index, "weight_map." + name, "listed in " + shard.get<std::string>() + " but stored in " + it->second);
    }
  } else if (path_exists(single)) {
    add_shard(ck, single, owner);
  } else {
    fail(dir, "model.safetensors", path_exists(join_path(dir, "pytorch_model.bin"))
                                       ? "missing (PyTorch .bin checkpoints are not supported; save as safetensors)"
                                       : "missing (and no model.safetensors.index.json)");
  }

  for (const char* tok : {"tokenizer.model", "tokenizer.bin"})
    if (path_exists(join_path(dir, tok))) {
      ck.tokenizer_path = join_path(dir, tok);
      break;
    }
  std::string tc = join_path(dir, "tokenizer_config.json"), gc = join_path(dir, "generation_config.json");
  if (path_exists(tc)) ck.tokenizer_config = read_json(tc);
  if (path_exists(gc)) ck.generation_config = read_json(gc);
  return ck;
}

uint64_t parse_size(const std::string& s, const std::string& flag) {
  size_t i = 0;
  while (i < s.size() && (isdigit(uint8_t(s[i])) || s[i] == '.')) ++i;
  std::string num = s.substr(0, i), unit = s.substr(i);
  for (auto& c : unit) c = char(toupper(uint8_t(c)));
  static const std::pair<const char*, double> units[] = {
      {"", 1},          {"B", 1},        {"KB", 1e3},           {"MB", 1e6},           {"GB", 1e9},
      {"TB", 1e12},     {"KIB", 1024.0}, {"MIB", 1048576.0},    {"GIB", 1073741824.0}, {"TIB", 1099511627776.0}};
  double mult = 0;
  for (auto& [u, m] : units)
    if (unit == u) mult = m;
  char* end = nullptr;
  double v = num.empty() ? 0 : std::strtod(num.c_str(), &end);
  if (mult == 0 || num.empty() || *end != '\0' || !(v * mult >= 1) || v * mult > 1.8e19)
    fail(flag, "", "expected a size like 5GB, 500MB, 2GiB or 123456, got '" + s + "'");
  return uint64_t(std::llround(v * mult));
}

struct HfWriter::Impl {
  std::string dir, tmp;
  model::ModelConfig config;
  std::vector<TensorDecl> decls;
  HfWriteOptions opt;
  std::vector<DType> out_dtype;             // per tensor
  std::vector<size_t> shard_of;             // per tensor
  std::vector<std::vector<size_t>> shards;  // tensor indices per shard
  std::vector<std::string> shard_names;
  size_t next = 0;
  std::unique_ptr<AtomicFile> file;  // shard being written
  std::string gguf_spm;              // tokenizer.model made from a GGUF's vocabulary
  bool finished = false;

  std::vector<TensorToWrite> shard_tensors(size_t s) const {
    std::vector<TensorToWrite> v;
    for (size_t i : shards[s]) v.push_back({TensorView{decls[i].name, decls[i].dtype, decls[i].shape}, out_dtype[i]});
    return v;
  }
  uint64_t out_bytes(size_t i) const {
    return tensor_bytes(out_dtype[i], decls[i].shape);
  }
};

HfWriter::HfWriter(const std::string& dir, const model::ModelConfig& config, std::vector<TensorDecl> decls,
                   HfWriteOptions opt)
    : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.dir = dir;
  while (m.dir.size() > 1 && m.dir.back() == '/') m.dir.pop_back();  // "out/" must not put tmp inside out
  m.tmp = temp_path_for(m.dir);  // also removes what a killed writer of m.dir left
  m.config = config;
  m.decls = std::move(decls);
  m.opt = std::move(opt);
  if (path_exists(m.dir) && !m.opt.force) fail(m.dir, "", "already exists (use --force to replace)");
  if (m.opt.max_shard_bytes == 0) fail(m.dir, "max_shard_bytes", "expected > 0");

  // HF's greedy plan: a shard closes when the next tensor would overflow it;
  // a tensor larger than the limit gets a shard of its own.
  uint64_t cur = 0;
  std::set<std::string> seen;
  for (size_t i = 0; i < m.decls.size(); ++i) {
    const TensorDecl& d = m.decls[i];
    if (!seen.insert(d.name).second) fail(dir, d.name, "tensor declared twice");
    for (int64_t x : d.shape)
      if (x < 0) fail(dir, d.name, "negative dimension in " + shape_str(d.shape));
    // Block-quantized tensors are dequantized (safetensors has no block types).
    if (m.opt.dtype && (is_float(d.dtype) || is_quantized(d.dtype))) m.out_dtype.push_back(*m.opt.dtype);
    else m.out_dtype.push_back(is_quantized(d.dtype) ? DType::F32 : d.dtype);
    uint64_t b = m.out_bytes(i);
    if (m.shards.empty() || (cur > 0 && cur + b > m.opt.max_shard_bytes)) {
      m.shards.emplace_back();
      cur = 0;
    }
    m.shards.back().push_back(i);
    m.shard_of.push_back(m.shards.size() - 1);
    cur += b;
  }
  if (m.shards.empty()) m.shards.emplace_back();
  uint64_t need = 1 << 20;  // config, index, tokenizer: small
  char name[64];
  for (size_t s = 0; s < m.shards.size(); ++s) {
    if (m.shards.size() == 1) std::snprintf(name, sizeof name, "model.safetensors");
    else std::snprintf(name, sizeof name, "model-%05zu-of-%05zu.safetensors", s + 1, m.shards.size());
    m.shard_names.push_back(name);
    need += safetensors_file_size(m.shard_tensors(s), m.opt.metadata);
  }
  // A GGUF "tokenizer" is the model file itself: its vocabulary becomes a
  // tokenizer.model. One SentencePiece cannot take costs the folder its
  // tokenizer, not its weights (a training run must not die at a checkpoint).
  const std::string& tok = m.opt.tokenizer_path;
  std::error_code ec;
  if (!tok.empty() && read_file_prefix(tok, 4) == "GGUF") {
    try {
      m.gguf_spm = gguf_tokenizer_model(tok);
    } catch (const Error& e) {
      log_warn("hf", std::string(e.what()) + "; " + m.dir + " gets no tokenizer.model", {{"file", tok}});
    }
  } else if (!tok.empty()) {
    need += std::filesystem::file_size(tok, ec) * !ec;
  }
  uint64_t free = free_disk_bytes(parent_dir(m.dir));
  if (free < need)
    fail(m.dir, "", "needs " + std::to_string(need) + " bytes of free disk, only " + std::to_string(free) +
                      " bytes free");
  remove_all(m.tmp);
  make_dirs(m.tmp);
}

HfWriter::~HfWriter() {
  if (!impl_->finished) {
    impl_->file.reset();
    remove_all(impl_->tmp);
  }
}

void HfWriter::write(const TensorView& t) {
  Impl& m = *impl_;
  if (m.finished || m.next >= m.decls.size()) fail(m.dir, t.name, "not declared (all tensors already written)");
  const TensorDecl& d = m.decls[m.next];
  if (t.name != d.name) fail(m.dir, t.name, "expected tensor '" + d.name + "' next");
  if (t.shape != d.shape || t.dtype != d.dtype)
    fail(m.dir, t.name, "expected " + shape_str(d.shape) + " " + dtype_name(d.dtype) + " as declared, got " +
                            shape_str(t.shape) + " " + dtype_name(t.dtype));
  if (t.nbytes != tensor_bytes(t))
    fail(m.dir, t.name, "has " + std::to_string(t.nbytes) + " bytes, expected " + shape_str(t.shape) + " x " +
                            dtype_name(t.dtype));
  size_t s = m.shard_of[m.next];
  if (!m.file) {
    m.file = std::make_unique<AtomicFile>(join_path(m.tmp, m.shard_names[s]));
    m.file->write(safetensors_header(m.shard_tensors(s), m.opt.metadata));
  }

  TensorView v = t;
  std::vector<uint8_t> permuted;
  bool q = ends_with(t.name, "self_attn.q_proj.weight"), k = ends_with(t.name, "self_attn.k_proj.weight");
  if (m.config.rope_interleaved && (q || k)) {
    int heads = q ? m.config.num_attention_heads : m.config.num_key_value_heads;
    if (t.shape.size() != 2 || t.shape[0] != int64_t(heads) * m.config.head_dim)
      fail(m.dir, t.name, "expected " + std::to_string(heads * m.config.head_dim) + " rows to permute for RoPE, got " +
                              shape_str(t.shape));
    permuted.resize(t.nbytes);
    model::permute_rope_rows(t.data, permuted.data(), heads, m.config.head_dim, t.nbytes / size_t(t.shape[0]), true);
    v.data = permuted.data();
  }
  write_tensor_data(*m.file, v, m.out_dtype[m.next]);
  ++m.next;
  if (m.next == m.decls.size() || m.shard_of[m.next] != s) {
    m.file->commit();
    m.file.reset();
  }
}

void HfWriter::finish() {
  Impl& m = *impl_;
  if (m.next != m.decls.size()) fail(m.dir, m.decls[m.next].name, "declared but never written");
  if (m.decls.empty()) write_safetensors(join_path(m.tmp, m.shard_names[0]), {}, m.opt.metadata);
  if (m.shards.size() > 1) {
    nlohmann::ordered_json idx;
    uint64_t total = 0;
    for (size_t i = 0; i < m.decls.size(); ++i) total += m.out_bytes(i);
    idx["metadata"] = {{"total_size", total}};
    idx["weight_map"] = nlohmann::ordered_json::object();
    for (size_t i = 0; i < m.decls.size(); ++i) idx["weight_map"][m.decls[i].name] = m.shard_names[m.shard_of[i]];
    write_file_atomic(join_path(m.tmp, "model.safetensors.index.json"), idx.dump(2) + "\n");
  }

  model::ModelConfig c = m.config;
  c.rope_interleaved = false;
  if (m.opt.dtype) c.torch_dtype = *m.opt.dtype;
  else
    for (size_t i = 0; i < m.decls.size(); ++i)
      if (is_float(m.out_dtype[i])) {
        c.torch_dtype = m.out_dtype[i];
        break;
      }
  write_file_atomic(join_path(m.tmp, "config.json"), model::config_to_json(c).dump(2) + "\n");

  const std::string& tok = m.opt.tokenizer_path;
  if (!m.gguf_spm.empty()) write_file_atomic(join_path(m.tmp, "tokenizer.model"), m.gguf_spm);
  else if (!tok.empty() && read_file_prefix(tok, 4) != "GGUF")
    write_file_atomic(join_path(m.tmp, ends_with(tok, ".bin") ? "tokenizer.bin" : "tokenizer.model"), read_file(tok));
  if (!m.opt.tokenizer_config.empty())
    write_file_atomic(join_path(m.tmp, "tokenizer_config.json"), m.opt.tokenizer_config.dump(2) + "\n");
  if (!m.opt.generation_config.empty())
    write_file_atomic(join_path(m.tmp, "generation_config.json"), m.opt.generation_config.dump(2) + "\n");
  if (!m.opt.model_card.empty()) write_file_atomic(join_path(m.tmp, "README.md"), m.opt.model_card);
  fsync_dir(m.tmp);
  commit_dir(m.tmp, m.dir, m.opt.force);
  m.finished = true;
}

void write_hf(const std::string& dir, const model::ModelConfig& config, const std::vector<TensorView>& tensors,
              const HfWriteOptions& opt) {
  std::vector<TensorDecl> decls;
  for (const auto& t : tensors) decls.push_back({t.name, t.shape, t.dtype});
  HfWriter w(dir, config, std::move(decls), opt);
  for (const auto& t : tensors) w.write(t);
  w.finish();
}

void write_hf(const std::string& dir, const model::Checkpoint& ck, HfWriteOptions opt) {
  if (opt.tokenizer_path.empty()) opt.tokenizer_path = ck.tokenizer_path;
  if (opt.tokenizer_config.empty()) opt.tokenizer_config = ck.tokenizer_config;
  if (opt.generation_config.empty()) opt.generation_config = ck.generation_config;
  // Canonical order first, so shards hold layers in order; extras after.
  std::vector<TensorView> ts;
  std::set<std::string> done;
  for (const auto& n : model::expected_tensor_names(ck.config))
    if (ck.has(n)) ts.push_back(ck.get(n)), done.insert(n);
  for (const auto& [n, t] : ck.tensors)
    if (!done.count(n)) ts.push_back(t);
  write_hf(dir, ck.config, ts, opt);
}

}  // namespace solar::formats
