// solar inspect — what a checkpoint holds: config, tensors, sizes, tokenizer.
#include <cstdio>
#include <set>

#include "cli/cli.h"
#include "core/error.h"
#include "core/fs.h"
#include "formats/load.h"
#include "model/checkpoint.h"

namespace solar::cli {

static std::string thousands(uint64_t n) {
  std::string s = std::to_string(n), out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i && (s.size() - i) % 3 == 0) out += ',';
    out += s[i];
  }
  return out;
}

// "7.24B", "260.1K": the way model cards name sizes.
static std::string human(double n, const char* const units[4], double base) {
  int u = 0;
  while (u < 3 && n >= base) n /= base, ++u;
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f%s" : "%.2f%s", n, units[u]);
  return buf;
}
static const char* const kCount[4] = {"", "K", "M", "B"};
static const char* const kBytes[4] = {" B", " KiB", " MiB", " GiB"};


static int run_inspect(const std::vector<std::string>& argv) {
  Args a("inspect", "solar inspect PATH [--json]");
  auto& json = a.flag("--json", "print the same information as JSON");
  auto& tokenizer = a.str("--tokenizer", "PATH", "tokenizer override (as in generate)");
  auto& paths = a.positional("PATH", "HF folder, .gguf file or llama2.c .bin");
  if (!a.parse(argv)) return a.exit_code();
  if (paths.size() != 1) usage_error("expected one PATH, got " + std::to_string(paths.size()));
  const std::string& path = paths[0];
  model::Checkpoint ck = formats::load_checkpoint(path, formats::LoadOptions{tokenizer});

  // Canonical order (layers numerically), then anything extra.
  std::vector<const TensorView*> ts;
  std::set<std::string> done;
  for (const auto& n : model::expected_tensor_names(ck.config))
    if (ck.has(n)) ts.push_back(&ck.get(n)), done.insert(n);
  for (const auto& [n, t] : ck.tensors)
    if (!done.count(n)) ts.push_back(&t);
  uint64_t params = 0, bytes = 0;
  for (auto* t : ts) params += uint64_t(t->numel()), bytes += t->nbytes;

  nlohmann::json cfg = model::config_to_json(ck.config);
  cfg["rope_interleaved"] = ck.config.rope_interleaved;
  if (json) {
    nlohmann::ordered_json j;
    j["path"] = path;
    j["format"] = formats::model_format_name(formats::detect_model_format(path));
    j["architecture"] = ck.config.architecture;
    j["config"] = cfg;
    j["tensors"] = nlohmann::ordered_json::array();
    for (auto* t : ts)
      j["tensors"].push_back({{"name", t->name}, {"dtype", dtype_name(t->dtype)}, {"shape", t->shape}, {"bytes", t->nbytes}});
    j["parameters"] = params;
    j["parameters_human"] = human(double(params), kCount, 1000);
    j["total_bytes"] = bytes;
    j["tokenizer"] = ck.tokenizer_path;
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }

  std::printf("path:          %s\nformat:        %s\narchitecture:  %s (%s)\n\nconfig:\n", path.c_str(),
              formats::model_format_name(formats::detect_model_format(path)), ck.config.architecture.c_str(), ck.config.model_type.c_str());
  for (auto& [k, v] : cfg.items()) std::printf("  %-26s %s\n", k.c_str(), v.dump().c_str());
  size_t w = 4;
  for (auto* t : ts) w = std::max(w, t->name.size());
  std::printf("\ntensors (%zu):\n  %-*s  %-5s  %-16s  %s\n", ts.size(), int(w), "name", "dtype", "shape", "bytes");
  for (auto* t : ts)
    std::printf("  %-*s  %-5s  %-16s  %s\n", int(w), t->name.c_str(), dtype_name(t->dtype), shape_str(t->shape).c_str(),
                thousands(t->nbytes).c_str());
  std::printf("\nparameters:    %s (%s)\ntotal bytes:   %s (%s)\ntokenizer:     %s\n", thousands(params).c_str(),
              human(double(params), kCount, 1000).c_str(), thousands(bytes).c_str(),
              human(double(bytes), kBytes, 1024).c_str(), ck.tokenizer_path.empty() ? "(none)" : ck.tokenizer_path.c_str());
  return 0;
}

static Register reg("inspect", "show a checkpoint's config, tensors, size and tokenizer", run_inspect);

}  // namespace solar::cli
