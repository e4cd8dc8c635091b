#!/usr/bin/env bash
# End-to-end check of heap profiles with the real reader, `go tool pprof`.
#
# Runs tests/prof_sites.c (three known allocation sites: churn_small, 64-byte
# objects; churn_big, 256-byte objects with 3x the bytes; make_node, inlined
# into leak_nodes, 1 KiB objects that are never freed), twice:
#   - at GCMALLOC_PROFILE_RATE=1 (every allocation): figures within 5%;
#   - at the default rate (512 KiB) over ~1.1 GiB: figures within 25%, or
#     4.5 standard deviations of the sampling noise where that is wider;
# and checks that pprof loads the profiles (-raw), that -top ranks the sites
# correctly for each sample type with the expected values, that -base between
# the two phases' dumps shows only the leak growing, that the allocs view
# opens on alloc_space, that -tagfocus selects by kind, and that the exit
# profile and the text report appear.  Then examples/prof_demo.c (arenas,
# pools, the collected heap) for the kind and name labels as pprof reads
# them.
#
# Skips (exit 77) when `go` is not installed.
# Usage: prof_pprof.sh PROF_SITES PROF_DEMO
set -euo pipefail
bin=$1 demo=$2
. "$(dirname "$0")/go_reader.sh"
unset GCMALLOC_PROFILE GCMALLOC_PROFILE_RATE GCMALLOC_PROFILE_REPORT
# Files, lines and inlined frames are checked below: ask for them, as the
# runs are shorter than auto's second (prof_symbols.sh checks the modes).
export GCMALLOC_PROFILE_SYMBOLS=lines

fail() { echo "FAIL: $*" >&2; exit 1; }

pprof() { go tool pprof "$@" 2>"$tmp/pprof.err" || { cat "$tmp/pprof.err" >&2; fail "go tool pprof $*"; }; }

# flat value of function $3 in `-top` for sample index $2 of profile $1
# (extra pprof flags after); 0 when the function is not listed.
flat() {
    local file=$1 index=$2 fn=$3; shift 3
    pprof -top -unit=B -nodefraction=0 -nodecount=1000 -sample_index="$index" "$@" "$file" |
        awk -v fn="$fn" '$6 == fn { v = $1; sub(/B$/, "", v); print v; found = 1; exit }
                         END { if (!found) print 0 }'
}

# The order in which the three sites appear in -top (by flat value).
order() {
    pprof -top -nodefraction=0 -sample_index="$2" "$1" |
        awk '$6 == "churn_small" || $6 == "churn_big" || $6 == "make_node" { printf "%s ", $6 }'
}

within() { # actual expected tolerance-percent what
    awk -v a="$1" -v e="$2" -v t="$3" 'BEGIN { d = a - e; if (d < 0) d = -d; exit !(d <= e * t / 100) }' ||
        fail "$4: got $1, expected $2 within $3%"
}

# The tolerance for a figure built from about BYTES/RATE samples.  Sampling
# counts are Poisson, so the relative standard deviation is 1/sqrt(samples):
# 64 MiB at the default 512 KiB rate is 128 samples, sd 8.8%, and a fixed 25%
# bound (2.8 sd) fails one run in two hundred.  The bound is the run's
# tolerance or 4.5 sd, whichever is wider, so the check still catches a
# biased estimate (a missing or doubled scale) but not honest noise.
tol_for() { # expected-bytes
    awk -v b="$1" -v r="$rate" -v t="$tol" 'BEGIN {
        if (r > 1) { s = 450 / sqrt(b / r); if (s > t) t = int(s + 0.999) }
        print t }'
}

at_most() { # actual limit what
    awk -v a="$1" -v l="$2" 'BEGIN { if (a < 0) a = -a; exit !(a <= l) }' || fail "$3: got $1, expected at most $2"
}

check_run() { # dir tol n_small n_big n_leak_per_phase rate
    local d=$1 ns=$3 nb=$4 nl=$5
    tol=$2 rate=$6
    local h=$d/heap2.pb.gz
    # pprof's own validity checks, and the layout Go's heap profile has.
    pprof -raw "$h" >"$d/raw.txt"
    grep -q '^PeriodType: space bytes$' "$d/raw.txt" || fail "period type"
    grep -q "^Period: $rate\$" "$d/raw.txt" || fail "period (want $rate)"
    grep -q '^alloc_objects/count alloc_space/bytes inuse_objects/count inuse_space/bytes$' \
        "$d/raw.txt" || fail "sample types and their order"
    local first_map
    first_map=$(awk '/^Mappings/ { getline; print; exit }' "$d/raw.txt")
    [[ $first_map == *"$(basename "$bin")"* ]] || fail "main executable mapping first: $first_map"
    [[ $first_map =~ \ [0-9a-f]{40}\  ]] || fail "main mapping build-id: $first_map"
    [[ $first_map == *"[FN]"* ]] || fail "main mapping symbolized: $first_map"
    grep -q 'kind:\[gc\]' "$d/raw.txt" || fail "kind label"
    grep -q 'bytes:\[1024\]' "$d/raw.txt" || fail "bytes label"
    grep -q 'make_node .*prof_sites.c:[0-9]' "$d/raw.txt" || fail "inlined frame with file and line"

    local small=$((2 * ns)) big=$((2 * nb)) leak=$((2 * nl))
    # alloc_objects: churn_small (4 objects for churn_big's 3) > churn_big > leak
    [[ $(order "$h" alloc_objects) == "churn_small churn_big make_node " ]] ||
        fail "alloc_objects order: $(order "$h" alloc_objects)"
    within "$(flat "$h" alloc_objects churn_small)" "$small" "$(tol_for $((small * 64)))" "alloc_objects churn_small"
    within "$(flat "$h" alloc_objects churn_big)" "$big" "$(tol_for $((big * 256)))" "alloc_objects churn_big"
    within "$(flat "$h" alloc_objects make_node)" "$leak" "$(tol_for $((leak * 1024)))" "alloc_objects make_node"
    # alloc_space: churn_big (3x churn_small's bytes) > churn_small > leak
    [[ $(order "$h" alloc_space) == "churn_big churn_small make_node " ]] ||
        fail "alloc_space order: $(order "$h" alloc_space)"
    local sb bb
    sb=$(flat "$h" alloc_space churn_small)
    bb=$(flat "$h" alloc_space churn_big)
    within "$sb" $((small * 64)) "$(tol_for $((small * 64)))" "alloc_space churn_small"
    within "$bb" $((big * 256)) "$(tol_for $((big * 256)))" "alloc_space churn_big"
    within "$(awk -v a="$bb" -v b="$sb" 'BEGIN { printf "%.4f", a / b }')" 3 "$(tol_for $((small * 64)))" "alloc_space churn_big/churn_small"
    within "$(flat "$h" alloc_space make_node)" $((leak * 1024)) "$(tol_for $((leak * 1024)))" "alloc_space make_node"
    # inuse: only the leak holds memory after a collection.
    [[ $(order "$h" inuse_space) == make_node* ]] || fail "inuse_space order: $(order "$h" inuse_space)"
    [[ $(order "$h" inuse_objects) == make_node* ]] || fail "inuse_objects order"
    local li ls
    li=$(flat "$h" inuse_objects make_node)
    ls=$(flat "$h" inuse_space make_node)
    within "$li" "$leak" "$(tol_for $((leak * 1024)))" "inuse_objects make_node"
    within "$ls" $((leak * 1024)) "$(tol_for $((leak * 1024)))" "inuse_space make_node"
    at_most "$(flat "$h" inuse_space churn_small)" $((leak * 1024 / 20)) "inuse_space churn_small"
    at_most "$(flat "$h" inuse_space churn_big)" $((leak * 1024 / 20)) "inuse_space churn_big"
    # -base: between the phases only the leak grew, by one phase's worth.
    local gl
    gl=$(flat "$h" inuse_space make_node -base "$d/heap1.pb.gz")
    within "$gl" $((nl * 1024)) "$(tol_for $((nl * 1024)))" "-base growth of make_node"
    at_most "$(flat "$h" inuse_space churn_small -base "$d/heap1.pb.gz")" $((nl * 1024 / 20)) "-base churn_small"
    at_most "$(flat "$h" inuse_space churn_big -base "$d/heap1.pb.gz")" $((nl * 1024 / 20)) "-base churn_big"
    # The allocs view opens on alloc_space, the heap view on inuse_space.
    pprof -top "$d/allocs2.pb.gz" | grep '^Type: alloc_space$' >/dev/null || fail "allocs view type"
    pprof -top "$h" | grep '^Type: inuse_space$' >/dev/null || fail "heap view type"
    # -tagfocus by kind: everything here is the GC heap.
    [[ $(flat "$h" alloc_space churn_big -tagfocus=kind=gc) == "$bb" ]] || fail "tagfocus kind=gc"
    [[ $(flat "$h" alloc_space churn_big -tagfocus=kind=arena) == 0 ]] || fail "tagfocus kind=arena"
}

# Rate 1: every allocation recorded; 1/32 of the default work.
mkdir -p "$tmp/r1"
GCMALLOC_PROFILE_RATE=1 "$bin" "$tmp/r1" 32 2
check_run "$tmp/r1" 5 $((2000000 / 32)) $((1500000 / 32)) $((65536 / 32)) 1
echo "ok: rate 1, within 5%"

# Default rate over ~1.1 GiB of allocation; also the exit profile and the
# text report.
mkdir -p "$tmp/rd"
GCMALLOC_PROFILE="$tmp/rd/exit.%p.pb.gz" GCMALLOC_PROFILE_REPORT=1 \
    "$bin" "$tmp/rd" 1 2 2>"$tmp/rd/report.txt"
check_run "$tmp/rd" 25 2000000 1500000 65536 524288
echo "ok: default rate, within 25%"
exit_prof=$(ls "$tmp"/rd/exit.*.pb.gz)
pprof -raw "$exit_prof" >/dev/null
[[ $(order "$exit_prof" inuse_space) == make_node* ]] || fail "exit profile"
grep -q '^In use (inuse_space' "$tmp/rd/report.txt" || fail "report header: $(cat "$tmp/rd/report.txt")"
awk '/^In use/ { s = 1 } s && /make_node .*prof_sites.c:[0-9]+/ { ok = 1 } END { exit !ok }' \
    "$tmp/rd/report.txt" || fail "report in-use site"
awk '/^Allocated/ { s = 1 } s && / churn_big .*prof_sites.c/ { ok = 1 } END { exit !ok }' \
    "$tmp/rd/report.txt" || fail "report allocated site"
echo "ok: exit profile and report"

# Labels: arena allocations are kind=arena name=request; the GC heap's gc.
mkdir -p "$tmp/demo"
(cd "$tmp/demo" && GCMALLOC_PROFILE=heap.pb.gz "$demo" 500000 >/dev/null)
d=$tmp/demo/heap.pb.gz
pprof -tags -sample_index=alloc_space "$d" >"$tmp/demo/tags.txt"
grep -Eq '^ *kind: Total' "$tmp/demo/tags.txt" || fail "kind label: $(cat "$tmp/demo/tags.txt")"
grep -Eq '\): arena$' "$tmp/demo/tags.txt" || fail "kind=arena"
grep -Eq '\): gc$' "$tmp/demo/tags.txt" || fail "kind=gc"
grep -Eq '\): request$' "$tmp/demo/tags.txt" || fail "name=request"
pprof -top -tagfocus=kind=arena -sample_index=alloc_space "$d" | grep ' parse_request' >/dev/null ||
    fail "tagfocus kind=arena shows parse_request"
pprof -top -tagfocus=kind=arena -sample_index=alloc_space "$d" | grep ' new_session' >/dev/null &&
    fail "tagfocus kind=arena leaves out the GC heap's new_session"
pprof -top -tagfocus=name=request -sample_index=alloc_space "$d" | grep ' parse_request' >/dev/null ||
    fail "tagfocus name=request"
pprof -top "$d" | grep ' cache_put' >/dev/null || fail "in use at exit: the cache"
echo "ok: kind and name labels"
