// solar/quantize/quantize.h — `solar quantize`: a model to a quantized GGUF,
// as llama-quantize writes it.
//
// Input: anything formats/load.h opens (an HF folder of F32/F16/BF16
// safetensors, a GGUF, a llama2.c .bin). Output: a GGUF whose tensors have
// the types quantize/mix.h chooses and the bytes core/quantize.h writes —
// those of llama.cpp's reference quantizers — in llama.cpp's tensor order.
// Metadata: a GGUF input's entries carried over unchanged (tokenizer, chat
// template, anything solar does not read), split.* dropped; other inputs get
// what `solar convert` writes. general.file_type is set to the ftype and
// general.quantization_version to 2 (GGML_QNT_VERSION).
//
// Streaming: tensors are read (mapped), quantized and written one at a time,
// a bounded chunk of rows at once, rows in parallel (OpenMP); pages of the
// input are dropped behind the writer, so memory stays near one chunk
// whatever the model's size. The file is written to a temporary name,
// fsynced and renamed (core/fs.h); on any error nothing is left behind.
// A non-finite weight fails naming the tensor, row and column; a tensor
// already block-quantized is refused unless allow_requantize (it is then
// dequantized to f32 first, losing what the first quantization lost).
// Threads: one call writes one file; library code never prints (progress
// goes to the callback handed in, messages to core/log.h).
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "quantize/mix.h"

namespace solar::quantize {

struct Options {
  Mix mix;
  bool allow_requantize = false;  // llama-quantize --allow-requantize
  bool dry_run = false;           // choose types and sizes, write nothing
  std::string tokenizer;          // --tokenizer for inputs without one (llama2.c)
  int threads = 0;                // 0: OpenMP's default
  // Called as input bytes are done (bytes done, bytes in all, the tensor), from the calling thread.
  std::function<void(uint64_t, uint64_t, const std::string&)> progress;
};

struct TensorReport {
  std::string name;             // GGUF name
  std::vector<int64_t> shape;   // row-major
  DType from, to;
  uint64_t bytes_in = 0, bytes_out = 0;
  std::string fallback;  // why the row length forced another type, if it did
};

struct Summary {
  std::vector<TensorReport> tensors;  // in file order
  uint64_t elements = 0, bytes_in = 0, bytes_out = 0;
  double seconds = 0;
  double bpw_in() const { return elements ? 8.0 * double(bytes_in) / double(elements) : 0; }
  double bpw_out() const { return elements ? 8.0 * double(bytes_out) / double(elements) : 0; }
};

// Quantizes the model at `in` into the GGUF file `out` (see above). Checks
// everything it can (types, requantizing, free disk) before writing.
Summary quantize_model(const std::string& in, const std::string& out, const Options& opt);

}  // namespace solar::quantize
