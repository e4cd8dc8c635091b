#!/usr/bin/env bash
# A new thread's malloc'd argument, held by nothing but the thread's
# start-up (thread_args.c), while another thread collects, in the
# collected modes: leakcheck must report nothing (it reported 9 and 14
# arguments as leaks in two runs of 2,000 threads when gcmalloc kept the
# argument in memory the collector does not scan), and every argument must
# reach its thread intact.
# Usage: thread_args.sh PRELOAD_SO THREAD_ARGS_BIN
set -euo pipefail
lib=$1 bin=$2
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
"$bin" 100 > /dev/null   # the reference: glibc's malloc
for mode in leakcheck gc; do
    LD_PRELOAD="$lib" GCMALLOC_MODE=$mode GCMALLOC_GOGC=10 GCMALLOC_GCTRACE=1 \
        GCMALLOC_PROFILE_RATE=1 "$bin" 2000 > "$tmp/out" 2> "$tmp/err" ||
        { echo "FAIL: $mode mode exited $?:"; grep -v '^gc [0-9]' "$tmp/err" | tail -5; exit 1; }
    grep -q '^ok$' "$tmp/out" || { echo "FAIL: $mode mode: no ok"; exit 1; }
    cycles=$(grep -c '^gc [0-9]' "$tmp/err" || true)
    echo "$mode: 2000 threads, $cycles collections"
    (( cycles >= 5 )) || { echo "FAIL: $mode mode: $cycles collections, want at least 5"; exit 1; }
    if grep -v '^gc [0-9]' "$tmp/err" | grep -q .; then
        echo "FAIL: $mode mode: unexpected lines (arguments reported as leaks?):"
        grep -v '^gc [0-9]' "$tmp/err" | head -12; exit 1
    fi
done
echo "ok: a thread's argument stays visible to the collector while the thread starts"
