#!/usr/bin/env bash
# gcmalloc-trace on fresh logs from a real gcmalloc program (trace_churn.c)
# run with GCMALLOC_GCTRACE: a steady one must read "stable", a leaking one
# "possible leak", with the gcmalloc pause rule chosen by itself, and the
# summary, CSV and SVG must agree with independent numbers (trace_check.py).
set -euo pipefail
churn=$1 tool=$2 src=$3
check=$src/tests/trace_check.py
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

GCMALLOC_GCTRACE=$tmp/steady.log "$churn" steady 1500 500 > /dev/null
GCMALLOC_GCTRACE=$tmp/leak.log "$churn" leak 2000 500 > /dev/null
python3 "$check" "$tool" "$tmp/steady.log" --rule gcmalloc --verdict "live heap is stable"
python3 "$check" "$tool" "$tmp/leak.log" --rule gcmalloc \
    --verdict "live heap grows steadily: possible leak"

# Forced cycles: one gcm_gc() every 500 ms, each a " (forced)" line.
forced=$(grep -c "(forced)$" "$tmp/leak.log")
(( forced >= 2 )) || { echo "FAIL: only $forced forced cycles" >&2; exit 1; }
"$tool" "$tmp/leak.log" | grep "^forced      $forced (gc " >/dev/null

# GCMALLOC_GCTRACE appends: two runs of the program, two runs in the log.
GCMALLOC_GCTRACE=$tmp/twice.log "$churn" steady 300 > /dev/null
GCMALLOC_GCTRACE=$tmp/twice.log "$churn" steady 300 > /dev/null
"$tool" "$tmp/twice.log" | grep "^runs        2 " >/dev/null
python3 "$check" "$tool" "$tmp/twice.log" --run 1 --rule gcmalloc
echo "ok: gcmalloc's own gctrace logs"
