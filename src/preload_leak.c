/*
 * preload_leak.c — leakcheck mode: finding memory the program lost.
 *
 * Every object the program gets from malloc in this mode lives in the
 * collector's heap behind a 16-byte header, and has a slot in a tracking
 * array; the header holds the slot's index, so free finds and clears it in
 * constant time, with no lock and no search.  At each collection, after
 * marking has settled which objects are reachable and before anything is
 * swept, a hook walks the array: an object still in it (never freed) that
 * the collector did not mark is unreachable — a leak.  The hook reports it
 * once and sets its mark bit, so the sweep keeps it: nothing is reclaimed
 * behind the program's back, and a pointer the collector could not see (a
 * disguised one, one held only by the kernel) costs at worst a false
 * report, never a crash.  Objects a leak points to are leaks too and are
 * kept the same way.
 *
 * free() clears the slot and hands the object back (through gc.c's
 * per-thread cache of freed blocks, as in gc mode).  Leaving freed objects
 * for the sweep instead was measured slower: allocation then always
 * touches cold memory, which the sweep must clear.
 *
 * bdwgc's own find-leak mode is not used: it reports at most 40 leaks a
 * cycle, without allocation stacks, through its log, and frees what it
 * reports.
 *
 * Concurrency.  Slots are handed out from per-thread caches of free
 * indices (a shared list, under a mutex, balances them between threads).
 * The hook reads slots with the world running: a slot cleared or filled
 * while it looks is either seen or not, and either is safe — a cleared
 * object was freed (its memory stays until the sweep that follows), a new
 * one was allocated after marking from a free list whose objects bdwgc
 * keeps marked.  What a cycle found is reported afterwards, from a cycle
 * hook, where symbolizing and writing are allowed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define GC_THREADS
#define GC_NO_THREAD_REDIRECTS
#include <gc/gc.h>
#include <gc/gc_mark.h>
#include <mimalloc.h>

#include "internal.h"

/* The header in front of every leakcheck object.  Besides the tracking
 * slot and the size, it keeps what free needs to hand the object back
 * (where the collector's object starts, and its size as bdwgc rounds it)
 * so that free need not read bdwgc's own header for the block, which
 * lives apart from it and misses the cache.  free trusts these only once
 * the slot they name holds p: the header is the program's neighbour, and
 * a pointer freed twice or never allocated must not be believed. */
typedef struct header {
    uint32_t slot;     /* index in the tracking array; UNTRACKED if none */
    uint32_t base_off; /* bytes from the object's base to the user block */
    uint64_t size_fp;  /* bytes asked for << FP_BITS | footprint / 16   */
} header;
_Static_assert(sizeof(header) == GCM_LC_HEADER, "header size");

/* The footprint in 16-byte granules, 0 when it does not fit (free asks
 * bdwgc then).  Sizes need the other 56 bits: no object reaches 2^56 bytes
 * in a 57-bit address space. */
#define FP_BITS 8
#define FP_MAX ((((uint64_t)1 << FP_BITS) - 1) * 16)

#define UNTRACKED UINT32_MAX
#define REPORTED ((uintptr_t)1)

/* The tracking array: chunks of 64Ki slots, mapped on first use.  A slot
 * holds the user pointer (| REPORTED once reported), or 0. */
#define CHUNK_BITS 16
#define CHUNK_SLOTS (1u << CHUNK_BITS)
#define MAX_CHUNKS (1u << 16) /* 4Gi slots */
static uintptr_t *chunks[MAX_CHUNKS];
static uint32_t hiwater; /* slots ever handed out */
static pthread_mutex_t chunk_mu = PTHREAD_MUTEX_INITIALIZER;

/* Free indices: per thread first, then a shared stack. */
#define TCACHE 256
static GCM_TLS uint32_t tcache[TCACHE];
static GCM_TLS uint32_t tcache_n;
static pthread_mutex_t free_mu = PTHREAD_MUTEX_INITIALIZER;
static uint32_t *free_list;
static size_t free_n, free_cap;
static bool ready;

static inline uintptr_t *slot_at(uint32_t i)
{
    return &chunks[i >> CHUNK_BITS][i & (CHUNK_SLOTS - 1)];
}

static bool ensure_chunk(uint32_t i)
{
    uint32_t c = i >> CHUNK_BITS;
    if (c >= MAX_CHUNKS)
        return false;
    if (__atomic_load_n(&chunks[c], __ATOMIC_ACQUIRE) != NULL)
        return true;
    pthread_mutex_lock(&chunk_mu);
    if (chunks[c] == NULL) {
        void *m = mmap(NULL, CHUNK_SLOTS * sizeof(uintptr_t), PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m != MAP_FAILED) {
            gcm__gc_nongc((int64_t)(CHUNK_SLOTS * sizeof(uintptr_t)));
            __atomic_store_n(&chunks[c], (uintptr_t *)m, __ATOMIC_RELEASE);
        }
    }
    pthread_mutex_unlock(&chunk_mu);
    return chunks[c] != NULL;
}

static uint32_t take_slot(void)
{
    if (tcache_n > 0)
        return tcache[--tcache_n];
    pthread_mutex_lock(&free_mu);
    while (free_n > 0 && tcache_n < TCACHE / 2)
        tcache[tcache_n++] = free_list[--free_n];
    pthread_mutex_unlock(&free_mu);
    if (tcache_n > 0)
        return tcache[--tcache_n];
    uint32_t i = __atomic_fetch_add(&hiwater, 1, __ATOMIC_ACQ_REL);
    if (i == UNTRACKED || !ensure_chunk(i))
        return UNTRACKED;
    return i;
}

/* A thread past its exit destructor (it still frees: glibc frees other
 * threads' cached stacks then) gives its slots straight to the shared
 * list: thread_gone has run, and nothing would take back its cache. */
static void give_slot(uint32_t i)
{
    bool exited = gcm__tls_self.flags & GCM_T_EXITED;
    if (!exited && tcache_n < TCACHE) {
        tcache[tcache_n++] = i;
        return;
    }
    pthread_mutex_lock(&free_mu);
    if (free_n + TCACHE / 2 + 1 > free_cap) {
        size_t cap = free_cap ? free_cap * 2 : 4096;
        uint32_t *n = mi_realloc(free_list, cap * sizeof *n);
        if (n != NULL) {
            free_list = n;
            free_cap = cap;
        }
    }
    while (tcache_n > TCACHE / 2 && free_n < free_cap)
        free_list[free_n++] = tcache[--tcache_n];
    if (exited && free_n < free_cap)
        free_list[free_n++] = i;
    pthread_mutex_unlock(&free_mu);
    if (!exited && tcache_n < TCACHE)
        tcache[tcache_n++] = i;
    /* else: the shared list could not grow; the index is not reused */
}

/* Slots of an exiting thread go back to the shared list. */
static void thread_gone(gcm__tls *t)
{
    (void)t;
    pthread_mutex_lock(&free_mu);
    if (free_n + tcache_n > free_cap) {
        size_t cap = free_cap ? free_cap * 2 : 4096;
        while (cap < free_n + tcache_n)
            cap *= 2;
        uint32_t *n = mi_realloc(free_list, cap * sizeof *n);
        if (n != NULL) {
            free_list = n;
            free_cap = cap;
        }
    }
    while (tcache_n > 0 && free_n < free_cap)
        free_list[free_n++] = tcache[--tcache_n];
    pthread_mutex_unlock(&free_mu);
}

static inline header *hdr(void *p) { return (header *)((char *)p - sizeof(header)); }

void gcm__lc_track(void *p, const gcm__gc_obj *obj, size_t size, bool tracked)
{
    header *h = hdr(p);
    h->base_off = (uint32_t)((char *)p - (char *)obj->base);
    uint64_t fp = obj->fp % 16 == 0 && obj->fp <= FP_MAX ? obj->fp / 16 : 0;
    h->size_fp = (uint64_t)size << FP_BITS | fp;
    h->slot = tracked ? take_slot() : UNTRACKED;
    if (h->slot != UNTRACKED)
        __atomic_store_n(slot_at(h->slot), (uintptr_t)p, __ATOMIC_RELEASE);
}

/* p's slot, if its header names one that holds p. */
static uintptr_t *own_slot(void *p, uint32_t i)
{
    if (i >= __atomic_load_n(&hiwater, __ATOMIC_ACQUIRE))
        return NULL;
    uintptr_t *c = __atomic_load_n(&chunks[i >> CHUNK_BITS], __ATOMIC_ACQUIRE);
    if (c == NULL)
        return NULL;
    uintptr_t *s = &c[i & (CHUNK_SLOTS - 1)];
    return (__atomic_load_n(s, __ATOMIC_ACQUIRE) & ~REPORTED) == (uintptr_t)p ? s : NULL;
}

gcm__lc_state gcm__lc_release(void *p, gcm__gc_obj *obj)
{
    if ((uintptr_t)p % 16 != 0) /* leakcheck's objects are 16-aligned at least */
        return GCM_LC_INVALID;
    header *h = hdr(p);
    uint32_t i = h->slot;
    if (i == UNTRACKED)
        return GCM_LC_UNTRACKED;
    uintptr_t *s = own_slot(p, i);
    if (s == NULL)
        return GCM_LC_INVALID;
    h->slot = UNTRACKED; /* a second free of p finds no slot */
    __atomic_store_n(s, 0, __ATOMIC_RELEASE);
    give_slot(i);
    obj->base = gcm__lc_base(p);
    obj->fp = (size_t)(h->size_fp & ((1u << FP_BITS) - 1)) * 16;
    return GCM_LC_RELEASED;
}

void *gcm__lc_base(void *p) { return (char *)p - hdr(p)->base_off; }

size_t gcm__lc_size(void *p) { return (size_t)(hdr(p)->size_fp >> FP_BITS); }

/* The program owns p (it is resizing it), so no collection reports it
 * meanwhile: a plain store.  The block stays the same. */
void gcm__lc_resize(void *p, size_t n)
{
    header *h = hdr(p);
    h->size_fp = (uint64_t)n << FP_BITS | (h->size_fp & ((1u << FP_BITS) - 1));
}

/* --- at each collection -------------------------------------------------------- */

/* Leaks found by the last cycle, waiting to be reported (found_mu). */
static pthread_mutex_t found_mu = PTHREAD_MUTEX_INITIALIZER;
static gcm__leaked *found;
static size_t nfound, capfound;

/* Totals over the run. */
static uint64_t total_objects, total_bytes;

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
    uint32_t n = __atomic_load_n(&hiwater, __ATOMIC_ACQUIRE);
    for (uint32_t i = 0; i < n; i++) {
        uintptr_t *c = __atomic_load_n(&chunks[i >> CHUNK_BITS], __ATOMIC_ACQUIRE);
        if (c == NULL) {
            i |= CHUNK_SLOTS - 1; /* not mapped yet: the whole chunk is empty */
            continue;
        }
        uintptr_t *s = &c[i & (CHUNK_SLOTS - 1)];
        uintptr_t v = __atomic_load_n(s, __ATOMIC_ACQUIRE);
        if (v == 0)
            continue;
        void *p = (void *)(v & ~REPORTED);
        void *base = gcm__lc_base(p);
        if (GC_is_marked(base))
            continue;
        GC_set_mark_bit(base); /* keep it: report, never reclaim */
        if (!(v & REPORTED) &&
            __atomic_compare_exchange_n(s, &v, v | REPORTED, false,
                                        __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
            note_found(p, gcm__lc_size(p));
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
    gcm__lc_report_found(c->n, list, n, bytes);
    mi_free(list);
}

/* fork(): found_mu (taken first by the reclaim hook), then the slot lists. */
void gcm__lc_fork(int phase)
{
    pthread_mutex_t *const order[] = {&found_mu, &chunk_mu, &free_mu};
    gcm__fork_mutexes(order, 3, phase);
}

void gcm__lc_totals(uint64_t *objects, uint64_t *bytes)
{
    *objects = __atomic_load_n(&total_objects, __ATOMIC_RELAXED);
    *bytes = __atomic_load_n(&total_bytes, __ATOMIC_RELAXED);
}

void gcm__lc_init(void)
{
    if (ready)
        return;
    gcm__gc_on_locked(GCM_GC_RECLAIM_START, protect_unreachable);
    gcm__gc_on_cycle(report_cycle, NULL);
    gcm__thread_on_exit(thread_gone);
    ready = true;
}
