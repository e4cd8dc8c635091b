#!/usr/bin/env bash
# Smoke test of the strategy benchmarks (bench/strategies/): every family
# runs with a fixed iteration count (-benchtime Nx: no wall-clock budget, no
# timing asserted), its lines must be in Go's benchmark format, and every
# bad/good relation that is deterministic must hold (bench_strategies_check.py
# says which).  Then -memprofile: the profile must exist and, where Go is
# installed, `go tool pprof -raw` must load it and name the benchmark's
# allocation site (skipped with exit 77 when go is missing, after the rest
# has passed).
# Usage: bench_strategies.sh BENCH_STRATEGIES CHECK_PY
set -euo pipefail
bin=$1 check=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
unset GCMALLOC_GOGC GCMALLOC_MEMLIMIT GCMALLOC_PROFILE GCMALLOC_PROFILE_RATE

# Most families: 300 iterations are plenty for exact counts.
"$bin" -benchtime 300x -bench '^(StringBuild|SliceGrow|HashMap|Request|Boxing|Batching)/' > "$tmp/a.txt"
# Buffers: enough gets that one first-time miss per size class is < 3%.
"$bin" -benchtime 3000x -bench '^MsgBuffers/' > "$tmp/b.txt"
# Retention: more messages than the ring of 256 keeps.
"$bin" -benchtime 600x -bench '^Retention/' > "$tmp/c.txt"
# GC tuning: ~110 MB of churn, several cycles at every GOGC (the
# collector-off row keeps all of it).
"$bin" -benchtime 1500000x -bench '^GCTuning/' > "$tmp/d.txt"
cat "$tmp"/[abcd].txt
python3 "$check" "$tmp"/[abcd].txt

# Every family ran, and each Good row got its ratio against the Bad ones.
for fam in StringBuild SliceGrow HashMap Request MsgBuffers Boxing Retention Batching; do
    grep -q "^ratio $fam/Good" "$tmp"/[abc].txt || { echo "FAIL: no ratio line for $fam"; exit 1; }
done

# -memprofile, as go test writes it: Go's allocs profile after the run.
"$bin" -benchtime 20x -bench '^Boxing/GoodInline$' -memprofilerate 1 \
    -memprofile "$tmp/mem.pb.gz" > "$tmp/m.txt"
[[ -s $tmp/mem.pb.gz ]] || { echo "FAIL: -memprofile wrote nothing"; exit 1; }
# A bad flag value is refused, not ignored.
if "$bin" -memprofilerate -5 > /dev/null 2>&1; then
    echo "FAIL: -memprofilerate -5 accepted"; exit 1
fi

. "$(dirname "$0")/go_env.sh"
need_go "the -memprofile profile was not read by pprof"
go_env "$tmp"
go tool pprof -raw "$tmp/mem.pb.gz" > "$tmp/raw.txt"
# Go's allocs profile: the heap profile's four sample types, alloc_space
# the default view.
grep -q '^alloc_objects/count alloc_space/bytes\[dflt\] inuse_objects/count inuse_space/bytes$' \
    "$tmp/raw.txt" || { echo "FAIL: -memprofile is not Go's allocs profile"; exit 1; }
grep -q '^Period: 1$' "$tmp/raw.txt" || { echo "FAIL: -memprofilerate 1 not in the profile"; exit 1; }
top=$(go tool pprof -top -sample_index=alloc_objects "$tmp/mem.pb.gz" 2>/dev/null)
echo "$top"
# 20 ops of one allocation each (the n=1 probe does not run with -benchtime Nx).
grep -Eq '^ +20 +[0-9.]+% .* good_inline' <<< "$top" ||
    { echo "FAIL: pprof does not show good_inline's 20 allocations"; exit 1; }
echo "ok: -memprofile writes a Go allocs profile that pprof reads"
