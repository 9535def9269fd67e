#include "engine/engine.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>

#include "core/error.h"
#include "core/mmap.h"
#include "kernels/kernels.h"
#include "kernels/ops.h"

namespace solar::engine {

static std::vector<float> to_f32(const TensorView& t) {
  std::vector<float> out(size_t(t.numel()));
  convert(t.data, t.dtype, out.data(), DType::F32, out.size());
  return out;
}

Model::Model(model::Checkpoint ck) : Model(std::make_shared<const model::Checkpoint>(std::move(ck))) {}

Model::Model(std::shared_ptr<const model::Checkpoint> ckp) : ck_(std::move(ckp)) {
  if (!ck_) fail("Model: null checkpoint");
  const model::Checkpoint& ck = *ck_;
  cfg_ = ck.config;
  embed_ = &ck.get("model.embed_tokens.weight");
  head_ = weight(ck.lm_head());
  final_norm_ = to_f32(ck.get("model.norm.weight"));
  for (int l = 0; l < cfg_.num_hidden_layers; ++l) {
    Layer L;
    L.wq = weight(ck.get(model::layer_tensor(l, "self_attn.q_proj.weight")));
    L.wk = weight(ck.get(model::layer_tensor(l, "self_attn.k_proj.weight")));
    L.wv = weight(ck.get(model::layer_tensor(l, "self_attn.v_proj.weight")));
    L.wo = weight(ck.get(model::layer_tensor(l, "self_attn.o_proj.weight")));
    L.w_gate = weight(ck.get(model::layer_tensor(l, "mlp.gate_proj.weight")));
    L.w_up = weight(ck.get(model::layer_tensor(l, "mlp.up_proj.weight")));
    L.w_down = weight(ck.get(model::layer_tensor(l, "mlp.down_proj.weight")));
    L.attn_norm = to_f32(ck.get(model::layer_tensor(l, "input_layernorm.weight")));
    L.ffn_norm = to_f32(ck.get(model::layer_tensor(l, "post_attention_layernorm.weight")));
    layers_.push_back(std::move(L));
  }
  inv_freq_.resize(size_t(cfg_.head_dim / 2));
  kernels::rope_inv_freq(inv_freq_.data(), cfg_.head_dim, cfg_.rope_theta);
}

const Model::Weight* Model::weight(const TensorView& t) {
  const char* e = std::getenv("SOLAR_REPACK");
  const bool repack = !e || std::string(e) != "0";
  Weight w{&t, nullptr};
  if (repack && t.shape.size() == 2 && kernels::can_pack(t.dtype)) {
    w.packed = std::make_shared<const kernels::PackedWeight>(kernels::pack_weight(t.data, t.dtype, t.rows(), t.cols()));
    // Decode and prefill read the panels only: the file's pages can go (a
    // 10.7B Q4_K_M otherwise holds both copies, 16.5 GB resident).
    release_pages(t.data, t.nbytes);
  }
  weights_.push_back(std::move(w));
  return &weights_.back();
}

uint64_t Model::weight_bytes_per_token() const {
  // What decode streams: the packed copy where there is one.
  auto bytes = [](const Weight* w) -> uint64_t {
    return w->packed ? w->packed->bytes.size() : w->t->nbytes;
  };
  uint64_t b = bytes(head_) + embed_->row_nbytes();
  for (auto& L : layers_)
    b += bytes(L.wq) + bytes(L.wk) + bytes(L.wv) + bytes(L.wo) + bytes(L.w_gate) + bytes(L.w_up) + bytes(L.w_down);
  return b;
}

Context::Context(std::shared_ptr<const Model> m, int n_ctx, int tree_slots) : m_(std::move(m)) {
  if (!m_) fail("Context: null model");
  const auto& c = m_->cfg_;
  n_ctx_ = n_ctx > 0 ? std::min(n_ctx, c.max_position_embeddings) : c.max_position_embeddings;
  tree_slots_ = std::max(0, tree_slots);
  size_t per = size_t(c.num_hidden_layers) * size_t(n_ctx_ + tree_slots_) * size_t(c.kv_dim());
  kcache_.resize(per);
  vcache_.resize(per);
}

void Context::truncate(int n) { n_past_ = std::clamp(n, 0, n_past_); }

void Context::ensure_scratch(int n) {
  if (n <= scratch_n_) return;
  const auto& c = m_->cfg_;
  size_t N = size_t(n);
  x_.resize(N * c.hidden_size);
  h_.resize(N * std::max(c.hidden_size, c.q_dim()));
  q_.resize(N * c.q_dim());
  k_.resize(N * c.kv_dim());
  v_.resize(N * c.kv_dim());
  att_.resize(N * c.q_dim());
  gate_.resize(N * c.intermediate_size);
  up_.resize(N * c.intermediate_size);
  scratch_n_ = n;
}

static void linear(const float* x, int n, const Model::Weight& w, float* y, bool acc = false) {
  if (w.packed) return kernels::linear(x, n, *w.packed, y, acc);
  kernels::linear(x, n, w.t->cols(), w.t->data, w.t->dtype, w.t->rows(), y, acc);
}

// Weights that read the same x (q, k, v; gate, up): x converted once and one
// parallel region when all are packed (the same bits as one call each).
static void linear(const float* x, int n, std::initializer_list<std::pair<const Model::Weight*, float*>> outs) {
  kernels::PackedOut packed[3];
  size_t k = 0;
  for (const auto& [w, y] : outs)
    if (w->packed && k < std::size(packed)) packed[k++] = {w->packed.get(), y};
  if (k == outs.size()) return kernels::linear(x, n, std::span(packed, k));
  for (const auto& [w, y] : outs) linear(x, n, *w, y);
}

// Appends the slots of the new tokens token i sees (positions >= lo), root
// first: the tokens before it in a plain continuation (slot past + a holds
// position past + a), its chain of ancestors in a tree.
static void new_slots(int i, int lo, const int* pos, const int* parents, int past, std::vector<int>* out) {
  const size_t mark = out->size();
  if (!parents) {
    for (int a = 0; a <= i; ++a)
      if (pos[a] >= lo) out->push_back(past + a);
    return;
  }
  for (int a = i; a >= 0; a = parents[a])
    if (pos[a] >= lo) out->push_back(past + a);
  std::reverse(out->begin() + long(mark), out->end());
}

// Shapes for n tokens: x [n,d] → q [n,Hq·hd], k,v [n,Hkv·hd] (stored at
// slots n_past_..n_past_+n-1) → attention [n,Hq·hd] → x += o_proj → MLP.
// Token i attends to the cached slots [lo, n_past_) and then either the new
// tokens before it (parents == null) or its chain of ancestors.
void Context::forward(const int* tokens, int n, const int* pos, const int* parents) {
  const Part whole{this, 0, n, parents};
  forward_parts(tokens, n, pos, &whole, 1);
}

void Context::forward_parts(const int* tokens, int n, const int* pos, const Part* parts, int n_parts) {
  const auto& c = m_->cfg_;
  ensure_scratch(n);
  const int d = c.hidden_size, ff = c.intermediate_size;

  for (int i = 0; i < n; ++i)
    dequantize_row(m_->embed_->row(tokens[i]), m_->embed_->dtype, &x_[size_t(i) * d], d);  // float or block type

  for (int l = 0; l < c.num_hidden_layers; ++l) {
    const Model::Layer& L = m_->layers_[l];
    kernels::parallel_for(n, int64_t(n) * d, [&](int64_t i) {
      kernels::rmsnorm(&h_[size_t(i) * d], &x_[size_t(i) * d], L.attn_norm.data(), d, c.rms_norm_eps);
    });
    linear(h_.data(), n, {{L.wq, q_.data()}, {L.wk, k_.data()}, {L.wv, v_.data()}});
    attend(l, q_.data(), k_.data(), v_.data(), att_.data(), n, pos, parts, n_parts);
    linear(att_.data(), n, *L.wo, x_.data(), /*acc=*/true);  // residual
    kernels::parallel_for(n, int64_t(n) * d, [&](int64_t i) {
      kernels::rmsnorm(&h_[size_t(i) * d], &x_[size_t(i) * d], L.ffn_norm.data(), d, c.rms_norm_eps);
    });
    linear(h_.data(), n, {{L.w_gate, gate_.data()}, {L.w_up, up_.data()}});
    kernels::parallel_for(n, int64_t(n) * ff, [&](int64_t i) {
      kernels::swiglu(&gate_[size_t(i) * ff], &gate_[size_t(i) * ff], &up_[size_t(i) * ff], ff);
    });
    linear(gate_.data(), n, *L.w_down, x_.data(), /*acc=*/true);
  }
}

void Context::attend(int l, float* q, float* k, const float* v, float* att, int n, const int* pos, const Part* parts,
                     int n_parts) {
  const auto& c = m_->cfg_;  // every part runs this model
  const int hd = c.head_dim, Hq = c.num_attention_heads, Hkv = c.num_key_value_heads;
  const int qd = c.q_dim(), kvd = c.kv_dim(), group = Hq / Hkv;
  const float scale = 1.0f / std::sqrt(float(hd));
  // Row i of the forward is row i - row0 of its part, stored at that part's
  // slot n_past_ + (i - row0) (for a tree too: its scratch slots follow the cache).
  std::vector<int> part_of(static_cast<size_t>(n));
  for (int s = 0; s < n_parts; ++s)
    std::fill_n(part_of.begin() + parts[s].row0, parts[s].n, s);
  auto layer_cache = [&](const Context& cx, std::vector<float>& cache) {
    return &cache[size_t(l) * size_t(cx.n_ctx_ + cx.tree_slots_) * kvd];
  };
  kernels::parallel_for(n, int64_t(n) * (qd + 2 * kvd), [&](int64_t i) {
    const Part& P = parts[size_t(part_of[size_t(i)])];
    const size_t slot = size_t(P.ctx->n_past_ + int(i) - P.row0);
    for (int h = 0; h < Hq; ++h) kernels::rope(&q[size_t(i) * qd + h * hd], hd, pos[i], m_->inv_freq_.data(), c.rope_interleaved);
    for (int h = 0; h < Hkv; ++h) kernels::rope(&k[size_t(i) * kvd + h * hd], hd, pos[i], m_->inv_freq_.data(), c.rope_interleaved);
    std::memcpy(layer_cache(*P.ctx, P.ctx->kcache_) + slot * kvd, &k[size_t(i) * kvd], sizeof(float) * kvd);
    std::memcpy(layer_cache(*P.ctx, P.ctx->vcache_) + slot * kvd, &v[size_t(i) * kvd], sizeof(float) * kvd);
  });

  // Plain continuations (a decoded token, a prompt, a chunk of one): token i
  // sees the contiguous slots [lo_i, past + i], and each head runs
  // kernels::attention_rows over blocks of query rows, which gives a row the
  // same bits in any block — a prompt's logits do not depend on how it was
  // chunked, nor a sequence's on its batch. One parallel loop over every
  // part's (head, block) pairs: a decode step of 16 small sequences is 16 ×
  // heads tasks of a few microseconds, too small to share out one part at a time.
  // A decoded token (a part of one row) of a model with grouped KV heads:
  // the query heads of a group are one call of `group` rows (q and out at
  // stride hd, the token's range for each), so that the group's keys and
  // values are read once, not once per head (at 4,096 cached tokens decode's
  // attention reads more than the weights; 1b Q4_0 decode at ~1,900 cached
  // tokens on Zen 3: 34.1–34.5 → 41.1–43.9 tok/s, three alternating runs).
  // A row is the same bits beside any rows: the same as head by head.
  std::vector<int> lo(static_cast<size_t>(n)), hi(static_cast<size_t>(n));
  std::vector<int> glo, ghi;  // row i's range `group` times, at i · group
  struct Task {
    int part, h, i0, rows;
    bool heads;  // rows are the heads h … h + rows − 1 of row i0
  };
  std::vector<Task> tasks;
  // Work in multiply-adds: QKᵀ and PV, plus what a score costs besides
  // (its exp, the softmax's passes, the loop around a short dot product)
  // at about 32 of them: small heads (hd 8) are mostly that.
  int64_t work = 0;
  // Heads a decode task takes: the whole group, unless that leaves threads
  // idle (one sequence of a model with one or two KV heads).
  int decoding = 0;
  for (int s = 0; s < n_parts; ++s) decoding += !parts[s].parents && parts[s].n == 1;
  const int groups = decoding * Hkv, threads = kernels::num_threads();
  const int splits = groups == 0 || groups >= threads ? 1 : (threads + groups - 1) / groups;
  const int heads_per_task = (group + splits - 1) / splits;
  for (int s = 0; s < n_parts; ++s) {
    const Part& P = parts[s];
    if (P.parents) continue;
    const int past = P.ctx->n_past_;
    for (int i = P.row0; i < P.row0 + P.n; ++i) {
      lo[size_t(i)] = c.sliding_window > 0 ? std::max(0, pos[i] - c.sliding_window + 1) : 0;
      hi[size_t(i)] = past + i - P.row0;
    }
    if (P.n == 1 && group > 1) {
      const int i = P.row0;
      if (glo.empty()) glo.resize(size_t(n) * size_t(group)), ghi.resize(glo.size());
      std::fill_n(glo.begin() + i * group, group, lo[size_t(i)]);
      std::fill_n(ghi.begin() + i * group, group, hi[size_t(i)]);
      for (int g = 0; g < Hkv; ++g)
        for (int h = 0; h < group; h += heads_per_task)
          tasks.push_back({s, g * group + h, i, std::min(heads_per_task, group - h), true});
    } else {
      for (int h = 0; h < Hq; ++h)
        for (int i0 = 0; i0 < P.n; i0 += kQueryBlock)
          tasks.push_back({s, h, P.row0 + i0, std::min(kQueryBlock, P.n - i0), false});
    }
    work += int64_t(Hq) * P.n * (past + P.n) * (2 * hd + 32);
  }
  kernels::parallel_for(int64_t(tasks.size()), work, [&](int64_t t) {
    const Task& T = tasks[size_t(t)];
    Context& cx = *parts[size_t(T.part)].ctx;
    const int kvh = T.h / group, i0 = T.i0;
    const int ld = T.heads ? hd : qd;
    const int* tlo = T.heads ? &glo[size_t(i0) * size_t(group)] : &lo[size_t(i0)];  // (any `rows` of the group's copies)
    const int* thi = T.heads ? &ghi[size_t(i0) * size_t(group)] : &hi[size_t(i0)];
    kernels::attention_rows(&q[size_t(i0) * qd + T.h * hd], ld, layer_cache(cx, cx.kcache_) + size_t(kvh) * hd,
                            layer_cache(cx, cx.vcache_) + size_t(kvh) * hd, kvd, tlo, thi, T.rows, hd, scale,
                            &att[size_t(i0) * qd + T.h * hd], ld);
  }, /*dynamic=*/true);

  for (int s = 0; s < n_parts; ++s) {
    const Part& P = parts[s];
    if (!P.parents) continue;
    const size_t r = size_t(P.row0);
    P.ctx->attend_tree(l, &q[r * qd], &att[r * qd], P.n, pos + P.row0, P.parents);
  }
}

// A tree (eval items after their shared few-shot prefix, continuations of
// one context): token i sees the cached slots [lo, past) — scored and summed
// by attention_rows' own kernels, so that a row is the same bits whatever
// else is in the batch (a resumed eval scores its last items alone and must
// reproduce them) — then its own ancestors, one key at a time by the same
// kernels. One (query, head) pair per work item.
void Context::attend_tree(int l, const float* q, float* att, int n, const int* pos, const int* parents) {
  const auto& c = m_->cfg_;
  const int hd = c.head_dim, Hq = c.num_attention_heads, Hkv = c.num_key_value_heads;
  const int qd = c.q_dim(), kvd = c.kv_dim(), group = Hq / Hkv;
  const int past = n_past_, slots = n_ctx_ + tree_slots_;
  const float scale = 1.0f / std::sqrt(float(hd));
  const float* kc = &kcache_[size_t(l) * slots * kvd];
  const float* vc = &vcache_[size_t(l) * slots * kvd];
#pragma omp parallel
  {
    std::vector<float> sc;
    std::vector<int> own;
#pragma omp for collapse(2) schedule(static)
    for (int i = 0; i < n; ++i)
      for (int h = 0; h < Hq; ++h) {
        const int p = pos[i], kvh = h / group;
        const int window_lo = c.sliding_window > 0 ? std::max(0, p - c.sliding_window + 1) : 0;
        own.clear();
        new_slots(i, window_lo, pos, parents, past, &own);
        const int lo = std::min(window_lo, past), cached = past - lo;
        const float* qv = &q[size_t(i) * qd + h * hd];
        const float *kh = kc + size_t(kvh) * hd, *vh = vc + size_t(kvh) * hd;
        sc.resize(size_t(cached) + own.size());
        kernels::attention_scores(qv, kh, kvd, lo, past, hd, scale, sc.data());
        for (size_t j = 0, e; j < own.size(); j = e) {  // runs of consecutive slots: one call each
          for (e = j + 1; e < own.size() && own[e] == own[e - 1] + 1;) ++e;
          kernels::attention_scores(qv, kh, kvd, own[j], own[e - 1] + 1, hd, scale, &sc[size_t(cached) + j]);
        }
        kernels::softmax(sc.data(), int(sc.size()));
        float* out = &att[size_t(i) * qd + h * hd];
        kernels::attention_pv(sc.data(), vh, kvd, lo, past - 1, hd, out);
        for (size_t j = 0; j < own.size(); ++j) kernels::axpy(out, sc[size_t(cached) + j], vh + size_t(own[j]) * kvd, hd);
      }
  }
}

void Context::eval_tree(const int* tokens, const int* parents, int n, const int* rows, int n_rows, float* logits) {
  const auto& c = m_->cfg_;
  if (n <= 0) return;
  if (n > tree_slots_)
    fail("context", "", "a tree of " + std::to_string(n) + " tokens exceeds the context's " +
                            std::to_string(tree_slots_) + " tree slots");
  check_tokens(tokens, n);
  std::vector<int> pos(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    if (parents[i] >= i) fail("eval_tree: parents[" + std::to_string(i) + "] must come before it");
    pos[size_t(i)] = parents[i] < 0 ? n_past_ : pos[size_t(parents[i])] + 1;
    if (pos[size_t(i)] >= n_ctx_)
      fail("context", "", "a tree token at position " + std::to_string(pos[size_t(i)]) +
                              " exceeds the context length " + std::to_string(n_ctx_));
  }
  for (int r = 0; r < n_rows; ++r)
    if (rows[r] < 0 || rows[r] >= n) fail("eval_tree: row " + std::to_string(rows[r]) + " out of range");
  forward(tokens, n, pos.data(), parents);
  const int d = c.hidden_size;
  std::vector<float> h(size_t(n_rows) * size_t(d));
  kernels::parallel_for(n_rows, int64_t(n_rows) * d, [&](int64_t r) {
    kernels::rmsnorm(&h[size_t(r) * d], &x_[size_t(rows[r]) * d], m_->final_norm_.data(), d, c.rms_norm_eps);
  });
  linear(h.data(), n_rows, *m_->head_, logits);
}

void Context::check_tokens(const int* tokens, int n) const {
  const int V = m_->cfg_.vocab_size;
  for (int i = 0; i < n; ++i)
    if (tokens[i] < 0 || tokens[i] >= V)
      fail("token id " + std::to_string(tokens[i]) + " out of range [0, " + std::to_string(V) + ")");
}

void Context::eval(const int* tokens, int n, float* logits, float* all_logits) {
  const auto& c = m_->cfg_;
  if (n <= 0) return;
  if (n_past_ + n > n_ctx_)
    fail("context", "", "prompt and generated tokens (" + std::to_string(n_past_ + n) +
                            ") exceed the context length " + std::to_string(n_ctx_) + " (-c)");
  check_tokens(tokens, n);
  std::vector<int> pos(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) pos[size_t(i)] = n_past_ + i;
  forward(tokens, n, pos.data(), nullptr);
  n_past_ += n;
  const int d = c.hidden_size;

  const int V = c.vocab_size;
  if (all_logits) {
    kernels::parallel_for(n, int64_t(n) * d, [&](int64_t i) {
      kernels::rmsnorm(&h_[size_t(i) * d], &x_[size_t(i) * d], m_->final_norm_.data(), d, c.rms_norm_eps);
    });
    linear(h_.data(), n, *m_->head_, all_logits);
    if (logits) std::memcpy(logits, all_logits + size_t(n - 1) * V, sizeof(float) * V);
  } else if (logits) {
    kernels::rmsnorm(h_.data(), &x_[size_t(n - 1) * d], m_->final_norm_.data(), d, c.rms_norm_eps);
    linear(h_.data(), 1, *m_->head_, logits);
  }
}

void Context::eval_batch(const BatchItem* items, int n_items) {
  std::vector<Part> parts;
  std::vector<int> tokens, pos;
  for (int b = 0; b < n_items; ++b) {
    const BatchItem& it = items[b];
    if (!it.ctx || it.n <= 0) fail("eval_batch: item " + std::to_string(b) + " has no context or no tokens");
    if (it.ctx->m_.get() != items[0].ctx->m_.get()) fail("eval_batch: the contexts run different models");
    for (const Part& p : parts)
      if (p.ctx == it.ctx) fail("eval_batch: a context appears twice in one batch");
    Context& cx = *it.ctx;
    if (cx.n_past_ + it.n > cx.n_ctx_)
      fail("context", "", "prompt and generated tokens (" + std::to_string(cx.n_past_ + it.n) +
                              ") exceed the context length " + std::to_string(cx.n_ctx_));
    cx.check_tokens(it.tokens, it.n);
    parts.push_back({&cx, int(tokens.size()), it.n, nullptr});
    tokens.insert(tokens.end(), it.tokens, it.tokens + it.n);
    for (int i = 0; i < it.n; ++i) pos.push_back(cx.n_past_ + i);
  }
  if (parts.empty()) return;
  Context& s = *items[0].ctx;
  const int n = int(tokens.size());
  s.forward_parts(tokens.data(), n, pos.data(), parts.data(), int(parts.size()));
  for (const Part& p : parts) p.ctx->n_past_ += p.n;

  // The head once over the last rows of the items that want logits.
  const auto& c = s.m_->cfg_;
  const int d = c.hidden_size, V = c.vocab_size;
  std::vector<int> want;
  for (int b = 0; b < n_items; ++b)
    if (items[b].logits) want.push_back(b);
  if (want.empty()) return;
  const int k = int(want.size());
  kernels::parallel_for(k, int64_t(k) * d, [&](int64_t r) {
    const Part& p = parts[size_t(want[size_t(r)])];
    kernels::rmsnorm(&s.h_[size_t(r) * d], &s.x_[size_t(p.row0 + p.n - 1) * d], s.m_->final_norm_.data(), d, c.rms_norm_eps);
  });
  // Straight into the callers' rows when they are one [k, V] block (a
  // server's step buffer), else through scratch: 16 × 32K logits copied
  // cost a small model's step a tenth.
  bool block = true;
  for (int r = 1; r < k && block; ++r) block = items[want[size_t(r)]].logits == items[want[0]].logits + size_t(r) * V;
  if (block) return linear(s.h_.data(), k, *s.m_->head_, items[want[0]].logits);
  std::vector<float>& out = s.head_out_;
  out.resize(size_t(k) * V);
  linear(s.h_.data(), k, *s.m_->head_, out.data());
  kernels::parallel_for(k, int64_t(k) * V, [&](int64_t r) {
    std::memcpy(items[want[size_t(r)]].logits, &out[size_t(r) * V], sizeof(float) * V);
  });
}

}  // namespace solar::engine
