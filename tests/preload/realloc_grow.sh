#!/usr/bin/env bash
# A buffer grown by realloc 64 bytes at a time to 1 MiB (realloc_grow.c),
# in every mode, at the default sampling rate.  Counts, no clocks:
# - every mode: the buffer moves O(log n) times (mimalloc's size classes,
#   or the collected modes' quarter of extra room), not at every step
#   (leakcheck copied it 16,383 times), every page (gc: 268) or at every
#   sample (fast: 9,286);
# - every mode: the profiler samples it a handful of times (the bytes the
#   buffer moved into, about 4 MiB, at one sample per 512 KiB), not once
#   per 512 KiB of the sizes passed to realloc (over 9,000 samples).
# Usage: realloc_grow.sh PRELOAD_SO REALLOC_GROW_BIN
set -euo pipefail
lib=$1 bin=$2
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
"$bin" > /dev/null   # the reference: glibc's realloc keeps the contents too
for mode in fast leakcheck gc; do
    LD_PRELOAD="$lib" GCMALLOC_MODE=$mode GCMALLOC_PROFILE_REPORT="$tmp/report.$mode" \
        GCMALLOC_PROFILE_SYMBOLS=none "$bin" > "$tmp/out" ||
        { echo "FAIL: $mode mode: realloc_grow failed"; exit 1; }
    moves=$(sed -n 's/^moves \([0-9]*\)$/\1/p' "$tmp/out")
    samples=$(sed -n 's/.* sites, \([0-9]*\) samples .*/\1/p' "$tmp/report.$mode" | head -1)
    echo "$mode: moves $moves, samples $samples"
    [[ -n $moves && -n $samples ]] || { echo "FAIL: $mode mode: no figures"; cat "$tmp/out" "$tmp/report.$mode"; exit 1; }
    (( moves <= 128 )) || { echo "FAIL: $mode mode: the buffer moved $moves times"; exit 1; }
    (( samples <= 200 )) || { echo "FAIL: $mode mode: $samples samples for about 4 MiB moved"; exit 1; }
done
echo "ok: realloc growth is amortized and sampled by what it allocates, in every mode"
