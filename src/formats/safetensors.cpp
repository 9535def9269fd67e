#include "formats/safetensors.h"

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.h"
#include "core/json.h"

namespace solar::formats {

// A header is tiny next to the data; anything larger is corruption or an
// attack, and would be parsed in memory.
static constexpr uint64_t kMaxHeader = 100'000'000;

// Only the exact safetensors spellings: torch names are not valid here.
static bool st_dtype(const std::string& s, DType* out) {
  for (DType t : {DType::F32, DType::F16, DType::BF16, DType::I32, DType::I64, DType::U8, DType::I8})
    if (s == dtype_name(t)) {
      *out = t;
      return true;
    }
  return false;
}

// nlohmann keeps the last of duplicate keys silently; a parser callback sees
// every key, so duplicates in any object of the header are reported.
struct DupCheck {
  std::vector<std::set<std::string>> open;
  std::string dup;
  bool operator()(int, nlohmann::json::parse_event_t ev, nlohmann::json& v) {
    using E = nlohmann::json::parse_event_t;
    if (ev == E::object_start) open.emplace_back();
    else if (ev == E::object_end && !open.empty()) open.pop_back();
    else if (ev == E::key && !open.empty() && !open.back().insert(v.get<std::string>()).second && dup.empty())
      dup = v.get<std::string>();
    return true;
  }
};

static uint64_t get_offset(const nlohmann::json& v, const std::string& src, const std::string& field) {
  if (!v.is_number_unsigned()) fail(src, field, std::string("expected a non-negative integer, got ") + v.type_name());
  return v.get<uint64_t>();
}

std::vector<TensorView> parse_safetensors(const uint8_t* data, size_t size, const std::string& src,
                                          std::map<std::string, std::string>* metadata) {
  if (size < 8) fail(src, "header.len", "expected a file of at least 8 bytes, got " + std::to_string(size));
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = n << 8 | data[i];
  if (n > kMaxHeader) fail(src, "header.len", "expected <= 100000000 bytes, got " + std::to_string(n));
  if (n > size - 8)
    fail(src, "header.len", std::to_string(n) + " bytes runs past the end of the file (" + std::to_string(size) +
                                " bytes)");
  const uint8_t* block = data + 8 + n;
  uint64_t block_size = size - 8 - n;

  DupCheck dups;
  nlohmann::json h = parse_json(std::string_view(reinterpret_cast<const char*>(data + 8), n), src + ": header",
                                std::ref(dups));
  if (!h.is_object()) fail(src, "header", std::string("expected a JSON object, got ") + h.type_name());
  if (!dups.dup.empty()) fail(src, dups.dup, "duplicate name in header");

  std::vector<TensorView> out;
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (auto& [name, e] : h.items()) {
    if (name == "__metadata__") {
      if (!e.is_object()) fail(src, "__metadata__", std::string("expected an object, got ") + e.type_name());
      for (auto& [k, v] : e.items()) {
        if (!v.is_string()) fail(src, "__metadata__." + k, std::string("expected a string, got ") + v.type_name());
        if (metadata) (*metadata)[k] = v.get<std::string>();
      }
      continue;
    }
    if (!e.is_object()) fail(src, name, std::string("expected an object, got ") + e.type_name());
    TensorView t;
    t.name = name;
    if (!e.contains("dtype") || !e["dtype"].is_string()) fail(src, name + ": dtype", "missing (expected a string)");
    std::string ds = e["dtype"].get<std::string>();
    if (!st_dtype(ds, &t.dtype)) fail(src, name + ": dtype", "unknown dtype '" + ds + "' (expected F32, F16, BF16, I32, I64, U8 or I8)");
    if (!e.contains("shape") || !e["shape"].is_array()) fail(src, name + ": shape", "missing (expected a list of integers)");
    // Overflow-safe: every partial product stays below the data block size
    // unless a dimension is zero, and the block is smaller than 2^63.
    uint64_t bytes = dtype_size(t.dtype);
    bool zero = false;
    for (auto& d : e["shape"]) {
      if (!d.is_number_integer()) fail(src, name + ": shape", std::string("expected integers, got ") + d.type_name());
      if (!d.is_number_unsigned()) fail(src, name + ": shape", "expected dimensions >= 0, got " + d.dump());
      uint64_t dim = d.get<uint64_t>();
      if (dim > uint64_t(INT64_MAX)) fail(src, name + ": shape", "dimension too large: " + d.dump());
      t.shape.push_back(int64_t(dim));
      if (dim == 0) zero = true;
      else if (!zero && bytes > (uint64_t(1) << 62) / dim) fail(src, name + ": shape", "too large: " + shape_str(t.shape) + "...");
      else if (!zero) bytes *= dim;
    }
    if (zero) bytes = 0;
    if (!e.contains("data_offsets") || !e["data_offsets"].is_array() || e["data_offsets"].size() != 2)
      fail(src, name + ": data_offsets", "missing (expected [begin, end])");
    uint64_t b = get_offset(e["data_offsets"][0], src, name + ": data_offsets");
    uint64_t en = get_offset(e["data_offsets"][1], src, name + ": data_offsets");
    if (b > en) fail(src, name + ": data_offsets", "expected begin <= end, got [" + std::to_string(b) + ", " + std::to_string(en) + "]");
    if (en > block_size)
      fail(src, name + ": data_offsets", "end " + std::to_string(en) + " is past the data block (" +
                                             std::to_string(block_size) + " bytes)");
    if (en - b != bytes)
      fail(src, name + ": shape", "expected " + shape_str(t.shape) + " x " + ds + " = " + std::to_string(bytes) +
                                      " bytes to match data_offsets, got " + std::to_string(en - b));
    t.data = block + b;
    t.nbytes = bytes;
    out.push_back(std::move(t));
    ranges.push_back({b, en});
  }

  std::vector<size_t> order(out.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return ranges[a] < ranges[b]; });
  std::vector<TensorView> sorted;
  uint64_t end = 0;
  std::string last;
  for (size_t i : order) {
    auto [b, en] = ranges[i];
    if (b < en && b < end) fail(src, out[i].name + ": data_offsets", "overlaps tensor '" + last + "'");
    if (en > end) end = en, last = out[i].name;
    sorted.push_back(std::move(out[i]));
  }
  return sorted;
}

SafetensorsFile read_safetensors(const std::string& path) {
  SafetensorsFile f;
  f.file = MappedFile::open(path);
  f.tensors = parse_safetensors(f.file->data(), f.file->size(), path, &f.metadata);
  return f;
}

std::string safetensors_header(const std::vector<TensorToWrite>& tensors,
                               const std::map<std::string, std::string>& metadata) {
  // ordered_json keeps the header in the order the data is laid out.
  nlohmann::ordered_json h = nlohmann::ordered_json::object();
  if (!metadata.empty()) h["__metadata__"] = metadata;
  std::set<std::string> seen;
  uint64_t off = 0;
  for (const auto& t : tensors) {
    if (t.src.name.empty() || t.src.name == "__metadata__") fail(t.src.name, "", "invalid tensor name");
    if (!seen.insert(t.src.name).second) fail(t.src.name, "", "tensor written twice");
    if (is_quantized(t.dtype))
      fail(t.src.name, "", std::string("safetensors has no ") + dtype_name(t.dtype) + " (dequantize to F32, F16 or BF16)");
    uint64_t n = tensor_bytes(t.dtype, t.src.shape);
    h[t.src.name] = {{"dtype", dtype_name(t.dtype)}, {"shape", t.src.shape}, {"data_offsets", {off, off + n}}};
    off += n;
  }
  std::string js = h.dump();
  js.append((8 - js.size() % 8) % 8, ' ');  // keeps the data block 8-byte aligned
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = char(uint64_t(js.size()) >> (8 * i) & 0xff);
  return out + js;
}

uint64_t safetensors_file_size(const std::vector<TensorToWrite>& tensors,
                               const std::map<std::string, std::string>& metadata) {
  uint64_t n = safetensors_header(tensors, metadata).size();
  for (const auto& t : tensors) n += tensor_bytes(t.dtype, t.src.shape);
  return n;
}

void write_tensor_data(AtomicFile& out, const TensorView& t, DType dtype) {
  size_t n = size_t(t.numel());
  if (t.nbytes != tensor_bytes(t))
    fail(t.name, "", "has " + std::to_string(t.nbytes) + " bytes, expected " + shape_str(t.shape) + " x " +
                         dtype_name(t.dtype));
  if (dtype == t.dtype) {
    out.write(t.data, t.nbytes);
    return;
  }
  if (!(is_float(t.dtype) || is_quantized(t.dtype)) || !is_float(dtype))
    fail(t.name, "", std::string("cannot convert ") + dtype_name(t.dtype) + " to " + dtype_name(dtype));
  // Elements per chunk: bounds memory for any tensor size; a multiple of every
  // block, so block-quantized sources dequantize chunk by chunk.
  constexpr size_t kChunk = 1 << 20;
  std::vector<uint8_t> buf(std::min(n, kChunk) * dtype_size(dtype));
  const uint8_t* p = static_cast<const uint8_t*>(t.data);
  for (size_t i = 0; i < n; i += kChunk) {
    size_t m = std::min(kChunk, n - i);
    convert(p + row_bytes(t.dtype, int64_t(i)), t.dtype, buf.data(), dtype, m);
    out.write(buf.data(), m * dtype_size(dtype));
  }
}

void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  for (const auto& t : tensors)
    if (t.src.nbytes != tensor_bytes(t.src))
      fail(path, t.src.name, "has " + std::to_string(t.src.nbytes) + " bytes, expected " + shape_str(t.src.shape) +
                                 " x " + dtype_name(t.src.dtype));
  AtomicFile f(path);
  f.write(safetensors_header(tensors, metadata));
  for (const auto& t : tensors) write_tensor_data(f, t.src, t.dtype);
  f.commit();
}

}  // namespace solar::formats
