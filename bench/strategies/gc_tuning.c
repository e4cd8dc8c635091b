/*
 * gc_tuning.c — the same churn on the collected heap under different GOGC
 * settings and a memory limit.
 *
 * Not a bad/good pair: GOGC trades memory for collector CPU, and which side
 * is right depends on the program (docs/tuning.md).  The rows show the
 * trade on one workload: a live set of 160,000 small objects (11 MiB, 14
 * as the collector counts them with their table and size classes) churned
 * by allocations of 16-128 bytes, every 8th of which replaces a live object
 * (the one it replaces becomes garbage).  One op is one allocation.
 *
 *   GCTuning/gogc=50/limit=off      collect when the heap grows by 50%
 *   GCTuning/gogc=100/limit=off     the default
 *   GCTuning/gogc=200/limit=off
 *   GCTuning/gogc=off/limit=64MiB   Go's "GOGC=off + GOMEMLIMIT": collect
 *                                   only when memory nears the limit
 *   GCTuning/gogc=off/limit=off     never collect: the heap takes every
 *                                   byte allocated (n is capped, see below)
 *
 * Each line carries gcs/op and gc-cpu-% (the harness), and peak-heap-MiB:
 * the largest heap of the run, as the pacer counts it, at a cycle's start
 * or at the end.  The names use Go's key=value sub-benchmark convention, so
 * benchstat can put gogc or limit in columns.
 *
 * With the collector off every op keeps its memory: the row's n is capped
 * at 3,000,000 (about 260 MiB) whatever -benchtime asks, so a long
 * benchmark time cannot take the machine's memory.
 *
 * The rows share one heap, so order matters: the collector-off row runs
 * last.  Its churn leaves the live set scattered over hundreds of MiB of
 * blocks, none empty enough to return, so a 64 MiB limit set after it can
 * never be met and the limiter runs collection after collection (seen: 73%
 * of the CPU in the limit row when it came second).
 */
#include <stdint.h>
#include <string.h>

#include "strat.h"

#define LIVE 160000
#define OFF_MAX_N 3000000

/* Reachable from a global, so the collector sees the live set. */
static void **live;

void strat_gc_tuning_init(void)
{
    bench_limit_n("GCTuning/gogc=off/limit=off", OFF_MAX_N);
}

static void build_live_set(void)
{
    if (live != NULL)
        return;
    live = strat_check(gcm_malloc(LIVE * sizeof *live));
    uint64_t s = 0xbe5466cf34e90c6cull;
    for (size_t i = 0; i < LIVE; i++)
        live[i] = strat_check(gcm_malloc(16 + strat_rand(&s) % 113));
}

static void churn(bench_b *b, int gogc, int64_t limit)
{
    bench_stop_timer(b);
    build_live_set();
    int old_gogc = gcm_set_gc_percent(gogc);
    int64_t old_limit = gcm_set_memory_limit(limit);
    gcm_gc(); /* every row starts from the same heap and goal */
    uint64_t s = 0x3f84d5b5b5470917ull;
    bench_start_timer(b);
    bench_reset_timer(b);
    for (int64_t i = 0; i < b->n; i++) {
        uint64_t r = strat_rand(&s);
        void *p = gcm_malloc(16 + (r & 127) % 113);
        if ((i & 7) == 0)
            live[(r >> 16) % LIVE] = p;
        bench_sink(p);
    }
    bench_stop_timer(b);
    bench_report_metric(b, (double)bench_gc_peak_heap(b) / (1 << 20), "peak-heap-MiB");
    gcm_set_gc_percent(old_gogc);
    gcm_set_memory_limit(old_limit);
    gcm_gc(); /* what the row left (all of it, with the collector off) goes */
}

static void gogc50(bench_b *b) { churn(b, 50, INT64_MAX); }
static void gogc100(bench_b *b) { churn(b, 100, INT64_MAX); }
static void gogc200(bench_b *b) { churn(b, 200, INT64_MAX); }
static void gogc_off(bench_b *b) { churn(b, -1, INT64_MAX); }
static void gogc_off_limit(bench_b *b) { churn(b, -1, (int64_t)64 << 20); }

const bench_def strat_gc_tuning[] = {
    {"GCTuning/gogc=50/limit=off", gogc50},
    {"GCTuning/gogc=100/limit=off", gogc100},
    {"GCTuning/gogc=200/limit=off", gogc200},
    /* Before the collector-off row: that row's heap, hundreds of MiB of
     * blocks each still holding a few live objects, stays mapped after
     * it, and a limit set later could never be met. */
    {"GCTuning/gogc=off/limit=64MiB", gogc_off_limit},
    {"GCTuning/gogc=off/limit=off", gogc_off},
    {NULL, NULL},
};
