#include "cli/common.h"

#include <random>

#include "core/error.h"
#include "formats/load.h"
#include "kernels/kernels.h"

namespace solar::cli {

std::unique_ptr<LoadedModel> load_model(const std::string& path, const std::string& tokenizer) {
  if (path.empty()) fail("-m/--model", "", "required (an HF folder, a .gguf file or a llama2.c .bin)");
  auto lm = std::make_unique<LoadedModel>();
  LoadOptions lo;
  lo.tokenizer = tokenizer;
  lm->ck = load_checkpoint(path, lo);
  if (lm->ck.tokenizer_path.empty())
    fail(path, "tokenizer", "no tokenizer.model / tokenizer.bin found beside the model (give --tokenizer PATH)");
  lm->tok = open_tokenizer(lm->ck.tokenizer_path, lm->ck.config.vocab_size);
  if (lm->tok->vocab_size() != lm->ck.config.vocab_size)
    fail(lm->ck.tokenizer_path, "vocab_size",
         "tokenizer has " + std::to_string(lm->tok->vocab_size()) + " tokens but the model's vocab_size is " +
             std::to_string(lm->ck.config.vocab_size));
  lm->model = std::make_unique<Model>(lm->ck);
  return lm;
}

int context_size(const LoadedModel& lm, int64_t n_ctx) {
  const int max = lm.ck.config.max_position_embeddings;
  if (n_ctx < 0 || n_ctx > max)
    fail("-c/--ctx-size", "",
         "expected 0 (the model's full context) to " + std::to_string(max) + " (max_position_embeddings of " +
             lm.ck.source + "), got " + std::to_string(n_ctx));
  return int(n_ctx);
}

SamplingFlags add_sampling_flags(Args& a) {
  SamplingFlags f;
  f.temp = &a.number("--temp", 0.8, "temperature; 0 = greedy");
  f.top_k = &a.integer("--top-k", 40, "top-k sampling; 0 = off");
  f.top_p = &a.number("--top-p", 0.95, "top-p (nucleus) sampling; 1.0 = off");
  f.min_p = &a.number("--min-p", 0.05, "min-p sampling; 0.0 = off");
  f.repeat_penalty = &a.number("--repeat-penalty", 1.0, "penalise repeated tokens; 1.0 = off");
  f.repeat_last_n = &a.integer("--repeat-last-n", 64, "tokens considered for the penalty; -1 = all");
  f.seed = &a.integer("-s,--seed", -1, "RNG seed; -1 = random");
  return f;
}

SamplerConfig sampler_config(const SamplingFlags& f) {
  check_range("--temp", *f.temp, 0, 100);
  check_range("--top-k", double(*f.top_k), 0, 1e9);
  check_range("--top-p", *f.top_p, 0, 1);
  check_range("--min-p", *f.min_p, 0, 1);
  check_range("--repeat-penalty", *f.repeat_penalty, 0.01, 100);
  SamplerConfig s;
  s.temp = float(*f.temp);
  s.top_k = int(*f.top_k);
  s.top_p = float(*f.top_p);
  s.min_p = float(*f.min_p);
  s.repeat_penalty = float(*f.repeat_penalty);
  s.repeat_last_n = int(*f.repeat_last_n);
  s.seed = *f.seed < 0 ? std::random_device{}() : uint64_t(*f.seed);
  return s;
}

}  // namespace solar::cli
