// solar/testing/testing.h — helpers shared by the *_test.cpp files (header
// only; nothing in the library includes it).
#pragma once
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/log.h"

namespace solar::testing {

// The solar::Error message f throws, or "" when it does not throw.
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// Restores the process's log sink and level when a test ends (the sink is
// empty meanwhile, until the test installs its own).
struct SinkGuard {
  LogSink old = set_log_sink({});
  LogLevel old_level = log_level();
  ~SinkGuard() {
    set_log_sink(old);
    set_log_level(old_level);
  }
};

// The folders temp_dir made, removed when the test process exits (not when
// a forked child does; SOLAR_KEEP_TEST_DIRS=1 keeps them for a post-mortem):
// ctest runs every test in its own process, and a suite run would otherwise
// leave ~1,000 folders (1.7 GB) in /tmp each time.
struct TempDirs {
  pid_t owner = getpid();
  std::vector<std::string> dirs;
  ~TempDirs() {
    if (getpid() != owner || std::getenv("SOLAR_KEEP_TEST_DIRS")) return;
    for (const auto& d : dirs) {
      std::error_code ec;
      std::filesystem::remove_all(d, ec);
    }
  }
};
inline TempDirs& temp_dirs() {
  static TempDirs t;
  return t;
}

// A fresh, empty folder under the system temp dir, unique per process.
inline std::string temp_dir(const std::string& name) {
  namespace fs = std::filesystem;
  std::string d = (fs::temp_directory_path() / ("solar_" + name + "_" + std::to_string(getpid()))).string();
  fs::remove_all(d);
  fs::create_directories(d);
  temp_dirs().dirs.push_back(d);
  return d;
}

// A PID no process holds (a child that exited and was reaped): names a
// leftover "<out>.tmp-<pid>" of a killed writer.
inline pid_t dead_pid() {
  pid_t p = fork();
  if (p == 0) _exit(0);
  waitpid(p, nullptr, 0);
  return p;
}

// B rows of T+1 random token ids below V (inputs and shifted targets).
// n draws of N(0, sd²) from a fixed seed (kernel tests' inputs).
inline std::vector<float> gaussian(int64_t n, uint32_t seed, float sd = 1.f) {
  std::mt19937 g(seed);
  std::normal_distribution<float> u(0.f, sd);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& f : v) f = u(g);
  return v;
}

inline std::vector<int32_t> random_tokens(int B, int T, int V, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<int32_t> t(size_t(B) * size_t(T + 1));
  for (auto& x : t) x = int32_t(rng() % uint64_t(V));
  return t;
}

// A 614-byte YAML "billion laughs" like issue 10's (after `head`): ten levels of
// nine aliases each, 9^10 = 3.5e9 leaves once expanded.
inline std::string yaml_alias_bomb(const std::string& head = "") {
  std::string y = head + "x0: &a0 [\"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\"]\n";
  for (int i = 1; i <= 10; ++i) {
    std::string p = "*a" + std::to_string(i - 1);
    y += "x" + std::to_string(i) + ": &a" + std::to_string(i) + " [" + p;
    for (int k = 1; k < 9; ++k) y += ", " + p;
    y += "]\n";
  }
  return y;
}

}  // namespace solar::testing
