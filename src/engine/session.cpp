#include "engine/session.h"

#include "core/error.h"
#include "core/log.h"
#include "formats/load.h"

namespace solar::engine {
namespace {

// Opens ck's tokenizer and checks its vocabulary against the model's.
std::shared_ptr<const tokenizer::Tokenizer> checked_tokenizer(const model::Checkpoint& ck) {
  std::shared_ptr<const tokenizer::Tokenizer> tok = formats::open_tokenizer(ck.tokenizer_path, ck.config.vocab_size);
  if (tok->vocab_size() != ck.config.vocab_size)
    fail(ck.tokenizer_path, "vocab_size",
         "tokenizer has " + std::to_string(tok->vocab_size()) + " tokens but the model's vocab_size is " +
             std::to_string(ck.config.vocab_size) + " (" + ck.source + ")");
  return tok;
}

[[noreturn]] void fail_no_tokenizer(const std::string& path) {
  fail(path, "tokenizer", "no tokenizer.model / tokenizer.bin found beside the model (name the tokenizer file explicitly)");
}

model::Checkpoint load(const std::string& path, const std::string& tokenizer) {
  if (path.empty()) fail("-m/--model", "", "required (an HF folder, a .gguf file or a llama2.c .bin)");
  formats::LoadOptions lo;
  lo.tokenizer = tokenizer;
  return formats::load_checkpoint(path, lo);
}

}  // namespace

Session open_session(const std::string& path, const SessionOptions& opt) {
  auto ck = std::make_shared<const model::Checkpoint>(load(path, opt.tokenizer));
  Session s;
  if (opt.with_tokenizer) {
    if (ck->tokenizer_path.empty()) fail_no_tokenizer(path);
    s.tokenizer = checked_tokenizer(*ck);
    s.tokenizer_path = ck->tokenizer_path;
  }
  s.checkpoint = ck;
  s.model = std::make_shared<const Model>(ck);
  const model::ModelConfig& c = ck->config;
  log_debug("session",
            "opened " + path + ": " + std::to_string(c.num_hidden_layers) + " layers, d=" +
                std::to_string(c.hidden_size) + ", vocab " + std::to_string(c.vocab_size) +
                (s.tokenizer_path.empty() ? "" : ", tokenizer " + s.tokenizer_path),
            {{"model", path},
             {"layers", c.num_hidden_layers},
             {"hidden_size", c.hidden_size},
             {"vocab_size", c.vocab_size},
             {"tokenizer", s.tokenizer_path}});
  return s;
}

ModelTokenizer open_model_tokenizer(const std::string& model_path, const std::string& tokenizer) {
  model::Checkpoint ck = load(model_path, tokenizer);
  if (ck.tokenizer_path.empty()) fail_no_tokenizer(model_path);
  return {checked_tokenizer(ck), ck.tokenizer_path, ck.config.vocab_size};
}

int Session::context_size(int64_t n_ctx, const std::string& what) const {
  const int max = config().max_position_embeddings;
  if (n_ctx < 0 || n_ctx > max)
    fail(what, "",
         "expected 0 (the model's full context) to " + std::to_string(max) + " (max_position_embeddings of " +
             checkpoint->source + "), got " + std::to_string(n_ctx));
  return int(n_ctx);
}

Context Session::new_context(int64_t n_ctx, const std::string& what) const {
  return Context(model, context_size(n_ctx, what));
}

}  // namespace solar::engine
