#!/usr/bin/env bash
# Installs every Debian package solar.cpp needs (build, tests, main job).
set -euo pipefail
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
PKGS=(build-essential cmake pkg-config git clang libclang-rt-14-dev
      libdnnl-dev libsentencepiece-dev nlohmann-json3-dev libyaml-cpp-dev libedit-dev
      libgtest-dev libgmock-dev python3 python3.11-doc)
missing=()
for p in "${PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
