/*
 * prof_sampled.c — the sampled objects, their frees, and what a profile
 * publishes.
 *
 * A sampled object is remembered by address in one of two open-addressing
 * tables (linear probing, tombstones, mapped memory):
 *
 *   gc  objects on the collected heap (the GC heap, pools that hold
 *       pointers, the preload library's gc modes): freed explicitly
 *       (gcm_free, a pool dropping one) or found dead by a collection;
 *   ex  objects released explicitly (pools, buffers, preloaded malloc).
 *
 * Keeping the GC heap's objects apart keeps the per-cycle scan short: the
 * collector's hooks walk only the gc table, however many malloc samples
 * the preloaded library has.
 *
 * The free path must not look anything up for the great majority of
 * objects, which were never sampled.  jemalloc marks sampled objects in its
 * own extent metadata; we have none for bdwgc's or malloc's objects, so we
 * keep a counting filter: 65,536 words indexed by address bits, each the
 * number of remembered objects whose address maps there.  A free reads one
 * word (gcm__prof_maybe_sampled) and looks in the tables only when it is
 * non-zero — for a program with a few thousand live samples, a few percent
 * of frees.  The filter is exact in one direction: a sampled object's word
 * is never zero while it is remembered.
 *
 * Publication (see prof.c for the why).  GC-heap events are counted in
 * bucket->pend[epoch & 1].  At reclaim start, inside bdwgc's lock with the
 * marks final, the epoch advances and every remembered GC object that is
 * unmarked becomes a candidate; at reclaim end (after bdwgc's finalization
 * pass, which may mark some of them again), the candidates still unmarked —
 * or whose block bdwgc has already freed — are accounted as freed, into the
 * old epoch's slot, and that slot is folded into the published counts.
 * Everything touching the gc table, the epoch and pend[] happens under
 * gct.mu, so an event lands wholly before or wholly after a fold.  No
 * thread holding gct.mu ever waits for bdwgc: the hooks may take it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#define GC_THREADS
#define GC_NO_THREAD_REDIRECTS
#include <gc/gc.h>
#include <gc/gc_mark.h>

#include "internal.h"

uint32_t gcm__prof_filter[1u << GCM_PROF_FILTER_BITS];

enum { EMPTY = 0, TOMB = 1 };

typedef struct entry {
    uintptr_t key;     /* object address, or EMPTY / TOMB                */
    gcm__bucket *b;
    size_t bytes;
    uintptr_t base;    /* gc table: the collected object key points into */
    uint64_t cand;     /* gc table: unmarked at reclaim start            */
} entry;

typedef struct table {
    pthread_mutex_t mu;
    entry *e;
    size_t cap;        /* power of two, or 0 */
    size_t live, tomb;
} table;

static table gct = {.mu = PTHREAD_MUTEX_INITIALIZER};
static table ext = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* Under gct.mu. */
static struct {
    uint64_t epoch;   /* reclaim starts seen                     */
    uint64_t cycles;  /* reclaim ends: folds into active         */
} pub;

/* --- the tables ------------------------------------------------------------------- */

static inline size_t home(uintptr_t key, size_t cap)
{
    uint64_t h = (uint64_t)(key >> 4) * 0x9E3779B97F4A7C15ULL;
    return (size_t)(h ^ (h >> 32)) & (cap - 1);
}

static inline void filter_add(uintptr_t key, uint32_t d)
{
    GCM_ADD(&gcm__prof_filter[gcm__prof_filter_slot((void *)key)], d);
}

static entry *lookup(table *t, uintptr_t key)
{
    if (t->cap == 0)
        return NULL;
    for (size_t i = home(key, t->cap);; i = (i + 1) & (t->cap - 1)) {
        entry *e = &t->e[i];
        if (e->key == key)
            return e;
        if (e->key == EMPTY)
            return NULL;
    }
}

static void remove_at(table *t, entry *e)
{
    filter_add(e->key, (uint32_t)-1);
    e->key = TOMB;
    e->b = NULL;
    t->live--;
    t->tomb++;
}

static uint64_t rebuilds; /* a statistic for tests; either table's rebuild counts */

/* Rebuilds t, dropping tombstones, with at most 3/8 of its slots live, so
 * that an eighth of them can be filled (by inserts, or by the tombstones
 * of removals) before insert calls for the next rebuild: each rebuild's
 * copy is paid for by cap/8 operations.  (Sized for half, a table whose
 * live entries sat just under half its slots was rebuilt every few
 * operations, each time an mmap, a copy of every entry and an munmap —
 * with every allocation sampled, larson spent a quarter of its time there,
 * in page faults and TLB shootdowns, under the table's lock.)  Memory is
 * mapped (never malloc) and counted as non-GC memory. */
static bool rebuild(table *t)
{
    size_t cap = t->cap ? t->cap : 1024;
    while ((t->live + 1) * 8 > cap * 3)
        cap *= 2;
    __atomic_fetch_add(&rebuilds, 1, __ATOMIC_RELAXED); /* two tables, two locks */
    size_t bytes = cap * sizeof(entry);
    entry *ne = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (ne == MAP_FAILED)
        return false;
    for (size_t i = 0; i < t->cap; i++) {
        entry *o = &t->e[i];
        if (o->key <= TOMB)
            continue;
        size_t j = home(o->key, cap);
        while (ne[j].key != EMPTY)
            j = (j + 1) & (cap - 1);
        ne[j] = *o;
    }
    if (t->e != NULL) {
        munmap(t->e, t->cap * sizeof(entry));
        gcm__gc_nongc(-(int64_t)(t->cap * sizeof(entry)));
    }
    gcm__gc_nongc((int64_t)bytes);
    t->e = ne;
    t->cap = cap;
    t->tomb = 0;
    return true;
}

/* Remembers key.  If key is remembered already (its object was released by
 * a path that does not report frees, and the address reused), the old
 * entry is returned in *old (removed) so the caller can account it. */
static bool insert(table *t, uintptr_t key, uintptr_t base, gcm__bucket *b,
                   size_t bytes, entry *old)
{
    old->key = EMPTY;
    if ((t->live + t->tomb + 1) * 2 > t->cap && !rebuild(t))
        return false;
    entry *slot = NULL;
    for (size_t i = home(key, t->cap);; i = (i + 1) & (t->cap - 1)) {
        entry *e = &t->e[i];
        if (e->key == key) {
            *old = *e;
            e->b = b;
            e->bytes = bytes;
            e->base = base;
            e->cand = 0;
            return true;
        }
        if (e->key == TOMB && slot == NULL)
            slot = e;
        if (e->key == EMPTY) {
            if (slot == NULL)
                slot = e;
            else
                t->tomb--;
            break;
        }
    }
    slot->key = key;
    slot->b = b;
    slot->bytes = bytes;
    slot->base = base;
    slot->cand = 0;
    t->live++;
    filter_add(key, 1);
    return true;
}

/* --- accounting --------------------------------------------------------------------- */

static inline void count(gcm__prof_counts *c, size_t bytes, bool alloc)
{
    if (alloc) {
        c->allocs++;
        c->alloc_bytes += bytes;
    } else {
        c->frees++;
        c->free_bytes += bytes;
    }
}

/* Where an event of b counts now: the pending slot of the current epoch for
 * collected objects (under gct.mu), the published counts otherwise
 * (ext.mu). */
static inline gcm__prof_counts *counts_now(gcm__bucket *b)
{
    return b->collected ? &b->pend[pub.epoch & 1] : &b->active;
}

static inline table *table_of(const gcm__bucket *b)
{
    return b->collected ? &gct : &ext;
}

/* The collected object p points into (p itself for the GC heap's); the
 * collector's hooks check that object's mark.  No lock: GC_base reads
 * bdwgc's headers only. */
static uintptr_t base_of(const gcm__bucket *b, void *p)
{
    if (!b->collected)
        return 0;
    void *base = gcm__gc_ready() ? GC_base(p) : NULL;
    return (uintptr_t)(base != NULL ? base : p);
}

bool gcm__sampled_add(void *p, size_t bytes, gcm__bucket *b)
{
    if (p == NULL || b == NULL)
        return false;
    table *t = table_of(b);
    uintptr_t base = base_of(b, p);
    entry old;
    pthread_mutex_lock(&t->mu);
    bool ok = insert(t, (uintptr_t)p, base, b, bytes, &old);
    if (ok) {
        if (old.key != EMPTY)
            count(counts_now(old.b), old.bytes, false);
        count(counts_now(b), bytes, true);
    }
    pthread_mutex_unlock(&t->mu);
    return ok;
}

void gcm__sampled_count(gcm__bucket *b, size_t bytes, bool alloc)
{
    if (b == NULL)
        return;
    table *t = table_of(b);
    pthread_mutex_lock(&t->mu);
    count(counts_now(b), bytes, alloc);
    pthread_mutex_unlock(&t->mu);
}

/* Takes p's entry out of whichever table holds it. */
static bool take(uintptr_t key, gcm__prof_obj *o, bool account)
{
    table *tabs[2] = {&ext, &gct};
    for (int i = 0; i < 2; i++) {
        table *t = tabs[i];
        pthread_mutex_lock(&t->mu);
        entry *e = lookup(t, key);
        if (e != NULL) {
            o->bucket = e->b;
            o->bytes = e->bytes;
            if (account)
                count(counts_now(e->b), e->bytes, false);
            remove_at(t, e);
            pthread_mutex_unlock(&t->mu);
            return true;
        }
        pthread_mutex_unlock(&t->mu);
    }
    return false;
}

void gcm__prof_record_free(void *p)
{
    gcm__prof_obj o;
    if (p != NULL)
        (void)take((uintptr_t)p, &o, true);
}

bool gcm__prof_detach(void *p, gcm__prof_obj *o)
{
    if (p == NULL || o == NULL || !gcm__prof_maybe_sampled(p))
        return false;
    return take((uintptr_t)p, o, false);
}

void gcm__prof_release(const gcm__prof_obj *o)
{
    if (o != NULL)
        gcm__sampled_count(o->bucket, o->bytes, false);
}

void gcm__prof_reattach(void *p, const gcm__prof_obj *o)
{
    if (p == NULL || o == NULL || o->bucket == NULL)
        return;
    table *t = table_of(o->bucket);
    uintptr_t base = base_of(o->bucket, p);
    entry old;
    pthread_mutex_lock(&t->mu);
    bool ok = insert(t, (uintptr_t)p, base, o->bucket, o->bytes, &old);
    if (ok && old.key != EMPTY)
        count(counts_now(old.b), old.bytes, false);
    if (!ok) /* cannot follow it any more: account it gone, balanced */
        count(counts_now(o->bucket), o->bytes, false);
    pthread_mutex_unlock(&t->mu);
}

size_t gcm__sampled_live(void)
{
    pthread_mutex_lock(&gct.mu);
    size_t n = gct.live;
    pthread_mutex_unlock(&gct.mu);
    pthread_mutex_lock(&ext.mu);
    n += ext.live;
    pthread_mutex_unlock(&ext.mu);
    return n;
}

uint64_t gcm__sampled_rebuilds(void)
{
    return __atomic_load_n(&rebuilds, __ATOMIC_RELAXED);
}

uint64_t gcm__sampled_cycles(void)
{
    return __atomic_load_n(&pub.cycles, __ATOMIC_ACQUIRE);
}

/* --- the collector's hooks (inside bdwgc's lock, world running) ------------------- */

static void on_reclaim_start(void)
{
    pthread_mutex_lock(&gct.mu);
    pub.epoch++;
    for (size_t i = 0; i < gct.cap; i++) {
        entry *e = &gct.e[i];
        if (e->key > TOMB)
            e->cand = !GC_is_marked((void *)e->base);
    }
    pthread_mutex_unlock(&gct.mu);
}

static void on_reclaim_end(void)
{
    pthread_mutex_lock(&gct.mu);
    int old = (int)((pub.epoch - 1) & 1);
    for (size_t i = 0; i < gct.cap; i++) {
        entry *e = &gct.e[i];
        if (e->key <= TOMB || !e->cand)
            continue;
        void *p = (void *)e->base;
        /* bdwgc frees wholly empty blocks during reclaim: their headers
         * may be gone, so ask GC_base (which checks) before the mark bit. */
        if (GC_base(p) != p || !GC_is_marked(p)) {
            count(&e->b->pend[old], e->bytes, false);
            remove_at(&gct, e);
        } else {
            e->cand = 0; /* revived by finalization */
        }
    }
    for (gcm__bucket *b = gcm__bucket_list(); b != NULL; b = b->all) {
        if (!b->collected)
            continue;
        gcm__prof_counts *a = &b->active, *q = &b->pend[old];
        a->allocs += q->allocs;
        a->alloc_bytes += q->alloc_bytes;
        a->frees += q->frees;
        a->free_bytes += q->free_bytes;
        memset(q, 0, sizeof *q);
    }
    __atomic_store_n(&pub.cycles, pub.cycles + 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&gct.mu);
}

void gcm__sampled_init(void)
{
    gcm__gc_on_locked(GCM_GC_RECLAIM_START, on_reclaim_start);
    gcm__gc_on_locked(GCM_GC_RECLAIM_END, on_reclaim_end);
}

void gcm__sampled_fork(int phase)
{
    pthread_mutex_t *const order[] = {&gct.mu, &ext.mu};
    gcm__fork_mutexes(order, 2, phase);
}

/* --- snapshots -------------------------------------------------------------------------- */

int gcm__prof_snap_take(gcm__prof_snap *s)
{
    if (s == NULL)
        return EINVAL;
    memset(s, 0, sizeof *s);
    s->rate = gcm__prof_rate();
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    s->time_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;

    /* Buckets made after this point are newer than the snapshot. */
    gcm__bucket *head = gcm__bucket_list();
    size_t n = 0;
    for (gcm__bucket *b = head; b != NULL; b = b->all)
        n++;
    if (n == 0)
        return 0;
    s->recs = gcm__prof_alloc(n * sizeof *s->recs);
    if (s->recs == NULL)
        return ENOMEM;
    pthread_mutex_lock(&gct.mu);
    pthread_mutex_lock(&ext.mu);
    bool fresh = pub.cycles == 0;
    size_t k = 0;
    for (gcm__bucket *b = head; b != NULL && k < n; b = b->all) {
        gcm__prof_counts c = b->active;
        if (b->collected && fresh) {
            /* No cycle has completed: nothing is published yet, so show
             * what is pending (Go's MemProfile does the same). */
            for (int i = 0; i < 2; i++) {
                c.allocs += b->pend[i].allocs;
                c.alloc_bytes += b->pend[i].alloc_bytes;
                c.frees += b->pend[i].frees;
                c.free_bytes += b->pend[i].free_bytes;
            }
        }
        if (c.allocs == 0 && c.frees == 0)
            continue;
        s->recs[k].b = b;
        s->recs[k].c = c;
        k++;
    }
    pthread_mutex_unlock(&ext.mu);
    pthread_mutex_unlock(&gct.mu);
    s->n = k;
    return 0;
}

void gcm__prof_snap_free(gcm__prof_snap *s)
{
    if (s == NULL)
        return;
    gcm__prof_dealloc(s->recs);
    s->recs = NULL;
    s->n = 0;
}
