#!/usr/bin/env bash
# Makes a clean Debian root (debootstrap --variant=minbase, the host's
# release) for the package install test, once per machine, as a tarball:
# the test unpacks a fresh copy each run. Prints the tarball's path.
set -euo pipefail
. /etc/os-release
suite=${VERSION_CODENAME:?no VERSION_CODENAME in /etc/os-release}
cache=${POPGATE_CI_CACHE:-/var/cache/popgate-ci}
out=$cache/debian-root-$suite.tar
if [ ! -s "$out" ]; then
  mkdir -p "$cache"
  tmp=$(mktemp -d "$cache/root.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  debootstrap --variant=minbase "$suite" "$tmp/root" >"$tmp/log" 2>&1 || { tail -20 "$tmp/log" >&2; exit 1; }
  tar -C "$tmp/root" -cf "$tmp/root.tar" .
  mv "$tmp/root.tar" "$out"
fi
echo "$out"
