/*
 * pool.c — sync.Pool for C: per-thread caches, a victim cache, and a
 * rotation driven by the GC cycle.
 *
 * The shape is Go's (sync/pool.go).  A pool keeps, for every thread that
 * uses it, a "local": a private slot only that thread touches and a shared
 * list other threads may steal from.  Locals are separate 128-byte blocks,
 * the owner's fields on the first cache line and the shared ones on the
 * second, so threads never write each other's lines on the common path.
 *
 *   Put:  the private slot if it is empty, else the newest end of the
 *         thread's shared list.
 *   Get:  the private slot; the newest end of the own shared list; the
 *         oldest end of another thread's list (stealing); the victim
 *         caches (own, then others'); and last, a new object.
 *
 * A thread is not a P: there may be thousands, and they come and go.  Each
 * thread that touches a pool gets a small "slot" number (reused after the
 * thread exits), and each pool has an array of locals indexed by slot,
 * grown when a new slot first uses the pool.  Old arrays are kept until the
 * pool is destroyed, so a reader never needs a lock to index one.  On top,
 * each thread remembers the last pool it used and its local there, so the
 * hit path is: one thread-local compare, the private slot, two counters.
 * gcm_pool_destroy clears every thread's memory of the pool it destroys.
 *
 * The GC cycle.  After each cycle every pool's primary caches (private
 * slots and shared lists) become its victim cache, and the victims of the
 * cycle before are released: objects from the collected heap are just
 * forgotten (they are garbage now), others are freed, after drop_fn.  This
 * is Go's poolCleanup, so a pool nobody uses is empty after two cycles
 * while a busy one loses only what it did not reuse in a whole cycle.
 *
 * Go rotates with the world stopped, where no Get or Put can be half done.
 * Here the rotation runs in a "GC cycle finished" hook, on the collecting
 * thread, while every other thread keeps calling Get and Put.  The shared
 * lists and victims are easy: each local has a spin lock, taken by stealers
 * and by the rotation alike.  The private slot is the problem: locking it
 * would put an atomic read-modify-write (~5 ns here, as much as a whole
 * mi_malloc + mi_free) on the path Get and Put are for.  So the private
 * slot is handed between its owner and the rotation by an asymmetric
 * (Dekker-style) protocol:
 *
 *     owner (Get/Put)                     rotation
 *     busy = 1                            rotating = 1
 *     if (rotating) { busy = 0; locks }   membarrier()
 *     ... private slot ...                wait until every busy == 0
 *     busy = 0                            ... every private slot ...
 *                                         rotating = 0
 *
 * The owner's side is plain loads and stores.  The heavy side is the
 * rotation's membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED), which runs a
 * full memory barrier on every CPU running one of our threads: after it,
 * an owner either has its busy = 1 visible (the rotation waits for it), or
 * will see rotating = 1 and leave the private slot alone (it uses the
 * locked lists instead, so it never waits for the rotation).  The busy
 * window is a few instructions with no call and no lock in it, so the
 * rotation waits for nanoseconds.  Where membarrier is not allowed (old
 * kernels, seccomp), the barrier is made by changing the protection of a
 * page, which makes the kernel interrupt every CPU using our address space
 * (what .NET's FlushProcessWriteBuffers does on Linux).
 *
 * Keeping cached objects alive.  Objects of a pool that holds pointers live
 * on the collected heap, but the caches holding them (locals, lists) are
 * mimalloc memory, which the collector does not scan.  Two ways to make
 * them visible: allocate the caches on the collected heap, or push them as
 * roots.  Collected caches would be marked only if reachable themselves (so
 * something must still root them), would be scanned whole each cycle, and
 * would make every list grow a collected allocation.  So they are roots: a
 * root provider, called while the world is stopped, walks the registry of
 * pools, their locals arrays, and pushes each private slot and each list's
 * whole storage.  It takes no lock (a stopped thread may hold it) and
 * allocates nothing, so everything it follows is kept traversable after
 * every single store: lists keep their capacity in their storage block, an
 * empty place holds NULL, grown storage is published before the old one is
 * freed, victims being released hang off the pool until released, and a
 * pool is unlinked before it is freed.
 *
 * A thread that exits hands its private slot and shared list to its
 * local's victim cache, where other threads still find them and the next
 * cycle releases them; its slot is then free for a new thread.
 *
 * Debug mode (GCMALLOC_DEBUG=1 or a debug build, fixed when the pool is
 * made) gives every object a 16-byte header with the pool's tag and the
 * object's state (out / cached), so gcm_pool_put can name a pointer that
 * did not come from this pool and a double put, and keeps destroyed pools
 * as tombstones so that a put after destroy is recognized.  A pointer's
 * header is read only once the pointer is known to be ours: the collector
 * vouches for collected objects (GC_base), a set (ptrset.c) for mimalloc
 * ones.  Each misuse is reported once per call through gcm__diag_misuse
 * and the call then does nothing.
 *
 * Locks are lock.c's spin locks, not pthread mutexes: a waiter must stay
 * able to take the collector's stop signal (see lock.c), and every
 * critical section here is a few pointer moves.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/membarrier.h>
#include <stdalign.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define GC_THREADS
#define GC_NO_THREAD_REDIRECTS /* thread.c interposes pthread_create */
#include <gc/gc.h>
#include <mimalloc.h>

#include "internal.h"

/* The hit paths get no frame pointer: they call nothing (the slow paths
 * are tail calls, so a stack walk from there sees our caller), and setting
 * one up would be a tenth of their cost. */
#define GCM_HOT __attribute__((hot, optimize("omit-frame-pointer")))

/* --- storage ---------------------------------------------------------------- */

/* A block of object pointers: a shared list's or a victim cache's storage.
 * Its capacity lives in the block, so a reader with only the pointer (the
 * root provider) always knows how far to scan.  Empty places are NULL. */
typedef struct vec {
    struct vec *next; /* on a pool's list of victims being released */
    uint32_t cap;
    uint32_t pad_;
    void *slot[];
} vec;

/* A deque in a vec: the owner works at the newest end, thieves at the
 * oldest. */
typedef struct ring {
    vec *v;
    uint32_t first; /* place of the oldest object */
    uint32_t n;     /* objects                    */
} ring;

typedef struct plocal {
    /* Line 0: the owner's.  `private` is also handed to the rotation by the
     * busy/rotating protocol; the counters are read by statistics. */
    void *private;
    uint64_t n_private, n_shared, n_stolen, n_victim, n_miss, n_put;
    /* Line 1: guarded by lock, written by thieves and the rotation. */
    alignas(GCM_CACHELINE) gcm__lock lock;
    uint32_t shared_n; /* copies of shared.n and victim.n for peeking */
    uint32_t victim_n; /* without the lock                            */
    ring shared;
    ring victim;
} plocal;
_Static_assert(sizeof(plocal) == 2 * GCM_CACHELINE, "a local is two lines");

/* A pool's locals, by slot.  Replaced (never changed in place) when a
 * larger slot needs one; the replaced arrays hang off `retired`. */
typedef struct larr {
    uint32_t cap;
    struct larr *retired;
    plocal *l[];
} larr;

static larr empty_larr; /* cap 0: no local for anyone */

/* The thread's memory of its last pool (pool.c's fields of gcm__tls).
 * Only the owner reads the pair, and writes the local first, the pool
 * second.  gcm_pool_destroy, on another thread, only ever turns the pool
 * field from the destroyed pool to NULL (a compare-and-swap: if the owner
 * has moved on meanwhile, the swap fails), so the owner never finds a pool
 * paired with another pool's local. */
static inline void remember(gcm__tls *t, gcm_pool *p, plocal *l)
{
    GCM_STORE(&t->pool_last_local, l);
    GCM_STORE(&t->pool_last, p);
}

#define POOL_LIVE 0x6c6f6f7020636d67ull /* "gcm pool" */
#define POOL_DEAD 0x646165642d6c6f6full

struct gcm_pool {
    /* Read by every Get and Put. */
    larr *locals;
    void (*reset_fn)(void *, void *);
    void *arg;
    uint8_t debug;     /* headers and misuse checks                    */
    uint8_t gc;        /* objects on the collected heap; scanned       */
    uint8_t dying;     /* gcm_pool_destroy has begun (under P.mu)      */
    uint8_t releasing; /* the rotation is releasing `dead` (P.mu)      */
    uint32_t hdr;      /* debug header bytes before each object        */
    /* Misses and releases. */
    int (*new_fn)(void *, void *);
    void (*drop_fn)(void *, void *);
    gcm__pool_backend be;
    size_t size, align;
    /* The registry (P.mu; the root provider follows `next` and `dead`). */
    gcm_pool *next;
    gcm_pool *rel_next;  /* the rotation's list of pools to release    */
    vec *dead;           /* former victims the rotation is releasing   */
    uint64_t victim_gen; /* non-zero while victims may exist           */
    /* Counters kept by the pool rather than its locals (atomic). */
    uint64_t dropped, cycles, misses_nolocal, puts_nolocal;
    uint64_t magic;
    uint64_t tag;        /* debug: in every object's header            */
    gcm__ptrset objs;    /* debug, mimalloc objects: every one made    */
    char name[48];
    uint8_t prof_kind;   /* the profiler's label: pool, or buf (buf.c) */
};

/* Global state.  `rotating` is read by every Get and Put, so it sits alone
 * on its line. */
static alignas(GCM_CACHELINE) int pool_rotating;

enum { BARRIER_NONE, BARRIER_MEMBARRIER, BARRIER_MPROTECT };

/* Counters of destroyed pools, for MemStats. */
typedef struct totals {
    uint64_t gets, puts, hp, hs, ht, hv, misses, dropped;
} totals;

static struct {
    alignas(GCM_CACHELINE) gcm__lock mu; /* registry, slots, locals arrays */
    gcm__lock rot_mu;  /* one rotation at a time                         */
    int ready;
    int barrier;
    void *barrier_page;
    gcm_pool *head;
    gcm__tls **slot_tls; /* by slot: the thread owning it (NULL: free)  */
    uint32_t nslots, slot_cap;
    uint64_t gen;        /* rotations so far                             */
    uint64_t npools;
    totals gone;
} P = {.mu = GCM_LOCK_INIT, .rot_mu = GCM_LOCK_INIT};

/* --- internal memory (mimalloc, counted as non-GC memory) -------------- */

static void *imem_zalloc(size_t n, size_t align)
{
    /* Zeroed here rather than by mi_zalloc, after the TSan edge. */
    void *p = align > 16 ? mi_malloc_aligned(n, align) : mi_malloc(n);
    if (p != NULL) {
        gcm__tsan_allocated();
        memset(p, 0, n);
        gcm__gc_nongc((int64_t)mi_usable_size(p));
    }
    return p;
}

static void imem_free(void *p)
{
    if (p == NULL)
        return;
    gcm__gc_nongc(-(int64_t)mi_usable_size(p));
    gcm__tsan_freeing();
    mi_free(p);
}

static vec *vec_new(uint32_t cap)
{
    vec *v = imem_zalloc(sizeof(vec) + (size_t)cap * sizeof(void *), 16);
    if (v != NULL)
        v->cap = cap;
    return v;
}

/* --- rings (caller holds the local's lock) ---------------------------------- */

/* Makes room for `need` objects.  The new storage is filled and published
 * before the old one is freed, so the root provider always finds every
 * object in a published block. */
static bool ring_reserve(ring *r, uint32_t need)
{
    uint32_t cap = r->v != NULL ? r->v->cap : 0;
    if (need <= cap)
        return true;
    uint32_t ncap = cap < 8 ? 8 : cap * 2;
    while (ncap < need)
        ncap *= 2;
    vec *nv = vec_new(ncap);
    if (nv == NULL)
        return false;
    for (uint32_t i = 0; i < r->n; i++)
        nv->slot[i] = GCM_LOAD(&r->v->slot[(r->first + i) % cap]);
    vec *old = r->v;
    GCM_STORE(&r->v, nv);
    r->first = 0;
    imem_free(old);
    return true;
}

static bool ring_push_back(ring *r, void *x)
{
    if (!ring_reserve(r, r->n + 1))
        return false;
    GCM_STORE(&r->v->slot[(r->first + r->n) % r->v->cap], x);
    r->n++;
    return true;
}

static void *ring_pop_back(ring *r)
{
    if (r->n == 0)
        return NULL;
    void **s = &r->v->slot[(r->first + r->n - 1) % r->v->cap];
    void *x = GCM_LOAD(s);
    GCM_STORE(s, NULL);
    r->n--;
    return x;
}

static void *ring_pop_front(ring *r)
{
    if (r->n == 0)
        return NULL;
    void **s = &r->v->slot[r->first];
    void *x = GCM_LOAD(s);
    GCM_STORE(s, NULL);
    r->first = (r->first + 1) % r->v->cap;
    r->n--;
    return x;
}

static void local_hints(plocal *l)
{
    GCM_STORE(&l->shared_n, l->shared.n);
    GCM_STORE(&l->victim_n, l->victim.n);
}

/* --- the private slot: owner side of the protocol (essay above) ------------ */

static inline void busy_enter(gcm__tls *t)
{
    GCM_STORE(&t->pool_busy, 1);
    /* Only the compiler must keep the store before the load below: the
     * rotation's membarrier orders them on the CPU. */
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
}

static inline void busy_leave(gcm__tls *t)
{
    __atomic_store_n(&t->pool_busy, 0, __ATOMIC_RELEASE);
}

static inline void *private_take(gcm__tls *t, plocal *l)
{
    void *x = NULL;
    busy_enter(t);
    if (GCM_LIKELY(!__atomic_load_n(&pool_rotating, __ATOMIC_ACQUIRE))) {
        x = GCM_LOAD(&l->private);
        if (x != NULL) {
            GCM_STORE(&l->private, NULL);
            GCM_BUMP(&l->n_private, 1);
        }
    }
    busy_leave(t);
    return x;
}

static inline bool private_give(gcm__tls *t, plocal *l, void *x)
{
    bool ok = false;
    busy_enter(t);
    if (GCM_LIKELY(!__atomic_load_n(&pool_rotating, __ATOMIC_ACQUIRE)) &&
        GCM_LOAD(&l->private) == NULL) {
        GCM_STORE(&l->private, x);
        GCM_BUMP(&l->n_put, 1);
        ok = true;
    }
    busy_leave(t);
    return ok;
}

/* The calling thread's local of p, or NULL if it has none yet.  slot1 is
 * the thread's slot + 1, so "no slot" (0) wraps to an index past any cap. */
static inline plocal *local_of(gcm_pool *p, uint32_t slot1)
{
    larr *a = __atomic_load_n(&p->locals, __ATOMIC_ACQUIRE);
    uint32_t i = slot1 - 1;
    if (GCM_LIKELY(i < a->cap))
        return __atomic_load_n(&a->l[i], __ATOMIC_ACQUIRE);
    return NULL;
}

/* --- the rotation's heavy barrier -------------------------------------------- */

static void barrier_init(void)
{
    if (syscall(__NR_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0,
                0) == 0) {
        P.barrier = BARRIER_MEMBARRIER;
        return;
    }
    void *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (page != MAP_FAILED) {
        (void)mlock(page, 4096); /* resident, so protection changes flush */
        P.barrier_page = page;
        P.barrier = BARRIER_MPROTECT;
        return;
    }
    P.barrier = BARRIER_NONE;
    gcm__diag("pools: neither membarrier nor mmap available; private slots "
              "are not rotated by GC cycles");
}

/* Runs a full memory barrier on every CPU running a thread of ours.
 * Returns false when it cannot. */
static bool heavy_barrier(void)
{
    switch (P.barrier) {
    case BARRIER_MEMBARRIER:
        if (syscall(__NR_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) == 0)
            return true;
        return false;
    case BARRIER_MPROTECT:
        /* Dirty the page while writable, then revoke access: the kernel
         * must shoot down the mapping on every CPU that may cache it, by
         * interrupting it, and an interrupt drains the CPU's store buffer. */
        if (mprotect(P.barrier_page, 4096, PROT_READ | PROT_WRITE) != 0)
            return false;
        __atomic_fetch_add((long *)P.barrier_page, 1, __ATOMIC_SEQ_CST);
        return mprotect(P.barrier_page, 4096, PROT_NONE) == 0;
    default:
        return false;
    }
}

/* --- objects: backends and debug headers ---------------------------------------- */

/* Debug header: the last 16 bytes before an object. */
typedef struct dbg_hdr {
    uint64_t tag;
    uint64_t state;
} dbg_hdr;
enum {
    OBJ_OUT = 0x6f7574,       /* taken by gcm_pool_get                */
    OBJ_CACHED = 0x636163686564, /* put back, in a cache             */
    OBJ_FREED = 0x66726565,   /* released by the pool                  */
};

static inline dbg_hdr *hdr_of(void *obj)
{
    return (dbg_hdr *)((char *)obj - sizeof(dbg_hdr));
}

static void *finish_new(gcm_pool *p, char *base)
{
    uintptr_t a = (uintptr_t)base + p->hdr;
    a = (a + p->align - 1) & ~(uintptr_t)(p->align - 1);
    void *obj = (void *)a;
    if (p->debug) {
        dbg_hdr *h = hdr_of(obj);
        h->tag = p->tag;
        h->state = OBJ_OUT;
    }
    return obj;
}

/* Collected heap.  Alignment above 16 over-allocates and points inside the
 * object (bdwgc recognizes interior pointers, checked at pool creation);
 * a released object is just forgotten. */
static void *gc_alloc(gcm_pool *p, void *arg)
{
    (void)arg;
    size_t extra = p->align > 16 ? p->align - 16 : 0;
    char *base = gcm_malloc(p->size + p->hdr + extra);
    return base != NULL ? finish_new(p, base) : NULL;
}

static void gc_release(gcm_pool *p, void *obj, void *arg)
{
    (void)p;
    (void)obj;
    (void)arg;
}

/* mimalloc: aligned blocks, counted as non-GC memory. */
static void *mi_alloc(gcm_pool *p, void *arg)
{
    (void)arg;
    char *base = imem_zalloc(p->size + p->hdr, p->align);
    if (base == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    return finish_new(p, base);
}

static void mi_release(gcm_pool *p, void *obj, void *arg)
{
    (void)arg;
    imem_free((char *)obj - p->hdr);
}

static const gcm__pool_backend gc_backend = {gc_alloc, gc_release, NULL};
static const gcm__pool_backend mi_backend = {mi_alloc, mi_release, NULL};

/* Releases an object the pool no longer caches. */
static void drop_obj(gcm_pool *p, void *x)
{
    if (p->drop_fn != NULL)
        p->drop_fn(x, p->arg);
    if (p->debug) {
        hdr_of(x)->state = OBJ_FREED;
        if (!p->gc)
            gcm__ptrset_take(&p->objs, x, NULL);
    }
    gcm__prof_free(x);
    p->be.release(p, x, p->be.arg);
}

/* --- slots and locals ----------------------------------------------------------- */

static void on_thread_exit(gcm__tls *t);
static void on_cycle(const gcm__cycle *c, void *arg);
static void push_roots(void);

static void pool_init(void)
{
    if (__atomic_load_n(&P.ready, __ATOMIC_ACQUIRE))
        return;
    gcm__ensure_init();
    gcm__lock_acquire(&P.mu);
    if (!P.ready) {
        barrier_init();
        gcm__gc_on_cycle(on_cycle, NULL);
        gcm__gc_add_roots(push_roots);
        gcm__thread_on_exit(on_thread_exit);
        __atomic_store_n(&P.ready, 1, __ATOMIC_RELEASE);
    }
    gcm__lock_release(&P.mu);
}

/* Gives the calling thread a slot.  False when out of memory. */
static GCM_NOINLINE bool slot_acquire(gcm__tls *t)
{
    gcm__lock_acquire(&P.mu);
    uint32_t s = 0;
    while (s < P.nslots && P.slot_tls[s] != NULL)
        s++;
    if (s == P.nslots) {
        if (P.nslots == P.slot_cap) {
            uint32_t ncap = P.slot_cap ? P.slot_cap * 2 : 16;
            gcm__tls **n = imem_zalloc(ncap * sizeof *n, 16);
            if (n == NULL) {
                gcm__lock_release(&P.mu);
                return false;
            }
            if (P.nslots > 0)
                memcpy(n, P.slot_tls, P.nslots * sizeof *n);
            imem_free(P.slot_tls);
            P.slot_tls = n;
            P.slot_cap = ncap;
        }
        P.nslots++;
    }
    P.slot_tls[s] = t;
    t->pool_slot = s + 1;
    gcm__lock_release(&P.mu);
    /* So that on_thread_exit runs when this thread exits. */
    gcm__thread_attach(t);
    return true;
}

/* Creates the calling thread's local of p.  NULL when out of memory, or
 * when p is being destroyed. */
static GCM_NOINLINE plocal *attach(gcm_pool *p, gcm__tls *t)
{
    if (t->pool_slot == 0 && !slot_acquire(t))
        return NULL;
    uint32_t s = t->pool_slot - 1;
    plocal *l = NULL;
    gcm__lock_acquire(&P.mu);
    if (p->dying)
        goto out;
    larr *a = p->locals;
    if (s >= a->cap) {
        uint32_t ncap = a->cap < 4 ? 4 : a->cap;
        while (ncap <= s)
            ncap *= 2;
        larr *na = imem_zalloc(sizeof(larr) + ncap * sizeof(plocal *), 16);
        if (na == NULL)
            goto out;
        na->cap = ncap;
        for (uint32_t i = 0; i < a->cap; i++)
            na->l[i] = a->l[i];
        na->retired = a != &empty_larr ? a : NULL;
        __atomic_store_n(&p->locals, na, __ATOMIC_RELEASE);
        a = na;
    }
    l = a->l[s];
    if (l == NULL) {
        l = imem_zalloc(sizeof(plocal), 2 * GCM_CACHELINE);
        if (l != NULL)
            __atomic_store_n(&a->l[s], l, __ATOMIC_RELEASE);
    }
out:
    gcm__lock_release(&P.mu);
    return l;
}

/* --- creating and destroying ---------------------------------------------------------- */

static bool pow2(size_t x) { return x != 0 && (x & (x - 1)) == 0; }

static gcm_pool *pool_make(const gcm_pool_options *o,
                           const gcm__pool_backend *be, bool checked)
{
    if (o == NULL || o->size == 0 || o->size > (size_t)1 << 40 ||
        (o->align != 0 && (!pow2(o->align) || o->align > 4096))) {
        errno = EINVAL;
        return NULL;
    }
    pool_init();
    size_t align = o->align ? o->align : 16;
    if (o->holds_pointers && be == NULL && align > 16 &&
        !GC_get_all_interior_pointers()) {
        errno = EINVAL; /* we could not keep such objects alive */
        return NULL;
    }
    gcm_pool *p = imem_zalloc(sizeof *p, GCM_CACHELINE);
    if (p == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    p->locals = &empty_larr;
    p->reset_fn = o->reset_fn;
    p->new_fn = o->new_fn;
    p->drop_fn = o->drop_fn;
    p->arg = o->arg;
    p->size = o->size;
    p->align = align;
    p->gc = be == NULL && o->holds_pointers;
    /* Backends are buf.c's size-class buffers. */
    p->prof_kind = be != NULL ? GCM_PROF_BUF : GCM_PROF_POOL;
    p->debug = checked && gcm__debug_on();
    p->hdr = p->debug ? (uint32_t)(align > 16 ? align : 16) : 0;
    p->be = be != NULL ? *be : p->gc ? gc_backend : mi_backend;
    p->magic = POOL_LIVE;
    p->tag = (uint64_t)(uintptr_t)p * 0x9e3779b97f4a7c15ull ^ POOL_LIVE;
    const char *name = o->name != NULL ? o->name : "pool";
    size_t n = strlen(name);
    if (n >= sizeof p->name)
        n = sizeof p->name - 1;
    memcpy(p->name, name, n);
    gcm__lock_acquire(&P.mu);
    p->next = P.head;
    __atomic_store_n(&P.head, p, __ATOMIC_RELEASE);
    P.npools++;
    gcm__lock_release(&P.mu);
    return p;
}

gcm_pool *gcm_pool_new(const gcm_pool_options *o)
{
    return pool_make(o, NULL, true);
}

gcm_pool *gcm__pool_new_backend(const gcm_pool_options *o,
                                const gcm__pool_backend *be)
{
    return pool_make(o, be, false);
}

static void sum_locals(gcm_pool *p, totals *t, uint64_t *cached,
                       uint64_t *victims)
{
    larr *a = __atomic_load_n(&p->locals, __ATOMIC_ACQUIRE);
    for (uint32_t i = 0; i < a->cap; i++) {
        plocal *l = __atomic_load_n(&a->l[i], __ATOMIC_ACQUIRE);
        if (l == NULL)
            continue;
        t->hp += GCM_LOAD(&l->n_private);
        t->hs += GCM_LOAD(&l->n_shared);
        t->ht += GCM_LOAD(&l->n_stolen);
        t->hv += GCM_LOAD(&l->n_victim);
        t->misses += GCM_LOAD(&l->n_miss);
        t->puts += GCM_LOAD(&l->n_put);
        if (cached != NULL) {
            gcm__lock_acquire(&l->lock);
            *cached += l->shared.n + (GCM_LOAD(&l->private) != NULL);
            *victims += l->victim.n;
            gcm__lock_release(&l->lock);
        }
    }
    t->misses += GCM_LOAD(&p->misses_nolocal);
    t->puts += GCM_LOAD(&p->puts_nolocal);
    t->dropped += GCM_LOAD(&p->dropped);
    t->gets = t->hp + t->hs + t->ht + t->hv + t->misses;
}

static void print_pool(gcm_pool *p)
{
    totals t = {0};
    sum_locals(p, &t, NULL, NULL);
    if (t.gets == 0 && t.puts == 0)
        return;
    uint64_t hits = t.gets - t.misses;
#define PCT(x) (unsigned)((x) * 1000 / (t.gets ? t.gets : 1) / 10), \
               (unsigned)((x) * 1000 / (t.gets ? t.gets : 1) % 10)
    gcm__diag("pool \"%s\" (%zu B): gets %llu, hit %u.%u%% (private %u.%u%%, "
              "shared %u.%u%%, stolen %u.%u%%, victim %u.%u%%), misses %llu, "
              "puts %llu, dropped %llu, cycles %llu",
              p->name, p->size, (unsigned long long)t.gets, PCT(hits),
              PCT(t.hp), PCT(t.hs), PCT(t.ht), PCT(t.hv),
              (unsigned long long)t.misses, (unsigned long long)t.puts,
              (unsigned long long)t.dropped,
              (unsigned long long)GCM_LOAD(&p->cycles));
#undef PCT
}

int gcm_pool_destroy(gcm_pool *p)
{
    if (p == NULL)
        return EINVAL;
    if (p->magic != POOL_LIVE) {
        if (p->magic == POOL_DEAD)
            gcm__diag_misuse(__builtin_return_address(0),
                             "gcm_pool_destroy(pool \"%s\" %p): the pool was "
                             "already destroyed", p->name, (void *)p);
        return EINVAL;
    }
    /* Wait out a rotation that is releasing this pool's victims, then keep
     * later ones (and exiting threads) away from it. */
    unsigned round = 0;
    gcm__lock_acquire(&P.mu);
    while (p->releasing) {
        gcm__lock_release(&P.mu);
        gcm__backoff(&round);
        gcm__lock_acquire(&P.mu);
    }
    p->dying = 1;
    /* No thread may keep a path to this pool's locals: a pool made later
     * at the same address must not find them. */
    for (uint32_t s = 0; s < P.nslots; s++) {
        gcm__tls *o = P.slot_tls[s];
        gcm_pool *expected = p;
        if (o != NULL)
            __atomic_compare_exchange_n(&o->pool_last, &expected, NULL, false,
                                        __ATOMIC_RELAXED, __ATOMIC_RELAXED);
    }
    gcm__lock_release(&P.mu);

    /* Release the cached objects one by one while the pool is still in the
     * registry: those of a pointer-holding pool stay scanned (the one in
     * hand is on this thread's stack) until drop_fn is done with them. */
    larr *a = p->locals;
    for (uint32_t i = 0; i < a->cap; i++) {
        plocal *l = a->l[i];
        if (l == NULL)
            continue;
        for (;;) {
            gcm__lock_acquire(&l->lock);
            void *x = GCM_LOAD(&l->private);
            if (x != NULL)
                GCM_STORE(&l->private, NULL);
            else if ((x = ring_pop_back(&l->shared)) == NULL)
                x = ring_pop_back(&l->victim);
            local_hints(l);
            gcm__lock_release(&l->lock);
            if (x == NULL)
                break;
            drop_obj(p, x);
        }
    }

    if (gcm__opt_bool(GCM_OPT_POOLSTATS))
        print_pool(p);
    gcm__lock_acquire(&P.mu);
    gcm_pool **pp = &P.head;
    while (*pp != p)
        pp = &(*pp)->next;
    __atomic_store_n(pp, p->next, __ATOMIC_RELEASE);
    P.npools--;
    totals t = {0};
    sum_locals(p, &t, NULL, NULL);
    P.gone.gets += t.gets;
    P.gone.puts += t.puts;
    P.gone.hp += t.hp;
    P.gone.hs += t.hs;
    P.gone.ht += t.ht;
    P.gone.hv += t.hv;
    P.gone.misses += t.misses;
    P.gone.dropped += t.dropped;
    gcm__lock_release(&P.mu);

    /* Unlinked: nothing else follows these any more. */
    for (larr *r = a; r != NULL && r != &empty_larr;) {
        larr *older = r->retired;
        if (r == a)
            for (uint32_t i = 0; i < a->cap; i++)
                if (a->l[i] != NULL) {
                    imem_free(a->l[i]->shared.v);
                    imem_free(a->l[i]->victim.v);
                    imem_free(a->l[i]);
                }
        imem_free(r);
        r = older;
    }
    gcm__ptrset_destroy(&p->objs);
    if (p->debug) {
        /* A tombstone: a later put or destroy is recognized and reported. */
        p->locals = &empty_larr;
        __atomic_store_n(&p->magic, POOL_DEAD, __ATOMIC_RELEASE);
    } else {
        p->magic = POOL_DEAD;
        imem_free(p);
    }
    return 0;
}

/* --- Get ------------------------------------------------------------------------- */

/* A new object: storage from the backend, then new_fn. */
static void *make(gcm_pool *p, plocal *l, const void *caller)
{
    if (l != NULL)
        GCM_BUMP(&l->n_miss, 1);
    else
        GCM_ADD(&p->misses_nolocal, 1);
    /* The backend's own allocation (gcm_malloc for a pool that holds
     * pointers) is this object: the profiler samples it below, as the
     * pool's, not as a GC-heap allocation inside the pool. */
    gcm__tls *t = &gcm__tls_self;
    t->prof_busy++;
    void *x = p->be.alloc(p, p->be.arg);
    t->prof_busy--;
    if (x == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    /* Debug mode remembers every mimalloc object it makes, to recognize
     * them in gcm_pool_put without reading memory a foreign pointer may
     * not own (collected objects are recognized by the collector). */
    if (p->debug && !p->gc && !gcm__ptrset_add(&p->objs, x, 0)) {
        p->be.release(p, x, p->be.arg);
        errno = ENOMEM;
        return NULL;
    }
    if (p->new_fn != NULL) {
        int rc = p->new_fn(x, p->arg);
        if (rc != 0) {
            if (p->debug) {
                hdr_of(x)->state = OBJ_FREED;
                if (!p->gc)
                    gcm__ptrset_take(&p->objs, x, NULL);
            }
            p->be.release(p, x, p->be.arg);
            errno = rc;
            return NULL;
        }
    }
    size_t bytes = p->size + p->hdr;
    if (gcm__prof_tick(t, bytes))
        gcm__prof_record_alloc(x, bytes,
                               p->prof_kind | (p->gc ? GCM_PROF_COLLECTED : 0),
                               p->name, caller);
    return x;
}

static void *steal(gcm_pool *p, gcm__tls *t, plocal *l)
{
    larr *a = __atomic_load_n(&p->locals, __ATOMIC_ACQUIRE);
    uint32_t n = a->cap, me = t->pool_slot - 1;
    for (uint32_t k = 1; k < n; k++) {
        plocal *o = __atomic_load_n(&a->l[(me + k) % n], __ATOMIC_ACQUIRE);
        if (o == NULL || GCM_LOAD(&o->shared_n) == 0)
            continue;
        gcm__lock_acquire(&o->lock);
        void *x = ring_pop_front(&o->shared);
        local_hints(o);
        gcm__lock_release(&o->lock);
        if (x != NULL) {
            GCM_BUMP(&l->n_stolen, 1);
            return x;
        }
    }
    return NULL;
}

static void *from_victims(gcm_pool *p, gcm__tls *t, plocal *l)
{
    uint64_t gen = __atomic_load_n(&p->victim_gen, __ATOMIC_ACQUIRE);
    if (gen == 0)
        return NULL;
    larr *a = __atomic_load_n(&p->locals, __ATOMIC_ACQUIRE);
    uint32_t n = a->cap, me = t->pool_slot - 1;
    for (uint32_t k = 0; k < n; k++) {
        plocal *o = __atomic_load_n(&a->l[(me + k) % n], __ATOMIC_ACQUIRE);
        if (o == NULL || GCM_LOAD(&o->victim_n) == 0)
            continue;
        gcm__lock_acquire(&o->lock);
        /* Own victims newest first (warm), others' oldest first. */
        void *x = k == 0 ? ring_pop_back(&o->victim) : ring_pop_front(&o->victim);
        local_hints(o);
        gcm__lock_release(&o->lock);
        if (x != NULL) {
            GCM_BUMP(&l->n_victim, 1);
            return x;
        }
    }
    /* All empty: later misses need not look, unless a rotation has filled
     * victims again since we read gen (Go's victimSize = 0). */
    __atomic_compare_exchange_n(&p->victim_gen, &gen, 0, false,
                                __ATOMIC_RELAXED, __ATOMIC_RELAXED);
    return NULL;
}

static bool check_live(gcm_pool *p, const char *fn, const void *obj,
                       const void *caller)
{
    uint64_t m = __atomic_load_n(&p->magic, __ATOMIC_ACQUIRE);
    if (GCM_LIKELY(m == POOL_LIVE))
        return true;
    if (m == POOL_DEAD)
        gcm__diag_misuse(caller, "%s(pool \"%s\" %p, %p): the pool was "
                         "destroyed", fn, p->name, (void *)p, obj);
    else
        gcm__diag_misuse(caller, "%s(%p, %p): not a pool", fn, (void *)p, obj);
    return false;
}

static GCM_NOINLINE void *get_slow(gcm_pool *p, const void *caller)
{
    if (p == NULL) {
        errno = EINVAL;
        return NULL;
    }
    if (p->debug && !check_live(p, "gcm_pool_get", NULL, caller)) {
        errno = EINVAL;
        return NULL;
    }
    gcm__tls *t = &gcm__tls_self;
    plocal *l = local_of(p, t->pool_slot);
    if (l == NULL) {
        l = attach(p, t);
        if (l == NULL)
            return make(p, NULL, caller);
    }
    if (!p->debug) /* debug pools check every call: never remembered */
        remember(t, p, l);
    void *x = private_take(t, l);
    if (x == NULL) {
        gcm__lock_acquire(&l->lock);
        x = ring_pop_back(&l->shared);
        local_hints(l);
        gcm__lock_release(&l->lock);
        if (x != NULL)
            GCM_BUMP(&l->n_shared, 1);
        else if ((x = steal(p, t, l)) == NULL &&
                 (x = from_victims(p, t, l)) == NULL)
            return make(p, l, caller);
    }
    if (p->debug) {
        dbg_hdr *h = hdr_of(x);
        h->state = OBJ_OUT;
    }
    return x;
}

/* `caller`: the program's call site, for misuse reports and for the
 * profiler's stack of an object a miss makes. */
static inline __attribute__((always_inline)) void *pool_get(gcm_pool *p,
                                                            const void *caller)
{
    gcm__tls *t = &gcm__tls_self;
    if (GCM_LIKELY(p == GCM_LOAD(&t->pool_last) && p != NULL)) {
        void *x = private_take(t, GCM_LOAD(&t->pool_last_local));
        if (GCM_LIKELY(x != NULL))
            return x;
    }
    return get_slow(p, caller);
}

GCM_HOT void *gcm_pool_get(gcm_pool *p)
{
    return pool_get(p, __builtin_return_address(0));
}

GCM_HOT void *gcm__pool_get_for(gcm_pool *p, const void *caller)
{
    return pool_get(p, caller);
}

/* --- Put ------------------------------------------------------------------------- */

static GCM_NOINLINE void put_slow(gcm_pool *p, void *x)
{
    gcm__tls *t = &gcm__tls_self;
    plocal *l = local_of(p, t->pool_slot);
    if (l == NULL) {
        l = attach(p, t);
        if (l == NULL) {
            /* No cache to keep it in: release it rather than fail. */
            GCM_ADD(&p->puts_nolocal, 1);
            GCM_ADD(&p->dropped, 1);
            drop_obj(p, x);
            return;
        }
    }
    if (!p->debug)
        remember(t, p, l);
    if (private_give(t, l, x))
        return;
    gcm__lock_acquire(&l->lock);
    bool ok = ring_push_back(&l->shared, x);
    local_hints(l);
    gcm__lock_release(&l->lock);
    GCM_BUMP(&l->n_put, 1);
    if (!ok) {
        GCM_ADD(&p->dropped, 1);
        drop_obj(p, x);
    }
}

static inline void put_unchecked(gcm_pool *p, void *x)
{
    if (p->reset_fn != NULL)
        p->reset_fn(x, p->arg); /* may use pools: read our memory after */
    gcm__tls *t = &gcm__tls_self;
    if (GCM_LIKELY(p == GCM_LOAD(&t->pool_last)) &&
        private_give(t, GCM_LOAD(&t->pool_last_local), x))
        return;
    put_slow(p, x);
}

/* Debug mode: is x an object of p that is out?  Reports and returns false
 * otherwise.  The pointer is checked against what the pool made (or the
 * collected heap) before its header is read. */
static bool check_put(gcm_pool *p, void *x, const void *caller)
{
    if (!check_live(p, "gcm_pool_put", x, caller))
        return false;
    char *h = (char *)hdr_of(x);
    bool mine;
    if (p->gc) {
        char *base = GC_base(x);
        mine = base != NULL && h >= base;
    } else {
        mine = gcm__ptrset_get(&p->objs, x, NULL);
    }
    dbg_hdr *d = (dbg_hdr *)h;
    if (!mine || d->tag != p->tag) {
        gcm__diag_misuse(caller, "gcm_pool_put(pool \"%s\", %p): not an object "
                         "from this pool", p->name, x);
        return false;
    }
    if (d->state == OBJ_CACHED) {
        gcm__diag_misuse(caller, "gcm_pool_put(pool \"%s\", %p): double put "
                         "(the object is already back in the pool)",
                         p->name, x);
        return false;
    }
    if (d->state != OBJ_OUT) {
        gcm__diag_misuse(caller, "gcm_pool_put(pool \"%s\", %p): the pool "
                         "released this object already", p->name, x);
        return false;
    }
    d->state = OBJ_CACHED;
    return true;
}

static GCM_NOINLINE void put_checked(gcm_pool *p, void *x, const void *caller)
{
    if (p == NULL) {
        if (x != NULL && gcm__debug_on())
            gcm__diag_misuse(caller, "gcm_pool_put(NULL, %p): no pool", x);
        return;
    }
    if (x == NULL)
        return;
    if (p->debug && !check_put(p, x, caller))
        return;
    put_unchecked(p, x);
}

GCM_HOT void gcm_pool_put(gcm_pool *p, void *x)
{
    /* Anything that calls out (checks, reset_fn) leaves the hit path, which
     * then needs no registers saved. */
    if (GCM_UNLIKELY(p == NULL || x == NULL || p->debug ||
                     p->reset_fn != NULL)) {
        put_checked(p, x, __builtin_return_address(0));
        return;
    }
    gcm__tls *t = &gcm__tls_self;
    if (GCM_LIKELY(p == GCM_LOAD(&t->pool_last)) &&
        private_give(t, GCM_LOAD(&t->pool_last_local), x))
        return;
    put_slow(p, x);
}

extern __typeof__(gcm_pool_get) gcm__pool_get
    __attribute__((alias("gcm_pool_get"), copy(gcm_pool_get)));
extern __typeof__(gcm_pool_put) gcm__pool_put
    __attribute__((alias("gcm_pool_put"), copy(gcm_pool_put)));

/* --- the GC cycle: rotation ----------------------------------------------------- */

/* Moves p's primary caches to its victim caches.  Former victims with
 * objects go to p->dead for release_dead.  Called with P.mu held and
 * pool_rotating set; when `privates`, the barrier ran and every owner is
 * out of its busy window, so the private slots are ours too (without the
 * barrier they stay where they are).  Returns whether anything was put on
 * p->dead. */
static bool rotate_pool(gcm_pool *p, uint64_t gen, bool privates)
{
    bool dead = false, victims = false;
    larr *a = p->locals;
    for (uint32_t i = 0; i < a->cap; i++) {
        plocal *l = a->l[i];
        if (l == NULL)
            continue;
        gcm__lock_acquire(&l->lock);
        void *x = privates ? GCM_LOAD(&l->private) : NULL;
        /* If the list cannot grow, the object stays private one more cycle. */
        if (x != NULL && ring_push_back(&l->shared, x))
            GCM_STORE(&l->private, NULL);
        vec *old = l->victim.v;
        if (l->victim.n > 0) {
            /* Onto p->dead before it leaves the local: always reachable. */
            old->next = p->dead;
            GCM_STORE(&p->dead, old);
            dead = true;
            old = NULL;
        }
        GCM_STORE(&l->victim.v, l->shared.v);
        l->victim.first = l->shared.first;
        l->victim.n = l->shared.n;
        GCM_STORE(&l->shared.v, old); /* an empty block is reused */
        l->shared.first = l->shared.n = 0;
        local_hints(l);
        victims |= l->victim.n > 0;
        gcm__lock_release(&l->lock);
    }
    if (victims)
        __atomic_store_n(&p->victim_gen, gen, __ATOMIC_RELEASE);
    GCM_ADD(&p->cycles, 1);
    return dead;
}

/* Releases the objects on p->dead.  They stay on the list (scanned) until
 * drop_fn and the backend are done with each. */
static void release_dead(gcm_pool *p)
{
    uint64_t n = 0;
    vec *v;
    while ((v = GCM_LOAD(&p->dead)) != NULL) {
        for (uint32_t i = 0; i < v->cap; i++) {
            void *x = GCM_LOAD(&v->slot[i]);
            if (x == NULL)
                continue;
            GCM_STORE(&v->slot[i], NULL);
            drop_obj(p, x);
            n++;
        }
        GCM_STORE(&p->dead, v->next);
        imem_free(v);
    }
    GCM_ADD(&p->dropped, n);
}

void gcm__pool_rotate(void)
{
    if (!__atomic_load_n(&P.ready, __ATOMIC_ACQUIRE))
        return;
    gcm__lock_acquire(&P.rot_mu);
    gcm__lock_acquire(&P.mu);
    if (P.head == NULL) {
        gcm__lock_release(&P.mu);
        gcm__lock_release(&P.rot_mu);
        return;
    }
    __atomic_store_n(&pool_rotating, 1, __ATOMIC_SEQ_CST);
    bool privates = heavy_barrier();
    if (privates) {
        for (uint32_t s = 0; s < P.nslots; s++) {
            gcm__tls *o = P.slot_tls[s];
            unsigned round = 0;
            while (o != NULL && __atomic_load_n(&o->pool_busy, __ATOMIC_ACQUIRE))
                gcm__backoff(&round);
        }
    }
    uint64_t gen = ++P.gen;
    gcm_pool *rel = NULL;
    for (gcm_pool *p = P.head; p != NULL; p = p->next) {
        if (p->dying)
            continue;
        if (rotate_pool(p, gen, privates)) {
            p->releasing = 1;
            p->rel_next = rel;
            rel = p;
        }
    }
    __atomic_store_n(&pool_rotating, 0, __ATOMIC_RELEASE);
    gcm__lock_release(&P.mu);

    while (rel != NULL) {
        gcm_pool *p = rel;
        rel = p->rel_next;
        release_dead(p);
        gcm__lock_acquire(&P.mu);
        p->releasing = 0;
        gcm__lock_release(&P.mu);
    }
    gcm__lock_release(&P.rot_mu);
}

static void on_cycle(const gcm__cycle *c, void *arg)
{
    (void)c;
    (void)arg;
    gcm__pool_rotate();
}

/* --- threads that exit ------------------------------------------------------------ */

/* Hands the exiting thread's private slot and shared list to its local's
 * victim cache (other threads still find them there; the next cycle
 * releases them) and frees its slot. */
static void on_thread_exit(gcm__tls *t)
{
    if (t->pool_slot == 0)
        return;
    uint32_t s = t->pool_slot - 1;
    gcm__lock_acquire(&P.mu);
    uint64_t gen = P.gen + 1;
    for (gcm_pool *p = P.head; p != NULL; p = p->next) {
        larr *a = p->locals;
        plocal *l = s < a->cap ? a->l[s] : NULL;
        if (p->dying || l == NULL)
            continue;
        gcm__lock_acquire(&l->lock);
        /* This thread owns the private slot and is not in a busy window;
         * the rotation is excluded by P.mu. */
        void *x = GCM_LOAD(&l->private);
        if (x != NULL && ring_push_back(&l->victim, x))
            GCM_STORE(&l->private, NULL);
        if (ring_reserve(&l->victim, l->victim.n + l->shared.n)) {
            void *y;
            while ((y = ring_pop_front(&l->shared)) != NULL)
                ring_push_back(&l->victim, y);
        }
        local_hints(l);
        bool any = l->victim.n > 0;
        gcm__lock_release(&l->lock);
        if (any)
            __atomic_store_n(&p->victim_gen, gen, __ATOMIC_RELEASE);
    }
    P.slot_tls[s] = NULL;
    t->pool_slot = 0;
    gcm__lock_release(&P.mu);
}

/* --- fork -------------------------------------------------------------------------- */

/* A child inherits every pool lock in the state it had at the fork: one
 * that another thread held stays held for good, and the child's next Get,
 * Put or collection would spin forever.
 * init.c takes the pools' locks in two steps of its one order:
 *   outer: rot_mu, right after the collector's cycle mutex — a rotation
 *          runs in a cycle hook and calls drop_fn and the backends with
 *          rot_mu held, and they may take almost any lock;
 *   inner: P.mu, every local's lock and every debug pool's object set,
 *          after buf.c's make_mu (held while a size class's pool is made).
 * Nothing is allocated and no other lock is taken under the local locks
 * but mimalloc's own, so the inner step may come before the chunk cache
 * and the collector.  With rot_mu and P.mu held no rotation is half done,
 * so `pool_rotating` is 0 in the child. */
void gcm__pool_fork_outer(int phase)
{
    if (phase == GCM_FORK_PREPARE)
        gcm__lock_acquire(&P.rot_mu);
    else
        gcm__lock_release(&P.rot_mu);
}

/* Every lock of every registered pool (dying ones too: their locals live
 * until they are unlinked, under P.mu). */
static void pool_locks(bool take)
{
    for (gcm_pool *p = P.head; p != NULL; p = p->next) {
        larr *a = p->locals;
        for (uint32_t i = 0; i < a->cap; i++) {
            plocal *l = a->l[i];
            if (l == NULL)
                continue;
            if (take)
                gcm__lock_acquire(&l->lock);
            else
                gcm__lock_release(&l->lock);
        }
        if (p->debug && !p->gc) {
            if (take)
                gcm__lock_acquire(&p->objs.mu);
            else
                gcm__lock_release(&p->objs.mu);
        }
    }
}

void gcm__pool_fork_inner(int phase)
{
    if (phase == GCM_FORK_PREPARE) {
        gcm__lock_acquire(&P.mu);
        pool_locks(true);
        return;
    }
    pool_locks(false);
    if (phase == GCM_FORK_CHILD) {
        /* The other threads' slots: their owners do not exist here.  Left
         * taken, a rotation would wait for a busy flag that may never
         * clear.  Freeing them is enough: their locals keep what they
         * cached (a private object a dead owner was stopped taking is
         * still in its slot, or in registers that did not come along —
         * never both), the next thread given the slot uses them, and
         * rotations move them to the victims as for any local.  Nothing
         * is allocated here, in the child's fork handler. */
        uint32_t self = gcm__tls_self.pool_slot;
        for (uint32_t s = 0; s < P.nslots; s++)
            if (s + 1 != self)
                P.slot_tls[s] = NULL;
    }
    gcm__lock_release(&P.mu);
}

/* --- roots ------------------------------------------------------------------------- */

static void push_vec(vec *v)
{
    if (v != NULL)
        gcm__gc_push_range(v->slot, v->slot + v->cap);
}

/* The root provider: with the world stopped, no lock, no allocation. */
static void push_roots(void)
{
    for (gcm_pool *p = __atomic_load_n(&P.head, __ATOMIC_ACQUIRE); p != NULL;
         p = __atomic_load_n(&p->next, __ATOMIC_ACQUIRE)) {
        if (!p->gc)
            continue;
        larr *a = __atomic_load_n(&p->locals, __ATOMIC_ACQUIRE);
        for (uint32_t i = 0; i < a->cap; i++) {
            plocal *l = __atomic_load_n(&a->l[i], __ATOMIC_ACQUIRE);
            if (l == NULL)
                continue;
            gcm__gc_push_range(&l->private, &l->private + 1);
            push_vec(GCM_LOAD(&l->shared.v));
            push_vec(GCM_LOAD(&l->victim.v));
        }
        for (vec *v = GCM_LOAD(&p->dead); v != NULL; v = GCM_LOAD(&v->next))
            push_vec(v);
    }
}

/* --- statistics --------------------------------------------------------------------- */

int gcm_pool_stats(gcm_pool *p, struct gcm_pool_stats *st)
{
    if (p == NULL || st == NULL ||
        __atomic_load_n(&p->magic, __ATOMIC_ACQUIRE) != POOL_LIVE)
        return EINVAL;
    totals t = {0};
    uint64_t cached = 0, victims = 0;
    sum_locals(p, &t, &cached, &victims);
    memset(st, 0, sizeof *st);
    st->name = p->name;
    st->object_size = p->size;
    st->gets = t.gets;
    st->puts = t.puts;
    st->hits_private = t.hp;
    st->hits_shared = t.hs;
    st->hits_stolen = t.ht;
    st->hits_victim = t.hv;
    st->misses = t.misses;
    st->dropped = t.dropped;
    st->cycles = GCM_LOAD(&p->cycles);
    st->cached = cached;
    st->victims = victims;
    st->hit_rate = t.gets ? (double)(t.gets - t.misses) / (double)t.gets : 0;
    return 0;
}

void gcm__pool_memstats(struct gcm_memstats *ms)
{
    if (!__atomic_load_n(&P.ready, __ATOMIC_ACQUIRE))
        return;
    gcm__lock_acquire(&P.mu);
    totals t = P.gone;
    uint64_t cached = 0;
    for (gcm_pool *p = P.head; p != NULL; p = p->next) {
        totals u = {0};
        uint64_t c = 0, v = 0;
        sum_locals(p, &u, &c, &v);
        t.gets += u.gets;
        t.puts += u.puts;
        t.hp += u.hp;
        t.hs += u.hs;
        t.ht += u.ht;
        t.hv += u.hv;
        t.misses += u.misses;
        t.dropped += u.dropped;
        cached += c + v;
    }
    ms->pool_count = P.npools;
    gcm__lock_release(&P.mu);
    ms->pool_gets = t.gets;
    ms->pool_puts = t.puts;
    ms->pool_hits_private = t.hp;
    ms->pool_hits_shared = t.hs;
    ms->pool_hits_stolen = t.ht;
    ms->pool_hits_victim = t.hv;
    ms->pool_misses = t.misses;
    ms->pool_dropped = t.dropped;
    ms->pool_cached = cached;
    ms->buf_sys = gcm__bufmem_bytes();
}

void gcm__pool_print_stats(void)
{
    if (!__atomic_load_n(&P.ready, __ATOMIC_ACQUIRE))
        return;
    /* At exit other threads may still run; wait for the registry a little,
     * but never hang the exit on it. */
    for (unsigned round = 0; !gcm__lock_try(&P.mu);) {
        if (round > 40) {
            gcm__diag("pool statistics: the pool registry stayed busy");
            return;
        }
        gcm__backoff(&round);
    }
    for (gcm_pool *p = P.head; p != NULL; p = p->next)
        print_pool(p);
    gcm__lock_release(&P.mu);
}

/* GCMALLOC_POOLSTATS=1: at exit, through the diagnostics sink (one write
 * per line, no allocation), so it is safe with malloc replaced.  A
 * destructor rather than atexit(), which may allocate to register. */
__attribute__((destructor)) static void pool_exit(void)
{
    if (__atomic_load_n(&P.ready, __ATOMIC_ACQUIRE) &&
        gcm__opt_bool(GCM_OPT_POOLSTATS))
        gcm__pool_print_stats();
}
