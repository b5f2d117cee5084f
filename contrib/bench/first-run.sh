#!/usr/bin/env bash
# Times what a new user waits for on a fresh machine: from a fresh clone,
# with empty module and build caches, until `go tool task run` has popgate
# listening (its default configuration's POP3 port, 127.0.0.1:1110).
#
#   contrib/bench/first-run.sh [REV]     # REV defaults to HEAD
#
# Prints the seconds, the CPU seconds the go command and compilers used,
# the size of the downloaded module cache and `go list -m all | wc -l`.
set -euo pipefail
repo=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
rev=${1:-HEAD}
addr=127.0.0.1:1110
if (exec 3<>/dev/tcp/127.0.0.1/1110) 2>/dev/null; then
  echo "something already listens on $addr" >&2; exit 1
fi
work=$(mktemp -d)
pid=
cleanup() {
  if [ -n "$pid" ]; then kill -- "-$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  chmod -R u+w "$work" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
git clone -q "$repo" "$work/src"
git -C "$work/src" checkout -q "$rev"
export GOMODCACHE=$work/mod GOCACHE=$work/cache GOFLAGS=-mod=mod
cd "$work/src"
start=$(date +%s.%N)
# Its own process group, so that cleanup stops go, task and popgate by pid.
set -m
timer=()
if [ -x /usr/bin/time ]; then timer=(/usr/bin/time -f '%U %S' -o "$work/cpu"); fi
"${timer[@]}" go tool task run >"$work/log" 2>&1 &
pid=$!
set +m
until (exec 3<>/dev/tcp/127.0.0.1/1110) 2>/dev/null; do
  if ! kill -0 "$pid" 2>/dev/null; then cat "$work/log" >&2; echo "go tool task run exited" >&2; exit 1; fi
  sleep 0.2
done
end=$(date +%s.%N)
# Stop popgate itself (the leaf of the process tree), so that go run, task
# and time exit in turn and time counts the CPU of every process.
leaves() {
  local kids
  kids=$(cat /proc/"$1"/task/*/children 2>/dev/null || true)
  if [ -z "$kids" ]; then echo "$1"; return; fi
  for k in $kids; do leaves "$k"; done
}
kill -TERM $(leaves "$pid") 2>/dev/null || true
wait "$pid" 2>/dev/null || true
pid=
printf 'rev %s: listening after %.1f s; cpu %s s (user sys, all processes); modules downloaded %s; go list -m all: %s; load %s\n' \
  "$(git rev-parse --short HEAD)" "$(echo "$end - $start" | bc)" "$(cat "$work/cpu" 2>/dev/null | tail -1)" \
  "$(du -sh "$work/mod/cache/download" | cut -f1)" "$(go list -m all | wc -l)" "$(cut -d' ' -f1-3 /proc/loadavg)"
