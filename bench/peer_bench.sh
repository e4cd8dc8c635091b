#!/usr/bin/env bash
# The preload library against glibc, Debian's mimalloc and jemalloc (each
# preloaded) on the patterns of the usual allocator benchmarks
# (mimalloc-bench's larson, xmalloc-test, cache-scratch, cache-thrash,
# mstress/rptest, sh6bench; glibc's bench-malloc-simple; cfrac/espresso-like
# churn; realloc growth; and a burst freed in full), all in
# bench/peer_alloc.c.  Runs are interleaved round-robin over the
# configurations and repeated; the median wall time of each is reported in
# Go's benchmark format (one op = one program run) with the median peak
# resident set, then as ratios to glibc and to mimalloc, because the machine
# is shared and noisy.  burst also reports the resident set left once
# everything was freed.
#
# Usage: [PEER_THREADS=2] [PEER_WORKLOADS="larson ..."] [PEER_CONFIGS="glibc ..."]
#        [PEER_ENV="VAR=value ..."] [PEER_BASE=OLD_BUILD/libgcmalloc-preload.so]
#        peer_bench.sh BUILD_DIR [ROUNDS]
# PEER_ENV is added to every gcm configuration (GCMALLOC_PROFILE_RATE=1 to
# sample every allocation, say).  PEER_BASE names another build's preload
# library for the configurations base-fast, base-leakcheck and base-gc
# (list them in PEER_CONFIGS), to measure a change against what it
# replaces in one interleaved run.
set -euo pipefail
build=$1 rounds=${2:-5}
lib=$build/libgcmalloc-preload.so
pa=$build/bench/peer_alloc
source "$(dirname "$0")/allocators.sh" # mi, je, env_for
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
for f in "$lib" "$pa" "$mi" "$je" ${PEER_BASE:+"$PEER_BASE"}; do [[ -e $f ]] || { echo "missing $f" >&2; exit 2; }; done

read -r -a configs <<< "${PEER_CONFIGS:-glibc mimalloc jemalloc gcm-fast gcm-fast-noprof gcm-leakcheck gcm-gc}"
read -r -a workloads <<< "${PEER_WORKLOADS:-larson xmalloc cscratch cthrash mstress sh6 simple churn realloc burst}"
threads=${PEER_THREADS:-2}
extra=${PEER_ENV:-}
base=${PEER_BASE:-}


run() { # config workload -> "nanoseconds peak-KiB [rss-after-KiB]"
    local e t0 t1 out
    e=$(env_for "$1")
    out=$tmp/out.$1.$2
    t0=$(date +%s%N)
    env $e timeout 300 "$pa" "$2" "$threads" > "$out" 2> "$tmp/err.$1.$2" || {
        echo "peer_alloc $2 failed under $1:" >&2; cat "$tmp/err.$1.$2" >&2; exit 1; }
    t1=$(date +%s%N)
    awk -v ns=$((t1 - t0)) '/^Benchmark/ { for (i = 1; i <= NF; i++) {
            if ($i == "peak-KiB") pk = $(i - 1); if ($i == "rss-after-KiB") ra = $(i - 1) }
        print ns, pk, ra }' "$out"
}

declare -A times peaks afters
for ((r = 0; r < rounds; r++)); do
    for w in "${workloads[@]}"; do
        for c in "${configs[@]}"; do
            read -r ns pk ra <<< "$(run "$c" "$w")"
            times[$c.$w]+="$ns " peaks[$c.$w]+="$pk " afters[$c.$w]+="${ra:-0} "
        done
    done
done
# Every configuration must have passed the same checks as glibc.
for w in "${workloads[@]}"; do
    grep -v '^Benchmark' "$tmp/out.glibc.$w" > "$tmp/want" 2>/dev/null || cp /dev/null "$tmp/want"
    for c in "${configs[@]}"; do
        grep -v '^Benchmark' "$tmp/out.$c.$w" | cmp -s - "$tmp/want" || {
            echo "check line of $w under $c differs from glibc's" >&2; exit 1; }
    done
done

declare -A med mpk
echo "goos: linux"; echo "goarch: amd64"; echo "pkg: gcmalloc/bench/peer"
grep -m1 'model name' /proc/cpuinfo | sed 's/.*: /cpu: /'
[[ -n $extra ]] && echo "env: $extra"
for w in "${workloads[@]}"; do
    for c in "${configs[@]}"; do
        med[$c.$w]=$(echo "${times[$c.$w]}" | median)
        mpk[$c.$w]=$(echo "${peaks[$c.$w]}" | median)
        line=$(printf 'BenchmarkPeer/%s-%d/%s-%d %10d %14d ns/op %10d peak-KiB' \
            "$w" "$threads" "$c" "$(nproc)" "$rounds" "${med[$c.$w]}" "${mpk[$c.$w]}")
        [[ $w == burst ]] && line+=$(printf ' %10d rss-after-KiB' "$(echo "${afters[$c.$w]}" | median)")
        echo "$line"
    done
done
ratio_table "time × glibc" glibc med
ratio_table "time × mimalloc" mimalloc med
ratio_table "peak RSS × glibc" glibc mpk
