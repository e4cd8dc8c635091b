/*
 * batching.c — one allocation per item vs one per batch.
 *
 * Records arrive in batches (rows of a query, events of a poll, lines of a
 * file); each batch is collected, processed and released.  Allocating each
 * record on its own costs a malloc and a free per record and scatters the
 * records over the heap; one allocation sized for the batch holds them all
 * in one contiguous block.  Each op is a batch of 64 records of 48 bytes:
 *
 *   BadPerItem    malloc per record (kept in an array of pointers until the
 *                 batch is done), free per record: 64 allocations
 *   GoodPerBatch  one malloc of 64 × 48 bytes, records inline: 1 allocation
 */
#include <string.h>

#include "strat.h"

#define BATCH 64

typedef struct record {
    uint64_t id;
    uint64_t ts;
    double value;
    char tag[24];
} record;

static inline void read_record(record *r, int64_t batch, int i)
{
    r->id = (uint64_t)batch * BATCH + (uint64_t)i;
    r->ts = r->id * 1000;
    r->value = (double)i * 0.5;
    memcpy(r->tag, "sensor-0000000000000000", sizeof r->tag);
    r->tag[7 + (i & 15)] = (char)('a' + (i & 15));
}

static inline double process(const record *r) { return r->value + (double)(r->ts & 0xff); }

static void bad_per_item(bench_b *b)
{
    strat_allocs c = {0};
    double total = 0;
    record *items[BATCH];
    for (int64_t it = 0; it < b->n; it++) {
        for (int i = 0; i < BATCH; i++) {
            items[i] = strat_malloc(&c, sizeof(record));
            read_record(items[i], it, i);
        }
        for (int i = 0; i < BATCH; i++)
            total += process(items[i]);
        for (int i = 0; i < BATCH; i++)
            free(items[i]);
    }
    bench_sink(&total);
    strat_report(b, &c);
}

static void good_per_batch(bench_b *b)
{
    strat_allocs c = {0};
    double total = 0;
    for (int64_t it = 0; it < b->n; it++) {
        record *items = strat_malloc(&c, BATCH * sizeof *items);
        for (int i = 0; i < BATCH; i++)
            read_record(&items[i], it, i);
        for (int i = 0; i < BATCH; i++)
            total += process(&items[i]);
        free(items);
    }
    bench_sink(&total);
    strat_report(b, &c);
}

const bench_def strat_batching[] = {
    {"Batching/BadPerItem", bad_per_item},
    {"Batching/GoodPerBatch", good_per_batch},
    {NULL, NULL},
};
