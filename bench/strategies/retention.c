/*
 * retention.c — keeping a small piece of a large buffer keeps the buffer.
 *
 * The Go guides' slice leak: `small := big[:100]` keeps all of `big`
 * reachable for as long as `small` lives; copying the 100 bytes out lets
 * `big` go.  The collected heap behaves the same way, because a pointer
 * into the middle of an object keeps the whole object alive.  Each op reads
 * a 64 KiB message into a new collected buffer and keeps its 64-byte
 * token; the last 256 tokens are kept (a ring, as a cache of recent
 * tokens would):
 *
 *   BadKeepSlice   the ring holds a pointer into the message: 256 messages,
 *                  16 MiB, stay reachable
 *   GoodCopyOut    the token is copied into its own 64-byte object and the
 *                  message is dropped: 256 × 64 bytes stay reachable
 *   GoodCopyOutGOGC800
 *                  the same at GOGC=800, whose 32 MiB minimum goal lets the
 *                  heap grow as far as BadKeepSlice's does (its live 16 MiB
 *                  × 2): the two then differ only in what they keep
 *
 * Both allocate about as much; what differs is what stays in use.  After
 * the timed loop the benchmark collects (gcm_gc) and reports the heap that
 * is still live, less what was live before it began, as retained-B (bytes
 * the run left in use, not per op).
 *
 * Time is another matter.  At GOGC=100 the goal is twice the live heap, at
 * least 4 MiB: GoodCopyOut, keeping almost nothing, collects every 4 MiB
 * (60 messages), BadKeepSlice every 16 MiB, so the good row runs four times
 * as many cycles and can take longer — GOGC's trade of CPU for memory, as
 * GCTuning shows.  GoodCopyOutGOGC800 spends the memory the bad row spends
 * and shows what copying out saves at equal heap.
 */
#include <string.h>

#include "strat.h"

#define MSG (64 * 1024)
#define TOKEN_AT 1024
#define TOKEN 64
#define RING 256

/* Global, so the collector sees the ring (data segments are roots). */
static char *ring[RING];

static void fill_message(char *m, int64_t it)
{
    /* As a read would: the whole message arrives. */
    memset(m, (int)(it & 0x7f), MSG);
    memcpy(m + TOKEN_AT, &it, sizeof it);
}

static uint64_t live_now(void)
{
    gcm_gc();
    struct gcm_memstats ms;
    gcm_read_memstats(&ms);
    return ms.heap_live;
}

static void run(bench_b *b, int copy_out, int gogc)
{
    bench_stop_timer(b);
    int old_gogc = gcm_set_gc_percent(gogc);
    memset(ring, 0, sizeof ring);
    uint64_t live0 = live_now();
    bench_start_timer(b);
    for (int64_t it = 0; it < b->n; it++) {
        char *m = strat_check(gcm_malloc_atomic(MSG));
        fill_message(m, it);
        if (copy_out) {
            char *t = strat_check(gcm_malloc_atomic(TOKEN));
            memcpy(t, m + TOKEN_AT, TOKEN);
            ring[it % RING] = t;
        } else {
            ring[it % RING] = m + TOKEN_AT;
        }
    }
    bench_stop_timer(b);
    uint64_t live1 = live_now();
    bench_report_metric(b, live1 > live0 ? (double)(live1 - live0) : 0, "retained-B");
    memset(ring, 0, sizeof ring); /* the timer stays off: the harness stops it anyway */
    gcm_set_gc_percent(old_gogc);
}

static void bad_keep_slice(bench_b *b) { run(b, 0, 100); }
static void good_copy_out(bench_b *b) { run(b, 1, 100); }
static void good_copy_out_gogc800(bench_b *b) { run(b, 1, 800); }

const bench_def strat_retention[] = {
    {"Retention/BadKeepSlice", bad_keep_slice},
    {"Retention/GoodCopyOut", good_copy_out},
    {"Retention/GoodCopyOutGOGC800", good_copy_out_gogc800},
    {NULL, NULL},
};
