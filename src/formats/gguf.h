// solar/formats/gguf.h — GGUF v3, as llama.cpp and Ollama read it.
//
// Reader: maps the file, checks magic/version/counts/offsets/alignment, maps
// llama.cpp tensor names (token_embd, blk.N.attn_q, …) to HF names with
// row-major shapes (GGUF lists dims innermost first) and sets
// rope_interleaved = true (llama.cpp stores q/k rows permuted for
// interleaved RoPE). Tensor types: F32/F16/BF16 and the GGML block types of
// core/dtype.h (Q4_0 … Q8_0, Q2_K … Q6_K), mapped in place with their sizes
// from blocks; another type id fails naming the tensor and the id. A
// quantized file's config.torch_dtype is F32. Tokenizer metadata stays in the
// file: tokenizer_path = the GGUF file itself, and tokenizer_config is what
// Hugging Face's tokenizer_config.json says of it (special tokens, add_bos /
// add_eos, chat_template).
// Writer: llama architecture metadata, tokenizer.ggml.* from the checkpoint's
// tokenizer (and add_bos/add_eos/chat_template from its tokenizer_config),
// tensors in F32/F16/BF16 (norms always F32; block-quantized
// inputs are dequantized), q/k permuted to llama.cpp's layout, 32-byte
// alignment, written atomically. GgufWriter is its streaming core, for tools
// that compute tensors one at a time in any type (quantize/), with metadata
// built here (gguf_metadata) or carried over from another GGUF file
// (read_gguf_metadata) entry by entry, bytes unchanged.
// Threads: no shared state: concurrent reads are safe; one writer per file.
#pragma once
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "model/checkpoint.h"
#include "tokenizer/tokenizer.h"

namespace solar::formats {

model::Checkpoint read_gguf(const std::string& path);
void write_gguf(const std::string& path, const model::Checkpoint& ck, DType dtype);
// The tokenizer.ggml.* metadata of a GGUF file (tokenizer.ggml.model must be
// "llama"); tokenizer/ builds a Tokenizer from it.
tokenizer::Vocab read_gguf_vocab(const std::string& path);

// llama.cpp's name of an HF tensor name: model.layers.3.self_attn.q_proj.weight
// -> blk.3.attn_q.weight, model.embed_tokens.weight -> token_embd.weight.
std::string gguf_tensor_name(const std::string& hf);

// One metadata entry as a GGUF file encodes it: u64 key length, key, u32
// value type, value. Carrying the encoding keeps entries solar does not
// interpret (chat templates, merges, custom keys) exactly as they were.
struct GgufKv {
  std::string key;
  std::string encoded;
};
GgufKv gguf_kv_u32(const std::string& key, uint32_t v);
// The metadata entries of a GGUF file in file order, checked as read_gguf checks them.
std::vector<GgufKv> read_gguf_metadata(const std::string& path);
// The metadata write_gguf writes for `ck` (llama.* shapes, tokenizer.ggml.*
// from ck's tokenizer), with general.file_type = file_type (a llama_ftype).
std::vector<GgufKv> gguf_metadata(const model::Checkpoint& ck, uint32_t file_type);

// Streams a GGUF file: the header (metadata, tensor infos with their offsets)
// goes out on construction, then each declared tensor's bytes, in order, in
// one or more write() calls; padding between tensors is added. finish()
// checks every byte came, fsyncs and renames into place; destroyed
// unfinished, the temporary file is removed. Tensor data is aligned to the
// metadata's general.alignment (a power-of-two u32), else to 32. The
// constructor refuses, before writing anything, a file the disk has no room for.
struct GgufTensorDecl {
  std::string name;             // GGUF name
  std::vector<int64_t> shape;   // row-major (HF order); written innermost first
  DType dtype;                  // F32/F16/BF16 or a GGML block type
};
class GgufWriter {
 public:
  GgufWriter(const std::string& path, const std::vector<GgufKv>& kv, std::vector<GgufTensorDecl> tensors);
  ~GgufWriter();
  // Raw bytes of the current tensor (in its declared dtype).
  void write(const void* data, size_t n);
  // A whole tensor converted to the current declaration's float dtype (or copied when the dtypes match).
  void write(const TensorView& t);
  void finish();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};
// A Hugging Face folder's tokenizer.model rebuilt from a GGUF's "llama"
// (SentencePiece) vocabulary (tokenizer::spm_model_proto). For another
// tokenizer.ggml.model ("gpt2", …), which solar has no tokenizer for, or
// none, it logs a warning naming the type and returns "".
std::string gguf_tokenizer_model(const std::string& path);

// What a GGUF file holds, in its own terms (no llama mapping, no checks
// beyond the reader's), for `solar inspect`. Arrays are summarised: their
// type, length and first `max_items` values.
struct GgufEntry {
  std::string key;
  std::string type;             // "u32", "string", "array[string]", …
  nlohmann::ordered_json value;  // scalar, or the first values of an array
  uint64_t length = 0;          // array length; 0 for a scalar
};
struct GgufTensor {
  std::string name;
  DType dtype;               // F32, Q4_K, …
  std::vector<uint64_t> ne;  // GGUF order: innermost dimension first
  uint64_t offset = 0;       // in the data section
  uint64_t nbytes = 0;
  uint64_t numel() const;
};
struct GgufInfo {
  uint32_t version = 0;
  uint64_t alignment = 0, data_offset = 0;
  std::vector<GgufEntry> kv;        // file order
  std::vector<GgufTensor> tensors;  // file order
};
GgufInfo read_gguf_info(const std::string& path, size_t max_items = 8);

}  // namespace solar::formats
