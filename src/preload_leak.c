/*
 * preload_leak.c — leakcheck mode: finding memory the program lost.
 *
 * Every object the program gets from malloc in this mode lives in the
 * collector's heap and is entered in a table here; free takes it out.  At
 * each collection, after marking has settled which objects are reachable
 * and before anything is swept, a hook walks the table: an object still in
 * it (never freed) that the collector did not mark is unreachable — a leak.
 * The hook reports it once and sets its mark bit, so the sweep keeps it:
 * nothing is reclaimed behind the program's back, and a pointer the
 * collector could not see (a disguised one, one held only by the kernel)
 * costs at worst a false report, never a crash.  Objects a leak points to
 * are leaks too and are kept the same way.
 *
 * bdwgc's own find-leak mode is not used: it reports at most 40 leaks a
 * cycle, without allocation stacks, through its log, and frees what it
 * reports.
 *
 * The table is sharded by address so threads allocating at once rarely
 * meet on a lock.  The hook runs inside the collector's lock with the world
 * running; it may take the shard locks because no thread ever waits for
 * the collector while holding one (entries are added after the allocation
 * returns and removed before the free starts, and the table's own memory
 * comes from mimalloc).  What a cycle found is reported afterwards, from a
 * cycle hook, where symbolizing and writing are allowed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#define GC_THREADS
#define GC_NO_THREAD_REDIRECTS
#include <gc/gc.h>
#include <gc/gc_mark.h>
#include <mimalloc.h>

#include "internal.h"

#define SHARDS 64
#define REPORTED ((uintptr_t)1)
#define TOMB ((uintptr_t)2) /* a removed entry, as a key */

struct entry {
    uintptr_t key; /* 0 empty, TOMB removed, else pointer | flags */
    size_t size;   /* bytes the program asked for                */
};

struct shard {
    pthread_mutex_t mu;
    struct entry *e;
    size_t cap, count, tombs;
    char pad[GCM_CACHELINE];
};

static struct shard shards[SHARDS];
static bool ready;

static inline size_t hash_ptr(uintptr_t p)
{
    p >>= 4;
    p ^= p >> 17;
    p *= 0xed5ad4bbU;
    p ^= p >> 11;
    return (size_t)p;
}

static inline struct shard *shard_of(uintptr_t p)
{
    return &shards[(p >> 4) % SHARDS];
}

/* Rebuilds a shard's table at a new capacity (mu held). */
static bool rehash(struct shard *s, size_t cap)
{
    struct entry *e = mi_calloc(cap, sizeof *e);
    if (e == NULL)
        return false;
    for (size_t i = 0; i < s->cap; i++) {
        uintptr_t k = s->e[i].key;
        if (k == 0 || k == TOMB)
            continue;
        size_t j = hash_ptr(k & ~(uintptr_t)15) & (cap - 1);
        while (e[j].key != 0)
            j = (j + 1) & (cap - 1);
        e[j] = s->e[i];
    }
    mi_free(s->e);
    s->e = e;
    s->cap = cap;
    s->tombs = 0;
    return true;
}

void gcm__lc_track(void *p, size_t size)
{
    uintptr_t k = (uintptr_t)p;
    struct shard *s = shard_of(k);
    pthread_mutex_lock(&s->mu);
    if ((s->count + s->tombs + 1) * 4 >= s->cap * 3) {
        size_t cap = s->cap ? s->cap : 1024;
        if (s->count * 2 >= cap)
            cap *= 2;
        if (!rehash(s, cap)) {
            pthread_mutex_unlock(&s->mu);
            return; /* untracked: can only mean a missed report */
        }
    }
    size_t j = hash_ptr(k) & (s->cap - 1);
    while (s->e[j].key != 0 && s->e[j].key != TOMB)
        j = (j + 1) & (s->cap - 1);
    if (s->e[j].key == TOMB)
        s->tombs--;
    s->e[j].key = k;
    s->e[j].size = size;
    s->count++;
    pthread_mutex_unlock(&s->mu);
}

bool gcm__lc_untrack(void *p, size_t *size)
{
    uintptr_t k = (uintptr_t)p;
    struct shard *s = shard_of(k);
    bool found_it = false;
    pthread_mutex_lock(&s->mu);
    if (s->cap != 0) {
        size_t j = hash_ptr(k) & (s->cap - 1);
        for (size_t probes = 0; s->e[j].key != 0 && probes < s->cap; probes++) {
            if ((s->e[j].key & ~(uintptr_t)15) == k) {
                if (size != NULL)
                    *size = s->e[j].size;
                s->e[j].key = TOMB;
                s->count--;
                s->tombs++;
                found_it = true;
                break;
            }
            j = (j + 1) & (s->cap - 1);
        }
    }
    pthread_mutex_unlock(&s->mu);
    return found_it;
}

/* --- at each collection -------------------------------------------------------- */

/* Leaks found by the last cycle, waiting to be reported (found_mu). */
static pthread_mutex_t found_mu = PTHREAD_MUTEX_INITIALIZER;
static gcm__leaked *found;
static size_t nfound, capfound;

/* Totals over the run. */
static uint64_t total_objects, total_bytes, total_cycles_with_leaks;

static void note_found(void *p, size_t size)
{
    if (nfound == capfound) {
        size_t cap = capfound ? capfound * 2 : 256;
        gcm__leaked *n = mi_realloc(found, cap * sizeof *n);
        if (n == NULL)
            return;
        found = n;
        capfound = cap;
    }
    found[nfound].p = p;
    found[nfound].size = size;
    nfound++;
}

/* Inside the collector's lock, marks final, nothing swept yet. */
static void protect_unreachable(void)
{
    pthread_mutex_lock(&found_mu);
    for (int i = 0; i < SHARDS; i++) {
        struct shard *s = &shards[i];
        pthread_mutex_lock(&s->mu);
        for (size_t j = 0; j < s->cap; j++) {
            uintptr_t k = s->e[j].key;
            if (k == 0 || k == TOMB)
                continue;
            void *p = (void *)(k & ~(uintptr_t)15);
            /* p is what malloc returned; an over-aligned object's mark
             * bit is its base's. */
            void *base = GC_base(p);
            if (base == NULL || GC_is_marked(base))
                continue;
            GC_set_mark_bit(base); /* keep it: report, never reclaim */
            if (!(k & REPORTED)) {
                s->e[j].key = k | REPORTED;
                note_found(p, s->e[j].size);
            }
        }
        pthread_mutex_unlock(&s->mu);
    }
    pthread_mutex_unlock(&found_mu);
}

static void report_cycle(const gcm__cycle *c, void *arg)
{
    (void)arg;
    pthread_mutex_lock(&found_mu);
    size_t n = nfound;
    gcm__leaked *list = found;
    found = NULL;
    nfound = capfound = 0;
    pthread_mutex_unlock(&found_mu);
    if (n == 0)
        return;
    uint64_t bytes = 0;
    for (size_t i = 0; i < n; i++)
        bytes += list[i].size;
    __atomic_fetch_add(&total_objects, n, __ATOMIC_RELAXED);
    __atomic_fetch_add(&total_bytes, bytes, __ATOMIC_RELAXED);
    __atomic_fetch_add(&total_cycles_with_leaks, 1, __ATOMIC_RELAXED);
    gcm__lc_report_found(c->n, list, n, bytes);
    mi_free(list);
}

/* fork(): the order the reclaim hook takes them in: found_mu, then the
 * shards. */
void gcm__lc_fork(int phase)
{
    if (phase == GCM_FORK_PREPARE) {
        pthread_mutex_lock(&found_mu);
        for (int i = 0; i < SHARDS; i++)
            pthread_mutex_lock(&shards[i].mu);
    } else if (phase == GCM_FORK_PARENT) {
        for (int i = SHARDS - 1; i >= 0; i--)
            pthread_mutex_unlock(&shards[i].mu);
        pthread_mutex_unlock(&found_mu);
    } else {
        for (int i = 0; i < SHARDS; i++)
            pthread_mutex_init(&shards[i].mu, NULL);
        pthread_mutex_init(&found_mu, NULL);
    }
}

void gcm__lc_totals(uint64_t *objects, uint64_t *bytes)
{
    *objects = __atomic_load_n(&total_objects, __ATOMIC_RELAXED);
    *bytes = __atomic_load_n(&total_bytes, __ATOMIC_RELAXED);
}

size_t gcm__lc_tracked(void)
{
    size_t n = 0;
    for (int i = 0; i < SHARDS; i++)
        n += __atomic_load_n(&shards[i].count, __ATOMIC_RELAXED);
    return n;
}

void gcm__lc_init(void)
{
    if (ready)
        return;
    for (int i = 0; i < SHARDS; i++)
        pthread_mutex_init(&shards[i].mu, NULL);
    gcm__gc_on_locked(GCM_GC_RECLAIM_START, protect_unreachable);
    gcm__gc_on_cycle(report_cycle, NULL);
    ready = true;
}
