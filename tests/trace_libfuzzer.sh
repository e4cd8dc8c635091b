#!/usr/bin/env bash
# Runs the libFuzzer target (fuzz_trace.c) for a bounded time, seeded with
# the committed real logs.  New corpus entries go to a temporary directory:
# the source tree is never written.  Any crash, sanitizer report or broken
# invariant fails the test with libFuzzer's report.
set -euo pipefail
fuzz=$1 src=$2 seconds=${3:-20}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/corpus"
cd "$tmp" # crash-* files, if any, land here and are printed below
st=0
"$fuzz" -max_total_time="$seconds" -max_len=16384 -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 "$tmp/corpus" "$src/tests/data" > "$tmp/log" 2>&1 || st=$?
if (( st != 0 )); then
    tail -n 60 "$tmp/log" >&2
    for f in "$tmp"/crash-* "$tmp"/leak-* "$tmp"/timeout-*; do
        [[ -e $f ]] && { echo "input $f:" >&2; od -c "$f" | head -n 20 >&2; }
    done
    exit 1
fi
grep -E "^stat::number_of_executed_units" "$tmp/log"
echo "ok: ${seconds}s of libFuzzer without a finding"
