#!/usr/bin/env bash
# gcmalloc-trace on fresh logs from a real Go program (trace_churn.go) run
# with GODEBUG=gctrace=1: its own stderr output interleaves with the
# gctrace lines, as in any real service.  Steady must read "stable", the
# leaking run "possible leak", with Go's pause rule chosen by itself; the
# summary, CSV and SVG must agree with independent numbers.
# Exits 77 (skipped) when Go is not installed.
set -euo pipefail
tool=$1 src=$2
check=$src/tests/trace_check.py
. "$(dirname "$0")/go_env.sh"
need_go
tmp=$(mktemp -d); trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
go_env "$tmp"
# Build first: under `go run`, the go command and the compiler would write
# gctrace lines of their own into the log.  One file of the standard
# library only: no module, no cgo.
GO111MODULE=off CGO_ENABLED=0 go build -o "$tmp/churn" "$src/tests/trace_churn.go"

GODEBUG=gctrace=1 "$tmp/churn" steady 1500 500 2> "$tmp/steady.log" > /dev/null
GODEBUG=gctrace=1 "$tmp/churn" leak 2000 500 2> "$tmp/leak.log" > /dev/null
python3 "$check" "$tool" "$tmp/steady.log" --rule go --verdict "live heap is stable"
python3 "$check" "$tool" "$tmp/leak.log" --rule go \
    --verdict "live heap grows steadily: possible leak"
# The program's own lines are counted, not lost: as other lines, or as
# malformed ones when one landed in the middle of a gctrace line (both
# write to stderr; where they split depends on scheduling).
own=$(grep -c "trace_churn: tick" "$tmp/leak.log")
counts=$("$tool" "$tmp/leak.log" | sed -n 's/^input .* \([0-9]*\) malformed, \([0-9]*\) other$/\1 \2/p')
read -r malformed other <<<"$counts"
(( other + malformed >= own )) || {
    echo "FAIL: $other other + $malformed malformed lines, $own program lines" >&2; exit 1; }
echo "ok: a Go program's gctrace logs"
