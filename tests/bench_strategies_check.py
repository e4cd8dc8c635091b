#!/usr/bin/env python3
"""Checks bench_strategies output: Go's benchmark format, and what each
strategy family must show where it is deterministic.

The format (golang.org/design/14313-benchmark-format, as benchstat reads it):
a configuration line is "key: value" with a key free of spaces and upper
case; a result line is "BenchmarkName-P N value unit [value unit...]" with
an even number of fields (at least four), an integer N and float values;
every other line (comments, "ratio ..." lines) is ignored by readers, and
here must be one of those known kinds, so that nothing malformed slips by.

Never wall-clock time: only counts (allocs/op, B/op), GC cycles, hit rates
and in-use bytes, which do not depend on the machine's load.

Usage: bench_strategies_check.py FILE [FILE...]   (the outputs of the runs)
"""
import re
import sys

CONFIG = re.compile(r"^([^\sA-Z:]+):(\s.*)?$")
failures = []


def fail(msg):
    failures.append(msg)


def parse(paths):
    results, configs, gc_comments = {}, {}, set()
    for path in paths:
        last = None
        with open(path) as f:
            for n, raw in enumerate(f, 1):
                line = raw.rstrip("\n")
                where = f"{path}:{n}"
                if line.startswith("Benchmark"):
                    fields = line.split()
                    if len(fields) < 4 or len(fields) % 2 != 0:
                        fail(f"{where}: result line with {len(fields)} fields: {line}")
                        continue
                    m = re.match(r"^Benchmark(\S+)-(\d+)$", fields[0])
                    if not m:
                        fail(f"{where}: name without -P suffix: {fields[0]}")
                        continue
                    if not fields[1].isdigit():
                        fail(f"{where}: iterations not an integer: {fields[1]}")
                        continue
                    values = {}
                    for v, unit in zip(fields[2::2], fields[3::2]):
                        try:
                            values[unit] = float(v)
                        except ValueError:
                            fail(f"{where}: value {v!r} ({unit}) is not a float")
                    for unit in ("ns/op", "B/op", "allocs/op"):
                        if unit not in values:
                            fail(f"{where}: no {unit}: {line}")
                    if len(values) != len(fields[2:]) // 2:
                        fail(f"{where}: a unit appears twice: {line}")
                    values["N"] = int(fields[1])
                    results[m.group(1)] = values
                    last = m.group(1)
                elif line.startswith("#"):
                    if line.startswith("#   gc: ") and last is not None:
                        gc_comments.add(last)
                elif line.startswith("ratio ") or line == "" or line == "PASS":
                    pass
                elif CONFIG.match(line):
                    key, _, value = line.partition(":")
                    configs[key] = value.strip()
                else:
                    fail(f"{where}: neither a result, a configuration nor a comment line: {line}")
    return results, configs, gc_comments


def need(results, name):
    if name not in results:
        fail(f"Benchmark{name} did not run")
        return None
    return results[name]


def check(results, configs, gc_comments):
    for key in ("goos", "goarch", "pkg", "cpu", "malloc"):
        if key not in configs:
            fail(f"configuration line {key}: missing")
    if "/libc.so" not in configs.get("malloc", ""):
        fail(f"malloc: is {configs.get('malloc')!r}, not glibc's libc.so")

    def allocs(name):
        r = need(results, name)
        return None if r is None else r["allocs/op"]

    def exact(name, want):
        got = allocs(name)
        if got is not None and got != want:
            fail(f"{name}: {got:g} allocs/op, expected {want}")

    # The deterministic counts of each family (see the files' comments).
    if any(k.startswith("StringBuild/") for k in results):
        exact("StringBuild/BadReallocExact", 1000)
        exact("StringBuild/GoodGeometric", 11)
        exact("StringBuild/GoodPresized", 1)
        b = [need(results, f"StringBuild/{v}") for v in ("BadReallocExact", "GoodGeometric", "GoodPresized")]
        if all(b) and not b[0]["B/op"] > b[1]["B/op"] > b[2]["B/op"]:
            fail("StringBuild: B/op does not fall from Bad to Geometric to Presized")
    if any(k.startswith("SliceGrow/") for k in results):
        exact("SliceGrow/BadByOne", 4096)
        exact("SliceGrow/GoodGeometric", 10)
        exact("SliceGrow/GoodPresized", 1)
        r = need(results, "SliceGrow/BadByOne")
        if r and r["B/op"] != 8 * 4096 * 4097 // 2:
            fail(f"SliceGrow/BadByOne: {r['B/op']:g} B/op, expected {8 * 4096 * 4097 // 2}")
    if any(k.startswith("HashMap/") for k in results):
        exact("HashMap/BadNodePerEntry", 8192 + 11)
        exact("HashMap/GoodPresizedOpen", 1)
        a = allocs("HashMap/GoodArenaNodes")
        if a is not None and not 0 < a < 50:
            fail(f"HashMap/GoodArenaNodes: {a:g} allocs/op, expected a few chunks (1..49)")
    if any(k.startswith("Request/") for k in results):
        exact("Request/BadMallocFree", 64)
        exact("Request/BadGCHeap", 64)
        exact("Request/GoodArena", 0)
        exact("Request/GoodPool", 0)
        r = need(results, "Request/BadGCHeap")
        if r and ("gcs/op" not in r or "gc-cpu-%" not in r):
            fail("Request/BadGCHeap uses the collected heap but has no gcs/op and gc-cpu-%")
    if any(k.startswith("MsgBuffers/") for k in results):
        exact("MsgBuffers/BadNewBuffer", 1)
        exact("MsgBuffers/GoodBufPool", 0)
        r = need(results, "MsgBuffers/GoodBufPool")
        if r and r.get("hit-%", 0) < 97.0:
            fail(f"MsgBuffers/GoodBufPool: hit rate {r.get('hit-%')}%, expected >= 97% "
                 f"(at most one miss per size class)")
    if any(k.startswith("Boxing/") for k in results):
        exact("Boxing/BadPointers", 10001)
        exact("Boxing/GoodInline", 1)
        for name in ("Boxing/BadPointers", "Boxing/GoodInline"):
            r = need(results, name)
            if r and ("gcs/op" not in r or "gc-cpu-%" not in r):
                fail(f"{name}: the collected heap was used but the line has no GC metrics")
            if r and name not in gc_comments:
                fail(f"{name}: no '#   gc:' line after it")
    if any(k.startswith("Batching/") for k in results):
        exact("Batching/BadPerItem", 64)
        exact("Batching/GoodPerBatch", 1)
    if any(k.startswith("Retention/") for k in results):
        bad = need(results, "Retention/BadKeepSlice")
        if bad and bad["N"] >= 256 and bad["retained-B"] < 256 * 65536:
            fail(f"Retention/BadKeepSlice: retained {bad['retained-B']:g} B, expected the "
                 f"256 messages it points into (>= {256 * 65536})")
        for name in ("Retention/GoodCopyOut", "Retention/GoodCopyOutGOGC800"):
            good = need(results, name)
            if good and good["retained-B"] >= 1 << 20:
                fail(f"{name}: retained {good['retained-B']:g} B, expected only its "
                     f"tokens (< 1 MiB)")
    if any(k.startswith("GCTuning/") for k in results):
        rows = {g: need(results, f"GCTuning/gogc={g}/limit=off") for g in ("50", "100", "200", "off")}
        limit = need(results, "GCTuning/gogc=off/limit=64MiB")
        if all(rows.values()) and limit:
            per_op = {g: r.get("gcs/op", -1) for g, r in rows.items()}
            if not per_op["50"] > per_op["100"] > per_op["200"] > 0:
                fail(f"GCTuning: collections per op do not fall as GOGC rises: {per_op}")
            if per_op["off"] != 0:
                fail(f"GCTuning/gogc=off: {per_op['off']} collections per op with the collector off")
            peak = {g: r["peak-heap-MiB"] for g, r in rows.items()}
            if not peak["50"] < peak["100"] < peak["200"] < peak["off"]:
                fail(f"GCTuning: peak heap does not grow with GOGC: {peak}")
            if limit.get("gcs/op", 0) <= 0:
                fail("GCTuning/gogc=off/limit=64MiB: no collection, the limit never acted")
            if limit["peak-heap-MiB"] > 64 * 1.1:
                fail(f"GCTuning/gogc=off/limit=64MiB: peak heap {limit['peak-heap-MiB']} MiB, "
                     f"more than 1.1x the limit")


def main():
    results, configs, gc_comments = parse(sys.argv[1:])
    if not results:
        fail("no benchmark results at all")
    check(results, configs, gc_comments)
    for f in failures:
        print("FAIL:", f)
    if failures:
        return 1
    print(f"ok: {len(results)} results in Go's format, every deterministic bad/good relation holds")
    return 0


if __name__ == "__main__":
    sys.exit(main())
