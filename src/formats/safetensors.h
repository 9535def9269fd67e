// solar/formats/safetensors.h — the safetensors file format.
//
// Layout: u64 little-endian header length N, N bytes of JSON
// {"name": {"dtype": "BF16", "shape": [..], "data_offsets": [begin, end]}, ...,
//  "__metadata__": {"k": "v"}}, then the data block; offsets are relative to
// the data block. Readers validate everything before handing out views:
// header length within the file, valid JSON, known dtype, shape × dtype size
// == end − begin, offsets inside the data block, no overlaps.
// Threads: no shared state: concurrent reads are safe; one writer per file.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/fs.h"
#include "core/mmap.h"
#include "core/tensor.h"

namespace solar::formats {

struct SafetensorsFile {
  std::shared_ptr<MappedFile> file;
  std::vector<TensorView> tensors;                 // in data-offset order
  std::map<std::string, std::string> metadata;     // "__metadata__"
};

// Maps and validates `path`; views point into the mapping.
SafetensorsFile read_safetensors(const std::string& path);
// Validates a whole in-memory file image (header + data); `source` names it
// in errors. Views point into `data`. The fuzz target drives this.
std::vector<TensorView> parse_safetensors(const uint8_t* data, size_t size, const std::string& source,
                                          std::map<std::string, std::string>* metadata = nullptr);

// One tensor to write: its source view, converted to `dtype` while writing.
struct TensorToWrite {
  TensorView src;
  DType dtype;
};
// Bytes of the file write_safetensors would produce (for shard planning).
uint64_t safetensors_file_size(const std::vector<TensorToWrite>& tensors,
                               const std::map<std::string, std::string>& metadata);
// Writes atomically (temp + fsync + rename), converting dtypes in bounded
// chunks so memory stays small however large the tensors are.
void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

// Building blocks of write_safetensors for writers that stream tensors one at
// a time (HfWriter): the u64 length + space-padded JSON header (only names,
// shapes and dtypes of `tensors` are read), then each tensor's bytes in order.
std::string safetensors_header(const std::vector<TensorToWrite>& tensors,
                               const std::map<std::string, std::string>& metadata);
void write_tensor_data(AtomicFile& out, const TensorView& src, DType dtype);

}  // namespace solar::formats
