#!/usr/bin/env python3
"""trace_check.py — checks gcmalloc-trace's output on one real log against
numbers computed here, independently of the tool's C code.

    trace_check.py TOOL LOG [--rule go|gcmalloc] [--verdict TEXT] [--run N]

Runs TOOL on LOG with --csv and --svg, then:
  - parses LOG itself with a strict regex of Go 1.19's line (the format
    gcmalloc prints too), splits it into runs, and compares every CSV row
    with the line it came from;
  - recomputes every figure of the summary from those lines (pause rule,
    nearest-rank percentiles, least-squares trend, goal ratios, forced
    cycles, missing cycle numbers) and compares within printing precision;
  - checks the SVG is well-formed XML with the expected parts, one pause
    bar per cycle whose tooltip is that cycle's pause, and a live-heap line
    whose points follow the heap.
Exits non-zero with a message on the first mismatch.
"""
import argparse
import csv
import math
import os
import re
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

LINE = re.compile(
    r"^gc (\d+) @(\d+\.\d+)s (\d+)%: ([\d.]+)\+([\d.]+)\+([\d.]+) ms clock, "
    r"([\d.]+)\+([\d.]+)/([\d.]+)/([\d.]+)\+([\d.]+) ms cpu, "
    r"(\d+)->(\d+)->(\d+) MB, (\d+) MB goal, (\d+) MB stacks, (\d+) MB globals, "
    r"(\d+) P( \(forced\))?$")


def fail(msg):
    sys.exit("trace_check: " + msg)


def close(got, want, rel, what, abs_=1e-9):
    if not abs(got - want) <= rel * abs(want) + abs_:
        fail(f"{what}: tool says {got}, computed {want}")


def parse_log(path):
    cycles = []
    with open(path, "rb") as f:
        for no, raw in enumerate(f.read().split(b"\n"), 1):
            m = LINE.match(raw.decode("utf-8", "replace").rstrip("\r"))
            if not m:
                continue
            g = m.groups()
            cycles.append(dict(
                line=no, n=int(g[0]), t=float(g[1]), cpu=int(g[2]),
                A=float(g[3]), B=float(g[4]), C=float(g[5]),
                a=float(g[6]), assist=float(g[7]), bg=float(g[8]),
                idle=float(g[9]), e=float(g[10]), h0=int(g[11]), h1=int(g[12]),
                h2=int(g[13]), goal=int(g[14]), procs=int(g[17]),
                forced=g[18] is not None))
    runs = []
    for c in cycles:
        if not runs or c["n"] <= runs[-1][-1]["n"] or c["t"] < runs[-1][-1]["t"]:
            runs.append([])
        runs[-1].append(c)
    return runs


def pause(c, rule):
    if rule == "go":
        return c["A"] + c["C"]
    if rule == "all":
        return c["A"] + c["B"] + c["C"]
    p = c["procs"]
    if p < 2:
        return c["A"] + c["B"] + c["C"]

    def stopped(wall, cpu):
        return min(max((cpu - wall) / (p - 1), 0.0), wall)
    return stopped(c["A"], c["a"]) + c["B"] + stopped(c["C"], c["e"])


def rank(sorted_v, pct):
    r = math.ceil(pct * len(sorted_v) / 100)
    return sorted_v[max(r, 1) - 1]


def fit(xs, ys):
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys))
    syy = sum((y - my) ** 2 for y in ys)
    slope = sxy / sxx if sxx > 0 else 0.0
    r2 = sxy * sxy / (sxx * syy) if sxx > 0 and syy > 0 else 0.0
    return slope, r2


def grab(text, pattern, what):
    m = re.search(pattern, text, re.M)
    if not m:
        fail(f"summary has no {what} line:\n{text}")
    return m.groups()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("tool")
    ap.add_argument("log")
    ap.add_argument("--rule", choices=["go", "gcmalloc", "all"])
    ap.add_argument("--verdict")
    ap.add_argument("--run", type=int)
    args = ap.parse_args()

    runs = parse_log(args.log)
    if not runs:
        fail("no gctrace line in " + args.log)
    run_no = args.run or len(runs)
    cyc = runs[run_no - 1]
    tmp = tempfile.mkdtemp()
    csv_path, svg_path = os.path.join(tmp, "c.csv"), os.path.join(tmp, "c.svg")
    cmd = [args.tool, args.log, "--csv", csv_path, "--svg", svg_path]
    if args.run:
        cmd += ["--run", str(args.run)]
    p = subprocess.run(cmd, capture_output=True, encoding="utf-8")
    if p.returncode != 0:
        fail(f"{cmd} exited {p.returncode}: {p.stderr}")
    out = p.stdout
    print(out, end="")

    # --- input and runs ---------------------------------------------------
    lines, ncyc, bad, other = map(int, grab(
        out, r"^input\s+(\d+) lines: (\d+) gctrace cycles, (\d+) malformed, (\d+) other",
        "input"))
    with open(args.log, "rb") as f:
        data = f.read()
    want_lines = data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)
    close(lines, want_lines, 0, "lines")
    close(ncyc, sum(len(r) for r in runs), 0, "cycles in the input")
    close(bad + other, lines - ncyc, 0, "malformed + other")
    if len(runs) > 1:
        close(int(grab(out, r"^runs\s+(\d+)", "runs")[0]), len(runs), 0, "runs")

    # --- CSV: one row per cycle of the run, equal to its line ---------------
    rows = list(csv.DictReader(open(csv_path)))
    if len(rows) != len(cyc):
        fail(f"CSV has {len(rows)} rows, the run has {len(cyc)} cycles")
    rule = grab(out, r"stop-the-world rule (\w+):", "rule")[0]
    if args.rule and rule != args.rule:
        fail(f"rule {rule}, expected {args.rule}")
    for r, c in zip(rows, cyc):
        for col, key in [("line", "line"), ("gc", "n"), ("gc_cpu_pct", "cpu"),
                         ("heap0_mb", "h0"), ("heap1_mb", "h1"), ("heap2_mb", "h2"),
                         ("goal_mb", "goal"), ("procs", "procs")]:
            if int(r[col]) != c[key]:
                fail(f"line {c['line']}: CSV {col}={r[col]}, line says {c[key]}")
        for col, key in [("t_s", "t"), ("clock_a_ms", "A"), ("clock_b_ms", "B"),
                         ("clock_c_ms", "C"), ("cpu_a_ms", "a"), ("cpu_assist_ms", "assist"),
                         ("cpu_background_ms", "bg"), ("cpu_idle_ms", "idle"),
                         ("cpu_c_ms", "e")]:
            close(float(r[col]), c[key], 1e-9, f"line {c['line']} {col}")
        if int(r["forced"]) != int(c["forced"]):
            fail(f"line {c['line']}: forced")
        close(float(r["pause_ms"]), pause(c, rule), 1e-6, f"line {c['line']} pause_ms")

    # --- the summary, recomputed ---------------------------------------------
    n, first, last = grab(out, r"^cycles\s+(\d+) \(gc (\d+) \.\. gc (\d+)\)", "cycles")
    close(int(n), len(cyc), 0, "cycles")
    close(int(first), cyc[0]["n"], 0, "first cycle")
    close(int(last), cyc[-1]["n"], 0, "last cycle")
    missing = sum(b["n"] - a["n"] - 1 for a, b in zip(cyc, cyc[1:]))
    m = re.search(r"(\d+) missing from the log", out)
    close(int(m.group(1)) if m else 0, missing, 0, "missing cycles")
    span, t0, t1 = map(float, grab(out, r"^wall span\s+([\d.]+) s \(@([\d.]+) s \.\. @([\d.]+) s\)",
                                   "wall span"))
    close(span, cyc[-1]["t"] - cyc[0]["t"], 0, "span", 0.0006)
    close(t0, cyc[0]["t"], 0, "first time", 0.0006)
    close(int(grab(out, r"^GC CPU\s+(\d+)%", "GC CPU")[0]), cyc[-1]["cpu"], 0, "GC CPU")

    ps = [pause(c, rule) for c in cyc]
    sp = sorted(ps)
    p50, p90, p99, pmax, pmax_n, ptot = grab(
        out, r"^pauses\s+p50 ([\d.]+) ms  p90 ([\d.]+) ms  p99 ([\d.]+) ms  "
             r"max ([\d.]+) ms \(gc (\d+)\)  total ([\d.]+) ms", "pauses")
    for got, want, what in [(p50, rank(sp, 50), "p50"), (p90, rank(sp, 90), "p90"),
                            (p99, rank(sp, 99), "p99"), (pmax, sp[-1], "max pause"),
                            (ptot, sum(ps), "total pause")]:
        close(float(got), want, 0.006, what, 0.0006)
    close(int(pmax_n), cyc[ps.index(max(ps))]["n"], 0, "longest pause's cycle")

    live = [c["h2"] for c in cyc]
    lmin, lmean, lmax = grab(out, r"^live heap\s+min (\d+)  mean ([\d.]+)  max (\d+) MiB",
                             "live heap")
    close(int(lmin), min(live), 0, "live min")
    close(float(lmean), sum(live) / len(live), 0, "live mean", 0.051)
    close(int(lmax), max(live), 0, "live max")
    xs = [(c["t"] - cyc[0]["t"]) / 60 for c in cyc]
    slope, r2 = fit(xs, live)
    tslope, growth, tr2 = map(float, grab(
        out, r"^trend\s+([+-][\d.]+) MiB/min: ([+-][\d.]+) MiB over the span, r\u00b2 ([\d.]+)",
        "trend"))
    close(tslope, slope, 0, "trend slope", 0.051)
    close(growth, slope * (cyc[-1]["t"] - cyc[0]["t"]) / 60, 0, "growth", 0.051)
    close(tr2, r2, 0, "r2", 0.0051)
    verdict = grab(out, r"^verdict\s+(.*)$", "verdict")[0]
    if args.verdict and verdict != args.verdict:
        fail(f"verdict '{verdict}', expected '{args.verdict}'")

    paced = [c for c in cyc if not c["forced"] and c["goal"] > 0]
    over, of = map(int, grab(out, r"(\d+) of (\d+) pacer-started cycles over their goal",
                             "goal"))
    close(of, len(paced), 0, "pacer-started cycles")
    close(over, sum(1 for c in paced if max(c["h0"], c["h1"]) > c["goal"]), 0, "over goal")
    h0p50 = float(grab(out, r"H0/goal p50 ([\d.]+)", "H0/goal")[0])
    close(h0p50, rank(sorted(c["h0"] / c["goal"] for c in paced), 50), 0, "H0/goal p50", 0.0051)

    forced = [c["n"] for c in cyc if c["forced"]]
    fn, flist = grab(out, r"^forced\s+(\d+)(?: \((.*)\))?$", "forced")
    close(int(fn), len(forced), 0, "forced")
    if forced and flist.replace(", ...", "").split(", ") != [f"gc {k}" for k in forced[:8]]:
        fail(f"forced list '{flist}', computed {forced}")

    # --- the SVG ----------------------------------------------------------------
    ns = "{http://www.w3.org/2000/svg}"
    root = ET.parse(svg_path).getroot()
    if root.tag != ns + "svg":
        fail("SVG root is " + root.tag)
    texts = [t.text or "" for t in root.iter(ns + "text")]
    for want in ["heap (MiB)", "pause (ms)", "time since program start (s)", "goal",
                 "heap at start (H0)", "at mark end (H1)", "live (H2)", "forced",
                 "verdict: " + verdict]:
        if want not in texts:
            fail(f"SVG lacks the text '{want}'")
    lines_ = root.findall(ns + "polyline")
    if len(lines_) != 4:
        fail(f"SVG has {len(lines_)} heap lines, want 4")
    bars = [r for r in root.iter(ns + "rect") if r.find(ns + "title") is not None]
    if len(bars) != len(cyc):
        fail(f"SVG has {len(bars)} pause bars for {len(cyc)} cycles")
    by_n = {c["n"]: (c, pz) for c, pz in zip(cyc, ps)}
    for bar in bars:
        tip = bar.find(ns + "title").text
        m = re.fullmatch(r"gc (\d+): (\S+) ms", tip)
        if not m or int(m.group(1)) not in by_n:
            fail(f"bar tooltip '{tip}' names no cycle")
        c, pz = by_n.pop(int(m.group(1)))
        close(float(m.group(2)), pz, 0.006, f"bar of gc {c['n']}", 1e-6)
        if (bar.get("fill") == "#9467bd") != c["forced"]:
            fail(f"gc {c['n']}: forced colour wrong")
    # Clipping: only past five times the p90, and then (the scale stops
    # below 5.5 × p90) always; the note counts the bars it clipped.
    note = [t for t in texts if " clipped (longest " in t]
    p90 = rank(sp, 90)
    if note:
        m = re.match(r"(\d+) pauses? above (\S+) ms clipped", note[0])
        if not m or not sp[-1] > 5 * p90:
            fail(f"clipping note '{note[0]}' for max {sp[-1]}, p90 {p90}")
        close(int(m.group(1)), sum(1 for v in ps if v > float(m.group(2)) * (1 + 1e-9)), 0,
              "clipped bars")
    elif p90 > 0 and sp[-1] > 5.6 * p90:
        fail(f"no clipping note for max {sp[-1]}, p90 {p90}")
    ys = [float(p.split(",")[1]) for p in lines_[3].get("points").split()]
    if len(ys) != len(cyc):
        fail("live line has the wrong number of points")
    for i in range(len(cyc)):
        for j in range(len(cyc)):
            if live[i] > live[j] and not ys[i] < ys[j]:
                fail(f"live line: gc {cyc[i]['n']} drawn below gc {cyc[j]['n']}")
    print(f"trace_check: {args.log}: {len(cyc)} cycles, summary, CSV and SVG agree")


if __name__ == "__main__":
    main()
