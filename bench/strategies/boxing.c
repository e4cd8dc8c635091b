/*
 * boxing.c — values behind pointers vs values inline, on the collected heap.
 *
 * Go's []interface{} holding ints allocates a box per value; a []int holds
 * them inline.  The C shape of the same mistake is an array of pointers to
 * individually allocated small values.  On the collected heap it costs
 * three times: an allocation per value, a pointer per value for the
 * collector to trace at every cycle, and a cache miss per value to read it
 * back.  Each op builds 10,000 values and sums them:
 *
 *   BadPointers   an array of 10,000 pointers (gcm_malloc, scanned), each to
 *                 a gcm_malloc_atomic'd 8-byte value: 10,001 allocations
 *   GoodInline    one gcm_malloc_atomic'd array of 10,000 values (not
 *                 scanned: no pointers in it): 1 allocation
 *
 * Everything is left to the collector, so the GC figures (gcs/op,
 * gc-cpu-%) on the lines are this family's point as much as allocs/op.
 */
#include "strat.h"

#define VALUES 10000

static void bad_pointers(bench_b *b)
{
    int64_t total = 0;
    for (int64_t it = 0; it < b->n; it++) {
        int64_t **box = strat_check(gcm_malloc(VALUES * sizeof *box));
        for (int i = 0; i < VALUES; i++) {
            box[i] = strat_check(gcm_malloc_atomic(sizeof **box));
            *box[i] = i ^ it;
        }
        for (int i = 0; i < VALUES; i++)
            total += *box[i];
        bench_sink(box);
    }
    bench_sink(&total);
}

static void good_inline(bench_b *b)
{
    int64_t total = 0;
    for (int64_t it = 0; it < b->n; it++) {
        int64_t *v = strat_check(gcm_malloc_atomic(VALUES * sizeof *v));
        for (int i = 0; i < VALUES; i++)
            v[i] = i ^ it;
        for (int i = 0; i < VALUES; i++)
            total += v[i];
        bench_sink(v);
    }
    bench_sink(&total);
}

const bench_def strat_boxing[] = {
    {"Boxing/BadPointers", bad_pointers},
    {"Boxing/GoodInline", good_inline},
    {NULL, NULL},
};
