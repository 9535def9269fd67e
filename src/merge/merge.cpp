#include "merge/merge.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <ctime>
#include <memory>
#include <sstream>

#include "core/error.h"
#include "core/fs.h"
#include "core/rng.h"
#include "formats/hf.h"
#include "formats/load.h"
#include "model/checkpoint.h"
#include "model/rope.h"

namespace solar::merge {

static const char* const kNames[] = {"linear", "slerp", "task_arithmetic", "ties", "dare_linear", "dare_ties",
                                    "model_stock"};

MergeMethod parse_merge_method(const std::string& name, const std::string& where) {
  for (size_t i = 0; i < std::size(kNames); ++i)
    if (name == kNames[i]) return MergeMethod(i);
  fail(where, "", "expected " + merge_method_names() + ", got '" + name + "'");
}

const char* merge_method_name(MergeMethod m) { return kNames[size_t(m)]; }
bool has_base(MergeMethod m) { return m != MergeMethod::Linear; }

static bool task_family(MergeMethod m) {
  return m == MergeMethod::TaskArithmetic || m == MergeMethod::Ties || m == MergeMethod::DareLinear ||
         m == MergeMethod::DareTies;
}

// The parameters each method takes (mergekit's names), for validation.
static std::vector<std::string> param_names(MergeMethod m) {
  switch (m) {
    case MergeMethod::Linear: return {"weight", "normalize"};
    case MergeMethod::Slerp: return {"t"};
    case MergeMethod::ModelStock: return {"filter_wise"};
    default: return {"weight", "density", "normalize", "rescale", "lambda", "int8_mask"};
  }
}

static void check_params(const Params& p, MergeMethod m, const std::string& file, const std::string& field) {
  auto known = param_names(m);
  for (const auto& [k, v] : p)
    if (std::find(known.begin(), known.end(), k) == known.end()) {
      std::string list;
      for (const auto& n : known) list += (list.empty() ? "" : ", ") + n;
      fail(file, field + "." + k, std::string("unsupported parameter for ") + merge_method_name(m) + " (expected " + list + ")");
    }
}

static void check_model_count(const MergeSpec& s, const std::string& field) {
  bool slerp = s.method == MergeMethod::Slerp, base = has_base(s.method);
  size_t min_models = slerp ? 2 : s.method == MergeMethod::ModelStock ? 3 : base ? 2 : 1;
  if (s.models.size() < min_models || (slerp && s.models.size() != 2))
    fail(s.where, field,
         std::string("expected ") + (slerp ? "exactly" : "at least") + " " + std::to_string(min_models) +
             " models for " + merge_method_name(s.method) + (base ? " (base_model included)" : "") + ", got " +
             std::to_string(s.models.size()));
}

MergeSpec merge_spec_from_recipe(const Recipe& r) {
  MergeSpec s;
  s.where = r.path;
  s.dtype = r.dtype;
  if (r.merge_method == "passthrough") fail(r.path, "merge_method", "passthrough is for `solar upscale`; expected " + merge_method_names());
  s.method = parse_merge_method(r.merge_method, r.path + ": merge_method");
  s.parameters = r.parameters;
  check_params(r.parameters, s.method, r.path, "parameters");
  bool base = has_base(s.method);
  if (base && r.base_model.empty())
    fail(r.path, "base_model", std::string("missing (") + merge_method_name(s.method) + " needs a base model)");
  // The inputs: base first, then each other model once, with its parameters.
  auto add = [&](const RecipeSource& src, const std::string& field) {
    check_params(src.parameters, s.method, r.path, field + ".parameters");
    auto it = std::find(s.models.begin(), s.models.end(), src.model);
    if (it == s.models.end()) {
      s.models.push_back(src.model);
      s.model_params.push_back(src.parameters);
    } else if (!src.parameters.empty()) {
      s.model_params[size_t(it - s.models.begin())] = src.parameters;
    }
  };
  if (base) add({r.base_model, -1, -1, {}}, "base_model");
  if (!r.models.empty()) {
    for (size_t i = 0; i < r.models.size(); ++i) add(r.models[i], "models[" + std::to_string(i) + "]");
  } else {
    for (size_t i = 0; i < r.slices.size(); ++i) {
      std::string f = "slices[" + std::to_string(i) + "]";
      const auto& src = r.slices[i];
      for (size_t k = 0; k < src.size(); ++k) add(src[k], f + ".sources[" + std::to_string(k) + "]");
      size_t named = src.size() + (base && std::none_of(src.begin(), src.end(), [&](const RecipeSource& x) {
                                     return x.model == r.base_model;
                                   }) ? 1 : 0);
      if (named != s.models.size() || (base && named != src.size()))
        fail(r.path, f + ".sources", "expected the same models in every slice, the base_model among them");
      int len = src[0].end - src[0].begin;
      for (size_t k = 1; k < src.size(); ++k)
        if (src[k].end - src[k].begin != len)
          fail(r.path, f + ".sources[" + std::to_string(k) + "].layer_range",
               "expected " + std::to_string(len) + " layers like sources[0]");
      for (int j = 0; j < len; ++j) {
        OutputLayer l;
        l.x = len > 1 ? double(j) / double(len - 1) : 1.0;
        l.src.assign(s.models.size(), 0);
        for (const auto& x : src)
          l.src[size_t(std::find(s.models.begin(), s.models.end(), x.model) - s.models.begin())] = x.begin + j;
        s.layers.push_back(l);
      }
    }
  }
  check_model_count(s, r.models.empty() ? "slices" : "models");
  return s;
}

double layer_position(const std::string& tensor, int n_layers) {
  if (tensor.rfind("model.layers.", 0) == 0) {
    int l = std::stoi(tensor.substr(13));
    return n_layers > 1 ? double(l) / double(n_layers - 1) : 1.0;
  }
  return tensor == "model.embed_tokens.weight" ? 0.0 : 1.0;
}

void linear_merge(const std::vector<const float*>& x, const std::vector<double>& w, float* out, size_t n,
                  bool normalize) {
  double sum = 0;
  for (double v : w) sum += v;
  if (!normalize) sum = 1;
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

void task_merge(std::vector<std::vector<float>>& x, const TaskOptions& o) {
  std::vector<float>& base = x[0];
  size_t n = base.size(), m = x.size() - 1;
  for (size_t k = 1; k <= m; ++k) {
    std::vector<float>& d = x[k];
    double w = o.weight[k - 1], density = o.density[k - 1], l1 = 0, kept = 0;
    for (size_t i = 0; i < n; ++i) {
      d[i] -= base[i];
      l1 += std::fabs(d[i]);
    }
    if (o.sparsify == TaskOptions::Magnitude && density < 1) {
      // mergekit's magnitude: keep the max(1, ⌊density·n⌋) largest |d|.
      size_t keep = std::max<size_t>(1, size_t(density * double(n)));
      if (keep < n) {
        std::vector<float> mag(n);
        for (size_t i = 0; i < n; ++i) mag[i] = std::fabs(d[i]);
        std::nth_element(mag.begin(), mag.begin() + ptrdiff_t(keep - 1), mag.end(), std::greater<float>());
        float cut = mag[keep - 1];
        size_t above = 0;  // ties at the cut are kept in index order
        for (size_t i = 0; i < n; ++i) above += std::fabs(d[i]) > cut;
        size_t at_cut = keep - above;
        for (size_t i = 0; i < n; ++i) {
          float a = std::fabs(d[i]);
          if (a > cut) continue;
          if (a == cut && at_cut > 0) {
            --at_cut;
            continue;
          }
          d[i] = 0;
        }
      }
    } else if (o.sparsify == TaskOptions::Random && density < 1) {
      for (size_t i = 0; i < n; ++i)
        if (rng_uniform64(o.keys[k - 1], i) >= density) d[i] = 0;
    }
    if (o.rescale && o.sparsify != TaskOptions::None && density < 1) {
      for (size_t i = 0; i < n; ++i) kept += std::fabs(d[i]);
      if (l1 >= 1e-7 && kept >= 1e-7)
        for (size_t i = 0; i < n; ++i) d[i] = float(double(d[i]) * (l1 / kept));
    }
    for (size_t i = 0; i < n; ++i) d[i] = float(double(d[i]) * w);
  }
  double wsum = 0;
  for (double w : o.weight) wsum += w;
  for (size_t i = 0; i < n; ++i) {
    double sum = 0, div = 0;
    for (size_t k = 1; k <= m; ++k) sum += x[k][i];
    if (o.consensus) {  // sign election by the sign of the weighted sum
      double sign = sum >= 0 ? 1 : -1, kept_sum = 0;
      for (size_t k = 1; k <= m; ++k) {
        float d = x[k][i];
        if ((d > 0 ? 1 : d < 0 ? -1 : 0) == sign) kept_sum += d, div += o.weight[k - 1];
      }
      sum = kept_sum;
      if (div == 0) div = 1;
    } else {
      div = std::fabs(wsum) < 1e-8 ? 1 : wsum;
    }
    if (o.normalize) sum /= div;
    base[i] = float(double(base[i]) + o.lambda * sum);
  }
}

void model_stock_merge(std::vector<std::vector<float>>& x, size_t row) {
  std::vector<float>& base = x[0];
  size_t n = base.size(), m = x.size() - 1;
  for (size_t k = 1; k <= m; ++k)
    for (size_t i = 0; i < n; ++i) x[k][i] -= base[i];
  for (size_t r0 = 0; r0 < n; r0 += row) {
    double cos = 0;
    for (size_t a = 1; a <= m; ++a)
      for (size_t b = a + 1; b <= m; ++b) {
        double dot = 0, na = 0, nb = 0;
        for (size_t i = r0; i < r0 + row; ++i) {
          dot += double(x[a][i]) * x[b][i];
          na += double(x[a][i]) * x[a][i];
          nb += double(x[b][i]) * x[b][i];
        }
        cos += std::clamp(dot / std::max(std::sqrt(na) * std::sqrt(nb), 1e-6), -1.0, 1.0);
      }
    cos /= double(m * (m - 1) / 2);
    double den = 1 + double(m - 1) * cos, t = std::fabs(den) < 1e-6 ? 0 : double(m) * cos / den;
    for (size_t i = r0; i < r0 + row; ++i) {
      double avg = 0;  // mean of the models = base + mean of the deltas
      for (size_t k = 1; k <= m; ++k) avg += x[k][i];
      base[i] = float(double(base[i]) + t * avg / double(m));
    }
  }
}

static std::string merge_card(const MergeSpec& s, const model::ModelConfig& c) {
  char date[32];
  std::time_t now = std::time(nullptr);
  std::strftime(date, sizeof date, "%Y-%m-%d", std::gmtime(&now));
  std::ostringstream ss;
  ss << "---\nlibrary_name: transformers\ntags:\n- solar.cpp\n- merge\n---\n# Merged model\n\nMade with `solar merge` "
     << "(solar.cpp) on " << date << " using " << merge_method_name(s.method) << " of:\n\n";
  for (size_t i = 0; i < s.models.size(); ++i)
    ss << "* " << s.models[i] << (i == 0 && has_base(s.method) ? " (base)" : "") << "\n";
  ss << "\nResult: " << c.architecture << ", " << c.num_hidden_layers << " layers, " << c.num_parameters()
     << " parameters.\n";
  if (!s.recipe_text.empty()) ss << "\n## Recipe\n\n```yaml\n" << s.recipe_text << "\n```\n";
  return ss.str();
}

// Every parameter of one tensor, resolved before anything is written.
struct TensorParams {
  std::vector<double> weight, density;  // per model (the base's unused)
  double t = 0, normalize = 0, rescale = 0, lambda = 1, filter_wise = 0;
};

static TensorParams resolve(const MergeSpec& s, const std::string& name, double x) {
  auto get = [&](const char* key, size_t k, std::optional<double> def) -> double {
    std::optional<double> v;
    if (k < s.model_params.size())
      if (auto it = s.model_params[k].find(key); it != s.model_params[k].end()) v = param_at(it->second, name, x);
    if (!v)
      if (auto it = s.parameters.find(key); it != s.parameters.end()) v = param_at(it->second, name, x);
    if (!v) v = def;
    if (!v)
      fail(s.where, std::string(k < s.models.size() ? "models[" + std::to_string(k) + "].parameters." : "parameters.") + key,
           "missing for " + name + " (no value or filter matches)");
    return *v;
  };
  TensorParams p;
  bool task = task_family(s.method), base = has_base(s.method);
  size_t none = s.models.size();  // "global only"
  if (s.method == MergeMethod::Slerp) {
    p.t = get("t", none, std::nullopt);
    // Outside [0, 1] slerp extrapolates past both models: a typo, not a merge.
    if (!(p.t >= 0 && p.t <= 1))
      fail(s.where, "parameters.t", "expected a value in [0, 1], got " + (std::ostringstream() << p.t).str() + " for " + name);
  }
  if (s.method == MergeMethod::ModelStock) p.filter_wise = get("filter_wise", none, 0.0);
  if (s.method == MergeMethod::Linear || task) {
    for (size_t k = base ? 1 : 0; k < s.models.size(); ++k) {
      p.weight.push_back(get("weight", k, std::nullopt));
      double d = get("density", k, 1.0);
      if (!(d > 0 && d <= 1))
        fail(s.where, "models[" + std::to_string(k) + "].parameters.density",
             "expected a value in (0, 1], got " + std::to_string(d) + " for " + name);
      p.density.push_back(d);
    }
    bool dflt_norm = s.method == MergeMethod::Linear || s.method == MergeMethod::Ties;
    p.normalize = get("normalize", none, dflt_norm ? 1.0 : 0.0);
    p.rescale = get("rescale", none, s.method == MergeMethod::DareLinear || s.method == MergeMethod::DareTies ? 1.0 : 0.0);
    p.lambda = get("lambda", none, 1.0);
  }
  return p;
}

// Inputs load through formats::load_checkpoint; interleaved-RoPE q/k rows
// (GGUF, llama2.c) are brought to HF layout.
static void load_f32(const model::Checkpoint& c, const std::string& name, std::vector<float>& out) {
  const TensorView& t = c.get(name);
  size_t n = size_t(t.numel());
  out.resize(n);
  convert(t.data, t.dtype, out.data(), DType::F32, n);
  bool q = name.find("q_proj") != std::string::npos, k = name.find("k_proj") != std::string::npos;
  if (c.config.rope_interleaved && (q || k) && t.shape.size() == 2) {
    std::vector<float> hf(n);
    model::permute_rope_rows(out.data(), hf.data(), q ? c.config.num_attention_heads : c.config.num_key_value_heads,
                             c.config.head_dim, size_t(t.shape[1]) * 4, true);
    out.swap(hf);
  }
}

// Merged embedding rows must mean the same tokens: every input that carries
// a tokenizer has the same pieces (ids) as the first one that does.
static void check_same_vocabulary(const MergeSpec& s, const std::vector<std::unique_ptr<model::Checkpoint>>& ck) {
  std::vector<std::string> ref;
  size_t r = 0;
  for (size_t k = 0; k < ck.size(); ++k) {
    if (ck[k]->tokenizer_path.empty()) continue;
    auto pieces = formats::open_tokenizer(ck[k]->tokenizer_path, ck[k]->config.vocab_size)->vocab().pieces;
    if (ref.empty()) {
      ref = std::move(pieces);
      r = k;
      continue;
    }
    size_t i = 0;
    while (i < ref.size() && i < pieces.size() && ref[i] == pieces[i]) ++i;
    if (i < ref.size() || i < pieces.size())
      fail(s.where, "tokenizer",
           "expected the vocabulary of " + s.models[r] + " (" + ck[r]->tokenizer_path + "), token " + std::to_string(i) +
               " differs in " + s.models[k] + " (" + ck[k]->tokenizer_path + ")");
  }
}

void merge(const MergeSpec& s, const std::string& out) {
  check_model_count(s, "models");
  if (s.model_params.size() != s.models.size()) fail(s.where, "models", "expected parameters for every model");
  if (path_exists(out) && !s.force) fail(out, "", "already exists (use --force to replace)");

  std::vector<std::unique_ptr<model::Checkpoint>> ck;
  for (const auto& m : s.models) ck.push_back(std::make_unique<model::Checkpoint>(formats::load_checkpoint(m)));
  // Layouts are unified on load, so the RoPE layout is not a difference.
  auto hf_layout = [](model::ModelConfig c) {
    c.rope_interleaved = false;
    return c;
  };
  for (size_t i = 1; i < ck.size(); ++i)
    model::require_same_shape(hf_layout(ck[0]->config), hf_layout(ck[i]->config), s.layers.empty(), s.where, "",
                              s.models[0], s.models[i]);
  check_same_vocabulary(s, ck);
  model::ModelConfig cfg = hf_layout(ck[0]->config);
  for (const auto& l : s.layers)
    for (size_t k = 0; k < l.src.size(); ++k)
      if (l.src[k] >= ck[k]->config.num_hidden_layers)
        fail(s.where, "layer_range", "layer " + std::to_string(l.src[k]) + " is past the " +
                                         std::to_string(ck[k]->config.num_hidden_layers) + " layers of " + s.models[k]);
  if (!s.layers.empty()) cfg.num_hidden_layers = int(s.layers.size());
  DType out_dt = s.dtype ? *s.dtype : ck[0]->get("model.embed_tokens.weight").dtype;
  if (is_quantized(out_dt)) out_dt = DType::F32;  // a quantized model merges in f32
  cfg.torch_dtype = out_dt;

  // Every per-tensor parameter is resolved before the first byte is written.
  auto names = model::expected_tensor_names(cfg);
  std::vector<TensorParams> params;
  std::vector<std::vector<std::string>> sources(names.size());  // per tensor, per model
  std::vector<formats::TensorDecl> decls;
  uint64_t bytes = 0;
  for (size_t i = 0; i < names.size(); ++i) {
    double x = layer_position(names[i], cfg.num_hidden_layers);
    for (size_t k = 0; k < ck.size(); ++k) sources[i].push_back(names[i]);
    if (!s.layers.empty() && names[i].rfind("model.layers.", 0) == 0) {
      size_t dot = names[i].find('.', 13);
      const OutputLayer& l = s.layers[size_t(std::stoi(names[i].substr(13)))];
      x = l.x;
      for (size_t k = 0; k < ck.size(); ++k)
        sources[i][k] = "model.layers." + std::to_string(l.src[k]) + names[i].substr(dot);
    }
    params.push_back(resolve(s, names[i], x));
    if (s.method == MergeMethod::Linear) {
      double sum = 0;
      for (double w : params.back().weight) sum += w;
      if (params.back().normalize != 0 && (sum == 0 || !std::isfinite(sum)))
        fail(s.where, "weight", "expected weights with a non-zero sum, got " + std::to_string(sum) + " for " + names[i]);
    }
    const TensorView& t = ck[0]->get(sources[i][0]);
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

  std::vector<std::vector<float>> x(ck.size());
  std::vector<float> res;
  for (size_t i = 0; i < names.size(); ++i) {
    for (size_t k = 0; k < ck.size(); ++k) load_f32(*ck[k], sources[i][k], x[k]);
    const TensorParams& p = params[i];
    size_t n = x[0].size();
    std::vector<float>* result = &x[0];
    if (s.method == MergeMethod::Linear) {
      std::vector<const float*> ptrs;
      for (auto& v : x) ptrs.push_back(v.data());
      res.resize(n);
      linear_merge(ptrs, p.weight, res.data(), n, p.normalize != 0);
      result = &res;
    } else if (s.method == MergeMethod::Slerp) {
      res.resize(n);
      slerp_merge(x[0].data(), x[1].data(), p.t, res.data(), n);
      result = &res;
    } else if (s.method == MergeMethod::ModelStock) {
      const TensorView& t = ck[0]->get(sources[i][0]);
      model_stock_merge(x, p.filter_wise != 0 ? size_t(t.shape.back()) : n);
    } else {
      TaskOptions o;
      o.sparsify = s.method == MergeMethod::Ties ? TaskOptions::Magnitude
                   : s.method == MergeMethod::TaskArithmetic ? TaskOptions::None : TaskOptions::Random;
      o.consensus = s.method == MergeMethod::Ties || s.method == MergeMethod::DareTies;
      o.normalize = p.normalize != 0;
      o.rescale = p.rescale != 0;
      o.lambda = p.lambda;
      o.weight = p.weight;
      o.density = p.density;
      for (size_t k = 1; k < ck.size(); ++k) o.keys.push_back(rng_key(s.seed, names[i] + "#" + std::to_string(k)));
      task_merge(x, o);
    }
    TensorView v{names[i], DType::F32, decls[i].shape, result->data(), n * 4};
    writer.write(v);
  }
  writer.finish();
}

}  // namespace solar::merge
