#include "merge/recipe.h"

#include <cmath>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/fs.h"
#include "core/json.h"

namespace solar::merge {

using json = nlohmann::json;

static std::string get_string(const json& j, const std::string& file, const std::string& field) {
  if (!j.is_string() || j.get<std::string>().empty())
    fail(file, field, "expected a non-empty string, got " + json_brief(j));
  return j.get<std::string>();
}

static Gradient get_gradient(const json& j, const std::string& file, const std::string& field) {
  Gradient g;
  if (j.is_boolean()) {
    g.push_back(j.get<bool>() ? 1.0 : 0.0);
  } else if (j.is_number()) {
    g.push_back(j.get<double>());
  } else if (j.is_array() && !j.empty()) {
    for (const auto& e : j) {
      if (!e.is_number()) fail(file, field, "expected a number or a list of numbers, got " + json_brief(j));
      g.push_back(e.get<double>());
    }
  } else {
    fail(file, field, "expected a number or a non-empty list of numbers, got " + json_brief(j));
  }
  for (double v : g)
    if (!std::isfinite(v)) fail(file, field, "expected finite numbers, got " + json_brief(j));
  return g;
}

static void check_keys(const json& j, std::initializer_list<const char*> known, const std::string& file,
                       const std::string& field) {
  for (const auto& [k, v] : j.items()) {
    bool ok = false;
    for (const char* n : known) ok = ok || k == n;
    if (!ok) fail(file, field.empty() ? k : field + "." + k, "unknown or unsupported key");
  }
}

// A value, or a list of {filter, value} mappings (a mapping alone is one case).
static Param get_param(const json& j, const std::string& file, const std::string& field) {
  bool cases = j.is_object() || (j.is_array() && !j.empty() && j[0].is_object());
  if (!cases) return {{"", get_gradient(j, file, field)}};
  json list = j.is_object() ? json::array({j}) : j;
  Param p;
  for (size_t i = 0; i < list.size(); ++i) {
    std::string f = j.is_object() ? field : field + "[" + std::to_string(i) + "]";
    if (!list[i].is_object()) fail(file, f, "expected {filter, value} like the other entries, got " + json_brief(list[i]));
    check_keys(list[i], {"filter", "value"}, file, f);
    if (!list[i].contains("value")) fail(file, f + ".value", "missing");
    ParamCase c;
    if (list[i].contains("filter") && !list[i]["filter"].is_null())
      c.filter = get_string(list[i]["filter"], file, f + ".filter");
    c.value = get_gradient(list[i]["value"], file, f + ".value");
    p.push_back(std::move(c));
  }
  return p;
}

static Params get_parameters(const json& j, const std::string& file, const std::string& field) {
  if (j.is_null()) return {};
  if (!j.is_object()) fail(file, field, "expected a mapping of name: value, got " + json_brief(j));
  Params p;
  for (const auto& [k, v] : j.items()) p[k] = get_param(v, file, field + "." + k);
  return p;
}

static RecipeSource get_source(const json& j, const std::string& file, const std::string& field, bool ranged) {
  if (!j.is_object()) fail(file, field, "expected a mapping with 'model', got " + json_brief(j));
  check_keys(j, {"model", "layer_range", "parameters"}, file, field);
  RecipeSource s;
  if (!j.contains("model")) fail(file, field + ".model", "missing (expected a model path)");
  s.model = get_string(j["model"], file, field + ".model");
  if (j.contains("parameters")) s.parameters = get_parameters(j["parameters"], file, field + ".parameters");
  if (ranged) {
    std::string f = field + ".layer_range";
    if (!j.contains("layer_range")) fail(file, f, "missing (expected [begin, end])");
    const json& r = j["layer_range"];
    if (!r.is_array() || r.size() != 2 || !r[0].is_number_integer() || !r[1].is_number_integer())
      fail(file, f, "expected two integers [begin, end], got " + json_brief(r));
    long long b = r[0].get<long long>(), e = r[1].get<long long>();
    if (b < 0 || e > 1000000 || b >= e)
      fail(file, f, "expected a non-empty half-open range [begin, end) with 0 <= begin < end, got " + json_brief(r));
    s.begin = int(b);
    s.end = int(e);
  }
  return s;
}

Recipe parse_recipe(const std::string& text, const std::string& path, bool is_json) {
  // Both bounded in depth and size (core/json.h): recipes come from anyone.
  json j = is_json ? parse_json_unique(text, path) : parse_yaml(text, path);
  if (!j.is_object()) fail(path, "", "expected a mapping at the top level, got " + json_brief(j));
  check_keys(j, {"slices", "models", "merge_method", "base_model", "parameters", "dtype", "out_dtype"}, path, "");
  Recipe r;
  r.path = path;
  const std::string methods = "passthrough, " + merge_method_names();
  if (!j.contains("merge_method")) fail(path, "merge_method", "missing (expected " + methods + ")");
  r.merge_method = get_string(j["merge_method"], path, "merge_method");
  if (r.merge_method != "passthrough" && !known_merge_method(r.merge_method))
    fail(path, "merge_method", "expected " + methods + ", got '" + r.merge_method + "'");
  bool has_slices = j.contains("slices") && !j["slices"].is_null();
  bool has_models = j.contains("models") && !j["models"].is_null();
  if (has_slices == has_models) fail(path, "slices", "expected exactly one of 'slices' or 'models'");
  if (has_slices) {
    const json& sl = j["slices"];
    if (!sl.is_array() || sl.empty()) fail(path, "slices", "expected a non-empty list, got " + json_brief(sl));
    for (size_t i = 0; i < sl.size(); ++i) {
      std::string f = "slices[" + std::to_string(i) + "]";
      if (!sl[i].is_object()) fail(path, f, "expected a mapping with 'sources', got " + json_brief(sl[i]));
      check_keys(sl[i], {"sources"}, path, f);
      if (!sl[i].contains("sources") || !sl[i]["sources"].is_array() || sl[i]["sources"].empty())
        fail(path, f + ".sources", "expected a non-empty list of sources");
      std::vector<RecipeSource> srcs;
      for (size_t k = 0; k < sl[i]["sources"].size(); ++k)
        srcs.push_back(get_source(sl[i]["sources"][k], path, f + ".sources[" + std::to_string(k) + "]", true));
      r.slices.push_back(std::move(srcs));
    }
  } else {
    const json& ms = j["models"];
    if (!ms.is_array() || ms.empty()) fail(path, "models", "expected a non-empty list, got " + json_brief(ms));
    for (size_t i = 0; i < ms.size(); ++i)
      r.models.push_back(get_source(ms[i], path, "models[" + std::to_string(i) + "]", false));
  }
  if (j.contains("base_model") && !j["base_model"].is_null())
    r.base_model = get_string(j["base_model"], path, "base_model");
  if (j.contains("parameters")) r.parameters = get_parameters(j["parameters"], path, "parameters");
  for (const char* k : {"dtype", "out_dtype"})
    if (j.contains(k) && !j[k].is_null())
      r.dtype = parse_dtype(get_string(j[k], path, k), path + ": " + k);
  if (r.dtype && !is_float(*r.dtype)) fail(path, "dtype", "expected bfloat16, float16 or float32");
  return r;
}

Recipe read_recipe(const std::string& path) {
  std::string text = read_document(path);
  bool is_json = path.size() >= 5 && path.compare(path.size() - 5, 5, ".json") == 0;
  return parse_recipe(text, path, is_json);
}

static const char* const kMethods[] = {"linear", "slerp", "task_arithmetic", "ties", "dare_linear", "dare_ties",
                                      "model_stock"};

bool known_merge_method(const std::string& name) {
  for (const char* m : kMethods)
    if (name == m) return true;
  return false;
}

std::string merge_method_names() {
  std::string s;
  for (const char* m : kMethods) s += (s.empty() ? "" : ", ") + std::string(m);
  return s;
}

double gradient_at(const Gradient& g, double x) {
  if (g.size() == 1) return g[0];
  double scaled = x * double(g.size() - 1);
  size_t i0 = size_t(scaled), i1 = std::min(g.size() - 1, i0 + 1);
  double frac = scaled - double(i0);
  return (1 - frac) * g[i0] + frac * g[i1];
}

std::optional<double> param_at(const Param& p, const std::string& tensor, double x) {
  for (const auto& c : p)
    if (c.filter.empty() || c.filter == "*" || tensor.find(c.filter) != std::string::npos)
      return gradient_at(c.value, x);
  return std::nullopt;
}

}  // namespace solar::merge
