// solar/engine/session.h — open a model and its tokenizer, with the checks,
// from any path solar reads (HF folder, .gguf, llama2.c .bin).
//
// The one place that pairs a model with a tokenizer: generate, chat, logits,
// tokenize, pipeline (and later eval and serve) open models through it, so a
// wrong or missing tokenizer is the same clear error everywhere.
// Threads: a Session holds only immutable, shared objects (Checkpoint,
// Tokenizer, Model); it may be copied and shared by any number of threads,
// each running its own Context over `model`.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "engine/engine.h"
#include "model/checkpoint.h"
#include "tokenizer/tokenizer.h"

namespace solar::engine {

struct SessionOptions {
  // A tokenizer file or folder in place of the one beside the model
  // (tokenizer.model, tokenizer.bin, the GGUF's own vocabulary).
  std::string tokenizer;
  // false: the tokenizer is neither looked for nor opened (`tokenizer` stays
  // null): token ids only, as `solar logits --ids`.
  bool with_tokenizer = true;
};

struct Session {
  std::shared_ptr<const model::Checkpoint> checkpoint;
  std::shared_ptr<const tokenizer::Tokenizer> tokenizer;  // null only without with_tokenizer
  std::string tokenizer_path;                  // the file it was read from ("" if none)
  std::shared_ptr<const Model> model;

  const model::ModelConfig& config() const { return checkpoint->config; }
  // A context length for a Context: 0 = the model's max_position_embeddings;
  // negative or more than that throws (positions past the trained context give
  // garbage), naming `what` (a flag such as "-c/--ctx-size") and the model.
  int context_size(int64_t n_ctx, const std::string& what = "context size") const;
  // A fresh Context (own KV cache) over the shared model; see context_size.
  Context new_context(int64_t n_ctx = 0, const std::string& what = "context size") const;
};

// Opens the model at `path`, its tokenizer (opt.tokenizer overrides the one
// beside it) and checks that the tokenizer's vocabulary matches the model's
// vocab_size. Throws solar::Error naming the file and field at fault.
Session open_session(const std::string& path, const SessionOptions& opt = {});

// Just the tokenizer the model at `model_path` implies (or `tokenizer`, when
// given), with open_session's checks: found, and of the model's vocab_size.
// The model's weights are mapped to find and check it, never read.
struct ModelTokenizer {
  std::shared_ptr<const tokenizer::Tokenizer> tokenizer;
  std::string path;  // the tokenizer file, as found
  int vocab_size = 0;
};
ModelTokenizer open_model_tokenizer(const std::string& model_path, const std::string& tokenizer = "");

}  // namespace solar::engine
