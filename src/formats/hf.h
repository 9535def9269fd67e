// solar/formats/hf.h — Hugging Face model folders.
//
// Reads config.json, model.safetensors or model.safetensors.index.json with
// its shards, tokenizer.model, tokenizer_config.json, generation_config.json.
// Writes the same: config.json, sharded safetensors with index when more
// than one shard, tokenizer and generation files, optional README.md model
// card. The folder is built under a temporary name and renamed into place.
// Threads: readers and writers share no state; concurrent calls are safe
// on different paths (two writers of one folder race for its rename).
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "model/checkpoint.h"

namespace solar::formats {

// Maps every shard; fills config (from config.json), tensors, tokenizer_path
// (tokenizer.model if present), tokenizer_config and generation_config.
model::Checkpoint read_hf(const std::string& dir);

struct HfWriteOptions {
  // Convert every float tensor; default: keep. Block-quantized tensors are
  // dequantized to it (default F32): safetensors has no block types.
  std::optional<DType> dtype;
  uint64_t max_shard_bytes = 5ull * 1000 * 1000 * 1000;  // HF's default "5GB"
  bool force = false;                               // replace an existing folder
  std::string model_card;                           // README.md content, if any
  // Tokenizer and metadata to carry over (copied as tokenizer.model /
  // tokenizer.bin by file name; a GGUF's vocabulary written as a
  // tokenizer.model, gguf.h's gguf_tokenizer_model; JSON written as
  // tokenizer_config.json and generation_config.json when non-empty).
  std::string tokenizer_path;
  nlohmann::json tokenizer_config = nlohmann::json::object();
  nlohmann::json generation_config = nlohmann::json::object();
  std::map<std::string, std::string> metadata = {{"format", "pt"}};
};

// Parses "5GB", "500MB", "2GiB", "1000000" into bytes; throws naming `flag`.
uint64_t parse_size(const std::string& s, const std::string& flag);

// Writes `tensors` (HF names) with `config`. HF folders always use the
// rotate-half RoPE layout: if config.rope_interleaved, q_proj/k_proj rows are
// permuted on the way out and the written config.json is standard.
// Checks free disk space first; refuses an existing folder unless force.
void write_hf(const std::string& dir, const model::ModelConfig& config, const std::vector<TensorView>& tensors,
              const HfWriteOptions& opt);
// Streaming form of write_hf for tools that compute tensors one at a time
// (merge): declare every tensor up front (name, shape, source dtype), then
// write() each in that order; only one tensor need exist in memory at once.
// finish() writes the index, config and tokenizer files and renames the
// folder into place; destroyed unfinished, the temporary folder is removed.
struct TensorDecl {
  std::string name;
  std::vector<int64_t> shape;
  DType dtype;  // dtype of the data passed to write(); output dtype per opt.dtype
};
class HfWriter {
 public:
  HfWriter(const std::string& dir, const model::ModelConfig& config, std::vector<TensorDecl> decls, HfWriteOptions opt);
  ~HfWriter();
  void write(const TensorView& t);  // must match the next declared tensor
  void finish();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Convenience: writes a whole checkpoint (tokenizer and JSON carried over).
void write_hf(const std::string& dir, const model::Checkpoint& ck, HfWriteOptions opt);

}  // namespace solar::formats
