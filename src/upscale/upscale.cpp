#include "upscale/upscale.h"

#include <ctime>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "core/fs.h"
#include "formats/hf.h"
#include "formats/load.h"
#include "model/checkpoint.h"

namespace solar::upscale {

std::vector<LayerSlice> dus_slices(const std::string& model, int n, int drop) {
  // 2(n - m) > n: dropping half the layers or more gives a model no deeper than its base.
  if (drop <= 0 || 2 * int64_t(drop) >= n)
    fail("--drop", "",
         "expected 0 < M < n/2 so that the up-scaled model (2(n-M) layers) is deeper than the base (n = " +
             std::to_string(n) + " layers)" + (n > 2 ? ": 1.." + std::to_string((n - 1) / 2) : ": none fits") +
             ", got " + std::to_string(drop));
  return {{model, 0, n - drop}, {model, drop, n}};
}

std::string dus_recipe_text(const std::vector<LayerSlice>& slices) {
  std::string t = "slices:\n";
  for (const auto& s : slices)
    t += "  - sources:\n      - model: " + s.model + "\n        layer_range: [" + std::to_string(s.begin) + ", " +
         std::to_string(s.end) + "]\n";
  return t + "merge_method: passthrough\n";
}

std::vector<LayerSlice> recipe_slices(const merge::Recipe& r) {
  if (r.merge_method != "passthrough")
    fail(r.path, "merge_method", "expected passthrough for up-scaling, got '" + r.merge_method + "'");
  if (r.slices.empty()) fail(r.path, "slices", "missing (up-scaling needs slices with layer_range)");
  std::vector<LayerSlice> out;
  for (size_t i = 0; i < r.slices.size(); ++i) {
    if (r.slices[i].size() != 1)
      fail(r.path, "slices[" + std::to_string(i) + "].sources",
           "expected exactly one source per slice for passthrough, got " + std::to_string(r.slices[i].size()));
    const merge::RecipeSource& s = r.slices[i][0];
    out.push_back({s.model, s.begin, s.end});
  }
  return out;
}

model::ModelConfig upscaled_config(const std::vector<LayerSlice>& slices, const std::vector<model::ModelConfig>& configs,
                            const std::string& where) {
  if (slices.empty()) fail(where, "slices", "expected at least one slice");
  if (configs.size() != slices.size()) fail(where, "slices", "expected one config per slice");
  const model::ModelConfig& a = configs[0];
  int64_t total = 0;
  for (size_t i = 0; i < slices.size(); ++i) {
    const LayerSlice& s = slices[i];
    const model::ModelConfig& c = configs[i];
    std::string field = "slices[" + std::to_string(i) + "]";
    if (s.begin < 0 || s.begin >= s.end || s.end > c.num_hidden_layers)
      fail(where, field + ".layer_range",
           "expected [begin, end) with 0 <= begin < end <= " + std::to_string(c.num_hidden_layers) + " (layers of " +
               s.model + "), got [" + std::to_string(s.begin) + ", " + std::to_string(s.end) + "]");
    model::require_same_shape(a, c, false, where, field + ": ", slices[0].model, s.model);
    total += s.end - s.begin;
  }
  if (total > model::kMaxLayers)
    fail(where, "slices", "expected at most " + std::to_string(model::kMaxLayers) + " layers in all, got " +
                              std::to_string(total));
  model::ModelConfig out = a;
  out.num_hidden_layers = int(total);
  return out;
}

std::vector<std::pair<int, int>> layer_map(const std::vector<LayerSlice>& slices) {
  std::vector<std::pair<int, int>> m;
  for (size_t i = 0; i < slices.size(); ++i)
    for (int l = slices[i].begin; l < slices[i].end; ++l) m.emplace_back(int(i), l);
  return m;
}

std::string upscale_card(const std::vector<LayerSlice>& slices, const model::ModelConfig& out, const std::string& recipe) {
  char date[32];
  std::time_t now = std::time(nullptr);
  std::strftime(date, sizeof date, "%Y-%m-%d", std::gmtime(&now));
  std::ostringstream ss;
  ss << "---\nlibrary_name: transformers\ntags:\n- solar.cpp\n- depth-up-scaling\n- merge\n---\n"
     << "# Depth up-scaled model\n\n"
     << "Made with `solar upscale` (solar.cpp) on " << date << " by stacking layer ranges "
     << "(mergekit passthrough semantics, half-open ranges):\n\n"
     << "| slice | source | layers |\n|---|---|---|\n";
  for (size_t i = 0; i < slices.size(); ++i)
    ss << "| " << i << " | " << slices[i].model << " | [" << slices[i].begin << ", " << slices[i].end << ") |\n";
  ss << "\nEmbeddings from " << slices.front().model << "; final norm and head from " << slices.back().model
     << ".\n\nResult: " << out.architecture << ", " << out.num_hidden_layers << " layers, hidden "
     << out.hidden_size << ", intermediate " << out.intermediate_size << ", " << out.num_attention_heads
     << " heads (" << out.num_key_value_heads << " KV), vocab " << out.vocab_size << ", "
     << out.num_parameters() << " parameters.\n";
  if (!recipe.empty()) ss << "\n## Recipe\n\n```yaml\n" << recipe << (recipe.back() == '\n' ? "" : "\n") << "```\n";
  return ss.str();
}

// The mapping that holds `p`, so its pages can be dropped once written.
static const MappedFile* owner(const model::Checkpoint& ck, const void* p) {
  auto* b = static_cast<const uint8_t*>(p);
  for (const auto& f : ck.files)
    if (b >= f->data() && b < f->data() + f->size()) return f.get();
  return nullptr;
}

void upscale(const std::vector<LayerSlice>& slices, const std::string& out, const UpscaleOptions& opt,
             const std::string& where) {
  if (path_exists(out) && !opt.force) fail(out, "", "already exists (use --force to replace)");
  std::map<std::string, std::unique_ptr<model::Checkpoint>> models;
  std::vector<model::ModelConfig> configs;
  for (const auto& s : slices) {
    auto& ck = models[s.model];
    if (!ck) ck = std::make_unique<model::Checkpoint>(formats::load_checkpoint(s.model));
    configs.push_back(ck->config);
  }
  model::ModelConfig cfg = upscaled_config(slices, configs, where);
  if (opt.dtype) cfg.torch_dtype = *opt.dtype;

  // Where each output tensor comes from, in canonical order.
  auto map = layer_map(slices);
  const model::Checkpoint& first = *models[slices.front().model];
  const model::Checkpoint& last = *models[slices.back().model];
  std::vector<const TensorView*> src;
  for (const std::string& name : model::expected_tensor_names(cfg)) {
    if (name.rfind("model.layers.", 0) == 0) {
      size_t dot = name.find('.', 13);
      int l = std::stoi(name.substr(13, dot - 13));
      auto [si, sl] = map[l];
      const model::Checkpoint& ck = *models[slices[si].model];
      src.push_back(&ck.get(model::layer_tensor(sl, name.c_str() + dot + 1)));
    } else {
      src.push_back(&(name == "model.embed_tokens.weight" ? first : last).get(name));
    }
  }
  std::vector<formats::TensorDecl> decls;
  uint64_t bytes = 0;
  auto names = model::expected_tensor_names(cfg);
  for (size_t i = 0; i < src.size(); ++i) {
    decls.push_back({names[i], src[i]->shape, src[i]->dtype});
    bytes += tensor_bytes(opt.dtype ? *opt.dtype : is_quantized(src[i]->dtype) ? DType::F32 : src[i]->dtype, src[i]->shape);
  }
  uint64_t free_b = free_disk_bytes(parent_dir(out));
  if (free_b < bytes + (64u << 20))
    fail(out, "", "not enough free disk: needs " + std::to_string(bytes >> 20) + " MiB, " +
                      std::to_string(free_b >> 20) + " MiB available");

  formats::HfWriteOptions w;
  w.dtype = opt.dtype;
  w.max_shard_bytes = opt.max_shard_bytes;
  w.force = opt.force;
  w.model_card = upscale_card(slices, cfg, opt.recipe_text);
  w.tokenizer_path = first.tokenizer_path;
  w.tokenizer_config = first.tokenizer_config;
  w.generation_config = first.generation_config;
  for (auto& [p, ck] : models)
    for (auto& f : ck->files) f->advise_sequential();
  formats::HfWriter writer(out, cfg, decls, w);
  for (size_t i = 0; i < src.size(); ++i) {
    TensorView v = *src[i];
    v.name = decls[i].name;
    writer.write(v);
    // The source bytes are done with unless a later slice reuses them; either
    // way dropping them only costs a re-read, and keeps RSS near one tensor.
    for (const auto& [p, m] : models)
      if (const MappedFile* f = owner(*m, src[i]->data))
        f->advise_dontneed(size_t(static_cast<const uint8_t*>(src[i]->data) - f->data()), src[i]->nbytes);
  }
  writer.finish();
}

}  // namespace solar::upscale
