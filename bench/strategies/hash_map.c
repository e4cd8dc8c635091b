/*
 * hash_map.c — a map built, queried and dropped per op.
 *
 * The guides' map advice: give make(map[K]V, n) a size hint, so the table
 * is not rehashed over and over as it fills, and avoid an allocation per
 * entry.  Each op inserts 8,192 distinct 64-bit keys, looks each up once
 * and looks up as many absent keys, then releases the map:
 *
 *   BadNodePerEntry    a chained table without a size hint: starts at 8
 *                      buckets and doubles past load 1 (11 bucket arrays),
 *                      a malloc'd node per entry, freed one by one
 *   GoodPresizedOpen   open addressing (linear probing), sized for the
 *                      count up front: one allocation
 *   GoodArenaNodes     the bad table's code unchanged (no size hint, same
 *                      rehashing), but its nodes and bucket arrays come from
 *                      an arena reset per op: a few chunks instead of 8,203
 *                      allocations, and no walk to free the nodes
 */
#include <string.h>

#include "strat.h"

#define KEYS 8192

static uint64_t keys[2 * KEYS]; /* the first half inserted, the second absent */

void strat_hash_map_init(void)
{
    uint64_t s = 0x243f6a8885a308d3ull;
    for (size_t i = 0; i < 2 * KEYS; i++)
        keys[i] = strat_rand(&s) | 1; /* 0 marks an empty slot below */
}

static inline uint64_t hash(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    return k;
}

/* --- a chained table, memory from malloc or from an arena ---------------------- */

typedef struct node {
    uint64_t key, val;
    struct node *next;
} node;

typedef struct chained {
    node **b;
    size_t nb, count;
    strat_allocs *c;
    gcm_arena *arena; /* NULL: malloc */
} chained;

static void *chained_alloc(chained *t, size_t n)
{
    if (t->arena != NULL)
        return strat_check(gcm_arena_alloc(t->arena, n));
    return strat_malloc(t->c, n);
}

static node **new_buckets(chained *t, size_t nb)
{
    node **b = chained_alloc(t, nb * sizeof *b);
    memset(b, 0, nb * sizeof *b);
    return b;
}

static void chained_grow(chained *t)
{
    size_t nb = t->nb * 2;
    node **b = new_buckets(t, nb);
    for (size_t i = 0; i < t->nb; i++) {
        for (node *n = t->b[i], *next; n != NULL; n = next) {
            next = n->next;
            size_t h = hash(n->key) & (nb - 1);
            n->next = b[h];
            b[h] = n;
        }
    }
    if (t->arena == NULL)
        free(t->b);
    t->b = b;
    t->nb = nb;
}

static void chained_put(chained *t, uint64_t key, uint64_t val)
{
    if (t->count + 1 > t->nb)
        chained_grow(t);
    size_t h = hash(key) & (t->nb - 1);
    node *n = chained_alloc(t, sizeof *n);
    n->key = key;
    n->val = val;
    n->next = t->b[h];
    t->b[h] = n;
    t->count++;
}

static const node *chained_get(const chained *t, uint64_t key)
{
    for (const node *n = t->b[hash(key) & (t->nb - 1)]; n != NULL; n = n->next)
        if (n->key == key)
            return n;
    return NULL;
}

static uint64_t chained_op(chained *t)
{
    t->nb = 8;
    t->count = 0;
    t->b = new_buckets(t, t->nb);
    for (size_t i = 0; i < KEYS; i++)
        chained_put(t, keys[i], i);
    uint64_t found = 0;
    for (size_t i = 0; i < 2 * KEYS; i++) {
        const node *n = chained_get(t, keys[i]);
        found += n != NULL ? n->val + 1 : 0;
    }
    return found;
}

static void bad_node_per_entry(bench_b *b)
{
    strat_allocs c = {0};
    uint64_t total = 0;
    for (int64_t it = 0; it < b->n; it++) {
        chained t = {.c = &c};
        total += chained_op(&t);
        for (size_t i = 0; i < t.nb; i++) {
            for (node *n = t.b[i], *next; n != NULL; n = next) {
                next = n->next;
                free(n);
            }
        }
        free(t.b);
    }
    bench_sink(&total);
    strat_report(b, &c);
}

static void good_arena_nodes(bench_b *b)
{
    strat_allocs c = {0};
    uint64_t total = 0;
    gcm_arena *a = strat_check(gcm_arena_new(&(gcm_arena_options){
        .name = "map", .noscan = 1}));
    for (int64_t it = 0; it < b->n; it++) {
        chained t = {.c = &c, .arena = a};
        total += chained_op(&t);
        strat_arena_release(&c, a, 1);
    }
    strat_arena_release(&c, a, 0);
    bench_sink(&total);
    strat_report(b, &c);
}

/* --- open addressing, sized up front -------------------------------------------- */

typedef struct slot {
    uint64_t key, val;
} slot;

static void good_presized_open(bench_b *b)
{
    strat_allocs c = {0};
    uint64_t total = 0;
    size_t cap = 1;
    while (cap * 3 < KEYS * 4) /* load at most 3/4 */
        cap *= 2;
    for (int64_t it = 0; it < b->n; it++) {
        slot *s = strat_calloc(&c, cap, sizeof *s);
        for (size_t i = 0; i < KEYS; i++) {
            size_t h = hash(keys[i]) & (cap - 1);
            while (s[h].key != 0 && s[h].key != keys[i])
                h = (h + 1) & (cap - 1);
            s[h] = (slot){keys[i], i};
        }
        uint64_t found = 0;
        for (size_t i = 0; i < 2 * KEYS; i++) {
            size_t h = hash(keys[i]) & (cap - 1);
            while (s[h].key != 0 && s[h].key != keys[i])
                h = (h + 1) & (cap - 1);
            found += s[h].key != 0 ? s[h].val + 1 : 0;
        }
        total += found;
        free(s);
    }
    bench_sink(&total);
    strat_report(b, &c);
}

const bench_def strat_hash_map[] = {
    {"HashMap/BadNodePerEntry", bad_node_per_entry},
    {"HashMap/GoodPresizedOpen", good_presized_open},
    {"HashMap/GoodArenaNodes", good_arena_nodes},
    {NULL, NULL},
};
