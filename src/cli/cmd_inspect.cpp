// solar inspect — what a checkpoint holds: config, tensors, sizes, tokenizer;
// for a GGUF also the file's own metadata and tensor types.
#include <cstdio>
#include <map>
#include <optional>
#include <set>

#include "cli/cli.h"
#include "core/error.h"
#include "core/fs.h"
#include "formats/gguf.h"
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

// Tensors, elements and bytes of one GGML type (or of the whole file).
struct TypeTotal {
  uint64_t tensors = 0, numel = 0, bytes = 0;
  double bpw() const { return numel ? 8.0 * double(bytes) / double(numel) : 0; }
};

static std::map<std::string, TypeTotal> gguf_types(const formats::GgufInfo& g, TypeTotal& all) {
  std::map<std::string, TypeTotal> by;
  for (const auto& t : g.tensors)
    for (TypeTotal* s : {&by[dtype_name(t.dtype)], &all}) ++s->tensors, s->numel += t.numel(), s->bytes += t.nbytes;
  return by;
}

static std::string json_text(const nlohmann::ordered_json& v) {
  return v.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);  // vocabularies hold raw bytes
}

// A metadata value on one line: long strings (chat templates) cut at a
// character boundary, arrays as their length and first values.
static std::string kv_text(const formats::GgufEntry& kv) {
  if (kv.value.is_string()) {
    const std::string& s = kv.value.get_ref<const std::string&>();
    size_t n = std::min<size_t>(s.size(), 72);
    while (n < s.size() && n > 0 && (uint8_t(s[n]) & 0xC0) == 0x80) --n;
    return n == s.size() ? json_text(s) : json_text(s.substr(0, n)) + "… (" + thousands(s.size()) + " bytes)";
  }
  if (!kv.type.starts_with("array")) return json_text(kv.value);
  std::string out = thousands(kv.length) + " × [";
  for (size_t i = 0; i < kv.value.size(); ++i) out += (i ? ", " : "") + json_text(kv.value[i]);
  return out + (kv.length > kv.value.size() ? ", …]" : "]");
}

static std::string ne_str(const std::vector<uint64_t>& ne) {
  std::string s = "[";
  for (size_t i = 0; i < ne.size(); ++i) s += (i ? ", " : "") + std::to_string(ne[i]);
  return s + "]";
}

static void print_gguf(const formats::GgufInfo& g) {
  std::printf("gguf:          version %u, alignment %llu, tensor data at byte %s\n\nmetadata (%zu):\n", g.version,
              (unsigned long long)g.alignment, thousands(g.data_offset).c_str(), g.kv.size());
  size_t w = 4;
  for (const auto& kv : g.kv) w = std::max(w, kv.key.size());
  for (const auto& kv : g.kv) std::printf("  %-*s  %-13s  %s\n", int(w), kv.key.c_str(), kv.type.c_str(), kv_text(kv).c_str());
  w = 4;
  for (const auto& t : g.tensors) w = std::max(w, t.name.size());
  std::printf("\ngguf tensors (%zu, ne innermost first):\n  %-*s  %-5s  %-16s  %s\n", g.tensors.size(), int(w), "name",
              "type", "ne", "bytes");
  for (const auto& t : g.tensors)
    std::printf("  %-*s  %-5s  %-16s  %s\n", int(w), t.name.c_str(), dtype_name(t.dtype), ne_str(t.ne).c_str(),
                thousands(t.nbytes).c_str());
  TypeTotal all;
  auto by = gguf_types(g, all);
  std::printf("\nby type:\n  %-5s  %7s  %15s  %15s  %s\n", "type", "tensors", "elements", "bytes", "bits/weight");
  for (auto& [name, t] : by)
    std::printf("  %-5s  %7llu  %15s  %15s  %.2f\n", name.c_str(), (unsigned long long)t.tensors, thousands(t.numel).c_str(),
                thousands(t.bytes).c_str(), t.bpw());
  std::printf("  %-5s  %7llu  %15s  %15s  %.2f\n\n", "all", (unsigned long long)all.tensors, thousands(all.numel).c_str(),
              thousands(all.bytes).c_str(), all.bpw());
}

static nlohmann::ordered_json gguf_json(const formats::GgufInfo& g) {
  nlohmann::ordered_json j{{"version", g.version}, {"alignment", g.alignment}, {"data_offset", g.data_offset}};
  j["metadata"] = nlohmann::ordered_json::array();
  for (const auto& kv : g.kv) {
    nlohmann::ordered_json e{{"key", kv.key}, {"type", kv.type}};
    if (kv.type.starts_with("array")) e["length"] = kv.length;
    e[kv.type.starts_with("array") ? "first" : "value"] = kv.value;
    j["metadata"].push_back(std::move(e));
  }
  j["tensors"] = nlohmann::ordered_json::array();
  for (const auto& t : g.tensors)
    j["tensors"].push_back({{"name", t.name}, {"type", dtype_name(t.dtype)}, {"ne", t.ne}, {"offset", t.offset}, {"bytes", t.nbytes}});
  TypeTotal all;
  j["types"] = nlohmann::ordered_json::object();
  for (auto& [name, t] : gguf_types(g, all))
    j["types"][name] = {{"tensors", t.tensors}, {"elements", t.numel}, {"bytes", t.bytes}, {"bits_per_weight", t.bpw()}};
  j["bits_per_weight"] = all.bpw();
  return j;
}

static int run_inspect(const std::vector<std::string>& argv) {
  Args a("inspect", "solar inspect PATH [--json]\n\n"
                    "For a GGUF file also: its version, every metadata key with type and value (arrays: length and\n"
                    "first values), each tensor's GGML type, ne and bytes, and totals per type with bits per weight.");
  auto& json = a.flag("--json", "print the same information as JSON");
  auto& tokenizer = a.str("--tokenizer", "PATH", "tokenizer override (as in generate)");
  auto& paths = a.positional("PATH", "HF folder, .gguf file or llama2.c .bin");
  if (!a.parse(argv)) return a.exit_code();
  if (paths.size() != 1) usage_error("expected one PATH, got " + std::to_string(paths.size()));
  const std::string& path = paths[0];
  const formats::ModelFormat format = formats::detect_model_format(path);
  // A GGUF's own view comes first, from the file alone: shown even where the
  // model is not one solar runs (then loading it below fails, naming why).
  std::optional<formats::GgufInfo> gguf;
  if (format == formats::ModelFormat::Gguf) gguf = formats::read_gguf_info(path);
  auto header = [&] { std::printf("path:          %s\nformat:        %s\n", path.c_str(), formats::model_format_name(format)); };
  if (gguf && !json) {
    header();
    print_gguf(*gguf);
  }
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
    j["format"] = formats::model_format_name(format);
    j["architecture"] = ck.config.architecture;
    j["config"] = cfg;
    j["tensors"] = nlohmann::ordered_json::array();
    for (auto* t : ts)
      j["tensors"].push_back({{"name", t->name}, {"dtype", dtype_name(t->dtype)}, {"shape", t->shape}, {"bytes", t->nbytes}});
    j["parameters"] = params;
    j["parameters_human"] = human(double(params), kCount, 1000);
    j["total_bytes"] = bytes;
    j["tokenizer"] = ck.tokenizer_path;
    if (gguf) j["gguf"] = gguf_json(*gguf);
    std::printf("%s\n", j.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace).c_str());
    return 0;
  }

  if (!gguf) header();
  std::printf("architecture:  %s (%s)\n\nconfig:\n", ck.config.architecture.c_str(), ck.config.model_type.c_str());
  for (auto& [k, v] : cfg.items()) std::printf("  %-26s %s\n", k.c_str(), v.dump().c_str());
  if (!gguf) {  // a GGUF's tensors are listed above, under the file's own names
    size_t w = 4;
    for (auto* t : ts) w = std::max(w, t->name.size());
    std::printf("\ntensors (%zu):\n  %-*s  %-5s  %-16s  %s\n", ts.size(), int(w), "name", "dtype", "shape", "bytes");
    for (auto* t : ts)
      std::printf("  %-*s  %-5s  %-16s  %s\n", int(w), t->name.c_str(), dtype_name(t->dtype), shape_str(t->shape).c_str(),
                  thousands(t->nbytes).c_str());
  }
  std::printf("\nparameters:    %s (%s)\ntotal bytes:   %s (%s)\ntokenizer:     %s\n", thousands(params).c_str(),
              human(double(params), kCount, 1000).c_str(), thousands(bytes).c_str(),
              human(double(bytes), kBytes, 1024).c_str(), ck.tokenizer_path.empty() ? "(none)" : ck.tokenizer_path.c_str());
  return 0;
}

static Register reg("inspect", "show a checkpoint's config, tensors, size and tokenizer (a GGUF's metadata too)", run_inspect);

}  // namespace solar::cli
