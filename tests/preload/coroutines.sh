#!/usr/bin/env bash
# Programs on stacks of their own under the preload library, every mode
# (coroutines.c).  Coroutines on malloc'd or mmap'd stacks: every mode runs
# them correctly; the collected modes, which cannot scan such stacks, stop
# collecting with one line saying why (they crashed inside the collector).
# Threads started on a stack the program allocated are ordinary threads:
# no such line, and collections go on.
#
# Usage: coroutines.sh PRELOAD_SO COROUTINES_BIN
set -euo pipefail
lib=$1 bin=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
line="runs on a stack of the program's own"

for stacks in malloc mmap; do
    "$bin" coroutines "$stacks" > /dev/null   # the reference: glibc's malloc
    for mode in fast leakcheck gc; do
        LD_PRELOAD="$lib" GCMALLOC_MODE=$mode "$bin" coroutines "$stacks" \
            > "$tmp/out" 2> "$tmp/err" || {
            echo "FAIL: coroutines on $stacks stacks in mode $mode exited $?:"; cat "$tmp/err"; exit 1; }
        grep -q '^ok$' "$tmp/out" || { echo "FAIL: coroutines on $stacks stacks in mode $mode"; exit 1; }
        n=$(grep -c "^gcmalloc: thread [0-9]* $line" "$tmp/err" || true)
        want=1
        [[ $mode == fast ]] && want=0
        [[ $n == "$want" ]] || {
            echo "FAIL: coroutines on $stacks stacks in mode $mode: $n lines saying collections stop, want $want:"
            cat "$tmp/err"; exit 1; }
    done
    LD_PRELOAD="$lib" GCMALLOC_MODE=gc GCMALLOC_GCTRACE=1 "$bin" user-stack "$stacks" \
        > "$tmp/out" 2> "$tmp/err" || {
        echo "FAIL: threads on $stacks stacks of the program's exited $?:"; cat "$tmp/err"; exit 1; }
    grep -q '^ok$' "$tmp/out" && ! grep -q "$line" "$tmp/err" &&
        [[ $(grep -c '^gc [0-9]' "$tmp/err") -ge 2 ]] || {
        echo "FAIL: threads on $stacks stacks of the program's: collections should go on:"
        cat "$tmp/err"; exit 1; }
done
echo "ok: coroutines run in every mode; the collected modes stop collecting and say why"
