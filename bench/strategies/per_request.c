/*
 * per_request.c — the objects of one request, made and released per request.
 *
 * A request builds 64 small objects (32, 64, 128 or 256 bytes: a request
 * struct, header records, strings, a response record — the same
 * pseudo-random sequence for every variant), links them, reads them back
 * and releases them all when it ends.  Three ways to get the memory:
 *
 *   BadMallocFree   malloc per object, free per object: 64 allocations and
 *                   64 frees per request
 *   BadGCHeap       gcm_malloc per object, left to the collector: Go's
 *                   default, 64 allocations per request and the cycles
 *                   they cause
 *   GoodArena       one arena per worker, reset at the end of each request
 *                   (docs/arenas.md): a pointer bump per object, one call to
 *                   release them all, no allocation once the arena's first
 *                   chunk is there
 *   GoodPool        a typed pool per object kind (gcm_pool_get/put): after
 *                   the first request every object is a pool hit
 *
 * A pool hit costs more than glibc's malloc+free of a small block when a
 * request holds many objects at once (the thread's private slot holds one;
 * the rest go through the shared list, behind a spin lock, as in Go's
 * sync.Pool): pools save allocations, and time against the collected heap,
 * not against a fast malloc.  The rows show both.
 *
 * bench_arena and bench_pool measure arenas and pools against their peers in
 * depth; this is the strategy choice a request handler makes.
 */
#include <string.h>

#include "strat.h"

#define OBJS 64
#define KINDS 4

static const size_t kind_size[KINDS] = {32, 64, 128, 256};
static unsigned char kinds[OBJS];
static gcm_pool *pools[KINDS];

typedef struct obj {
    struct obj *next;
    uint64_t tag;
} obj;

int strat_per_request_init(void)
{
    uint64_t s = 0x13198a2e03707344ull;
    for (int i = 0; i < OBJS; i++) {
        /* Small objects are the common case: 40% 32 B, 30% 64 B, 20% 128 B,
         * 10% 256 B. */
        unsigned r = (unsigned)(strat_rand(&s) % 10);
        kinds[i] = r < 4 ? 0 : r < 7 ? 1 : r < 9 ? 2 : 3;
    }
    static const char *names[KINDS] = {"req-32", "req-64", "req-128", "req-256"};
    for (int k = 0; k < KINDS; k++) {
        pools[k] = gcm_pool_new(&(gcm_pool_options){.name = names[k],
                                                    .size = kind_size[k]});
        if (pools[k] == NULL)
            return -1;
    }
    return 0;
}

/* What the request does with its objects, the same for every variant. */
static inline void fill(obj *o, obj *prev, int i)
{
    o->next = prev;
    o->tag = (uint64_t)i * 0x9e3779b97f4a7c15ull;
}

static uint64_t walk(const obj *o)
{
    uint64_t sum = 0;
    for (; o != NULL; o = o->next)
        sum += o->tag;
    return sum;
}

static void bad_malloc_free(bench_b *b)
{
    strat_allocs c = {0};
    uint64_t total = 0;
    for (int64_t it = 0; it < b->n; it++) {
        obj *head = NULL;
        for (int i = 0; i < OBJS; i++) {
            obj *o = strat_malloc(&c, kind_size[kinds[i]]);
            fill(o, head, i);
            head = o;
        }
        total += walk(head);
        while (head != NULL) {
            obj *next = head->next;
            free(head);
            head = next;
        }
    }
    bench_sink(&total);
    strat_report(b, &c);
}

static void bad_gc_heap(bench_b *b)
{
    uint64_t total = 0;
    for (int64_t it = 0; it < b->n; it++) {
        obj *head = NULL;
        for (int i = 0; i < OBJS; i++) {
            obj *o = strat_check(gcm_malloc(kind_size[kinds[i]]));
            fill(o, head, i);
            head = o;
        }
        total += walk(head);
    }
    bench_sink(&total);
}

static void good_arena(bench_b *b)
{
    strat_allocs c = {0};
    uint64_t total = 0;
    gcm_arena *a = strat_check(gcm_arena_new(&(gcm_arena_options){.name = "request"}));
    for (int64_t it = 0; it < b->n; it++) {
        obj *head = NULL;
        for (int i = 0; i < OBJS; i++) {
            obj *o = strat_check(gcm_arena_alloc(a, kind_size[kinds[i]]));
            fill(o, head, i);
            head = o;
        }
        total += walk(head);
        strat_arena_release(&c, a, 1);
    }
    strat_arena_release(&c, a, 0);
    bench_sink(&total);
    strat_report(b, &c);
}

static void good_pool(bench_b *b)
{
    strat_allocs c = {0};
    struct gcm_pool_stats before[KINDS];
    for (int k = 0; k < KINDS; k++)
        gcm_pool_stats(pools[k], &before[k]);
    uint64_t total = 0;
    obj *objs[OBJS];
    for (int64_t it = 0; it < b->n; it++) {
        obj *head = NULL;
        for (int i = 0; i < OBJS; i++) {
            obj *o = strat_check(gcm_pool_get(pools[kinds[i]]));
            fill(o, head, i);
            objs[i] = head = o;
        }
        total += walk(head);
        for (int i = 0; i < OBJS; i++)
            gcm_pool_put(pools[kinds[i]], objs[i]);
    }
    for (int k = 0; k < KINDS; k++)
        strat_pool_misses(&c, pools[k], &before[k]);
    bench_sink(&total);
    strat_report(b, &c);
}

const bench_def strat_per_request[] = {
    {"Request/BadMallocFree", bad_malloc_free},
    {"Request/BadGCHeap", bad_gc_heap},
    {"Request/GoodArena", good_arena},
    {"Request/GoodPool", good_pool},
    {NULL, NULL},
};
