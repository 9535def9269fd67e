#include "cli/common.h"

#include <filesystem>
#include <random>

#include "core/error.h"
#include "core/fs.h"
#include "core/json.h"
#include "formats/load.h"

namespace solar::cli {

engine::Session load_model(const std::string& path, const std::string& tokenizer) {
  engine::SessionOptions o;
  o.tokenizer = tokenizer;
  return engine::open_session(path, o);
}

engine::ModelTokenizer open_tokenizer_arg(const std::string& m) {
  if (m.empty()) fail("-m/--model", "", "expected a tokenizer or model path");
  std::string as_tokenizer;  // why m is not a tokenizer file, when it might be one
  if (!is_dir(m) && !m.ends_with(".gguf")) {
    try {
      std::shared_ptr<const tokenizer::Tokenizer> tok = formats::open_tokenizer(m);
      int v = tok->vocab_size();
      return {std::move(tok), std::filesystem::absolute(m).lexically_normal().string(), v};
    } catch (const Error& e) {
      if (m.ends_with(".model")) throw;
      as_tokenizer = e.what();
    }
  }
  engine::ModelTokenizer t;
  try {
    t = engine::open_model_tokenizer(m);
  } catch (const Error& e) {
    if (as_tokenizer.empty()) throw;
    fail(m, "", "neither a tokenizer (" + as_tokenizer + ") nor a model (" + e.what() + ")");
  }
  t.path = std::filesystem::absolute(t.path).lexically_normal().string();
  return t;
}

void check_output_apart(const std::string& out, const std::vector<std::string>& inputs) {
  for (const auto& in : inputs)
    if (!in.empty() && !out.empty() && paths_overlap(out, in))
      fail("-o/--output", "", out + " overlaps the input " + in +
                                  " (writing it would replace or nest inside the input; choose another path)");
}

SamplingFlags add_sampling_flags(Args& a) {
  SamplingFlags f;
  f.temp = &a.number("--temp", 0.8, "temperature; 0 = greedy");
  f.top_k = &a.integer("--top-k", 40, "top-k sampling; 0 = off");
  f.top_p = &a.number("--top-p", 0.95, "top-p (nucleus) sampling; 1.0 = off");
  f.min_p = &a.number("--min-p", 0.05, "min-p sampling; 0.0 = off");
  f.repeat_penalty = &a.number("--repeat-penalty", 1.0, "penalise repeated tokens; 1.0 = off");
  f.repeat_last_n = &a.integer("--repeat-last-n", 64, "tokens considered for the penalty; -1 = all", -1, INT32_MAX);
  f.seed = &a.integer("-s,--seed", -1, "RNG seed; -1 = random", -1, INT64_MAX);
  return f;
}

sample::SamplerConfig sampler_config(const SamplingFlags& f) {
  check_range("--temp", *f.temp, 0, 100);
  check_range("--top-k", double(*f.top_k), 0, 1e9);
  check_range("--top-p", *f.top_p, 0, 1);
  check_range("--min-p", *f.min_p, 0, 1);
  check_range("--repeat-penalty", *f.repeat_penalty, 0.01, 100);
  sample::SamplerConfig s;
  s.temp = float(*f.temp);
  s.top_k = int(*f.top_k);
  s.top_p = float(*f.top_p);
  s.min_p = float(*f.min_p);
  s.repeat_penalty = float(*f.repeat_penalty);
  s.repeat_last_n = int(*f.repeat_last_n);
  s.seed = *f.seed < 0 ? std::random_device{}() : uint64_t(*f.seed);
  return s;
}

std::vector<std::string> read_jsonl_strings(const std::string& path) {
  std::string all = read_file(path);
  std::vector<std::string> out;
  size_t pos = 0, line = 0;
  while (pos < all.size()) {
    size_t nl = all.find('\n', pos);
    if (nl == std::string::npos) nl = all.size();
    line++;
    std::string_view l(all.data() + pos, nl - pos);
    pos = nl + 1;
    if (l.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    nlohmann::json j = parse_json(l, path + ":" + std::to_string(line));
    if (!j.is_string()) fail(path, "line " + std::to_string(line), "expected a JSON string, got " + json_brief(j));
    out.push_back(j.get<std::string>());
  }
  return out;
}

}  // namespace solar::cli
