#!/usr/bin/env bash
# The test command (README, CI): release build + full suite, Python conformance
# tests included (their environment: scripts/pyenv.sh, cached per machine), then
# the suite again under AddressSanitizer + UndefinedBehaviorSanitizer (clang),
# with the libFuzzer targets run for a bounded time.
# SOLAR_SKIP_CONFORMANCE=1 skips the conformance tests (and their environment).
set -euo pipefail
cd "$(dirname "$0")/.."
export JOBS=${JOBS:-$(nproc)}
SKIP_PY=${SOLAR_SKIP_CONFORMANCE:-0}
PY=python3
[ "$SKIP_PY" = 0 ] && PY=$(bash scripts/pyenv.sh)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DSOLAR_PYTHON="$PY" >/dev/null
cmake --build build -j "$JOBS"
rc=0
(cd build && ctest --output-on-failure -j "$JOBS" --timeout 900) 2>&1 | tee build/ctest.log || rc=$?
# "N/M Test #K: py.test_x ....   Passed" (or ***Failed, ***Skipped, ***Timeout)
py=$(grep -E 'Test +#[0-9]+: py\.' build/ctest.log || true)
n() { grep -cE "$1" <<<"$py" || true; }
skipped=$(n '\*\*\*Skipped'); passed=$(n ' Passed ')
total=$(n .); ran=$((total - skipped))
echo "conformance: $ran ran, $passed passed, $((ran - passed)) failed, $skipped skipped"
if [ "$SKIP_PY" = 0 ] && [ "$ran" -eq 0 ]; then
  echo "conformance: none ran"; rc=1
fi
[ "$rc" -eq 0 ] || exit "$rc"
if [ "${SOLAR_SKIP_SANITIZE:-0}" != 1 ]; then
  CC=clang CXX=clang++ cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSOLAR_SANITIZE=ON \
    -DSOLAR_FUZZ=ON -DSOLAR_BENCH=OFF >/dev/null
  cmake --build build-asan -j "$JOBS"
  # Python conformance tests exercise the release binary already; slow
  # end-to-end tests are covered above.
  (cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
     ctest --output-on-failure -j "$JOBS" --timeout 1200 -E '^py\.|Slow')
fi
