#!/usr/bin/env bash
# The Python environment of the conformance tests: Debian's python3 + a virtual
# environment with tests/conformance/requirements.txt (exact pins, from PyPI).
# It lives outside the clone, one per requirements hash, so a machine builds it
# once (~15 min: torch's CUDA wheels, then llama.cpp compiled from source) and
# every later run, from any clone, reuses it. pip's wheel cache keeps the
# llama-cpp-python it built, so a change of pins does not compile llama.cpp again.
# Prints the interpreter's path on stdout; pip's output goes to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."
REQ=tests/conformance/requirements.txt
PY=/usr/bin/python3  # Debian's, whatever else is on PATH
key=$({ cat "$REQ"; "$PY" -c 'import sys, platform; print(sys.version, platform.machine())'; } | sha256sum | cut -c1-12)
CACHE=${SOLAR_PYENV_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/solar}
VENV=$CACHE/pyenv-$key
if [ ! -f "$VENV/.complete" ]; then
  mkdir -p "$CACHE"
  exec 9>"$CACHE/.lock"; flock 9  # two runs at once: the second waits, then reuses
  if [ ! -f "$VENV/.complete" ]; then
    echo "pyenv.sh: building $VENV (once per machine and requirements; ~15 min)" >&2
    start=$SECONDS
    rm -rf "$VENV"
    "$PY" -m venv "$VENV"
    # llama-cpp-python: llama.cpp without its multimodal library, $JOBS compilers.
    CMAKE_ARGS="-DLLAVA_BUILD=OFF" CMAKE_BUILD_PARALLEL_LEVEL=${JOBS:-$(nproc)} \
      "$VENV/bin/python" -m pip install --no-input --disable-pip-version-check --progress-bar off -r "$REQ" >&2
    touch "$VENV/.complete"
    echo "pyenv.sh: done in $(( (SECONDS - start) / 60 )) min $(( (SECONDS - start) % 60 )) s" >&2
  fi
fi
echo "$VENV/bin/python"
