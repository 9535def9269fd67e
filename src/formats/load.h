// solar/formats/load.h — open a model or a tokenizer from any path solar reads.
//
// The one place that knows every format: model/ defines what a Checkpoint is,
// each reader in formats/ fills one, and this file picks the reader by the
// path's content (never by its name alone).
// Threads: these functions share no state and may run concurrently; each
// returns objects the caller owns (see checkpoint.h, tokenizer.h).
#pragma once
#include <memory>
#include <string>
#include <string_view>

#include "model/checkpoint.h"
#include "model/config.h"
#include "tokenizer/tokenizer.h"

namespace solar::formats {

// What a path holds, judged by content, not by name: a folder is an HF folder,
// "GGUF" magic a GGUF file, anything else is read as llama2.c, whose reader
// refuses a header no real checkpoint has. A bare .safetensors file, or a
// .gguf without the magic, throws here naming the file.
enum class ModelFormat { Hf, Gguf, Llama2c };
ModelFormat detect_model_format(const std::string& path);
const char* model_format_name(ModelFormat f);  // "hf", "gguf", "llama2c"
// Throws "<path>: not a model file (expected …)[: why]".
[[noreturn]] void fail_not_a_model(const std::string& path, const std::string& why = "");
// A file's first 4 bytes for a message: "GGUX", with \xNN for the unprintable.
std::string magic_text(std::string_view head);

// Process-wide default of LoadOptions::check_tensors (the CLI's global
// `--check-tensors on|off`); on unless turned off.
void set_check_tensors_default(bool on);
bool check_tensors_default();

struct LoadOptions {
  std::string tokenizer;  // --tokenizer override
  // Scan the weights for NaN / Inf (Checkpoint::check_finite) after validate.
  bool check_tensors = check_tensors_default();
};

// Opens an HF folder, a GGUF file or a llama2.c .bin (detect_model_format),
// validates it (and checks its weights are finite unless told not to), and
// finds its tokenizer.
model::Checkpoint load_checkpoint(const std::string& path, const LoadOptions& opt = {});

// The config of a model without mapping its weights: config.json of an HF
// folder, the header of a GGUF / llama2.c file.
model::ModelConfig read_model_config(const std::string& path);

// A tokenizer from a SentencePiece model, a llama2.c tokenizer.bin (needs the
// vocab size: the file has no count), a folder holding tokenizer.model, or a
// GGUF file's tokenizer.ggml.* metadata. Throws solar::Error naming the file.
std::unique_ptr<tokenizer::Tokenizer> open_tokenizer(const std::string& path, int vocab_size_hint = 0);

}  // namespace solar::formats
