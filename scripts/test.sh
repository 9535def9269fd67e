#!/usr/bin/env bash
# The test command (README, CI): release build + full suite, then the suite
# again under AddressSanitizer + UndefinedBehaviorSanitizer (clang), with the
# libFuzzer targets run for a bounded time.
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=${JOBS:-$(nproc)}
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$JOBS"
(cd build && ctest --output-on-failure -j "$JOBS" --timeout 900)
if [ "${SOLAR_SKIP_SANITIZE:-0}" != 1 ]; then
  CC=clang CXX=clang++ cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSOLAR_SANITIZE=ON \
    -DSOLAR_FUZZ=ON -DSOLAR_BENCH=OFF >/dev/null
  cmake --build build-asan -j "$JOBS"
  # Python conformance tests exercise the release binary already; slow
  # end-to-end tests are covered above.
  (cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
     ctest --output-on-failure -j "$JOBS" --timeout 1200 -E '^py\.|Slow')
fi
