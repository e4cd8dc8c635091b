#!/usr/bin/env bash
# leakcheck on a program with one planted leak: at GCMALLOC_PROFILE_RATE=1
# the report must name the leaking function with exactly the count and
# bytes it lost, and nothing else; the GCMALLOC_LEAKS profile must say the
# same to `go tool pprof` (skipped, exit 77, where Go is absent).
# Usage: planted_leak.sh PRELOAD_SO PLANTED_LEAK_BIN
set -euo pipefail
lib=$1 bin=$2
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
. "$(dirname "$0")/../go_env.sh"

LD_PRELOAD="$lib" GCMALLOC_MODE=leakcheck GCMALLOC_PROFILE_RATE=1 \
    GCMALLOC_LEAKS="$tmp/leaks.pb.gz" "$bin" > "$tmp/out" 2> "$tmp/err"
grep -q '^kept 100 records$' "$tmp/out"
cat "$tmp/err"

# The exit summary: exactly the planted leak.
grep -q 'leakcheck: at exit, 137 object(s), 137000 bytes' "$tmp/err" || {
    echo "FAIL: exit summary is not 137 objects, 137000 bytes"; exit 1; }
# One site, named, with its source line.
sites=$(sed -n '/leakcheck: at exit/,$p' "$tmp/err" | grep -c 'allocated at:' || true)
[[ $sites == 1 ]] || { echo "FAIL: $sites sites in the exit report, expected 1"; exit 1; }
sed -n '/leakcheck: at exit/,$p' "$tmp/err" | grep '137 object(s), 137000 bytes .*allocated at:' >/dev/null || {
    echo "FAIL: the site does not carry the exact count and bytes"; exit 1; }
sed -n '/leakcheck: at exit/,$p' "$tmp/err" | grep 'leak_records .*planted_leak.c:[0-9]' >/dev/null || {
    echo "FAIL: the site is not named leak_records with its line"; exit 1; }
if sed -n '/leakcheck: at exit/,$p' "$tmp/err" | grep 'not sampled' >/dev/null; then
    echo "FAIL: unsampled leaks at rate 1"; exit 1
fi

# A program that leaks nothing: no line at all (a process tree under
# leakcheck prints only the reports that matter), unless GCMALLOC_VERBOSE
# asks for the confirmation.
LD_PRELOAD="$lib" GCMALLOC_MODE=leakcheck GCMALLOC_LEAKS="$tmp/none.pb.gz" \
    /bin/echo clean > "$tmp/clean.out" 2> "$tmp/clean.err"
[[ ! -s $tmp/clean.err && -s $tmp/none.pb.gz ]] || {
    echo "FAIL: a clean run printed something or wrote no profile:"; cat "$tmp/clean.err"; exit 1; }
LD_PRELOAD="$lib" GCMALLOC_MODE=leakcheck GCMALLOC_VERBOSE=1 \
    /bin/echo clean > "$tmp/clean.out" 2> "$tmp/clean.err"
grep -q '^gcmalloc: leakcheck: no leaks' "$tmp/clean.err" || {
    echo "FAIL: GCMALLOC_VERBOSE=1 did not confirm a clean run:"; cat "$tmp/clean.err"; exit 1; }

need_go "the leak profile was not read by pprof"
go_env "$tmp"
go tool pprof -raw "$tmp/leaks.pb.gz" > /dev/null
top=$(go tool pprof -top -sample_index=inuse_space -unit=B "$tmp/leaks.pb.gz" 2>/dev/null)
echo "$top"
grep -E '^ *137000B +100% .*leak_records' <<<"$top" > /dev/null || {
    echo "FAIL: pprof does not show leak_records with 137000B in use"; exit 1; }
objs=$(go tool pprof -top -sample_index=inuse_objects "$tmp/leaks.pb.gz" 2>/dev/null)
grep -E '^ *137 +100% .*leak_records' <<<"$objs" > /dev/null || {
    echo "FAIL: pprof does not show 137 objects at leak_records"; echo "$objs"; exit 1; }
echo "ok: the planted leak is reported exactly (137 objects, 137000 bytes, leak_records)"
