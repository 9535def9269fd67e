// The `solar` binary: `solar <command> [options]`; see cli/cli.h.
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>

#include "cli/cli.h"
#include "core/error.h"
#include "core/log.h"

namespace solar::cli {

static int run_version(const std::vector<std::string>& argv) {
  Args a("version", "solar version   (or solar --version)");
  if (!a.parse(argv)) return a.exit_code();
  std::printf("%s\n", version_string().c_str());
  return 0;
}

static Register reg("version", "print the version and the git commit it was built from", run_version);

}  // namespace solar::cli

// What a command printed must have reached stdout: `solar generate > /dev/full`
// (or a full disk under a redirect) otherwise exits 0 with the text lost.
// "" when it did, else the error.
static std::string stdout_failure() {
  errno = 0;
  if (std::fflush(stdout) == 0 && !std::ferror(stdout)) return "";
  return std::string("stdout: write failed: ") + (errno ? std::strerror(errno) : "I/O error");
}

int main(int argc, char** argv) {
  auto& reg = solar::cli::registry();
  auto help = [&](FILE* out) {
    std::fprintf(out, "solar — make and run compact LLMs the way Solar Mini was made\n\n"
                      "usage: solar <command> [options]   (solar <command> --help for details)\n"
                      "       solar --version\n\ncommands:\n");
    for (auto& [name, c] : reg) std::fprintf(out, "  %-16s %s\n", name.c_str(), c.summary.c_str());
    std::fprintf(out, "\n%s", solar::cli::global_options_help().c_str());
    std::fprintf(out, "\nexit status: 0 success; 1 runtime failure (bad or unreadable file, I/O, memory);\n"
                      "2 usage error (unknown command or flag, unreadable or out-of-range value,\n"
                      "missing or conflicting flags).\n");
  };
  // Global options before the command: `solar --log-format json generate …`.
  int first = 1;
  while (first < argc) {
    std::string a = argv[first], v;
    size_t eq = a.find('=');
    if (eq != std::string::npos) v = a.substr(eq + 1), a = a.substr(0, eq);
    if (!solar::cli::is_global_option(a)) break;
    if (eq == std::string::npos) {
      if (first + 1 >= argc) {
        std::fprintf(stderr, "solar: error: %s expects a value (see solar --help)\n", a.c_str());
        return 2;
      }
      v = argv[++first];
    }
    try {
      solar::cli::apply_global_option(a, v);
    } catch (const solar::Error& e) {
      std::fprintf(stderr, "solar: error: %s (see solar --help)\n", e.what());
      return 2;
    }
    ++first;
  }
  argc -= first - 1;
  argv += first - 1;
  if (argc < 2 || !std::strcmp(argv[1], "-h") || !std::strcmp(argv[1], "--help")) {
    help(argc < 2 ? stderr : stdout);
    if (argc < 2) return 2;
    if (std::string why = stdout_failure(); !why.empty()) {
      std::fprintf(stderr, "solar: error: %s\n", why.c_str());
      return 1;
    }
    return 0;
  }
  std::string cmd = argv[1];
  if (cmd == "--version" || cmd == "-V") cmd = "version";
  std::vector<std::string> args(argv + 2, argv + argc);
  // Two-word commands ("tokenizer train") register as "tokenizer-train".
  if (!reg.count(cmd) && argc > 2 && reg.count(cmd + "-" + argv[2])) {
    cmd += std::string("-") + argv[2];
    args.erase(args.begin());
  }
  auto it = reg.find(cmd);
  if (it == reg.end()) {
    std::fprintf(stderr, "solar: error: unknown command '%s'\n\n", argv[1]);
    help(stderr);
    return 2;
  }
  // Errors end the run as one line: JSON under --log-format json, else plain.
  auto error = [&](const std::string& msg, int rc) {
    std::fflush(stdout);
    if (solar::cli::json_logs()) {
      nlohmann::json f = {{"command", cmd}, {"exit_status", rc}};
      solar::json_log_sink(stderr)(solar::LogRecord{solar::LogLevel::Error, "solar", msg, f});
    } else if (rc == 2) {
      std::fprintf(stderr, "solar %s: error: %s (see solar %s --help)\n", cmd.c_str(), msg.c_str(), cmd.c_str());
    } else {
      std::fprintf(stderr, "solar: error: %s\n", msg.c_str());
    }
    return rc;
  };
  try {
    int rc = it->second.run(args);
    if (std::string why = stdout_failure(); !why.empty()) return error(why, rc ? rc : 1);
    return rc;
  } catch (const solar::UsageError& e) {
    return error(e.what(), 2);
  } catch (const solar::Error& e) {
    return error(e.what(), 1);
  } catch (const std::bad_alloc&) {
    return error("out of memory", 1);
  } catch (const std::exception& e) {
    return error(e.what(), 1);
  }
}
