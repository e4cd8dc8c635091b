#!/usr/bin/env bash
# The peer workloads of bench/peer_alloc.c (larson, mstress, sh6, xmalloc,
# churn: many threads, frees on other threads, batches of mixed sizes) in
# every mode, as a correctness check: peer_alloc stamps every block with
# its size and checks it when the block is freed, so a block handed out
# twice or overwritten by a neighbour shows as "bad" counts, and the check
# line must be glibc's.  No figures: the timings are bench/peer_bench.sh's.
# A free that leakcheck's tracking rejects prints a "misuse" line, and
# there must be none.  (leakcheck once filed blocks in its cache of freed
# blocks by a guessed size: sh6 and larson overwrote their neighbours.)
# Usage: peer_check.sh PRELOAD_SO PEER_ALLOC_BIN
set -euo pipefail
lib=$1 bin=$2
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
for w in larson mstress sh6 xmalloc churn; do
    "$bin" "$w" 2 | grep -v '^Benchmark' > "$tmp/want"
    grep -q ' bad 0$' "$tmp/want" || { echo "FAIL: $w under glibc:"; cat "$tmp/want"; exit 1; }
    for mode in fast leakcheck gc; do
        LD_PRELOAD="$lib" GCMALLOC_MODE=$mode "$bin" "$w" 2 > "$tmp/out" 2> "$tmp/err" ||
            { echo "FAIL: $w in $mode mode:"; cat "$tmp/err"; exit 1; }
        grep -v '^Benchmark' "$tmp/out" | cmp -s - "$tmp/want" ||
            { echo "FAIL: $w in $mode mode: $(grep -v '^Benchmark' "$tmp/out"), want $(cat "$tmp/want")"; exit 1; }
        ! grep -q . "$tmp/err" || { echo "FAIL: $w in $mode mode said:"; head "$tmp/err"; exit 1; }
    done
    echo "$w: $(cat "$tmp/want") in every mode"
done
echo "ok: the peer workloads keep every block intact in fast, leakcheck and gc modes"
