#!/usr/bin/env bash
# What GCMALLOC_POINTER_ALIGN costs: the preload library's gc and leakcheck
# modes with the collector looking for pointers at every 8th byte (bdwgc's
# own marking), every 4th (the default) and every byte, against glibc, on
# mt_alloc (allocation-heavy, a small live set), the sqlite3 workload of
# the preload tests, and trees (a 16 MiB pointer-dense live tree that every
# collection marks; trees-leak drops its short-lived trees instead of
# freeing them, so collections come every few rounds — gc mode and glibc
# only, since leakcheck would report them).  Runs are interleaved
# round-robin and repeated; medians in Go's benchmark format, then ratios.
#
# Usage: [MT_OPS=5000000] pointer_align.sh BUILD_DIR [ROUNDS]
set -euo pipefail
build=$1 rounds=${2:-5}
src=$(cd "$(dirname "$0")/.." && pwd)
lib=$build/libgcmalloc-preload.so
mt=$build/bench/mt_alloc trees=$build/bench/trees
source "$(dirname "$0")/allocators.sh" # median, ratio_table, run_rounds
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
for f in "$lib" "$mt" "$trees"; do [[ -e $f ]] || { echo "missing $f" >&2; exit 2; }; done
command -v sqlite3 >/dev/null || { echo "sqlite3 not installed" >&2; exit 2; }

configs=(glibc gc-8 gc-4 gc-1 leakcheck-8 leakcheck-4)
workloads=(mt_alloc-1 mt_alloc-2 sqlite3 trees trees-leak)
ops=${MT_OPS:-5000000}

env_of() {
    case $1 in
    glibc) echo "" ;;
    *) echo "LD_PRELOAD=$lib GCMALLOC_MODE=${1%-*} GCMALLOC_POINTER_ALIGN=${1##*-}" ;;
    esac
}

run() { # config workload -> prints nanoseconds, or - when not run
    if [[ $2 == trees-leak && $1 == leakcheck-* ]]; then echo -; return; fi
    local e t0 t1; e=$(env_of "$1")
    t0=$(date +%s%N)
    case $2 in
    mt_alloc-*) env $e "$mt" "${2#mt_alloc-}" "$ops" 1000 ;;
    sqlite3)    rm -f "$tmp/db"; env $e sqlite3 "$tmp/db" < "$src/tests/preload/sqlite_workload.sql" ;;
    trees)      env $e "$trees" 18 100 16 ;;
    trees-leak) env $e "$trees" 18 100 16 leak ;;
    esac > "$tmp/out.$1.$2" 2> "$tmp/err.$1.$2"
    t1=$(date +%s%N)
    echo $((t1 - t0))
}

declare -A times med
run_rounds times

echo "goos: linux"; echo "goarch: amd64"; echo "pkg: gcmalloc/bench/pointer_align"
grep -m1 'model name' /proc/cpuinfo | sed 's/.*: /cpu: /'
for w in "${workloads[@]}"; do
    for c in "${configs[@]}"; do
        med[$c.$w]=0
        if [[ ${times[$c.$w]} == *-* ]]; then continue; fi # not run
        m=$(echo "${times[$c.$w]}" | median)
        med[$c.$w]=$m
        printf 'BenchmarkPointerAlign/%s/%s-%d %10d %14d ns/op\n' \
            "$w" "$c" "$(nproc)" "$rounds" "$m"
    done
done
ratio_table workload glibc med " (× glibc)" | sed 's/ 0\.00 |/ - |/g'
for w in "${workloads[@]}"; do
    for m in gc leakcheck; do
        if [[ ${med[$m-8.$w]} == 0 ]]; then continue; fi
        awk -v a="${med[$m-4.$w]}" -v b="${med[$m-8.$w]}" -v w="$w" -v m="$m" \
            'BEGIN { printf "ratio %s %s-4 / %s-8 = %.3f\n", w, m, m, a / b }'
    done
done
