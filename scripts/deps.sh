#!/usr/bin/env bash
# Installs the system packages sluice needs, only those missing.
# Debian/Ubuntu: apt-get (sudo when not root). Elsewhere: names the packages and fails.
#   scripts/deps.sh          what building and `make test` need
#   scripts/deps.sh demo     that, and what the demos need: espeak-ng (speech into a WAV file)
set -eu
pkgs="build-essential pkg-config libzmq3-dev libczmq-dev libcriterion-dev iproute2"
case "${1:-}" in
  "") ;;
  demo) pkgs="$pkgs espeak-ng" ;;
  *) echo "usage: scripts/deps.sh [demo]" >&2; exit 2 ;;
esac
[ "${SLUICE_DEPS_EXTRA:-}" ] && pkgs="$pkgs $SLUICE_DEPS_EXTRA"

missing=""
if command -v dpkg-query >/dev/null 2>&1; then
  for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
  done
else
  # Not Debian: check by pkg-config instead and explain what is needed.
  if ! pkg-config --exists libzmq libczmq criterion 2>/dev/null; then
    echo "sluice needs: a C compiler, make, pkg-config, libzmq >= 4.3, czmq >= 4.2, criterion >= 2.4" >&2
    echo "(Debian packages: $pkgs). Install them with your system's package manager." >&2
    exit 1
  fi
  if [ "${1:-}" = demo ] && ! command -v espeak-ng >/dev/null 2>&1; then
    echo "the demo needs espeak-ng: install it with your system's package manager" >&2
    exit 1
  fi
  exit 0
fi
[ -z "$missing" ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  echo "sluice: missing packages:$missing (no apt-get here; install them by hand)" >&2
  exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "sluice: need root or sudo to install:$missing" >&2; exit 1; }
  sudo="sudo"
fi
echo "sluice: installing$missing" >&2
# Quiet: no questions, no progress bars; dpkg's per-package lines go to a log shown on failure.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
quiet() {
  "$@" >"$log" 2>&1 || { cat "$log" >&2; echo "sluice: failed: $*" >&2; exit 1; }
}
quiet $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
# shellcheck disable=SC2086
quiet $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
  -o Dpkg::Use-Pty=0 $missing
echo "sluice: installed$missing" >&2
