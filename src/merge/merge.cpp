#include "merge/merge.h"

#include <cmath>
#include <ctime>
#include <memory>
#include <sstream>

#include "core/error.h"
#include "core/fs.h"
#include "formats/hf.h"
#include "formats/load.h"
#include "model/checkpoint.h"

namespace solar::merge {

static const Gradient* find_param(const std::map<std::string, Gradient>& p, const char* name) {
  auto it = p.find(name);
  return it == p.end() ? nullptr : &it->second;
}

// Parameters solar does not implement must not be silently ignored.
static void only(const std::map<std::string, Gradient>& p, const char* known, const std::string& file,
                 const std::string& field, const std::string& method) {
  for (const auto& [k, v] : p)
    if (k != known)
      fail(file, field + "." + k,
           "unsupported parameter for " + method + (*known ? std::string(" (expected only ") + known + ")" : ""));
}

MergeSpec merge_spec_from_recipe(const Recipe& r) {
  MergeSpec s;
  s.where = r.path;
  s.dtype = r.dtype;
  if (r.merge_method == "passthrough") fail(r.path, "merge_method", "passthrough is for `solar upscale`; expected linear or slerp");
  if (r.models.empty()) fail(r.path, "models", "missing (merge needs a list of models; slices are for solar upscale)");
  if (r.merge_method == "linear") {
    s.method = MergeMethod::Linear;
    only(r.parameters, "weight", r.path, "parameters", "linear");
    for (size_t i = 0; i < r.models.size(); ++i) {
      only(r.models[i].parameters, "weight", r.path, "models[" + std::to_string(i) + "].parameters", "linear");
      const Gradient* w = find_param(r.models[i].parameters, "weight");
      if (!w) w = find_param(r.parameters, "weight");
      if (!w) fail(r.path, "models[" + std::to_string(i) + "].parameters.weight", "missing (linear needs a weight per model)");
      s.models.push_back(r.models[i].model);
      s.weights.push_back(*w);
    }
    return s;
  }
  s.method = MergeMethod::Slerp;
  only(r.parameters, "t", r.path, "parameters", "slerp");
  for (size_t i = 0; i < r.models.size(); ++i)
    only(r.models[i].parameters, "", r.path, "models[" + std::to_string(i) + "].parameters", "slerp (t is global)");
  if (r.base_model.empty()) fail(r.path, "base_model", "missing (slerp interpolates from base_model, t = 0)");
  s.models.push_back(r.base_model);
  for (const auto& m : r.models)
    if (m.model != r.base_model) s.models.push_back(m.model);
  if (s.models.size() != 2)
    fail(r.path, "models", "expected exactly two models for slerp (base_model and one other), got " +
                               std::to_string(s.models.size()));
  const Gradient* t = find_param(r.parameters, "t");
  if (!t) fail(r.path, "parameters.t", "missing (slerp needs t, a number or a gradient list)");
  s.t = *t;
  return s;
}

double layer_position(const std::string& tensor, int n_layers) {
  if (tensor.rfind("model.layers.", 0) == 0) {
    int l = std::stoi(tensor.substr(13));
    return n_layers > 1 ? double(l) / double(n_layers - 1) : 1.0;
  }
  return tensor == "model.embed_tokens.weight" ? 0.0 : 1.0;
}

void linear_merge(const std::vector<const float*>& x, const std::vector<double>& w, float* out, size_t n) {
  double sum = 0;
  for (double v : w) sum += v;
  if (sum == 0 || !std::isfinite(sum)) fail("weights", "", "expected a finite, non-zero sum, got " + std::to_string(sum));
  for (size_t i = 0; i < n; ++i) {
    double acc = 0;
    for (size_t k = 0; k < x.size(); ++k) acc += w[k] * double(x[k][i]);
    out[i] = float(acc / sum);
  }
}

void SlerpStats::add(const float* v0, const float* v1, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    double a = v0[i], b = v1[i];
    dot += a * b;
    n0 += a * a;
    n1 += b * b;
  }
}

std::pair<double, double> slerp_coeffs(const SlerpStats& s, double t) {
  // mergekit normalises each side unless its norm is below eps.
  const double eps = 1e-8, dot_threshold = 0.9995;
  double a = std::sqrt(s.n0), b = std::sqrt(s.n1);
  double cos = s.dot / ((a > eps ? a : 1.0) * (b > eps ? b : 1.0));
  if (std::fabs(cos) > dot_threshold) return {1 - t, t};
  double theta0 = std::acos(cos), sin0 = std::sin(theta0), theta_t = theta0 * t;
  return {std::sin(theta0 - theta_t) / sin0, std::sin(theta_t) / sin0};
}

void slerp_merge(const float* v0, const float* v1, double t, float* out, size_t n) {
  SlerpStats s;
  s.add(v0, v1, n);
  auto [c0, c1] = slerp_coeffs(s, t);
  for (size_t i = 0; i < n; ++i) out[i] = float(c0 * v0[i] + c1 * v1[i]);
}

static std::string merge_card(const MergeSpec& s, const model::ModelConfig& c) {
  char date[32];
  std::time_t now = std::time(nullptr);
  std::strftime(date, sizeof date, "%Y-%m-%d", std::gmtime(&now));
  auto grad = [](const Gradient& g) {
    std::ostringstream ss;
    if (g.size() == 1) ss << g[0];
    else {
      ss << "[";
      for (size_t i = 0; i < g.size(); ++i) ss << (i ? ", " : "") << g[i];
      ss << "]";
    }
    return ss.str();
  };
  std::ostringstream ss;
  ss << "---\nlibrary_name: transformers\ntags:\n- solar.cpp\n- merge\n---\n# Merged model\n\nMade with `solar merge` "
     << "(solar.cpp) on " << date << " using "
     << (s.method == MergeMethod::Linear ? "linear (weights normalised to sum 1)" : "slerp") << ":\n\n";
  for (size_t i = 0; i < s.models.size(); ++i) {
    ss << "* " << s.models[i];
    if (s.method == MergeMethod::Linear) ss << " — weight " << grad(s.weights[i]);
    else ss << (i == 0 ? " — base (t = 0)" : " — t = 1");
    ss << "\n";
  }
  if (s.method == MergeMethod::Slerp) ss << "\nt = " << grad(s.t) << "\n";
  ss << "\nResult: " << c.architecture << ", " << c.num_hidden_layers << " layers, " << c.num_parameters()
     << " parameters.\n";
  if (!s.recipe_text.empty()) ss << "\n## Recipe\n\n```yaml\n" << s.recipe_text << "\n```\n";
  return ss.str();
}

void merge(const MergeSpec& s, const std::string& out) {
  bool linear = s.method == MergeMethod::Linear;
  if (s.models.empty()) fail(s.where, "models", "expected at least one model");
  if (!linear && s.models.size() != 2)
    fail(s.where, "models", "expected exactly two models for slerp, got " + std::to_string(s.models.size()));
  if (linear && s.weights.size() != s.models.size())
    fail(s.where, "weight", "expected one weight per model (" + std::to_string(s.models.size()) + "), got " +
                                std::to_string(s.weights.size()));
  if (!linear && s.t.empty()) fail(s.where, "t", "missing");
  if (path_exists(out) && !s.force) fail(out, "", "already exists (use --force to replace)");

  std::vector<std::unique_ptr<model::Checkpoint>> ck;
  for (const auto& m : s.models) ck.push_back(std::make_unique<model::Checkpoint>(formats::load_checkpoint(m)));
  for (size_t i = 1; i < ck.size(); ++i)
    model::require_same_shape(ck[0]->config, ck[i]->config, true, s.where, "", s.models[0], s.models[i]);
  model::ModelConfig cfg = ck[0]->config;
  DType out_dt = s.dtype ? *s.dtype : ck[0]->get("model.embed_tokens.weight").dtype;
  if (is_quantized(out_dt)) out_dt = DType::F32;  // a quantized model merges in f32
  cfg.torch_dtype = out_dt;

  // Every per-tensor parameter is resolved before the first byte is written.
  auto names = model::expected_tensor_names(cfg);
  std::vector<std::vector<double>> params(names.size());
  std::vector<formats::TensorDecl> decls;
  uint64_t bytes = 0;
  for (size_t i = 0; i < names.size(); ++i) {
    double x = layer_position(names[i], cfg.num_hidden_layers);
    if (linear) {
      double sum = 0;
      for (const auto& g : s.weights) sum += params[i].emplace_back(gradient_at(g, x));
      if (sum == 0 || !std::isfinite(sum))
        fail(s.where, "weight", "expected weights with a non-zero sum, got " + std::to_string(sum) + " for " + names[i]);
    } else {
      params[i].push_back(gradient_at(s.t, x));
    }
    const TensorView& t = ck[0]->get(names[i]);
    decls.push_back({names[i], t.shape, DType::F32});
    bytes += tensor_bytes(out_dt, t.shape);
  }
  uint64_t free_b = free_disk_bytes(parent_dir(out));
  if (free_b < bytes + (64u << 20))
    fail(out, "", "not enough free disk: needs " + std::to_string(bytes >> 20) + " MiB, " +
                      std::to_string(free_b >> 20) + " MiB available");

  formats::HfWriteOptions w;
  w.dtype = out_dt;
  w.max_shard_bytes = s.max_shard_bytes;
  w.force = s.force;
  w.model_card = merge_card(s, cfg);
  w.tokenizer_path = ck[0]->tokenizer_path;
  w.tokenizer_config = ck[0]->tokenizer_config;
  w.generation_config = ck[0]->generation_config;
  formats::HfWriter writer(out, cfg, decls, w);

  // Sources are converted to f32 in chunks; only the output tensor is whole.
  const size_t chunk = 1 << 16;
  std::vector<std::vector<float>> buf(ck.size(), std::vector<float>(chunk));
  std::vector<const float*> ptrs(ck.size());
  std::vector<float> res;
  for (size_t i = 0; i < names.size(); ++i) {
    std::vector<const TensorView*> src;
    for (auto& c : ck) src.push_back(&c->get(names[i]));
    size_t n = size_t(src[0]->numel());
    auto load = [&](size_t off, size_t len) {
      for (size_t k = 0; k < src.size(); ++k) {
        auto* p = static_cast<const uint8_t*>(src[k]->data) + row_bytes(src[k]->dtype, int64_t(off));  // chunks are whole blocks
        convert(p, src[k]->dtype, buf[k].data(), DType::F32, len);
        ptrs[k] = buf[k].data();
      }
    };
    res.resize(n);
    std::pair<double, double> c{0, 0};
    if (!linear) {
      SlerpStats st;
      for (size_t off = 0; off < n; off += chunk) {
        size_t len = std::min(chunk, n - off);
        load(off, len);
        st.add(ptrs[0], ptrs[1], len);
      }
      c = slerp_coeffs(st, params[i][0]);
    }
    for (size_t off = 0; off < n; off += chunk) {
      size_t len = std::min(chunk, n - off);
      load(off, len);
      if (linear) {
        linear_merge(ptrs, params[i], res.data() + off, len);
      } else {
        for (size_t j = 0; j < len; ++j) res[off + j] = float(c.first * ptrs[0][j] + c.second * ptrs[1][j]);
      }
    }
    TensorView v{names[i], DType::F32, src[0]->shape, res.data(), n * 4};
    writer.write(v);
  }
  writer.finish();
}

}  // namespace solar::merge
