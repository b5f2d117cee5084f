#!/usr/bin/env bash
# Whole-process cost of building a 100,000-key map: `popgate access make`
# against `postmap cdb:` and `postmap lmdb:`, same input, RUNS alternating
# runs (the order flips each run). Prints, per format, the median wall
# time and CPU time (user+sys) of each side and the median of the per-run
# ratios popgate/postmap. Both sides write the same kind of file; popgate
# fsyncs it and its directory before the rename. Timing only: correctness
# is TestInteropAccessMakeCDBAndLMDB's job.
#
# usage: .ci/bench-maps.sh POPGATE_BIN [RUNS]   (RUNS defaults to 11)
set -euo pipefail
bin=${1:?usage: $0 POPGATE_BIN [RUNS]}
runs=${2:-11}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
: > "$work/main.cf"
# The input of docs/benchmarks.md's access.db comparison.
awk 'BEGIN { for (i = 0; i < 50000; i++) { printf "192.168.%d.%d RELAY\n", int(i / 256), i % 256; printf "user%d@example.com OK\n", i } }' > "$work/in.txt"

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# timed SIDE CMD...: run CMD, append "wall cpu" seconds to $work/SIDE.
timed() {
  local side=$1; shift
  /usr/bin/time -f '%e %U %S' -o "$work/t" "$@" < "$work/in.txt"
  awk '{ printf "%s %.2f\n", $1, $2 + $3 }' "$work/t" >> "$work/$side"
}

for fmt in cdb lmdb; do
  rm -f "$work/ours" "$work/theirs"
  for ((r = 0; r < runs; r++)); do
    rm -f "$work"/a.* "$work"/b.*
    cp "$work/in.txt" "$work/b"
    for side in $([ $((r % 2)) -eq 0 ] && echo "ours theirs" || echo "theirs ours"); do
      if [ "$side" = ours ]; then
        timed ours "$bin" access make --format "$fmt" "$work/a.$fmt"
      else
        timed theirs postmap -c "$work" "$fmt:$work/b"
      fi
    done
  done
  paste "$work/ours" "$work/theirs" | awk '{ printf "%.3f %.3f\n", ($3 > 0 ? $1 / $3 : 0), ($4 > 0 ? $2 / $4 : 99) }' > "$work/ratio"
  printf '%-4s wall: popgate %.2f s, postmap %.2f s, ratio %s (%s..%s) | cpu: popgate %.2f s, postmap %.2f s, ratio %s | load %s\n' "$fmt" \
    "$(cut -d' ' -f1 "$work/ours" | median)" "$(cut -d' ' -f1 "$work/theirs" | median)" \
    "$(cut -d' ' -f1 "$work/ratio" | median)" "$(cut -d' ' -f1 "$work/ratio" | sort -g | head -1)" "$(cut -d' ' -f1 "$work/ratio" | sort -g | tail -1)" \
    "$(cut -d' ' -f2 "$work/ours" | median)" "$(cut -d' ' -f2 "$work/theirs" | median)" "$(cut -d' ' -f2 "$work/ratio" | median)" \
    "$(cut -d' ' -f1 /proc/loadavg)"
done
