/*
 * slice_grow.c — appending to a dynamic array.
 *
 * Go's append grows a slice geometrically, and make([]T, 0, n) allocates
 * once when n is known; the guides' bad case is an append loop with no
 * capacity.  C code often does worse: grow by exactly one element per
 * push.  Each op appends 4,096 64-bit values:
 *
 *   BadByOne        realloc to count + 1 per push: 4,096 allocations, and
 *                   the bytes of every intermediate array (67 MB asked for)
 *   GoodGeometric   capacity doubles (from 8): 10 allocations
 *   GoodPresized    capacity known up front: 1 allocation
 */
#include "strat.h"

#define COUNT 4096

typedef struct vec {
    int64_t *v;
    size_t len, cap;
} vec;

static int64_t consume(const vec *a)
{
    int64_t sum = 0;
    for (size_t i = 0; i < a->len; i++)
        sum += a->v[i];
    return sum;
}

static void bad_by_one(bench_b *b)
{
    strat_allocs c = {0};
    int64_t total = 0;
    for (int64_t it = 0; it < b->n; it++) {
        vec a = {0};
        for (int64_t i = 0; i < COUNT; i++) {
            a.v = strat_realloc(&c, a.v, (a.len + 1) * sizeof *a.v);
            a.v[a.len++] = i ^ it;
        }
        total += consume(&a);
        free(a.v);
    }
    bench_sink(&total);
    strat_report(b, &c);
}

static void grow(bench_b *b, size_t presize)
{
    strat_allocs c = {0};
    int64_t total = 0;
    for (int64_t it = 0; it < b->n; it++) {
        vec a = {0};
        if (presize > 0) {
            a.v = strat_malloc(&c, presize * sizeof *a.v);
            a.cap = presize;
        }
        for (int64_t i = 0; i < COUNT; i++) {
            if (a.len == a.cap) {
                a.cap = a.cap < 8 ? 8 : a.cap * 2;
                a.v = strat_realloc(&c, a.v, a.cap * sizeof *a.v);
            }
            a.v[a.len++] = i ^ it;
        }
        total += consume(&a);
        free(a.v);
    }
    bench_sink(&total);
    strat_report(b, &c);
}

static void good_geometric(bench_b *b) { grow(b, 0); }
static void good_presized(bench_b *b) { grow(b, COUNT); }

const bench_def strat_slice_grow[] = {
    {"SliceGrow/BadByOne", bad_by_one},
    {"SliceGrow/GoodGeometric", good_geometric},
    {"SliceGrow/GoodPresized", good_presized},
    {NULL, NULL},
};
