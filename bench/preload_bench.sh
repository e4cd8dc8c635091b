#!/usr/bin/env bash
# The preload library against glibc, Debian's mimalloc and jemalloc (each
# preloaded), on an allocation-heavy multithreaded program of ours
# (mt_alloc, 20 M malloc/free pairs per thread: long enough that the
# allocations, not the loading of the program, decide the time), on the
# sqlite3 workload of the preload tests, and on a program that only starts
# and exits (mt_alloc with one operation: what loading each allocator
# costs once per process).  Runs are
# interleaved round-robin over the configurations and repeated; the median
# of each is reported in Go's benchmark format (one op = one program run),
# then as ratios, because the machine is shared and noisy.
#
# Usage: [MT_OPS=20000000] preload_bench.sh BUILD_DIR [ROUNDS]
set -euo pipefail
build=$1 rounds=${2:-5}
src=$(cd "$(dirname "$0")/.." && pwd)
lib=$build/libgcmalloc-preload.so
mt=$build/bench/mt_alloc
source "$(dirname "$0")/allocators.sh" # mi, je, env_for, run_rounds
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
for f in "$lib" "$mt" "$mi" "$je"; do [[ -e $f ]] || { echo "missing $f" >&2; exit 2; }; done
command -v sqlite3 >/dev/null || { echo "sqlite3 not installed" >&2; exit 2; }

configs=(glibc mimalloc jemalloc gcm-fast gcm-fast-noprof gcm-leakcheck gcm-gc)
workloads=(start mt_alloc-1 mt_alloc-2 sqlite3)
ops=${MT_OPS:-20000000}


run() { # config workload -> prints nanoseconds
    local e; e=$(env_for "$1")
    local t0 t1
    t0=$(date +%s%N)
    case $2 in
    start)      env $e "$mt" 1 1 10 > "$tmp/out.$1.$2" 2> "$tmp/err" ;;
    mt_alloc-*) env $e "$mt" "${2#mt_alloc-}" "$ops" 1000 > "$tmp/out.$1.$2" 2> "$tmp/err" ;;
    sqlite3)  rm -f "$tmp/db"; env $e sqlite3 "$tmp/db" < "$src/tests/preload/sqlite_workload.sql" \
                  > "$tmp/out.$1.$2" 2> "$tmp/err" ;;
    esac
    t1=$(date +%s%N)
    echo $((t1 - t0))
}

declare -A times
run_rounds times

declare -A med
echo "goos: linux"; echo "goarch: amd64"; echo "pkg: gcmalloc/bench/preload"
grep -m1 'model name' /proc/cpuinfo | sed 's/.*: /cpu: /'
for w in "${workloads[@]}"; do
    for c in "${configs[@]}"; do
        m=$(echo "${times[$c.$w]}" | median)
        med[$c.$w]=$m
        printf 'BenchmarkPreload/%s/%s-%d %10d %14d ns/op\n' "$w" "$c" "$(nproc)" "$rounds" "$m"
    done
done
ratio_table workload glibc med " (× glibc)"
for w in "${workloads[@]}"; do
    awk -v a="${med[gcm-fast.$w]}" -v b="${med[mimalloc.$w]}" -v w="$w" \
        'BEGIN { printf "ratio %s gcm-fast / mimalloc = %.3f\n", w, a / b }'
    awk -v a="${med[gcm-leakcheck.$w]}" -v b="${med[glibc.$w]}" -v w="$w" \
        'BEGIN { printf "ratio %s gcm-leakcheck / glibc = %.3f\n", w, a / b }'
done
