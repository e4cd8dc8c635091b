/*
 * harness.h — Go's testing.B for C benchmarks.
 *
 * A benchmark is a function that runs its body b->n times.  The harness
 * picks n, as `go test -bench` does, by growing it until one run takes the
 * -benchtime budget, and prints Go's line format so that benchstat-style
 * tools compare two runs:
 *
 *   BenchmarkName-P    N    X ns/op    Y B/op    Z allocs/op   [more metrics]
 *
 * B/op and allocs/op come from gcmalloc's own statistics (the equivalent of
 * -benchmem): objects allocated on the collected heap (MemStats mallocs and
 * total_alloc), which includes the misses of pools that hold pointers.
 * Arena bumps, pool hits and memory from any other allocator are not seen
 * there: a benchmark of those (glibc, mimalloc, APR, arenas, pools without
 * pointers...) reports what it allocates itself with bench_count_alloc,
 * which then replaces the MemStats figures for that run.
 *
 * Where the collected heap is used during a run (objects allocated or a
 * cycle run while the timer was on), two more pairs go on the line, so that
 * benchstat compares them like the others:
 *
 *   ... Z allocs/op    G gcs/op    C gc-cpu-%
 *
 * (collections per op, and the collector's share of all CPUs' time over the
 * timed part, Go's GCCPUFraction for that window), followed by a comment
 * line, which benchmark readers ignore, with the absolute figures:
 *
 *   #   gc: 12 cycles, GC CPU 3.1%, stopped 14.2 ms (max 2.10 ms), peak heap 33.0 MiB
 *
 * Before the results the header prints configuration lines in Go's format
 * ("key: value": goos, goarch, pkg, cpu, and malloc: the library that
 * supplies this process's malloc, found with dlsym and dladdr, since a
 * library linked into the program may export malloc and replace glibc's
 * silently).
 *
 * Flags: -bench REGEX (or -run), -benchtime 1s|500ms|1000x, -count N,
 *        -cpu N (P in the name; threads for bench_run_parallel),
 *        -memprofile FILE (after the runs, a collection, then Go's "allocs"
 *        heap profile of the whole run, as go test -memprofile writes),
 *        -memprofilerate N (gcm_profile_set_rate(N) before the first run,
 *        as go test -memprofilerate; 1 records every allocation),
 *        -benchmem (accepted for go test's sake: memory is always reported).
 * The profiler sees what gcmalloc allocates (collected heap, arenas, pools,
 * buffers), not glibc's malloc: that needs the preload library.
 */
#ifndef GCM_BENCH_HARNESS_H
#define GCM_BENCH_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct bench_b {
    int64_t n;             /* iterations to run                         */
    int procs;             /* threads for bench_run_parallel            */
    /* private */
    int64_t start_ns, elapsed_ns;
    bool timer_on;
    uint64_t allocs0, bytes0, allocs, bytes;
    uint64_t user_allocs, user_bytes;
    bool user_counted;
    uint64_t gcs0, gc_cpu0, gc_stw0, gcs, gc_cpu_ns, gc_stw_ns;
    uint64_t gc_peak_heap, gc_max_pause; /* over the timed windows */
    int nmetrics;
    struct { double v; char unit[32]; } metrics[8];
} bench_b;

typedef void (*bench_fn)(bench_b *b);

typedef struct bench_def {
    const char *name;      /* without the "Benchmark" prefix            */
    bench_fn fn;
} bench_def;

/* Runs the benchmarks of `defs` (NULL-terminated by name) selected by argv,
 * prints the header and one line per run.  Returns 0, or 2 on bad flags. */
int bench_main(int argc, char **argv, const bench_def *defs);

void bench_reset_timer(bench_b *b);
void bench_stop_timer(bench_b *b);
void bench_start_timer(bench_b *b);
/* For allocators gcmalloc cannot see: count n allocations of `bytes` in
 * all, per run (the harness divides by b->n). */
void bench_count_alloc(bench_b *b, uint64_t n, uint64_t bytes);
/* An extra "value unit" pair on the line, like Go's b.ReportMetric. */
void bench_report_metric(bench_b *b, double value, const char *unit);
/* Runs body(arg, iterations) on b->procs threads sharing b->n, like
 * b.RunParallel; each thread's share is passed as `iterations`. */
void bench_run_parallel(bench_b *b, void (*body)(void *arg, int64_t iterations),
                        void *arg);

/* ns/op of the last run of benchmark `name` (as printed, without the
 * "Benchmark" prefix and -P suffix) in this process; 0 if it did not run.
 * For printing ratios between peers measured in the same run. */
double bench_result_ns(const char *name);
/* Prints "ratio a/b = x" lines for each pair whose both sides ran. */
void bench_print_ratio(const char *a, const char *b);

/* The largest collected heap of this run while its timer ran: the heap
 * (as the pacer counts it: collected heap plus arenas in use) at the start
 * of each cycle and whenever the timer stopped — or now, if it runs.  With
 * the collector off there are no cycles and the heap at the end is the
 * peak.  In bytes. */
uint64_t bench_gc_peak_heap(bench_b *b);

/* Caps the n the harness runs benchmark `name` with (also under
 * -benchtime Nx), for a benchmark whose every op keeps memory — churn with
 * the collector off — where the time budget alone could take the machine's
 * memory.  The printed N says what ran.  Call before bench_main; at most
 * 16 names. */
void bench_limit_n(const char *name, int64_t max_n);

/* The file name of the object whose malloc this process uses
 * ("/lib/x86_64-linux-gnu/libc.so.6"), or "unknown".  The header prints
 * it as the configuration line "malloc: ...". */
const char *bench_malloc_origin(void);

/* Keeps the compiler from deleting a computation whose result is unused. */
static inline void bench_sink(void *p) { __asm__ volatile("" : : "r"(p) : "memory"); }

#endif
