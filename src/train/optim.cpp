#include "train/optim.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "core/fs.h"

namespace solar::train {

static constexpr char kMagic[8] = {'S', 'O', 'L', 'A', 'D', 'A', 'M', '1'};

AdamW::AdamW(Net& model, AdamWConfig cfg) : model_(model), cfg_(cfg) {
  for (const Param& p : model_.params()) {
    m_.emplace_back(p.w.size(), 0.f);
    v_.emplace_back(p.w.size(), 0.f);
  }
}

// Each thread sums a fixed slice and the slices are added in thread order:
// OpenMP's reduction clause adds them as threads finish, which changed the
// norm (so the clipping, so the weights) from run to run at 8 threads.
double grad_norm(const std::vector<Param>& params) {
  double total = 0;
  std::vector<double> part(static_cast<size_t>(omp_get_max_threads()));
  for (const Param& p : params) {
    std::fill(part.begin(), part.end(), 0.0);
#pragma omp parallel if (p.g.size() > (1 << 16))
    {
      const size_t n = p.g.size(), nt = size_t(omp_get_num_threads()), t = size_t(omp_get_thread_num());
      double s = 0;
      for (size_t i = n * t / nt; i < n * (t + 1) / nt; ++i) s += double(p.g[i]) * p.g[i];
      part[t] = s;
    }
    for (double s : part) total += s;
  }
  return std::sqrt(total);
}

float AdamW::step(float lr) {
  const double norm = grad_norm(model_.params());
  const float clip = cfg_.grad_clip > 0 && norm > cfg_.grad_clip ? float(cfg_.grad_clip / (norm + 1e-6)) : 1.f;
  ++t_;
  const float b1 = cfg_.beta1, b2 = cfg_.beta2;
  const float bc1 = float(1 - std::pow(double(b1), double(t_))), bc2 = float(1 - std::pow(double(b2), double(t_)));
  auto& ps = model_.params();
  for (size_t k = 0; k < ps.size(); ++k) {
    Param& p = ps[k];
    float *w = p.w.data(), *m = m_[k].data(), *v = v_[k].data();
    const float* g = p.g.data();
    const float wd = p.decay ? cfg_.weight_decay : 0.f;
#pragma omp parallel for schedule(static) if (p.w.size() > (1 << 16))
    for (size_t i = 0; i < p.w.size(); ++i) {
      float gi = g[i] * clip;
      m[i] = b1 * m[i] + (1 - b1) * gi;
      v[i] = b2 * v[i] + (1 - b2) * gi * gi;
      float mh = m[i] / bc1, vh = v[i] / bc2;
      w[i] -= lr * (mh / (std::sqrt(vh) + cfg_.eps) + wd * w[i]);
    }
  }
  return float(norm);
}

// Layout: magic, int64 step, int64 count, then per parameter: int64 name
// length, name, int64 numel, m[numel], v[numel] (little-endian f32).
void AdamW::save(const std::string& path) const {
  AtomicFile f(path);
  auto i64 = [&](int64_t x) { f.write(&x, 8); };
  f.write(kMagic, 8);
  i64(t_);
  i64(int64_t(m_.size()));
  const auto& ps = model_.params();
  for (size_t k = 0; k < ps.size(); ++k) {
    i64(int64_t(ps[k].name.size()));
    f.write(ps[k].name);
    i64(int64_t(m_[k].size()));
    f.write(m_[k].data(), m_[k].size() * 4);
    f.write(v_[k].data(), v_[k].size() * 4);
  }
  f.commit();
}

void AdamW::load(const std::string& path) {
  const std::string s = read_file(path);
  size_t off = 0;
  auto take = [&](void* dst, size_t n, const std::string& field) {
    if (s.size() - off < n)
      fail(path, field, "expected " + std::to_string(n) + " more bytes, file ends at " + std::to_string(s.size()));
    std::memcpy(dst, s.data() + off, n);
    off += n;
  };
  auto i64 = [&](const std::string& field) {
    int64_t x;
    take(&x, 8, field);
    return x;
  };
  char magic[8];
  take(magic, 8, "magic");
  if (std::memcmp(magic, kMagic, 8) != 0) fail(path, "magic", "expected SOLADAM1 (AdamW state)");
  int64_t step = i64("step"), count = i64("count");
  const auto& ps = model_.params();
  if (step < 0) fail(path, "step", "expected >= 0, got " + std::to_string(step));
  if (count != int64_t(ps.size()))
    fail(path, "count", "expected " + std::to_string(ps.size()) + " parameters, got " + std::to_string(count));
  auto m = m_, v = v_;
  for (size_t k = 0; k < ps.size(); ++k) {
    int64_t len = i64("name length");
    if (len != int64_t(ps[k].name.size()) || s.compare(off, size_t(len), ps[k].name) != 0)
      fail(path, "parameter " + std::to_string(k), "expected name " + ps[k].name);
    off += size_t(len);
    int64_t n = i64(ps[k].name + ".numel");
    if (n != int64_t(m[k].size()))
      fail(path, ps[k].name, "expected " + std::to_string(m[k].size()) + " elements, got " + std::to_string(n));
    take(m[k].data(), size_t(n) * 4, ps[k].name + ".m");
    take(v[k].data(), size_t(n) * 4, ps[k].name + ".v");
  }
  if (off != s.size()) fail(path, "", "expected end of file, " + std::to_string(s.size() - off) + " bytes left");
  m_ = std::move(m), v_ = std::move(v), t_ = step;
}

}  // namespace solar::train
