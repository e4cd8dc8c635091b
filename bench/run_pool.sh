#!/usr/bin/env bash
# Runs the pool benchmarks once and prints them side by side with ratios:
# bench_pool on 1 and 2 threads (gcmalloc's pools, mi_malloc+mi_free, glibc
# malloc+free) and, where Go is installed, Go's sync.Pool on the same
# workloads (bench/go, a module with no dependencies, run offline).
#
#   bench/run_pool.sh [BUILD_DIR] [BENCHTIME]        (defaults: build 1s)
#
# Raw lines (Go's benchmark format) go to BUILD_DIR/bench/pool-*.txt; the
# table goes to stdout.  Ratios are of ns/op (below 1: gcmalloc is faster);
# "2-thread speedup" is ns/op on 1 thread over ns/op on 2 (throughput).
set -euo pipefail
build=$(cd "${1:-build}" && pwd)
bt=${2:-1s}
here=$(cd "$(dirname "$0")" && pwd)
out=$build/bench
bin=$out/bench_pool
[[ -x $bin ]] || { echo "run_pool.sh: build $bin first" >&2; exit 1; }

"$bin" -cpu 1 -benchtime "$bt" | tee "$out/pool-c1.txt" >&2
"$bin" -cpu 2 -benchtime "$bt" | tee "$out/pool-c2.txt" >&2
: > "$out/pool-go.txt"
. "$here/../tests/go_env.sh"
if have_go; then
    # Offline and self-contained (go_env.sh), with the caches in the build
    # tree so that a rerun does not compile again.
    (cd "$here/go" && go_env "$build/go" &&
        go test -mod=mod -bench . -benchmem -cpu 1,2 -benchtime "$bt") |
        tee "$out/pool-go.txt" >&2
else
    echo "run_pool.sh: go not found; Go's sync.Pool column left empty" >&2
fi

# The table (python3 is among the build dependencies).
python3 - "$out/pool-c1.txt" "$out/pool-c2.txt" "$out/pool-go.txt" <<'EOF'
import re, sys
def parse(path):
    rows = {}
    for line in open(path):
        m = re.match(r'Benchmark(\S+?)(?:-(\d+))?\s+\d+\s+([\d.]+) ns/op(.*)', line)
        if not m:
            continue
        name, p, ns, rest = m.group(1), int(m.group(2) or 1), float(m.group(3)), m.group(4)
        hit = re.search(r'([\d.]+) hit%', rest)
        rows[(name, p)] = (ns, float(hit.group(1)) if hit else None)
    return rows
c = {}
c.update(parse(sys.argv[1]))
c.update(parse(sys.argv[2]))
g = parse(sys.argv[3])
def ns(d, k):
    return d[k][0] if k in d else None
def f(x, fmt='%.2f'):
    return fmt % x if x is not None else 'n/a'
def r(a, b):
    return '%.2f' % (a / b) if a is not None and b else 'n/a'

print('| workload | threads | gcmalloc ns/op | mi_malloc+mi_free | glibc malloc+free | Go sync.Pool | vs mimalloc | vs glibc | vs Go |')
print('|---|---|---|---|---|---|---|---|---|')
for p in (1, 2):
    a = ns(c, ('PoolGetPut', p))
    m = ns(c, ('MiMallocFree', p))
    l = ns(c, ('GlibcMallocFree', p))
    o = ns(g, ('PoolGetPut', p))
    print('| Get+Put hit path, 128 B | %d | %s | %s | %s | %s | %s | %s | %s |' %
          (p, f(a), f(m), f(l), f(o), r(a, m), r(a, l), r(a, o)))
for p in (1, 2):
    for size in (64, 256, 1024, 4096, 16384, 32768):
        a = ns(c, ('BufGetPut/%d' % size, p))
        m = ns(c, ('BufMiMalloc/%d' % size, p))
        l = ns(c, ('BufGlibcMalloc/%d' % size, p))
        o = ns(g, ('BufGetPut/%d' % size, p))
        print('| buffer Get+Put, %d B | %d | %s | %s | %s | %s | %s | %s | %s |' %
              (size, p, f(a), f(m), f(l), f(o), r(a, m), r(a, l), r(a, o)))
print()
a1, a2 = ns(c, ('PoolGetPut', 1)), ns(c, ('PoolGetPut', 2))
o1, o2 = ns(g, ('PoolGetPut', 1)), ns(g, ('PoolGetPut', 2))
print('2-thread speedup of the hit path: gcmalloc %s, Go %s' % (r(a1, a2), r(o1, o2)))
for p in (1, 2):
    k = ('Requests', p)
    if k in c and c[k][1] is not None:
        print('request workload, %d thread(s): %.2f ns/request, pool hit rate %.2f%%' %
              (p, c[k][0], c[k][1]))
EOF
