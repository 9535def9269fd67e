#include "train/net.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "model/init.h"
#include "model/rope.h"
#include "train/layers.h"

namespace solar::train {

// Parameter order: expected_tensor_names(): embed, per layer the 9 tensors
// below, final norm, lm_head if untied.
enum { kInNorm, kQ, kK, kV, kO, kPostNorm, kGate, kUp, kDown, kPerLayer };

// One forward (+ backward) pass on scalar S. Activations of every layer are
// kept for backward; buffers are sized once per (B, T) and reused.
template <class S>
struct Graph {
  struct Layer {
    std::vector<S> x, rstd1, xn1, q, k, v, att, ao, xmid, rstd2, xn2, gate, up, h;
  };
  int B = 0, T = 0;
  std::vector<Layer> layers;
  std::vector<S> xL, rstdf, xnf, logits, cos, sin;
  std::vector<S> dx, dxn, dq, dk, dv, dao, dh, dgate, dup, scratch;
  std::vector<int32_t> ids, targets;
  std::vector<int32_t> pos, seg;  // of the last forward; empty: n % T, one example per row
  int rope_rows = 0;              // positions the cos/sin tables cover

  void resize(const model::ModelConfig& c, int b, int t) {
    if (b == B && t == T && !layers.empty()) return;
    B = b, T = t;
    size_t N = size_t(b) * t, d = c.hidden_size, qd = c.q_dim(), kvd = c.kv_dim(), ff = c.intermediate_size;
    layers.assign(c.num_hidden_layers, Layer{});
    for (Layer& l : layers) {
      for (auto* v : {&l.x, &l.xn1, &l.xmid, &l.xn2}) v->resize(N * d);
      for (auto* v : {&l.rstd1, &l.rstd2}) v->resize(N);
      for (auto* v : {&l.q, &l.ao}) v->resize(N * qd);
      for (auto* v : {&l.k, &l.v}) v->resize(N * kvd);
      for (auto* v : {&l.gate, &l.up, &l.h}) v->resize(N * ff);
      l.att.resize(size_t(b) * c.num_attention_heads * t * t);
    }
    xL.resize(N * d), xnf.resize(N * d), rstdf.resize(N), logits.resize(N * c.vocab_size);
    cos.resize(size_t(t) * c.head_dim / 2), sin.resize(cos.size());
    rope_tables(c, t);
    dx.resize(N * d), dxn.resize(N * d), dq.resize(N * qd), dao.resize(N * qd), dk.resize(N * kvd), dv.resize(N * kvd);
    dh.resize(N * ff), dgate.resize(N * ff), dup.resize(N * ff);
    ids.resize(N), targets.resize(N);
  }

  void rope_tables(const model::ModelConfig& c, int rows) {
    rope_rows = rows;
    cos.resize(size_t(rows) * c.head_dim / 2), sin.resize(cos.size());
    rope_table<S>(cos.data(), sin.data(), rows, c.head_dim, c.rope_theta);
  }

  bool for_backward = false;  // the last forward may be followed by backward()

  // w: one pointer per parameter in canonical order. Fills logits [b*t, V]
  // and targets [b*t] from tokens [b, t+1]; positions ps / examples sg [b*t]
  // or null (train/batch.h).
  void forward(const model::ModelConfig& c, Precision p, const std::vector<const S*>& w, const int32_t* tokens, int b,
               int t, bool keep, const int32_t* ps = nullptr, const int32_t* sg = nullptr) {
    if (b <= 0 || t <= 0) fail("tokens", "shape", "expected B > 0 and T > 0, got B=" + std::to_string(b) + " T=" + std::to_string(t));
    resize(c, b, t);
    const size_t nt = size_t(b) * t;
    ps ? pos.assign(ps, ps + nt) : pos.clear();
    sg ? seg.assign(sg, sg + nt) : seg.clear();
    if (!pos.empty()) {
      const int top = *std::max_element(pos.begin(), pos.end());
      if (top >= c.max_position_embeddings)
        fail("batch", "pos", "expected positions < max_position_embeddings " +
                                 std::to_string(c.max_position_embeddings) + ", got " + std::to_string(top));
      if (top >= rope_rows) rope_tables(c, top + 1);
    }
    const int32_t* P = pos.empty() ? nullptr : pos.data();
    // Per-thread attention scratch: the thread count may change between calls.
    if (scratch.size() < size_t(attention_scratch(t))) scratch.resize(attention_scratch(t));
    const int64_t N = int64_t(b) * t, d = c.hidden_size, qd = c.q_dim(), kvd = c.kv_dim(), ff = c.intermediate_size,
                  V = c.vocab_size;
    const int H = c.num_attention_heads, KV = c.num_key_value_heads, hd = c.head_dim, L = c.num_hidden_layers;
    for (int r = 0; r < b; ++r)
      for (int i = 0; i <= t; ++i) {
        int32_t id = tokens[int64_t(r) * (t + 1) + i];
        if (id < 0 || id >= V)
          fail("tokens", "row " + std::to_string(r), "expected ids in [0, " + std::to_string(V) + "), got " + std::to_string(id));
        if (i < t) ids[int64_t(r) * t + i] = id;
        if (i > 0) targets[int64_t(r) * t + i - 1] = id;
      }
    auto W = [&](int l, int k) { return w[1 + l * kPerLayer + k]; };
    const S* norm_w = w[1 + L * kPerLayer];
    const size_t head = c.tie_word_embeddings ? 0 : 2 + L * kPerLayer;

    embedding_forward<S>(layers[0].x.data(), ids.data(), w[0], N, d);
    for (int l = 0; l < L; ++l) {
      Layer& a = layers[l];
      S* next = l + 1 < L ? layers[l + 1].x.data() : xL.data();
      rmsnorm_forward<S>(a.xn1.data(), a.rstd1.data(), a.x.data(), W(l, kInNorm), N, d, c.rms_norm_eps);
      linear_forward<S>(a.q.data(), a.xn1.data(), W(l, kQ), N, d, qd, p);
      linear_forward<S>(a.k.data(), a.xn1.data(), W(l, kK), N, d, kvd, p);
      linear_forward<S>(a.v.data(), a.xn1.data(), W(l, kV), N, d, kvd, p);
      rope_forward<S>(a.q.data(), cos.data(), sin.data(), N, t, H, hd, P);
      rope_forward<S>(a.k.data(), cos.data(), sin.data(), N, t, KV, hd, P);
      attention_forward<S>(a.ao.data(), a.att.data(), a.q.data(), a.k.data(), a.v.data(), b, t, H, KV, hd, p,
                           seg.empty() ? nullptr : seg.data());
      linear_forward<S>(a.xmid.data(), a.ao.data(), W(l, kO), N, qd, d, p);
      residual_forward<S>(a.xmid.data(), a.x.data(), N * d);
      rmsnorm_forward<S>(a.xn2.data(), a.rstd2.data(), a.xmid.data(), W(l, kPostNorm), N, d, c.rms_norm_eps);
      linear_forward<S>(a.gate.data(), a.xn2.data(), W(l, kGate), N, d, ff, p);
      linear_forward<S>(a.up.data(), a.xn2.data(), W(l, kUp), N, d, ff, p);
      swiglu_forward<S>(a.h.data(), a.gate.data(), a.up.data(), N * ff);
      linear_forward<S>(next, a.h.data(), W(l, kDown), N, ff, d, p);
      residual_forward<S>(next, a.xmid.data(), N * d);
    }
    rmsnorm_forward<S>(xnf.data(), rstdf.data(), xL.data(), norm_w, N, d, c.rms_norm_eps);
    linear_forward<S>(logits.data(), xnf.data(), w[head], N, d, V, p);
    for_backward = keep;
  }

  // Backward from dlogits [B*T, V] held in `logits` (the objectives write it
  // there in place); ADDS the gradients into g (one pointer per parameter).
  void backward(const model::ModelConfig& c, Precision p, const std::vector<const S*>& w, const std::vector<S*>* g) {
    if (!for_backward) fail("train", "backward", "expected a forward(..., for_backward=true) first");
    for_backward = false;
    const int b = B, t = T;
    const int64_t N = int64_t(b) * t, d = c.hidden_size, qd = c.q_dim(), kvd = c.kv_dim(), ff = c.intermediate_size,
                  V = c.vocab_size;
    const int H = c.num_attention_heads, KV = c.num_key_value_heads, hd = c.head_dim, L = c.num_hidden_layers;
    auto W = [&](int l, int k) { return w[1 + l * kPerLayer + k]; };
    const S* norm_w = w[1 + L * kPerLayer];
    const size_t head = c.tie_word_embeddings ? 0 : 2 + L * kPerLayer;
    if (scratch.size() < size_t(attention_scratch(t))) scratch.resize(attention_scratch(t));
    auto G = [&](int l, int k) { return (*g)[1 + l * kPerLayer + k]; };
    const int32_t* P = pos.empty() ? nullptr : pos.data();
    linear_backward<S>(dxn.data(), (*g)[head], logits.data(), xnf.data(), w[head], N, d, V, p, false);
    std::fill(dx.begin(), dx.end(), S(0));
    rmsnorm_backward<S>(dx.data(), (*g)[1 + L * kPerLayer], dxn.data(), xL.data(), norm_w, rstdf.data(), N, d);
    for (int l = L - 1; l >= 0; --l) {
      Layer& a = layers[l];
      // dx is d(loss)/d(layer output); the residual passes it straight through.
      linear_backward<S>(dh.data(), G(l, kDown), dx.data(), a.h.data(), W(l, kDown), N, ff, d, p, false);
      swiglu_backward<S>(dgate.data(), dup.data(), dh.data(), a.gate.data(), a.up.data(), N * ff);
      linear_backward<S>(dxn.data(), G(l, kGate), dgate.data(), a.xn2.data(), W(l, kGate), N, d, ff, p, false);
      linear_backward<S>(dxn.data(), G(l, kUp), dup.data(), a.xn2.data(), W(l, kUp), N, d, ff, p, true);
      rmsnorm_backward<S>(dx.data(), G(l, kPostNorm), dxn.data(), a.xmid.data(), W(l, kPostNorm), a.rstd2.data(), N, d);
      linear_backward<S>(dao.data(), G(l, kO), dx.data(), a.ao.data(), W(l, kO), N, qd, d, p, false);
      attention_backward<S>(dq.data(), dk.data(), dv.data(), scratch.data(), dao.data(), a.att.data(), a.q.data(),
                            a.k.data(), a.v.data(), b, t, H, KV, hd, p);
      rope_backward<S>(dq.data(), cos.data(), sin.data(), N, t, H, hd, P);
      rope_backward<S>(dk.data(), cos.data(), sin.data(), N, t, KV, hd, P);
      linear_backward<S>(dxn.data(), G(l, kQ), dq.data(), a.xn1.data(), W(l, kQ), N, d, qd, p, false);
      linear_backward<S>(dxn.data(), G(l, kK), dk.data(), a.xn1.data(), W(l, kK), N, d, kvd, p, true);
      linear_backward<S>(dxn.data(), G(l, kV), dv.data(), a.xn1.data(), W(l, kV), N, d, kvd, p, true);
      rmsnorm_backward<S>(dx.data(), G(l, kInNorm), dxn.data(), a.x.data(), W(l, kInNorm), a.rstd1.data(), N, d);
    }
    embedding_backward<S>((*g)[0], dx.data(), ids.data(), N, d);
  }
};

struct Workspace {
  Graph<float> net;
};

Net::Net(Net&&) noexcept = default;
Net& Net::operator=(Net&&) noexcept = default;
Net::~Net() = default;

void Net::build_params() {
  cfg_.validate("model config");
  if (cfg_.head_dim % 2 || cfg_.num_attention_heads % cfg_.num_key_value_heads)
    fail("model config", "head_dim", "expected an even head_dim and num_attention_heads divisible by num_key_value_heads");
  params_.clear();
  for (const std::string& n : model::expected_tensor_names(cfg_)) {
    Param p{n, model::expected_shape(cfg_, n), {}, {}, true};
    int64_t numel = 1;
    for (int64_t s : p.shape) numel *= s;
    p.w.assign(numel, 0.f);
    p.g.assign(numel, 0.f);
    params_.push_back(std::move(p));
  }
  set_options(opt_);
  ws_ = std::make_unique<Workspace>();
}

void Net::set_options(const TrainOptions& o) {
  opt_ = o;
  for (Param& p : params_) {
    bool embedding = p.name == "model.embed_tokens.weight" || p.name == "lm_head.weight";
    p.decay = p.shape.size() == 2 && (!embedding || o.decay_embeddings);
  }
}

Net Net::init(const model::ModelConfig& cfg, uint64_t seed) {
  Net m;
  m.cfg_ = cfg;
  m.build_params();
  for (Param& p : m.params_) model::init_tensor(cfg, p.name, seed, p.w.data(), DType::F32, p.w.size());
  return m;
}

Net Net::from_checkpoint(const model::Checkpoint& ck) {
  ck.validate();
  Net m;
  m.cfg_ = ck.config;
  m.cfg_.rope_interleaved = false;
  m.build_params();
  const int hd = m.cfg_.head_dim;
  for (Param& p : m.params_) {
    const TensorView& t = ck.get(p.name);
    convert(t.data, t.dtype, p.w.data(), DType::F32, p.w.size());
    bool qk = p.name.ends_with("q_proj.weight") || p.name.ends_with("k_proj.weight");
    if (!ck.config.rope_interleaved || !qk) continue;
    std::vector<float> src = p.w;
    model::permute_rope_rows(src.data(), p.w.data(), int(p.shape[0] / hd), hd, size_t(p.shape[1]) * sizeof(float), true);
  }
  return m;
}

int64_t Net::num_parameters() const {
  int64_t n = 0;
  for (const Param& p : params_) n += int64_t(p.w.size());
  return n;
}

static std::vector<const float*> weights(const std::vector<Param>& ps) {
  std::vector<const float*> w;
  for (const Param& p : ps) w.push_back(p.w.data());
  return w;
}

const float* Net::forward(const int32_t* tokens, int B, int T, bool for_backward) {
  ws_->net.forward(cfg_, opt_.precision, weights(params_), tokens, B, T, for_backward);
  return ws_->net.logits.data();
}

const float* Net::forward(const Batch& batch, bool for_backward) {
  batch.validate();
  ws_->net.forward(cfg_, opt_.precision, weights(params_), batch.tokens.data(), batch.B, batch.T, for_backward,
                   batch.pos.empty() ? nullptr : batch.pos.data(), batch.seg.empty() ? nullptr : batch.seg.data());
  return ws_->net.logits.data();
}

void Net::backward(const float* dlogits, float grad_scale) {
  Graph<float>& n = ws_->net;
  float* buf = n.logits.data();
  if (dlogits != buf || grad_scale != 1.0f) {
    const size_t sz = n.logits.size();
    for (size_t i = 0; i < sz; ++i) buf[i] = dlogits[i] * grad_scale;
  }
  std::vector<float*> g;
  for (Param& p : params_) g.push_back(p.g.data());
  n.backward(cfg_, opt_.precision, weights(params_), &g);
}

float* Net::logits() { return ws_->net.logits.data(); }
const float* Net::logits() const { return ws_->net.logits.data(); }
const int32_t* Net::targets() const { return ws_->net.targets.data(); }
int Net::batch() const { return ws_->net.B; }
int Net::seq_len() const { return ws_->net.T; }

float Net::forward_backward(const int32_t* tokens, int B, int T, float grad_scale, const float* weight) {
  forward(tokens, B, T, true);
  const double loss = cross_entropy<float>(logits(), targets(), int64_t(B) * T, cfg_.vocab_size, grad_scale, weight);
  backward(logits(), 1.0f);
  return float(loss);
}

float Net::loss(const int32_t* tokens, int B, int T, const float* weight) {
  forward(tokens, B, T, false);
  return float(cross_entropy<float>(logits(), targets(), int64_t(B) * T, cfg_.vocab_size, 0.f, weight));
}

void Net::zero_grad() {
  for (Param& p : params_) std::fill(p.g.begin(), p.g.end(), 0.f);
}

std::vector<TensorView> Net::views() const {
  std::vector<TensorView> v;
  for (const Param& p : params_)
    v.push_back(TensorView{p.name, DType::F32, p.shape, p.w.data(), p.w.size() * sizeof(float)});
  return v;
}

double forward_backward_f64(const model::ModelConfig& cfg, const std::vector<std::vector<double>>& w,
                            std::vector<std::vector<double>>* g, const int32_t* tokens, int B, int T,
                            const double* weight, const double* dlogp, const int32_t* pos, const int32_t* seg) {
  std::vector<const double*> wp;
  for (const auto& x : w) wp.push_back(x.data());
  std::vector<double*> gp;
  if (g) {
    g->resize(w.size());
    for (size_t i = 0; i < w.size(); ++i) {
      (*g)[i].assign(w[i].size(), 0.0);
      gp.push_back((*g)[i].data());
    }
  }
  Graph<double> net;
  net.forward(cfg, Precision::F32, wp, tokens, B, T, g != nullptr, pos, seg);
  const int64_t N = int64_t(B) * T, V = cfg.vocab_size;
  double value = 0;
  if (dlogp) {
    std::vector<double> lp(B);
    sequence_logprob<double>(net.logits.data(), net.targets.data(), weight, B, T, V, lp.data(), g ? dlogp : nullptr);
    for (int b = 0; b < B; ++b) value += dlogp[b] * lp[b];
  } else {
    value = cross_entropy<double>(net.logits.data(), net.targets.data(), N, V, g ? 1.0 : 0.0, weight);
  }
  if (g) net.backward(cfg, Precision::F32, wp, &gp);
  return value;
}

}  // namespace solar::train
