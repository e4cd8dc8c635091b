#!/usr/bin/env bash
# The hello example runs, lists its options, and survives bad option values
# with one warning line each.
set -euo pipefail
hello=$1
out=$("$hello" 2>&1)
grep -q "gcmalloc .* initialized" <<<"$out"
grep -q "GCMALLOC_VERBOSE" <<<"$out"

err=$(GCMALLOC_VERBOSE=maybe "$hello" 2>&1 >/dev/null)
n=$(grep -c 'GCMALLOC_VERBOSE="maybe"' <<<"$err" || true)
[[ $n == 1 ]] || { echo "expected one warning, got: $err" >&2; exit 1; }

# GCMALLOC_LOG sends diagnostics to a file instead of stderr.
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
err=$(GCMALLOC_LOG=$tmp/log GCMALLOC_VERBOSE=1 "$hello" 2>&1 >/dev/null)
[[ -z $err ]] || { echo "stderr not empty with GCMALLOC_LOG: $err" >&2; exit 1; }
grep -q "GCMALLOC_LOG .*$tmp/log" "$tmp/log"

# An unopenable log path falls back to stderr with one line.
err=$(GCMALLOC_LOG=/nonexistent/dir/log "$hello" 2>&1 >/dev/null)
grep -q 'GCMALLOC_LOG="/nonexistent/dir/log": cannot open' <<<"$err"
echo ok
