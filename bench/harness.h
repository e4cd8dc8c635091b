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
 * -benchmem): the GC heap, arenas and pools count there.  A benchmark of a
 * peer allocator gcmalloc cannot see (glibc, jemalloc, APR...) reports what
 * it allocates itself with bench_count_alloc.
 *
 * Flags: -bench REGEX (or -run), -benchtime 1s|500ms|1000x, -count N,
 *        -cpu N (P in the name; threads for bench_run_parallel).
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

/* Keeps the compiler from deleting a computation whose result is unused. */
static inline void bench_sink(void *p) { __asm__ volatile("" : : "r"(p) : "memory"); }

#endif
