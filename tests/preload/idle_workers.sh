#!/usr/bin/env bash
# Worker threads that free in batches and sit idle in between while
# collections run (idle_workers.c), in the collected modes: each
# collection takes an idle thread's cached blocks from inside its
# stop-signal handler, and no block may ever be handed out twice or
# reclaimed under its owner (each worker checks a pattern of its own in
# every block before freeing it).
# Usage: idle_workers.sh PRELOAD_SO IDLE_WORKERS_BIN
set -euo pipefail
lib=$1 bin=$2
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
"$bin" 4 200 > /dev/null   # the reference: glibc's malloc
for mode in leakcheck gc; do
    LD_PRELOAD="$lib" GCMALLOC_MODE=$mode GCMALLOC_GOGC=10 GCMALLOC_GCTRACE=1 \
        "$bin" 4 1500 > "$tmp/out" 2> "$tmp/err" ||
        { echo "FAIL: $mode mode exited $?:"; grep -v '^gc [0-9]' "$tmp/err" | tail -5; exit 1; }
    grep -q '^ok$' "$tmp/out" || { echo "FAIL: $mode mode: no ok"; exit 1; }
    cycles=$(grep -c '^gc [0-9]' "$tmp/err" || true)
    echo "$mode: $(head -1 "$tmp/out"), $cycles collections"
    (( cycles >= 5 )) || { echo "FAIL: $mode mode: $cycles collections, want at least 5"; exit 1; }
    if grep -v '^gc [0-9]' "$tmp/err" | grep -q .; then
        echo "FAIL: $mode mode: unexpected lines:"; grep -v '^gc [0-9]' "$tmp/err" | head; exit 1
    fi
done
echo "ok: idle workers' cached blocks are taken at collections and never handed out twice"
