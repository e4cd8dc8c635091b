#!/usr/bin/env bash
# The demo (demo/) in a tiny configuration: it must complete, print the
# table with a row per strategy, find the same responses in all four runs,
# write a profile per strategy and a gctrace log per gcmalloc strategy that
# collected, and point both the leak check and the profiler's leak suspects
# at the planted leak (the activity log allocated in session_new,
# demo/session.c, never freed by the malloc build).  Where Go is installed,
# every profile must load in `go tool pprof -raw` and the leak profile must
# name session_new; otherwise exit 77 after the rest has passed.
# Usage: demo_smoke.sh GCMALLOC_DEMO GCMALLOC_TRACE SOURCE_DIR
set -euo pipefail
demo=$1 trace=$2 src=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

# 4,000 requests per strategy; the profiled malloc run needs a second of
# growth for a leak suspect (ten snapshots 100 ms apart), plus the session
# cache's warm-up; the leak check needs only some evictions.
"$demo" --requests 4000 --threads 2 --leak-seconds 2 --leak-requests 40000 --out "$tmp/out" > "$tmp/stdout" ||
    { cat "$tmp/stdout"; for f in "$tmp"/out/*.err "$tmp"/out/*.log; do
          [[ -f $f ]] && { echo "--- $f"; head -40 "$f"; }; done; fail "gcmalloc-demo exited $?"; }
cat "$tmp/stdout"
o=$tmp/out

# The table: a header and one row per strategy, every figure a number.
grep -Eq '^strategy +req/s +CPU us +p50 us +p99 us +p99.9 us +max ms +peak RSS +allocs +GCs +GC CPU$' \
    "$tmp/stdout" || fail "no table header"
for s in malloc gc arena pool; do
    row=$(grep -E "^$s +[0-9]" "$tmp/stdout") || fail "no table row for $s"
    # req/s cpu p50 p99 p99.9 max rss MiB allocs gcs gccpu
    awk '{ for (i = 2; i <= 8; i++) if ($i !~ /^[0-9.]+$/) exit 1;
           if ($9 != "MiB" || $10 !~ /^[0-9.]+$/ || $11 !~ /^[0-9]+$/) exit 1 }' <<< "$row" ||
        fail "malformed row: $row"
done
allocs() { grep -E "^$1 +[0-9]" "$tmp/stdout" | awk '{ print $10 }'; }
# Allocator calls per request: malloc and the collected heap make every
# object; an arena and pools make almost none.
awk -v m="$(allocs malloc)" -v g="$(allocs gc)" -v a="$(allocs arena)" -v p="$(allocs pool)" \
    'BEGIN { exit !(m > 40 && g > 40 && a * 4 < m && p * 4 < m) }' ||
    fail "allocs/request: malloc $(allocs malloc), gc $(allocs gc), arena $(allocs arena), pool $(allocs pool)"
grep -q 'Responses: identical in all four runs' "$tmp/stdout" || fail "responses differ between strategies"

# The leak, as both tools report it.
sed -n '/The leak check/,/^Profiles/p' "$tmp/stdout" > "$tmp/check"
grep -q 'leakcheck: at exit, [0-9]* object(s)' "$tmp/check" || fail "no leak-check exit report"
grep -Eq 'session_new .*demo/session.c:[0-9]+' "$tmp/check" || fail "the leak check does not name session_new"
sed -n '/leak suspects/,/The leak check/p' "$tmp/stdout" > "$tmp/suspect"
grep -q 'leak suspect: in-use bytes at this allocation site grew' "$tmp/suspect" ||
    fail "no leak suspect from the profiler"
grep -Eq 'session_new .*demo/session.c:[0-9]+' "$tmp/suspect" || fail "the leak suspect is not session_new"
# The leak check's site and the suspect's are the same line.
l1=$(grep -Eo 'session_new [^ ]*demo/session.c:[0-9]+' "$tmp/check" | head -1)
l2=$(grep -Eo 'session_new [^ ]*demo/session.c:[0-9]+' "$tmp/suspect" | head -1)
[[ $l1 == "$l2" ]] || fail "the tools point at different lines: $l1 / $l2"
# ... and that line is the activity log's allocation.
line=${l1##*:}
sed -n "${line}p" "$src/demo/session.c" | grep 'activity' >/dev/null ||
    fail "session.c:$line is not the activity log's allocation"

# Files: a profile per strategy, the leak profile, gctrace logs that the
# analyzer reads (the malloc build has no collector; pool collects nothing
# in so short a run).
for f in heap-malloc.pb.gz heap-gc.pb.gz heap-arena.pb.gz heap-pool.pb.gz leaks-malloc.pb.gz; do
    [[ -s $o/$f ]] || fail "$f missing"
    grep -q "go tool pprof .*$o/$f" "$tmp/stdout" || fail "no pprof command for $f"
done
# The profiled malloc run's numbered dumps, and the -base command over them.
[[ -s $o/heap-malloc.pb.gz.1 && -s $o/heap-malloc.pb.gz.2 ]] || fail "no numbered malloc profiles"
base=$(grep -Eo "go tool pprof -top -base $o/heap-malloc.pb.gz.1 $o/heap-malloc.pb.gz.[0-9]+" \
    "$tmp/stdout") || fail "no -base command"
for log in gctrace-gc.log gctrace-malloc-leakcheck.log; do
    [[ -s $o/$log ]] || fail "$log empty"
    "$trace" "$o/$log" > "$tmp/trace.txt" || fail "gcmalloc-trace cannot read $log"
    grep -q "$trace $o/$log" "$tmp/stdout" || fail "no gcmalloc-trace command for $log"
done

. "$(dirname "$0")/go_env.sh"
need_go "the profiles were not read by pprof"
go_env "$tmp"
for f in heap-malloc.pb.gz heap-malloc.pb.gz.1 heap-gc.pb.gz heap-arena.pb.gz heap-pool.pb.gz \
         leaks-malloc.pb.gz; do
    go tool pprof -raw "$o/$f" > /dev/null 2> "$tmp/err" || { cat "$tmp/err"; fail "pprof cannot load $f"; }
done
top=$(go tool pprof -top -sample_index=inuse_space "$o/leaks-malloc.pb.gz" 2>/dev/null)
echo "$top"
awk '$6 == "session_new" && $2 ~ /^100(\.0+)?%$/ { found = 1 } END { exit !found }' <<< "$top" ||
    fail "the leak profile does not put all leaked bytes at session_new"
# What grew between the first and the last dump: the leak, at the top.
grew=$($base 2>/dev/null)
echo "$grew"
awk '$6 == "session_new" { found = 1 } END { exit !found }' <<< "$(sed -n '/flat%/,$p' <<< "$grew" | sed -n 2p)" ||
    fail "-base does not put session_new first"
echo "ok: the demo ran every strategy, and both tools point at the planted leak"
