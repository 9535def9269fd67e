// solar/cli/common.h — pieces several subcommands share: opening a model with
// its tokenizer and the sampling flags, named as llama.cpp names them.
#pragma once
#include <memory>
#include <string>

#include "cli/cli.h"
#include "engine/session.h"
#include "generate/generate.h"
#include "model/checkpoint.h"
#include "tokenizer/tokenizer.h"

namespace solar::cli {

// Opens -m PATH (HF folder, .gguf, llama2.c .bin) and its tokenizer
// (--tokenizer overrides) with engine/session.h's checks.
engine::Session load_model(const std::string& path, const std::string& tokenizer);
// -m of commands that need only a tokenizer (tokenize): a tokenizer file
// (tokenizer.model, tokenizer.bin, a .gguf's vocabulary), or a model whose
// tokenizer open_model_tokenizer() finds and checks. `path` is absolute.
engine::ModelTokenizer open_tokenizer_arg(const std::string& m);

// Refuses (exit 2) an -o/--output that is, holds or lies inside one of the
// inputs: writing it would replace the input, or turn a file of it into a folder.
void check_output_apart(const std::string& out, const std::vector<std::string>& inputs);

// The strings of a JSON-lines file, one JSON string per line (blank lines
// skipped); a line of another type fails naming the file and line.
std::vector<std::string> read_jsonl_strings(const std::string& path);

// The flag Session::new_context / context_size name in their errors.
inline constexpr const char* kCtxSizeFlag = "-c/--ctx-size";

struct SamplingFlags {
  double* temp;
  int64_t *top_k, *seed, *repeat_last_n;
  double *top_p, *min_p, *repeat_penalty;
};
SamplingFlags add_sampling_flags(Args& a);
// Validates ranges and resolves seed -1 to a random seed.
sample::SamplerConfig sampler_config(const SamplingFlags& f);

}  // namespace solar::cli
