#!/usr/bin/env bash
# Threads working past gcmalloc's exit destructor, unregistered from the
# collector (late_exit.c), in the collected modes:
# - unmap: they unmap memory the collector scans while another thread
#   collects; the unmap must be waited out, not read after it is gone (a
#   SIGSEGV in bdwgc's marker).  Without the wait, leakcheck crashed in 3
#   runs of 3 here and gc in 7 of 8.
# - free: they free what they allocated while registered; leakcheck must
#   report no leak (a free that left the block's tracking slot set crashed
#   the next collections, which read the freed block as a leak).
# - realloc: they grow those blocks, then free them: the contents kept,
#   and no complaint that the moved block is not one malloc returned.
# Usage: late_exit.sh PRELOAD_SO LATE_EXIT_BIN
set -euo pipefail
lib=$1 bin=$2
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
for what in unmap free realloc; do
    "$bin" $what 1 10 > /dev/null   # the reference: glibc's malloc
    for mode in leakcheck gc; do
        case="$what in mode $mode"
        LD_PRELOAD="$lib" GCMALLOC_MODE=$mode GCMALLOC_GOGC=10 GCMALLOC_GCTRACE=1 \
            "$bin" $what 4 100 > "$tmp/out" 2> "$tmp/err" ||
            { echo "FAIL: $case exited $?:"; tail -5 "$tmp/err"; exit 1; }
        grep -q '^ok$' "$tmp/out" || { echo "FAIL: $case: no ok"; exit 1; }
        cycles=$(grep -c '^gc [0-9]' "$tmp/err" || true)
        echo "$case: $cycles collections"
        (( cycles >= 2 )) || { echo "FAIL: $case: $cycles collections, want at least 2"; exit 1; }
        if grep -v '^gc [0-9]' "$tmp/err" | grep -q .; then
            echo "FAIL: $case: unexpected lines (a leak report?):"
            grep -v '^gc [0-9]' "$tmp/err" | head -20
            exit 1
        fi
    done
done
echo "ok: threads past their exit destructor unmap and free safely"
