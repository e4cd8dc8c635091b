#!/usr/bin/env bash
# The malloc family's contract under the preload library, in every mode.
# leakcheck refuses a free its tracking proves wrong.  Also: the collected
# modes refuse a program's handler for the collector's
# signals with one clear line, leave every other signal (SIGXCPU, SIGPWR)
# to the program, and fast mode leaves signals alone; xz, which catches
# SIGXCPU, round-trips a file in the collected modes.  And
# GCMALLOC_UNTRACKED_LIBS takes a list, and refuses a path with one line.
# Usage: preload_contract.sh PRELOAD_SO CONTRACT_BIN SIGBLOCK_BIN
set -euo pipefail
lib=$1 bin=$2 sigblock=$3
"$bin" > /dev/null   # the reference: glibc's malloc passes too
for mode in fast leakcheck gc; do
    out=$(LD_PRELOAD="$lib" GCMALLOC_MODE="$mode" "$bin" 2>&1) || {
        echo "FAIL in mode $mode:"; echo "$out"; exit 1; }
    grep -q '^ok$' <<<"$out" || { echo "FAIL in mode $mode: $out"; exit 1; }
    # Every allocation sampled: the profiler's slow path keeps errno too.
    LD_PRELOAD="$lib" GCMALLOC_MODE="$mode" GCMALLOC_PROFILE_RATE=1 "$bin" > /dev/null || {
        echo "FAIL in mode $mode at GCMALLOC_PROFILE_RATE=1"; exit 1; }
    # gc mode with the collector running all the time: GOGC=1.
    if [[ $mode == gc ]]; then
        LD_PRELOAD="$lib" GCMALLOC_MODE=gc GCMALLOC_GOGC=1 "$bin" > /dev/null
    fi
done
# glibc's SIGEV_THREAD timer threads, created behind the interposer, as the
# collector's first other thread (a fresh process each time).
"$bin" timer-threads > /dev/null
for mode in fast leakcheck gc; do
    out=$(LD_PRELOAD="$lib" GCMALLOC_MODE="$mode" "$bin" timer-threads 2>&1) &&
        grep -q '^ok$' <<<"$out" || { echo "FAIL: timer threads in mode $mode: $out"; exit 1; }
done
# leakcheck refuses a second free and a free inside a block, one line each
# naming free and the caller, and hands no block out twice afterwards.
out=$(LD_PRELOAD="$lib" GCMALLOC_MODE=leakcheck "$bin" bad-frees 2>&1) || {
    echo "FAIL: bad frees in leakcheck mode: $out"; exit 1; }
[[ $(grep -c '^gcmalloc: misuse: free(0x[0-9a-f]*): not a block from malloc, or freed already; left alone (at .*contract' <<<"$out") == 2 ]] &&
    grep -q '^ok$' <<<"$out" || { echo "FAIL: bad frees in leakcheck mode should be two lines: $out"; exit 1; }
# GCMALLOC_UNTRACKED_LIBS: a list that names the stand-in libjvm.so among
# others still keeps its memory; a path instead of a file name is refused
# with one line naming the variable, and the default (libjvm.so) is used.
LD_PRELOAD="$lib" GCMALLOC_MODE=gc GCMALLOC_GOGC=1 \
    GCMALLOC_UNTRACKED_LIBS="libfoo.so.1, libjvm.so" "$bin" > /dev/null || {
    echo "FAIL: GCMALLOC_UNTRACKED_LIBS with two names"; exit 1; }
out=$(LD_PRELOAD="$lib" GCMALLOC_MODE=gc GCMALLOC_GOGC=1 \
    GCMALLOC_UNTRACKED_LIBS=/usr/lib/libjvm.so "$bin" 2>&1) || {
    echo "FAIL: a bad GCMALLOC_UNTRACKED_LIBS: $out"; exit 1; }
[[ $(grep -c 'GCMALLOC_UNTRACKED_LIBS' <<<"$out") == 1 ]] &&
    grep -q 'GCMALLOC_UNTRACKED_LIBS.*/usr/lib/libjvm.so.*libjvm.so' <<<"$out" || {
    echo "FAIL: a bad GCMALLOC_UNTRACKED_LIBS should be one line: $out"; exit 1; }
# Signals: SIGXCPU and SIGPWR are the program's in every mode (the collector
# uses SIGRTMIN+6 and SIGRTMIN+5); a handler for one of the collector's own
# is refused in the collected modes with one line, and installed in fast.
handle() { # mode signal [env...]
    local mode=$1 sig=$2; shift 2
    env LD_PRELOAD="$lib" GCMALLOC_MODE="$mode" "$@" "$sigblock" handle "$sig" 2>&1
}
refused() { # mode signal output
    grep -q "^SIG$2 handler refused: Invalid argument\$" <<<"$3" &&
        grep -q "^gcmalloc: sigaction(SIG$2) refused with EINVAL: " <<<"$3" &&
        [[ $(grep -c 'refused' <<<"$3") == 2 ]] ||
        { echo "FAIL: $1 mode, SIG$2 should be refused with one line: $3"; exit 1; }
}
for mode in fast leakcheck gc; do
    for sig in XCPU PWR; do
        out=$(handle $mode $sig)
        [[ $out == "SIG$sig handler installed and ran" ]] || { echo "FAIL: $mode mode, SIG$sig: $out"; exit 1; }
    done
    out=$(handle $mode RTMIN+6)
    if [[ $mode == fast ]]; then
        [[ $out == "SIGRTMIN+6 handler installed and ran" ]] || { echo "FAIL: fast mode, SIGRTMIN+6: $out"; exit 1; }
    else
        refused $mode RTMIN+6 "$out"
    fi
done
# bdwgc's own pair, chosen with the option: then SIGXCPU is the collector's.
refused gc XCPU "$(handle gc XCPU GCMALLOC_GC_SIGNALS=SIGPWR,SIGXCPU)"
# A real program that catches SIGXCPU: xz, round trip, in the collected modes.
if command -v xz > /dev/null; then
    tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
    seq 1 300000 > "$tmp/in"
    for mode in leakcheck gc; do
        LD_PRELOAD="$lib" GCMALLOC_MODE=$mode xz -T2 -c "$tmp/in" > "$tmp/in.xz" 2> "$tmp/err" &&
            LD_PRELOAD="$lib" GCMALLOC_MODE=$mode xz -dc "$tmp/in.xz" 2>> "$tmp/err" | cmp -s - "$tmp/in" &&
            ! grep -v '^gcmalloc: leakcheck' "$tmp/err" | grep -q . ||
            { echo "FAIL: xz in $mode mode:"; cat "$tmp/err"; exit 1; }
    done
fi
echo "ok: the malloc family keeps its contract in fast, leakcheck and gc modes"
