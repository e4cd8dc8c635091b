#!/usr/bin/env bash
# gcmalloc-trace on the committed real logs (tests/data/): each summary,
# CSV and SVG checked against independent numbers (trace_check.py); then
# the command line itself: stdin, skipped-line numbers, several runs, exit
# statuses, CSV on stdout, and a hostile input.
set -euo pipefail
tool=$1 src=$2
data=$src/tests/data
check=$src/tests/trace_check.py
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

leak="live heap grows steadily: possible leak"
stable="live heap is stable"
python3 "$check" "$tool" "$data/gctrace-gcmalloc-leak.log" --rule gcmalloc --verdict "$leak"
python3 "$check" "$tool" "$data/gctrace-gcmalloc-steady.log" --rule gcmalloc --verdict "$stable"
python3 "$check" "$tool" "$data/gctrace-go1.19-leak.log" --rule go --verdict "$leak"
python3 "$check" "$tool" "$data/gctrace-go1.19-steady.log" --rule go --verdict "$stable"

# The Go log's split line and its program output, by line number.
out=$("$tool" "$data/gctrace-go1.19-leak.log")
grep -qx "            malformed lines: 42, 43" <<<"$out" || fail "malformed lines: $out"
grep -qx "            other lines: 1, 22, 34" <<<"$out" || fail "other lines: $out"
grep -q "^cycles      44 (gc 1 .. gc 45), 1 missing from the log$" <<<"$out" || fail "$out"

# Standard input gives the same summary as the file.
a=$("$tool" "$data/gctrace-go1.19-steady.log" | tail -n +2)
b=$("$tool" < "$data/gctrace-go1.19-steady.log" | tail -n +2)
c=$(cat "$data/gctrace-go1.19-steady.log" | "$tool" - | tail -n +2)
[[ $a == "$b" && $a == "$c" ]] || fail "stdin summary differs"
{ "$tool" < /dev/null || true; } | grep "^gcmalloc-trace: (stdin)$" >/dev/null # exit 1: no cycles

# A mixed input, with exact line numbers for what was skipped.
good() { echo "gc $1 @$2s 3%: 0.05+1.0+0.06 ms clock, 0.06+0/2.0/0+0.07 ms cpu, 8->8->4 MB, 8 MB goal, 0 MB stacks, 0 MB globals, 2 P"; }
{
    echo "server starting"                            # 1 other
    good 1 0.100                                      # 2
    echo "gc 2 @0.200s 3%: 0.05+1.0 ms clock"         # 3 malformed
    good 3 0.300                                      # 4
    echo "->8->4 MB, 8 MB goal, 0 MB stacks, 2 P"     # 5 malformed
    printf 'bin\0ary \xff\xfe junk\n'                 # 6 other
    good 4 0.400                                      # 7
    printf '%-*s\n' 9000 "gc 5 @0.5s"                 # 8 malformed, too long
    good 6 0.600                                      # 9
} > "$tmp/mixed.log"
out=$("$tool" "$tmp/mixed.log")
grep -q "^input       9 lines: 4 gctrace cycles, 3 malformed, 2 other$" <<<"$out" || fail "$out"
grep -qx "            malformed lines: 3, 5, 8" <<<"$out" || fail "$out"
grep -qx "            other lines: 1, 6" <<<"$out" || fail "$out"
grep -qx "            1 line longer than 4096 bytes, never taken as a cycle" <<<"$out" || fail "$out"
grep -q "^cycles      4 (gc 1 .. gc 6), 2 missing from the log$" <<<"$out" || fail "$out"

# Two runs in one file (GCMALLOC_GCTRACE appends): the last is analysed,
# --run picks the other; each matches its own file's numbers.
cat "$data/gctrace-gcmalloc-steady.log" "$data/gctrace-gcmalloc-leak.log" > "$tmp/two.log"
steady_lines=$(wc -l < "$data/gctrace-gcmalloc-steady.log")
out=$("$tool" "$tmp/two.log")
grep -q "^runs        2 (cycle numbers or times restart at line $((steady_lines + 1)));" <<<"$out" \
    || fail "runs: $out"
grep -q "^verdict     $leak$" <<<"$out" || fail "run 2 verdict: $out"
python3 "$check" "$tool" "$tmp/two.log" --run 1 --verdict "$stable"
python3 "$check" "$tool" "$tmp/two.log" --run 2 --verdict "$leak"

# --csv - puts the CSV alone on stdout.
"$tool" "$data/gctrace-go1.19-leak.log" --csv - > "$tmp/out.csv"
head -1 "$tmp/out.csv" | grep "^line,run,gc,t_s," >/dev/null
[[ $(wc -l < "$tmp/out.csv") == 45 ]] || fail "CSV rows"

# An explicit rule is used and said so.
out=$("$tool" --stw=all "$data/gctrace-go1.19-leak.log")
grep -qx "            stop-the-world rule all: A + B + C (set by --stw)" <<<"$out" \
    || fail "--stw: $out"

# Exit statuses: 1 without cycles, 2 on usage and I/O errors.
st=0; "$tool" < /dev/null > "$tmp/o" || st=$?; [[ $st == 1 ]] || fail "empty input: $st"
grep -q "^cycles      0: no gctrace lines found$" "$tmp/o"
for args in "--bogus" "--stw=never x" "--run 0" "--run 3 $data/gctrace-go1.19-leak.log" \
            "/nonexistent/log" "a b" "--svg"; do
    st=0; "$tool" $args > /dev/null 2>&1 || st=$?
    [[ $st == 2 ]] || fail "'$args' exited $st, want 2"
done
st=0; "$tool" "$data/gctrace-go1.19-leak.log" --svg /nonexistent/dir/x.svg > /dev/null 2>&1 || st=$?
[[ $st == 2 ]] || fail "unwritable SVG exited $st"
"$tool" --help | grep "^usage: gcmalloc-trace" >/dev/null

# A hostile input: terminal escapes, NULs, a gctrace line with numbers far
# past 64 bits.  The summary echoes none of it.
{
    printf '\033[2J\033]0;pwned\007 gc 1 @0.1s\n'
    printf 'gc 99999999999999999999999 @1.0s 1%%: 1+1+1 ms clock, 1+0/1/0+1 ms cpu, 1->1->1 MB, 4 MB goal, 2 P\n'
    good 1 0.100
} > "$tmp/hostile.log"
"$tool" "$tmp/hostile.log" --svg "$tmp/h.svg" --title $'evil \033 <title> & "quotes"' > "$tmp/h.txt"
if LC_ALL=C grep -q $'[\001-\011\013-\037\177]' "$tmp/h.txt"; then fail "control bytes in the summary"; fi
python3 -c 'import sys, xml.etree.ElementTree as E; E.parse(sys.argv[1])' "$tmp/h.svg"
echo "ok: gcmalloc-trace on committed logs and crafted inputs"
