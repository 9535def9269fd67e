#!/usr/bin/env bash
# Proves that the README's commands work on a machine that has nothing: makes a
# bare Debian 12 root with debootstrap, copies the repository in (the working
# tree's tracked and untracked files, no build folders; or commit REV) with
# ../shared/data beside it, and in a chroot runs scripts/setup.sh, configures
# and builds solar, and runs `solar --help`. --full then runs scripts/test.sh
# too (all of CI, ~5 GB Python environment included). Too slow for CI: run it
# whenever setup.sh, a CMakeLists.txt or a dependency changes. ~10 min.
# usage: bash scripts/check-fresh.sh [--full] [--keep] [REV]   (as root)
set -euo pipefail
cd "$(dirname "$0")/.."
FULL=0 KEEP=0 REV=
for a; do
  case $a in --full) FULL=1 ;; --keep) KEEP=1 ;; -*) sed -n '2,9s/^# //p' "$0"; exit 2 ;; *) REV=$a ;; esac
done
[ "$(id -u)" -eq 0 ] || { echo "check-fresh.sh: run as root (debootstrap, chroot)"; exit 2; }
if ! command -v debootstrap >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap
fi
# The host's Debian mirror (deb822 or one-line sources), else the default.
MIRROR=$(sed -n 's/^URIs: *//p; s/^deb \(http[^ ]*\) .*/\1/p' /etc/apt/sources.list \
  /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -m1 '/debian/\?$' || true)
MIRROR=${MIRROR:-http://deb.debian.org/debian}

ROOT=$(mktemp -d /var/tmp/solar-fresh.XXXXXX)
LOG=$ROOT.log; : >"$LOG"
cleanup() {
  for m in dev/pts dev sys proc; do umount "$ROOT/$m" 2>/dev/null || true; done
  if grep -q " $ROOT/" /proc/mounts; then echo "check-fresh: $ROOT still has mounts; not removed"
  elif [ "$KEEP" = 1 ]; then echo "check-fresh: root kept in $ROOT"
  else rm -rf --one-file-system "$ROOT"; fi
}
trap cleanup EXIT
start=$SECONDS
step() {  # step NAME COMMAND...: runs it, its output to the log; stops at the first failure
  local t=$SECONDS from=$(($(wc -l <"$LOG") + 2))
  echo "== $1" | tee -a "$LOG"
  if ! "${@:2}" >>"$LOG" 2>&1; then
    tail -n "+$from" "$LOG" | tail -n 40
    echo "check-fresh: FAILED at '$1' after $(( (SECONDS - start) / 60 )) min (log: $LOG)"
    exit 1
  fi
  echo "   ok, $((SECONDS - t)) s" | tee -a "$LOG"
}
inside() {  # runs a command in the chroot with a clean environment, in the copy
  chroot "$ROOT" /usr/bin/env -i HOME=/root LANG=C.UTF-8 CI=true TERM=dumb $PIP_CA \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    bash -c "cd /work/solar && $1"
}
copy_repo() {
  mkdir -p "$ROOT/work/solar"
  if [ -n "$REV" ]; then git archive "$REV" | tar -x -C "$ROOT/work/solar"
  else git ls-files -z --cached --others --exclude-standard | tar --null -T - --ignore-failed-read -cf - | tar -x -C "$ROOT/work/solar"
  fi
  if [ -d ../shared/data ]; then mkdir -p "$ROOT/work/shared" && cp -a ../shared/data "$ROOT/work/shared/"; fi
}
# A machine of this workplace trusts the host's CA bundle (a TLS proxy may sit
# before PyPI); Debian's own bundle in the bare root does not know it.
PIP_CA=
mounts() {
  cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf"
  if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
    cp /etc/ssl/certs/ca-certificates.crt "$ROOT/etc/host-ca-bundle.crt" && PIP_CA=PIP_CERT=/etc/host-ca-bundle.crt
  fi
  mount -t proc proc "$ROOT/proc" && mount -t sysfs sys "$ROOT/sys"
  mount --bind /dev "$ROOT/dev" && mount --bind /dev/pts "$ROOT/dev/pts"
}

echo "check-fresh: Debian 12 from $MIRROR in $ROOT, ${REV:-working tree}; log: $LOG"
step "debootstrap bookworm (minbase)" debootstrap --variant=minbase bookworm "$ROOT" "$MIRROR"
step "copy repository + shared data" copy_repo
step "mount /proc /sys /dev" mounts
step "bash scripts/setup.sh" inside "bash scripts/setup.sh"
step "pip reaches PyPI (scripts/pyenv.sh's path)" inside \
  "python3 -m venv /tmp/pipcheck && /tmp/pipcheck/bin/pip download -q --no-deps -d /tmp/pipcheck/w six"
step "configure (Release)" inside "cmake -S . -B build -DCMAKE_BUILD_TYPE=Release"
step "build solar" inside "cmake --build build -j2 --target solar"
step "build/solar --help" inside "build/solar --help"
[ "$FULL" = 1 ] && step "bash scripts/test.sh" inside "bash scripts/test.sh"
echo "check-fresh: PASSED in $(( (SECONDS - start) / 60 )) min $(( (SECONDS - start) % 60 )) s (log: $LOG)"
