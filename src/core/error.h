// solar/core/error.h — the one error type every module throws.
//
// Bad input must produce one clear line naming the file, the field and what
// was expected. Throw solar::Error (via fail()) anywhere; the CLI catches it,
// prints "solar: error: <what>" and exits 1. Never abort() on bad input.
#pragma once
#include <stdexcept>
#include <string>

namespace solar {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// "<file>: <field>: <msg>", e.g. fail("model.safetensors", "header.len",
// "expected <= 100000000 bytes, got 2^60"). field may be empty.
[[noreturn]] void fail(const std::string& file, const std::string& field, const std::string& msg);
[[noreturn]] inline void fail(const std::string& msg) { throw Error(msg); }

}  // namespace solar
