#!/usr/bin/env bash
# A second reader besides `go tool pprof`: protoc, decoding with the
# profile.proto Debian ships (golang-github-google-pprof-dev), as any
# program built on the schema decodes.  Unlike pprof's own decoder it is a
# strict proto3 one (it rejects, for one, a string that is not UTF-8), and
# it shows the fields as written, so the checks here are of the file
# itself: the header Go's heap profiles have, ids non-zero and unique,
# every reference resolved, names readable, totals exact at rate 1.
#
# Profiles: tests/prof_sites.c's heap and allocs dumps and its exit profile
# (GCMALLOC_PROFILE), and, under the preload library, the leak profile
# (GCMALLOC_LEAKS) of tests/preload/planted_leak.c run from a directory
# whose name is not UTF-8.
#
# Skips (exit 77) where protoc or profile.proto is missing.
# Usage: protoc_reader.sh PROF_SITES [PRELOAD_SO PLANTED_LEAK]
set -euo pipefail
sites=$1 preload=${2:-} leak_bin=${3:-}
proto_dir=/usr/share/gocode/src/github.com/google/pprof/proto
if ! command -v protoc >/dev/null 2>&1 || [[ ! -f $proto_dir/profile.proto ]]; then
    echo "SKIP: protoc or $proto_dir/profile.proto is missing" \
         "(make test installs protobuf-compiler and golang-github-google-pprof-dev)"
    exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
unset GCMALLOC_PROFILE GCMALLOC_PROFILE_RATE GCMALLOC_PROFILE_REPORT LD_PRELOAD
export GCMALLOC_PROFILE_SYMBOLS=lines

fail() { echo "FAIL: $*" >&2; exit 1; }

# check FILE VIEW [KEY=VALUE...]: decodes FILE, then checks it; VIEW is
# heap or allocs; each KEY=VALUE is a total to match exactly
# (inuse_space=4194304) or names=N (at least N functions named).
check() {
    local f=$1; shift
    zcat "$f" | protoc -I"$proto_dir" --decode=perftools.profiles.Profile profile.proto \
        >"$tmp/decoded.txt" 2>"$tmp/protoc.err" ||
        { cat "$tmp/protoc.err" >&2; fail "protoc cannot decode $f"; }
    python3 - "$tmp/decoded.txt" "$@" <<'EOF' || fail "$f"
import re, sys
text = open(sys.argv[1], encoding="utf-8").read()
view, wants = sys.argv[2], dict(a.split("=") for a in sys.argv[3:])
bad = []
def check(ok, what):
    if not ok:
        bad.append(what)

# protoc's text format: top-level scalars and messages, one level deep
# each (Line inside Location is the only nesting read here).
def unquote(s):
    return bytes(s, "utf-8").decode("unicode_escape").encode("latin-1").decode("utf-8")
strings = [unquote(m) for m in re.findall(r'^string_table: "(.*)"$', text, re.M)]
def blocks(name):
    return re.findall(r"^%s \{\n(.*?)^\}" % name, text, re.M | re.S)
def ints(block, field):
    return [int(v) for v in re.findall(r"^\s*%s: (-?\d+)$" % field, block, re.M)]
def one(block, field):
    v = ints(block, field)
    return v[0] if v else 0
def s(i):
    check(0 <= i < len(strings), "string index %d out of range" % i)
    return strings[i] if 0 <= i < len(strings) else ""

check(strings and strings[0] == "", 'string_table[0] is ""')
types = [(s(one(b, "type")), s(one(b, "unit"))) for b in blocks("sample_type")]
check(types == [("alloc_objects", "count"), ("alloc_space", "bytes"),
                ("inuse_objects", "count"), ("inuse_space", "bytes")],
      "sample types %s" % types)
pt = blocks("period_type")
check(len(pt) == 1 and (s(one(pt[0], "type")), s(one(pt[0], "unit"))) == ("space", "bytes"),
      "period_type")
top = "\n".join(l for l in text.splitlines() if not l.startswith(" "))
check(one(top, "period") > 0, "period")
dst = ints(top, "default_sample_type")
want_dst = "alloc_space" if view == "allocs" else ""
check(s(dst[0] if dst else 0) == want_dst, "default_sample_type %s" % dst)
check(one(top, "time_nanos") > 0, "time_nanos")

def ids(kind):
    got = [one(b, "id") for b in blocks(kind)]
    check(all(got) and len(set(got)) == len(got), "%s ids non-zero and unique" % kind)
    return set(got)
maps, locs, fns = ids("mapping"), ids("location"), ids("function")
for b in blocks("mapping"):
    s(one(b, "filename")), s(one(b, "build_id"))
for b in blocks("function"):
    check(s(one(b, "name")) != "", "a function without a name")
    check(not s(one(b, "name")).startswith("_Z"), "a mangled name: %s" % s(one(b, "name")))
    s(one(b, "system_name")), s(one(b, "filename"))
for b in blocks("location"):
    m = one(b, "mapping_id")
    check(m == 0 or m in maps, "location mapping %d" % m)
    for f in ints(b, "function_id"):
        check(f in fns, "location function %d" % f)
totals = [0, 0, 0, 0]
samples = blocks("sample")
for b in samples:
    vals = ints(b, "value")
    check(len(vals) == 4, "a sample with %d values" % len(vals))
    totals = [t + v for t, v in zip(totals, vals)]
    for l in ints(b, "location_id"):
        check(l in locs, "sample location %d" % l)
    for k in ints(b, "key"):
        s(k)
    for k in ints(b, "str"):
        s(k)
named = sum(1 for b in blocks("function") if s(one(b, "name")))
for k, v in wants.items():
    if k == "names":
        check(named >= int(v), "%d functions named, expected at least %s" % (named, v))
    elif k == "path":
        check(any(v in x for x in strings), "no string contains %r" % v)
    else:
        got = totals[[t for t, _ in types].index(k)]
        check(got == int(v), "%s total %d, expected %s" % (k, got, v))
if bad:
    print("\n".join(sorted(set(bad))))
    sys.exit(1)
print("ok: %d samples, %d locations, %d functions, totals %s" %
      (len(samples), len(locs), len(fns), totals))
EOF
}

# Rate 1: every allocation recorded, so the totals are exact.  prof_sites
# at 1/32 scale, two phases: 62500 + 46875 churning objects a phase, 2048
# leaked 1 KiB nodes a phase.
mkdir -p "$tmp/r1"
GCMALLOC_PROFILE_RATE=1 GCMALLOC_PROFILE="$tmp/r1/exit.pb.gz" "$sites" "$tmp/r1" 32 2
alloc_objects=$((2 * (62500 + 46875) + 4096))
for f in heap2 allocs2 exit; do
    view=heap; [[ $f == allocs2 ]] && view=allocs
    check "$tmp/r1/$f.pb.gz" "$view" alloc_objects=$alloc_objects inuse_objects=4096 \
        inuse_space=$((4096 * 1024)) names=4
done

# The leak profile, of a program whose path is not UTF-8 (bytes a
# strict decoder refuses in a string): exactly the planted leak.
if [[ -n $preload && -n $leak_bin ]]; then
    odd="$tmp/caf$(printf '\xe9')"
    mkdir -p "$odd"
    cp "$leak_bin" "$odd/planted_leak"
    LD_PRELOAD="$preload" GCMALLOC_MODE=leakcheck GCMALLOC_PROFILE_RATE=1 \
        GCMALLOC_LEAKS="$tmp/leaks.pb.gz" "$odd/planted_leak" >/dev/null 2>"$tmp/leak.err" ||
        { cat "$tmp/leak.err" >&2; fail "planted_leak under leakcheck"; }
    check "$tmp/leaks.pb.gz" heap alloc_objects=137 inuse_objects=137 inuse_space=137000 \
        names=2 path="/caf"$'\xef\xbf\xbd'"/planted_leak"
fi
echo "ok: protoc reads every profile"
