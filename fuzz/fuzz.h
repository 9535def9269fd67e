// fuzz/fuzz.h — what the libFuzzer targets share.
//
// Readers that take a path get the input through put(): one scratch folder per
// process, files overwritten in place (no fsync, no rename: per-exec cost).
// Seeds are written by the target itself, so they always match the writers:
//   SOLAR_FUZZ_WRITE_SEEDS=DIR fuzz_x   writes DIR/* (small valid inputs) and
//   DIR-deep/* (inputs that reach deep nesting or expansion: a folder of its
//   own, as libFuzzer reads corpus folders recursively), then exits.
// Each target defines write_seeds(dir).
#pragma once
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace solar::fuzz {

void write_seeds(const std::string& dir);

inline void write_bytes(const std::string& path, const void* data, size_t size) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(static_cast<const char*>(data), static_cast<std::streamsize>(size));
  if (!f) std::abort();
}
inline void write_text(const std::string& path, const std::string& s) { write_bytes(path, s.data(), s.size()); }

// Never destroyed: the atexit cleanup below runs after static destructors.
inline const std::string& scratch() {
  static const std::string* dir = [] {
    const char* t = std::getenv("TMPDIR");
    auto* d = new std::string(std::string(t && *t ? t : "/tmp") + "/solar-fuzz-" + std::to_string(getpid()));
    std::filesystem::create_directories(*d);
    return d;
  }();
  return *dir;
}

// Writes the input to scratch()/name and returns the path.
inline std::string put(const std::string& name, const uint8_t* data, size_t size) {
  std::string p = scratch() + "/" + name;
  write_bytes(p, data, size);
  return p;
}

inline std::string deep(const std::string& dir) { return dir + "-deep"; }

// n-deep JSON arrays around a value: "[[[…1…]]]".
inline std::string nested_json(size_t n) { return std::string(n, '[') + "1" + std::string(n, ']'); }

}  // namespace solar::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (const char* d = std::getenv("SOLAR_FUZZ_WRITE_SEEDS")) {
    std::filesystem::create_directories(d);
    std::filesystem::create_directories(solar::fuzz::deep(d));
    solar::fuzz::write_seeds(d);
    std::exit(0);
  }
  solar::fuzz::scratch();
  std::atexit([] { std::filesystem::remove_all(solar::fuzz::scratch()); });
  return 0;
}
