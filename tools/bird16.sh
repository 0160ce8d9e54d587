#!/usr/bin/env bash
# Unpack BIRD 1.6.8 (Debian's package `bird`, the oracle for Calico's fork) into a private
# directory without installing it: it conflicts with `bird2`, which the interop tests need.
#   tools/bird16.sh [DIR]      (default: $BGPD_BIRD16_DIR or .cache/bird16)
# Prints the directory holding bird, bird6, birdc, birdc6.
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${1:-${BGPD_BIRD16_DIR:-.cache/bird16}}"
if [ -x "$dir/usr/sbin/bird" ]; then
  echo "$dir/usr/sbin"
  exit 0
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
chmod 777 "$tmp"  # apt's _apt user downloads into it
(cd "$tmp" && apt-get download -qq bird >/dev/null 2>&1) ||
  (apt-get update -qq >/dev/null 2>&1 && cd "$tmp" && apt-get download -qq bird >/dev/null 2>&1) || {
  echo "tools/bird16.sh: 'apt-get download bird' failed (apt-get update first?)" >&2
  exit 1
}
deb="$(ls "$tmp"/bird_1.6*.deb 2>/dev/null | head -1)"
if [ -z "$deb" ]; then
  echo "tools/bird16.sh: the archive's 'bird' is not 1.6.x: $(ls "$tmp")" >&2
  exit 1
fi
mkdir -p "$dir"
dpkg -x "$deb" "$dir"
"$dir/usr/sbin/bird" --version >/dev/null 2>&1 || true
echo "$dir/usr/sbin"
