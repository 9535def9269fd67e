// The `solar` binary: `solar <command> [options]`; see cli/cli.h.
#include <cstdio>
#include <cstring>
#include <exception>

#include "cli/cli.h"
#include "core/error.h"

int main(int argc, char** argv) {
  auto& reg = solar::cli::registry();
  auto help = [&](FILE* out) {
    std::fprintf(out, "solar — make and run compact LLMs the way Solar Mini was made\n\n"
                      "usage: solar <command> [options]   (solar <command> --help for details)\n\ncommands:\n");
    for (auto& [name, c] : reg) std::fprintf(out, "  %-16s %s\n", name.c_str(), c.summary.c_str());
  };
  if (argc < 2 || !std::strcmp(argv[1], "-h") || !std::strcmp(argv[1], "--help")) {
    help(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  std::string cmd = argv[1];
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
