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
// file: tokenizer_path = the GGUF file itself.
// Writer: llama architecture metadata, tokenizer.ggml.* from the checkpoint's
// tokenizer, tensors in F32/F16/BF16 (norms always F32; block-quantized
// inputs are dequantized), q/k permuted to llama.cpp's layout, 32-byte
// alignment, written atomically.
// Threads: no shared state: concurrent reads are safe; one writer per file.
#pragma once
#include <string>

#include "model/checkpoint.h"
#include "tokenizer/tokenizer.h"

namespace solar::formats {

model::Checkpoint read_gguf(const std::string& path);
void write_gguf(const std::string& path, const model::Checkpoint& ck, DType dtype);
// The tokenizer.ggml.* metadata of a GGUF file (tokenizer.ggml.model must be
// "llama"); tokenizer/ builds a Tokenizer from it.
tokenizer::Vocab read_gguf_vocab(const std::string& path);

}  // namespace solar::formats
