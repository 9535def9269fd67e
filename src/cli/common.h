// solar/cli/common.h — pieces several subcommands share: loading a model with
// its tokenizer and the sampling flags, named as llama.cpp names them.
#pragma once
#include <memory>
#include <string>

#include "cli/cli.h"
#include "generate/generate.h"
#include "model/checkpoint.h"
#include "tokenizer/tokenizer.h"

namespace solar::cli {

struct LoadedModel {
  Checkpoint ck;
  std::unique_ptr<Tokenizer> tok;
  std::unique_ptr<Model> model;
};
// Opens -m PATH (HF folder, .gguf, llama2.c .bin) and its tokenizer
// (--tokenizer overrides); checks the tokenizer matches the vocabulary.
std::unique_ptr<LoadedModel> load_model(const std::string& path, const std::string& tokenizer);
// -c/--ctx-size for a Context: 0 = the model's max_position_embeddings; more
// than that is refused (positions past the trained context give garbage).
int context_size(const LoadedModel& lm, int64_t n_ctx);

struct SamplingFlags {
  double* temp;
  int64_t *top_k, *seed, *repeat_last_n;
  double *top_p, *min_p, *repeat_penalty;
};
SamplingFlags add_sampling_flags(Args& a);
// Validates ranges and resolves seed -1 to a random seed.
SamplerConfig sampler_config(const SamplingFlags& f);

}  // namespace solar::cli
