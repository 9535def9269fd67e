// The `solar` binary: `solar <command> [options]`; see cli/cli.h.
#include <cstdio>
#include <cstring>
#include <exception>

#include "cli/cli.h"
#include "core/error.h"

namespace solar::cli {

static int run_version(const std::vector<std::string>& argv) {
  Args a("version", "solar version   (or solar --version)");
  if (!a.parse(argv)) return a.exit_code();
  std::printf("%s\n", version_string().c_str());
  return 0;
}

static Register reg("version", "print the version and the git commit it was built from", run_version);

}  // namespace solar::cli

int main(int argc, char** argv) {
  auto& reg = solar::cli::registry();
  auto help = [&](FILE* out) {
    std::fprintf(out, "solar — make and run compact LLMs the way Solar Mini was made\n\n"
                      "usage: solar <command> [options]   (solar <command> --help for details)\n"
                      "       solar --version\n\ncommands:\n");
    for (auto& [name, c] : reg) std::fprintf(out, "  %-16s %s\n", name.c_str(), c.summary.c_str());
    std::fprintf(out, "\nexit status: 0 success; 1 runtime failure (bad or unreadable file, I/O, memory);\n"
                      "2 usage error (unknown command or flag, unreadable or out-of-range value,\n"
                      "missing or conflicting flags).\n");
  };
  if (argc < 2 || !std::strcmp(argv[1], "-h") || !std::strcmp(argv[1], "--help")) {
    help(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
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
  try {
    return it->second.run(args);
  } catch (const solar::UsageError& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "solar %s: error: %s (see solar %s --help)\n", cmd.c_str(), e.what(), cmd.c_str());
    return 2;
  } catch (const solar::Error& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "solar: error: %s\n", e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "solar: error: out of memory\n");
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "solar: error: %s\n", e.what());
    return 1;
  }
}
