#!/usr/bin/env bash
# The malloc family's contract under the preload library, in every mode.
# Also: the collected modes refuse a program's handler for the collector's
# signals with one clear line, and fast mode leaves signals alone.
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
for mode in fast leakcheck gc; do
    out=$(LD_PRELOAD="$lib" GCMALLOC_MODE="$mode" "$sigblock" xcpu 2>&1)
    if [[ $mode == fast ]]; then
        [[ $out == "SIGXCPU handler installed" ]] || { echo "FAIL: fast mode, SIGXCPU: $out"; exit 1; }
    else
        grep -q '^SIGXCPU handler refused: Invalid argument$' <<<"$out" &&
            grep -q '^gcmalloc: sigaction(SIGXCPU) refused with EINVAL: ' <<<"$out" ||
            { echo "FAIL: $mode mode, SIGXCPU: $out"; exit 1; }
        [[ $(grep -c 'refused' <<<"$out") == 2 ]] || { echo "FAIL: $mode mode, more than one line: $out"; exit 1; }
    fi
done
echo "ok: the malloc family keeps its contract in fast, leakcheck and gc modes"
