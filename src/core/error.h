// solar/core/error.h — the one error type every module throws.
//
// Bad input must produce one clear line naming the file, the field and what
// was expected. Throw solar::Error (via fail()) anywhere; the CLI catches it,
// prints "solar: error: <what>" and exits 1. Never abort() on bad input.
// A command-line flag in place of the file ("--drop", "-m/--model") makes it
// a UsageError, for which the CLI exits 2: whatever layer checks a flag's
// value, the user learns it was the command line, not the data, at fault.
#pragma once
#include <stdexcept>
#include <string>

namespace solar {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};
struct UsageError : Error {
  using Error::Error;
};

// "<file>: <field>: <msg>", e.g. fail("model.safetensors", "header.len",
// "expected <= 100000000 bytes, got 2^60"). field may be empty. A file
// starting with '-' and a letter or '-' is a flag: throws UsageError.
[[noreturn]] void fail(const std::string& file, const std::string& field, const std::string& msg);
[[noreturn]] inline void fail(const std::string& msg) { throw Error(msg); }

}  // namespace solar
