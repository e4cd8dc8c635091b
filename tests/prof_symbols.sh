#!/usr/bin/env bash
# GCMALLOC_PROFILE_SYMBOLS end to end, with the real reader.  A profile
# written in each mode must load in `go tool pprof -raw` and carry what the
# mode promises:
#   lines      functions, files and lines, the inlined make_node;
#   functions  every site by name, no file, no inlined frame;
#   none       no names at all, mappings with build IDs;
#   auto       in a short run, functions, with a comment saying why;
#              with interval dumps, lines from the first profile;
#              with the exit report, lines (the report reads them first).
# pprof runs with -symbolize=none, so that what is checked is what the
# profile carries, not names pprof found by itself.  Then, when the preload
# library is given, a plain program (sort) in the functions and none modes.
#
# Skips (exit 77) when `go` is not installed.
# Usage: prof_symbols.sh PROF_SITES [PRELOAD_LIB]
set -euo pipefail
bin=$1 preload=${2:-}
. "$(dirname "$0")/go_reader.sh"
unset GCMALLOC_PROFILE GCMALLOC_PROFILE_REPORT GCMALLOC_PROFILE_SYMBOLS

fail() { echo "FAIL: $*" >&2; exit 1; }

# raw FILE: pprof's -raw text of the profile as written.
raw() {
    go tool pprof -raw -symbolize=none "$1" 2>"$tmp/pprof.err" ||
        { cat "$tmp/pprof.err" >&2; fail "go tool pprof -raw $1"; }
}

# The located lines of raw text: "N: 0xADDR M=m [function file:line ...]".
locations() { sed -n '/^Locations/,/^Mappings/p' | sed '1d;$d'; }
first_mapping() { sed -n '/^Mappings/{n;p;q}'; }

# prof_sites at rate 1, 1/64 of its work: well under a second.
run_sites() { # mode dir
    mkdir -p "$2"
    if [[ $1 == auto ]]; then
        GCMALLOC_PROFILE_RATE=1 "$bin" "$2" 64 1
    else
        GCMALLOC_PROFILE_SYMBOLS=$1 GCMALLOC_PROFILE_RATE=1 "$bin" "$2" 64 1
    fi
    raw "$2/heap1.pb.gz" >"$2/raw.txt"
}

run_sites lines "$tmp/lines"
r=$tmp/lines/raw.txt
grep -q '^Comment: gcmalloc symbols=lines' "$r" || fail "lines: comment: $(head -3 "$r")"
grep -Eq ' make_node .*prof_sites\.c:[0-9]+ ' "$r" || fail "lines: the inlined make_node with its line"
grep -Eq ' churn_big .*prof_sites\.c:[0-9]+ ' "$r" || fail "lines: churn_big with its line"
[[ $(first_mapping <"$r") == *"[FN]"*"[IN]"* ]] || fail "lines: main mapping flags: $(first_mapping <"$r")"
echo "ok: lines"

run_sites functions "$tmp/functions"
r=$tmp/functions/raw.txt
grep -q '^Comment: gcmalloc symbols=functions: function names from symbol tables' "$r" ||
    fail "functions: comment: $(head -3 "$r")"
for f in churn_small churn_big leak_nodes main __libc_start_main; do
    locations <"$r" | grep -q " $f :0 " || fail "functions: no $f in $(locations <"$r")"
done
# Every location is named (the program's and libc's symbol tables cover
# all of them), none has a file, and the inlined make_node is not seen.
unnamed=$(locations <"$r" | awk 'NF < 4' | head -3)
[[ -z $unnamed ]] || fail "functions: unnamed locations: $unnamed"
locations <"$r" | grep -q 'prof_sites\.c' && fail "functions: a file name"
grep -q make_node "$r" && fail "functions: an inlined frame"
m=$(first_mapping <"$r")
[[ $m == *"[FN]" ]] || fail "functions: main mapping flags (want [FN] only): $m"
# pprof ranks the sites by these names.
go tool pprof -top -symbolize=none -sample_index=alloc_space "$tmp/functions/heap1.pb.gz" 2>/dev/null |
    awk '$6 == "churn_big" || $6 == "churn_small" || $6 == "leak_nodes" { printf "%s ", $6 }' >"$tmp/order"
[[ $(cat "$tmp/order") == "churn_big churn_small leak_nodes " ]] || fail "functions: -top order: $(cat "$tmp/order")"
echo "ok: functions"

run_sites none "$tmp/none"
r=$tmp/none/raw.txt
grep -q '^Comment: gcmalloc symbols=none' "$r" || fail "none: comment: $(head -3 "$r")"
named=$(locations <"$r" | awk 'NF > 3' | head -3)
[[ -z $named ]] || fail "none: named locations: $named"
m=$(first_mapping <"$r")
[[ $m =~ \ [0-9a-f]{40}\ *$ ]] || fail "none: main mapping with its build ID and no flags: $m"
echo "ok: none"

run_sites auto "$tmp/auto"
r=$tmp/auto/raw.txt
grep -q '^Comment: gcmalloc symbols=functions (auto: the process had run less than 1s)' "$r" ||
    fail "auto in a short run: comment: $(head -3 "$r")"
locations <"$r" | grep -q ' churn_big :0 ' || fail "auto: churn_big"
echo "ok: auto (short run: functions)"

# auto in a process that writes a series of profiles (here interval dumps,
# compared with -base): lines from the first, however short the run.
mkdir -p "$tmp/series"
GCMALLOC_PROFILE_RATE=1 GCMALLOC_PROFILE_INTERVAL=10s GCMALLOC_PROFILE="$tmp/series/exit.pb.gz" \
    "$bin" "$tmp/series" 64 1
raw "$tmp/series/heap1.pb.gz" >"$tmp/series/raw.txt"
grep -q '^Comment: gcmalloc symbols=lines' "$tmp/series/raw.txt" ||
    fail "auto with interval dumps: comment: $(head -3 "$tmp/series/raw.txt")"
echo "ok: auto (series of profiles: lines)"

# auto at exit with the text report asked for too: the report reads the
# DWARF anyway, so it is written first and the profile gets lines free.
mkdir -p "$tmp/report"
GCMALLOC_PROFILE_RATE=1 GCMALLOC_PROFILE_REPORT="$tmp/report/report.txt" \
    GCMALLOC_PROFILE="$tmp/report/exit.pb.gz" "$bin" "$tmp/report" 64 1
grep -Eq 'prof_sites\.c:[0-9]+' "$tmp/report/report.txt" || fail "auto: the report has no lines"
raw "$tmp/report/exit.pb.gz" >"$tmp/report/raw.txt"
grep -q '^Comment: gcmalloc symbols=lines' "$tmp/report/raw.txt" ||
    fail "auto with the exit report: comment: $(head -3 "$tmp/report/raw.txt")"
echo "ok: auto (exit report first: lines)"

[[ -n $preload ]] || exit 0
seq 1 3000 | sort -R >"$tmp/in.txt"
for mode in functions none; do
    LD_PRELOAD=$preload GCMALLOC_PROFILE=$tmp/sort.$mode.pb.gz GCMALLOC_PROFILE_RATE=1 \
        GCMALLOC_PROFILE_SYMBOLS=$mode sort "$tmp/in.txt" >/dev/null
    raw "$tmp/sort.$mode.pb.gz" >"$tmp/sort.$mode.txt"
done
r=$tmp/sort.functions.txt
grep -q '^Comment: gcmalloc symbols=functions' "$r" || fail "preload functions: comment"
locations <"$r" | grep -q ' __libc_start_main :0 ' || fail "preload functions: libc frames named"
r=$tmp/sort.none.txt
[[ -z $(locations <"$r" | awk 'NF > 3' | head -1) ]] || fail "preload none: named locations"
echo "ok: preload (sort), functions and none"
