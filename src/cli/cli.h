// solar/cli/cli.h — subcommand registry and flag parsing for the `solar` binary.
//
// Each src/cli/cmd_<name>.cpp defines one subcommand and registers it with
//   static solar::cli::Register reg("name", "one-line summary", run_fn);
// run_fn(args) gets the arguments after the subcommand name and returns the
// exit code. solar::Error escaping run_fn is printed as one line.
//
// Exit status: 0 success; 1 runtime failure (unreadable or invalid file, I/O,
// out of memory); 2 usage error (unknown command or flag, unreadable or
// out-of-range value, missing or conflicting flags): everything the parser
// rejects, and every solar::UsageError, i.e. fail() naming a flag.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace solar::cli {

using RunFn = std::function<int(const std::vector<std::string>&)>;

struct Command {
  std::string name, summary;
  RunFn run;
};
std::map<std::string, Command>& registry();

struct Register {
  Register(const std::string& name, const std::string& summary, RunFn fn) {
    registry()[name] = Command{name, summary, std::move(fn)};
  }
};

// A small declarative flag parser with llama.cpp-style names:
//   Args a("generate", "solar generate -m MODEL [options]");
//   auto& m = a.str("-m,--model", "PATH", "model: HF folder, .gguf or llama2.c .bin");
//   auto& n = a.integer("-n,--n-predict", 128, "tokens to generate");
//   if (!a.parse(argv)) return a.exit_code();   // --help prints usage, exit 0
// Help lines show "(default: X)" unless the help text already speaks of its
// default; flags without a meaningful default (required ones) omit it.
class Args {
 public:
  Args(std::string command, std::string usage);
  ~Args();  // out of line: Opt is incomplete here
  std::string& str(const std::string& names, const std::string& metavar, const std::string& help,
                   std::string def = "");
  int64_t& integer(const std::string& names, int64_t def, const std::string& help);
  int64_t& integer(const std::string& names, const std::string& help);  // no default: check given()
  // Bounded: parse() refuses a value outside [lo, hi] ("--top-k: expected an
  // integer in [0, 1000000000], got -1"). Every integer flag that ends up in
  // an int, a count or a size declares its bounds here.
  int64_t& integer(const std::string& names, int64_t def, const std::string& help, int64_t lo, int64_t hi);
  // -t/--threads: 0 = all cores, else 1..max_threads(); parse() refuses the rest.
  int64_t& threads(int64_t def = 0);
  double& number(const std::string& names, double def, const std::string& help);
  bool& flag(const std::string& names, const std::string& help);
  std::vector<std::string>& list(const std::string& names, const std::string& metavar, const std::string& help);
  // Positional arguments left over (only accepted if allow_positional()).
  std::vector<std::string>& positional(const std::string& metavar, const std::string& help);
  // Returns false when the caller should exit with exit_code() (help or error).
  bool parse(const std::vector<std::string>& argv);
  int exit_code() const { return exit_code_; }
  bool given(const std::string& name) const;  // was the flag passed explicitly
  std::string usage() const;

 private:
  struct Opt;
  std::string command_, usage_;
  std::vector<std::unique_ptr<Opt>> opts_;
  std::vector<std::string>* positional_ = nullptr;
  std::string positional_meta_, positional_help_;
  std::vector<std::string> given_;
  int exit_code_ = 0;
  Opt* find(const std::string& name);
};

// Throws solar::UsageError "--flag: expected …" when v is outside [lo, hi].
void check_range(const std::string& flag, double v, double lo, double hi);
// A usage error that no single flag names (exit 2).
[[noreturn]] void usage_error(const std::string& msg);
// Upper bound of every thread flag: more threads than 4 per hardware thread
// only add contention, and far more exhaust memory (OpenMP stacks, buffers).
int max_threads();

// Global options, accepted before the command or among its flags; the CLI,
// not the library, decides where library messages (core/log.h) go:
//   --log-format plain|json   plain lines or JSON lines on stderr (default plain)
//   --log-level debug|info|warn|error|off   (default info)
//   --check-tensors on|off    NaN/Inf scan of loaded weights (default on)
bool is_global_option(const std::string& name);
// Applies one; throws UsageError naming the flag for a bad value.
void apply_global_option(const std::string& name, const std::string& value);
// The help lines of the global options, for `solar --help`.
std::string global_options_help();
// Whether --log-format json is in force (stderr then carries JSON lines only).
bool json_logs();

// "solar 0.1.0 (git abc1234)": CMake's project version and the commit at configure time.
std::string version_string();

}  // namespace solar::cli
