/*
 * chunk.c — the memory arenas are carved from: chunks, the registry the
 * collector walks, and the chunk cache.
 *
 * Chunks.  A chunk is one block from mimalloc (never malloc), aligned to
 * and starting with a 64-byte header (struct gcm__chunk); an arena bumps
 * through the data after it.  Regular chunks come in power-of-two classes
 * from 4 KiB to 64 MiB, one class per arena, so a free chunk fits any arena
 * of its class.  An allocation too large for its arena's chunks gets a big
 * chunk sized for it, which goes straight back to mimalloc when released
 * (mimalloc caches such blocks well itself).
 *
 * The cache.  A service makes an arena per request, so chunks are handed
 * out and taken back at the rate of requests.  Going to mimalloc each time
 * would cost a cross-thread free whenever a request migrates, and, for
 * scan arenas, a trip through the registry lock.  Free regular chunks are
 * therefore kept, in two levels:
 *
 *   1. Per thread: GCM_CHUNK_TCACHE slots in the thread's gcm__tls.  The
 *      owner takes a chunk with an atomic exchange and returns one with a
 *      store; no lock, nothing shared, so arenas on different threads never
 *      contend.  Exchanges rather than plain loads because one other party
 *      may empty the slots: the trimmer, below.
 *   2. Shared: one list per class under a mutex.  A thread whose slots are
 *      full spills into it, one whose slots are empty refills from it, and
 *      an exiting thread leaves its chunks there.
 *
 * Trimming.  After a burst (a thousand concurrent requests, once) the cache
 * would otherwise pin the burst's memory forever.  The "GC cycle finished"
 * hook trims it to what recent cycles used, with low-water marks (as
 * tcmalloc releases what its caches did not use over an interval):
 *
 *   - every shared list, and every thread's slots, remember the fewest
 *     chunks they held since the last cycle: that many sat unused through
 *     the whole cycle;
 *   - at each cycle each of them gives back to mimalloc the smaller of its
 *     low-water marks of the last two cycles (coldest chunks first, for the
 *     shared lists): a chunk goes back after two full cycles unused, as
 *     sync.Pool drops an object after two cycles through its victim cache.
 *     A thread that takes two chunks per request keeps two, whatever burst
 *     filled its slots; an idle thread keeps none.
 *
 * The trimmer reads a thread's low-water mark and takes its chunks with
 * atomic exchanges while the thread may be using its slots: a race costs at
 * worst one chunk trimmed a cycle early or late, never a chunk lost or
 * shared.  (Slots hold any class; a thread's mark counts all of them.)
 *
 * A program that never collects never trims; the memory limit counts chunk
 * memory (gcm__gc_nongc), so a limit makes cycles, and cycles trim.
 *
 * The registry.  Every regular chunk, and every big chunk of a scan arena,
 * is linked into one doubly-linked list, which the arena root provider
 * (arena.c) follows while bdwgc has the world stopped.  A thread may be
 * stopped anywhere, so every state a single store can leave the list in
 * must be walkable forwards: a chunk is fully initialized before the store
 * that publishes it at the head (release), and unlinked by one store to its
 * predecessor's all_next (or the head) before it is freed; all_prev is never
 * followed by the walker.  Changes are serialized by reg_mu; the walker
 * takes no lock (a stopped thread may hold it).
 *
 * Accounting: every byte held from mimalloc is non-GC memory
 * (gcm__gc_nongc), counted against the memory limit and in MemStats.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include <mimalloc.h>

#include "internal.h"

#if defined(__SANITIZE_THREAD__)
#include <sanitizer/tsan_interface.h>
#endif

static int64_t held; /* bytes held from mimalloc (atomic) */

/* mimalloc is not built with ThreadSanitizer, so TSan cannot see that a
 * block freed on one thread is handed out again on another only after the
 * free: it reports the new owner's first writes as racing with the old
 * owner's last reads.  An instrumented allocator would supply that edge;
 * these supply it for chunks (one sync object for all of them, as mimalloc
 * may reuse any part of a block for any later one). */
static inline void tsan_freeing(void)
{
#if defined(__SANITIZE_THREAD__)
    __tsan_release(&held);
#endif
}

static inline void tsan_allocated(void)
{
#if defined(__SANITIZE_THREAD__)
    __tsan_acquire(&held);
#endif
}

/* --- the registry -------------------------------------------------------- */

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static gcm__chunk *reg_head;

gcm__chunk *gcm__chunk_registry(void)
{
    return __atomic_load_n(&reg_head, __ATOMIC_ACQUIRE);
}

static void reg_link(gcm__chunk *c)
{
    pthread_mutex_lock(&reg_mu);
    c->all_prev = NULL;
    __atomic_store_n(&c->all_next, reg_head, __ATOMIC_RELAXED);
    if (reg_head != NULL)
        reg_head->all_prev = c;
    /* The publishing store: c is complete before the walker can see it. */
    __atomic_store_n(&reg_head, c, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&reg_mu);
}

static void reg_unlink(gcm__chunk *c)
{
    pthread_mutex_lock(&reg_mu);
    gcm__chunk *n = c->all_next, *p = c->all_prev;
    /* One store takes c out of the forward chain; the walker never sees it
     * after this, and c itself still points onwards in case it is being
     * walked right now (it is not: the world is stopped while it walks, and
     * this thread is not freeing c until the store is done). */
    if (p != NULL)
        __atomic_store_n(&p->all_next, n, __ATOMIC_RELEASE);
    else
        __atomic_store_n(&reg_head, n, __ATOMIC_RELEASE);
    if (n != NULL)
        n->all_prev = p;
    pthread_mutex_unlock(&reg_mu);
}

/* --- mimalloc ------------------------------------------------------------ */

static gcm__chunk *sys_alloc(size_t size, uint8_t cls, bool registered)
{
    gcm__chunk *c = mi_malloc_aligned(size, GCM_CHUNK_HDR);
    if (c == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    tsan_allocated();
    memset(c, 0, sizeof *c);
    c->size = size;
    c->cls = cls;
    c->registered = registered;
    c->where = GCM_CHUNK_AT_ARENA;
    c->top = gcm__chunk_data(c);
    /* Nothing in the data is handed out yet. */
    gcm__asan_poison(gcm__chunk_data(c), size - GCM_CHUNK_HDR);
    if (registered)
        reg_link(c);
    GCM_ADD(&held, (int64_t)size);
    gcm__gc_nongc((int64_t)size);
    return c;
}

static void sys_free(gcm__chunk *c)
{
    size_t size = c->size;
    if (c->registered)
        reg_unlink(c);
    GCM_ADD(&held, -(int64_t)size);
    gcm__gc_nongc(-(int64_t)size);
    /* mimalloc is not instrumented: whoever gets this memory next must not
     * find it poisoned. */
    gcm__asan_unpoison(c, size);
    tsan_freeing();
    mi_free(c);
}

gcm__chunk *gcm__chunk_get_big(size_t size, bool registered)
{
    return sys_alloc(size, GCM_CHUNK_BIG, registered);
}

uint64_t gcm__chunk_held(void)
{
    int64_t h = GCM_LOAD(&held);
    return h > 0 ? (uint64_t)h : 0;
}

/* --- the shared cache ---------------------------------------------------- */

static struct {
    pthread_mutex_t mu;
    struct {
        gcm__chunk *head;  /* most recently returned first           */
        uint32_t n;        /* chunks in the list                     */
        uint32_t low;      /* fewest since the last trim             */
        uint32_t low_prev; /* fewest during the cycle before that    */
    } cls[GCM_CHUNK_CLASSES];
    uint64_t bytes; /* atomic: read by gcm__chunk_shared_bytes */
} S = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void shared_push_locked(gcm__chunk *c)
{
    c->where = GCM_CHUNK_AT_SHARED;
    c->next = S.cls[c->cls].head;
    S.cls[c->cls].head = c;
    S.cls[c->cls].n++;
    GCM_STORE(&S.bytes, GCM_LOAD(&S.bytes) + c->size);
}

static void shared_push(gcm__chunk *c)
{
    pthread_mutex_lock(&S.mu);
    shared_push_locked(c);
    pthread_mutex_unlock(&S.mu);
}

static gcm__chunk *shared_pop(unsigned cls)
{
    pthread_mutex_lock(&S.mu);
    gcm__chunk *c = S.cls[cls].head;
    if (c != NULL) {
        S.cls[cls].head = c->next;
        uint32_t n = --S.cls[cls].n;
        if (n < S.cls[cls].low)
            S.cls[cls].low = n;
        GCM_STORE(&S.bytes, GCM_LOAD(&S.bytes) - c->size);
    }
    pthread_mutex_unlock(&S.mu);
    return c;
}

uint64_t gcm__chunk_shared_bytes(void) { return GCM_LOAD(&S.bytes); }

/* --- the thread cache ---------------------------------------------------- */

static int tcache_count(gcm__tls *t)
{
    int n = 0;
    for (int i = 0; i < GCM_CHUNK_TCACHE; i++)
        n += GCM_LOAD(&t->chunk_cache[i]) != NULL;
    return n;
}

static gcm__chunk *tcache_take(gcm__tls *t, unsigned cls)
{
    for (int i = 0; i < GCM_CHUNK_TCACHE; i++) {
        /* The class tag is the owner's alone; checking it first means we
         * never read a chunk the trimmer may have taken and freed. */
        if (t->chunk_cache_cls[i] != cls ||
            GCM_LOAD(&t->chunk_cache[i]) == NULL)
            continue;
        gcm__chunk *c =
            __atomic_exchange_n(&t->chunk_cache[i], NULL, __ATOMIC_ACQUIRE);
        if (c != NULL) {
            uint8_t n = (uint8_t)tcache_count(t);
            if (n < GCM_LOAD(&t->chunk_cache_low))
                GCM_STORE(&t->chunk_cache_low, n);
            return c;
        }
    }
    /* A miss: the thread needed every chunk it had. */
    if (GCM_LOAD(&t->chunk_cache_low) != 0)
        GCM_STORE(&t->chunk_cache_low, 0);
    return NULL;
}

static bool tcache_give(gcm__tls *t, gcm__chunk *c)
{
    for (int i = 0; i < GCM_CHUNK_TCACHE; i++) {
        if (GCM_LOAD(&t->chunk_cache[i]) != NULL)
            continue;
        /* Only the owner fills a slot, so an empty slot stays empty until
         * this store; the trimmer may take c right after it, which is
         * fine. */
        t->chunk_cache_cls[i] = c->cls;
        c->where = GCM_CHUNK_AT_TCACHE;
        __atomic_store_n(&t->chunk_cache[i], c, __ATOMIC_RELEASE);
        return true;
    }
    return false;
}

gcm__chunk *gcm__chunk_get(unsigned cls)
{
    gcm__tls *t = &gcm__tls_self;
    gcm__chunk *c = tcache_take(t, cls);
    if (c == NULL)
        c = shared_pop(cls);
    if (c == NULL)
        return sys_alloc((size_t)1 << (cls + GCM_CHUNK_MIN_SHIFT), (uint8_t)cls,
                         true);
    c->where = GCM_CHUNK_AT_ARENA;
    c->next = NULL;
    return c;
}

void gcm__chunk_put(gcm__chunk *c)
{
    if (c->cls == GCM_CHUNK_BIG) {
        sys_free(c);
        return;
    }
    c->next = NULL;
    gcm__tls *t = &gcm__tls_self;
    /* A thread whose cache holds chunks must be in the thread registry:
     * that is how the trimmer reaches its slots and how its exit hook
     * runs. */
    if (GCM_UNLIKELY(!(t->flags & GCM_T_LINKED)))
        gcm__thread_attach(t);
    if (!tcache_give(t, c))
        shared_push(c);
}

/* --- trimming ------------------------------------------------------------ */

/* Under the thread registry's lock: take from a thread's slots the chunks
 * it has not needed for two cycles.  No allocation, no other lock. */
static void trim_thread(gcm__tls *t, void *arg)
{
    gcm__chunk **release = arg;
    uint8_t now = (uint8_t)tcache_count(t);
    uint8_t low = __atomic_exchange_n(&t->chunk_cache_low, now, __ATOMIC_RELAXED);
    uint8_t prev =
        __atomic_exchange_n(&t->chunk_cache_low_prev, low, __ATOMIC_RELAXED);
    int r = low < prev ? low : prev, taken = 0;
    for (int i = GCM_CHUNK_TCACHE - 1; i >= 0 && taken < r; i--) {
        if (GCM_LOAD(&t->chunk_cache[i]) == NULL)
            continue;
        gcm__chunk *c =
            __atomic_exchange_n(&t->chunk_cache[i], NULL, __ATOMIC_ACQUIRE);
        if (c != NULL) {
            c->next = *release;
            *release = c;
            taken++;
        }
    }
    /* The next cycle's mark starts from what is left. */
    if (taken > 0)
        GCM_STORE(&t->chunk_cache_low, (uint8_t)tcache_count(t));
}

void gcm__chunk_trim(void)
{
    gcm__chunk *release = NULL;
    gcm__thread_foreach(trim_thread, &release);

    pthread_mutex_lock(&S.mu);
    for (int k = 0; k < GCM_CHUNK_CLASSES; k++) {
        uint32_t low = S.cls[k].low, prev = S.cls[k].low_prev;
        uint32_t r = low < prev ? low : prev;
        S.cls[k].low_prev = low;
        if (r == 0)
            continue;
        /* The list is most recently returned first: cut the tail, the
         * chunks that have waited longest (and are coldest in the CPU's
         * caches). */
        uint32_t keep = S.cls[k].n - r;
        gcm__chunk **pp = &S.cls[k].head;
        for (uint32_t i = 0; i < keep; i++)
            pp = &(*pp)->next;
        gcm__chunk *tail = *pp;
        *pp = NULL;
        S.cls[k].n = keep;
        while (tail != NULL) {
            gcm__chunk *next = tail->next;
            GCM_STORE(&S.bytes, GCM_LOAD(&S.bytes) - tail->size);
            tail->next = release;
            release = tail;
            tail = next;
        }
    }
    for (int k = 0; k < GCM_CHUNK_CLASSES; k++)
        S.cls[k].low = S.cls[k].n;
    pthread_mutex_unlock(&S.mu);

    while (release != NULL) {
        gcm__chunk *next = release->next;
        sys_free(release);
        release = next;
    }
}

static void on_cycle(const gcm__cycle *c, void *arg)
{
    (void)c;
    (void)arg;
    gcm__chunk_trim();
}

/* The exiting thread's slots go to the shared lists (the trimmer cannot
 * reach a thread that has left the registry). */
static void on_thread_exit(gcm__tls *t)
{
    GCM_STORE(&t->chunk_cache_low, 0);
    GCM_STORE(&t->chunk_cache_low_prev, 0);
    for (int i = 0; i < GCM_CHUNK_TCACHE; i++) {
        gcm__chunk *c =
            __atomic_exchange_n(&t->chunk_cache[i], NULL, __ATOMIC_ACQUIRE);
        if (c != NULL)
            shared_push(c);
    }
}

/* --- fork ---------------------------------------------------------------- */

/* Locks held across fork() so the child finds the lists consistent; init.c
 * takes them after the collector's cycle mutex, the order the GC-cycle
 * hook takes them in. */
static void fork_prepare(void)
{
    pthread_mutex_lock(&S.mu);
    pthread_mutex_lock(&reg_mu);
}

static void fork_parent(void)
{
    pthread_mutex_unlock(&reg_mu);
    pthread_mutex_unlock(&S.mu);
}

/* In the child only the forking thread exists; chunks in the other
 * threads' slots would be stranded (no one takes them, no trimmer reaches
 * them).  Every regular chunk is in the registry and says who holds it:
 * move the stranded ones to the shared lists. */
static void fork_child(void)
{
    pthread_mutex_init(&reg_mu, NULL);
    pthread_mutex_init(&S.mu, NULL);
    gcm__tls *self = &gcm__tls_self;
    for (gcm__chunk *c = reg_head; c != NULL; c = c->all_next) {
        if (c->where != GCM_CHUNK_AT_TCACHE)
            continue;
        bool mine = false;
        for (int i = 0; i < GCM_CHUNK_TCACHE; i++)
            mine |= GCM_LOAD(&self->chunk_cache[i]) == c;
        if (!mine)
            shared_push_locked(c);
    }
}

void gcm__chunk_init(void)
{
    gcm__gc_on_cycle(on_cycle, NULL);
    gcm__thread_on_exit(on_thread_exit);
}

void gcm__chunk_fork(int phase)
{
    if (phase == GCM_FORK_PREPARE)
        fork_prepare();
    else if (phase == GCM_FORK_PARENT)
        fork_parent();
    else
        fork_child();
}
