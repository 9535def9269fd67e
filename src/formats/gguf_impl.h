// solar/formats/gguf_impl.h — GGUF constants shared by the reader (gguf.cpp)
// and the writer (gguf_write.cpp) only.
#pragma once
#include <cstdint>

namespace solar::formats {

// gguf_type: metadata value types.
enum : uint32_t { kU8, kI8, kU16, kI16, kU32, kI32, kF32, kBool, kStr, kArr, kU64, kI64, kF64 };
constexpr uint64_t kDefaultAlignment = 32;  // GGUF_DEFAULT_ALIGNMENT

}  // namespace solar::formats
