/*
 * preload.c — gcmalloc as the malloc of an unmodified program
 * (LD_PRELOAD=libgcmalloc-preload.so).
 *
 * This file defines the whole malloc family glibc documents for replacing
 * malloc — malloc, free, calloc, realloc, reallocarray, posix_memalign,
 * aligned_alloc, memalign, valloc, pvalloc, malloc_usable_size — so memory
 * from any of them can be released by free and resized by realloc.  Three
 * modes, chosen by GCMALLOC_MODE at the first allocation:
 *
 *   fast       mimalloc allocates; gcmalloc adds sampling, statistics and
 *              profile dumps.  Safe for any program.
 *   leakcheck  the collector's heap allocates, and the collector's marking
 *              finds objects that became unreachable without being freed.
 *              Nothing is ever reclaimed behind the program's back: a leaked
 *              object is reported and kept (its mark is set before the
 *              sweep), so a pointer the collector could not see does no
 *              harm.  See preload_leak.c.
 *   gc         the collector's heap allocates and reclaims what the program
 *              leaks, paced by GOGC; free is honoured.  Opt-in: pointers
 *              the collector cannot see make it reclaim live memory (see
 *              docs/preload.md).
 *
 * Starting.  The first call may come from the dynamic loader, before any
 * constructor and before libc has set up `environ`.  The options code reads
 * /proc/self/environ itself then; the collector starts here (its marker
 * threads wait for the first thread creation or collection, when threads
 * are safe to make).  A call that arrives on the same thread while start-up
 * is under way (start-up itself allocates: pthread_atfork, for instance)
 * is served by mimalloc directly.  So in the collected modes a few objects
 * come from mimalloc; free and realloc tell the two apart by asking the
 * collector whether a pointer is in its heap.
 *
 * What the C library keeps.  glibc and the dynamic loader store pointers
 * to their own allocations where the collector does not look: the thread
 * control block, thread-specific data, thread-local storage.  In gc mode
 * any allocation made directly by libc or ld.so is therefore uncollectable
 * (still scanned, freed only by free); the caller is told apart by the
 * return address.  In leakcheck mode only ld.so's are (libc's are tracked
 * like the program's: a leak report may name them, nothing is lost).  The
 * JVM's are uncollectable (and untracked) in both: it keeps pointers in
 * the code it generates (see caller_hides).
 *
 * Nothing here may recurse into itself: the collector, mimalloc, the
 * profiler and the option parser never call malloc.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mimalloc.h>

#include "internal.h"

/* In the dynamic loader; its address tells us where ld.so's code is. */
extern void *__tls_get_addr(void *);

#define API __attribute__((visibility("default")))

enum { MODE_FAST = GCM_MODE_FAST, MODE_LEAKCHECK = GCM_MODE_LEAKCHECK, MODE_GC = GCM_MODE_GC };

static int mode;
static int boot_state; /* 0 not started, 1 starting, 2 running */
static GCM_TLS bool booting_here;

/* Address ranges of the C library's and the dynamic loader's code. */
struct range {
    uintptr_t lo, hi;
};
static struct range libc_code, ld_code;

static inline bool in(const struct range *r, const void *pc)
{
    return (uintptr_t)pc >= r->lo && (uintptr_t)pc < r->hi;
}

static void preload_memstats(struct gcm_memstats *ms);
static void fast_init(void);
static void read_untracked(void);

/* fork(): the preload library's own tables, innermost after the
 * profiler's (a profiler lock may be held while it unmaps memory, which
 * takes the mapping registry's lock). */
static void preload_fork(int phase)
{
    if (phase == GCM_FORK_PREPARE) {
        gcm__lc_fork(phase);
        gcm__lc_report_fork(phase);
        gcm__maps_fork(phase);
    } else {
        gcm__maps_fork(phase);
        gcm__lc_report_fork(phase);
        gcm__lc_fork(phase);
    }
}

static void find_ranges(void)
{
    gcm__code_range((const void *)&fputs, &libc_code.lo, &libc_code.hi);
    gcm__code_range((const void *)&__tls_get_addr, &ld_code.lo, &ld_code.hi);
}

static GCM_NOINLINE void boot(void)
{
    int expected = 0;
    if (booting_here)
        return;
    if (!__atomic_compare_exchange_n(&boot_state, &expected, 1, false,
                                     __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        while (__atomic_load_n(&boot_state, __ATOMIC_ACQUIRE) != 2)
            sched_yield();
        return;
    }
    booting_here = true;
    gcm__options_init();
    mode = (int)gcm__opt_int(GCM_OPT_MODE);
    __atomic_store_n(&gcm__memstats_preload, preload_memstats, __ATOMIC_RELEASE);
    __atomic_store_n(&gcm__preload_fork, preload_fork, __ATOMIC_RELEASE);
    gcm__gc_lazy = mode == MODE_FAST;
    find_ranges();
    gcm__ensure_init();
    gcm__diag_keep_stderr();
    if (mode == MODE_FAST) {
        fast_init();
    } else {
        read_untracked();
        gcm__maps_init();
        gcm__tsd_init();
        if (mode == MODE_LEAKCHECK)
            gcm__lc_init();
    }
    booting_here = false;
    __atomic_store_n(&boot_state, 2, __ATOMIC_RELEASE);
}

/* Start-up goes through boot() even when no allocation came first: the
 * library's own constructor (init.c, default priority) would otherwise
 * start the collector before the mode is known and before allocations
 * made during that start-up are routed to mimalloc. */
static void preload_exit(void);

__attribute__((constructor(101))) static void preload_constructor(void)
{
    if (__atomic_load_n(&boot_state, __ATOMIC_ACQUIRE) != 2)
        boot();
    atexit(preload_exit);
}

/* True when the call must be served by mimalloc directly: start-up is under
 * way on this thread, or the collector cannot scan the thread (it is
 * finding its stack to register, or has exited: thread.c,
 * gcm__thread_gc_register). */
static inline bool plain(void)
{
    if (GCM_LIKELY(__atomic_load_n(&boot_state, __ATOMIC_ACQUIRE) == 2))
        return GCM_UNLIKELY(gcm__tls_self.flags & GCM_T_GC_UNSCANNED);
    boot();
    return __atomic_load_n(&boot_state, __ATOMIC_ACQUIRE) != 2;
}

/* --- the collected modes ---------------------------------------------------------- */

/* Objects that keep pointers to their malloc'd memory where no
 * conservative collector can find them, so that their allocations must
 * never be collected (nor, in leakcheck, reported), named by
 * GCMALLOC_UNTRACKED_LIBS.  Its default is the one measured: HotSpot (libjvm.so)
 * writes the addresses of its inline-cache holders (CompiledICHolder) into
 * the machine code it generates, as the 8-byte immediate of a mov at any
 * byte offset, while bdwgc scans at pointer alignment.  In gc mode a JVM
 * serving HTTP had them reclaimed and reused within seconds and crashed
 * freeing a class pointer (2 runs out of 6).
 *
 * The JVM is loaded with dlopen long after start-up, so the caller's
 * object is found on demand and the answer cached by code page: one load
 * and compare per allocation, a walk of the loader's list the first time a
 * page allocates (or when two pages share a slot).  Generated code (no
 * object) is cached as collectable like any page.  A page that was
 * unloaded and mapped again by another object keeps its old answer; a
 * stale "never collect" is only memory kept. */
enum { CALLER_SLOTS = 1024 };
static uintptr_t caller_pages[CALLER_SLOTS]; /* page << 1 | hides; 0 = empty */

/* GCMALLOC_UNTRACKED_LIBS (libjvm.so by default), read at start-up. */
static char untracked[GCM_NAMES_MAX][GCM_NAME_MAX];
static int nuntracked;

static void read_untracked(void)
{
    const char *text = gcm__opt_str(GCM_OPT_UNTRACKED_LIBS);
    nuntracked = 0;
    while (nuntracked < GCM_NAMES_MAX && text[0] != '\0' &&
           gcm__opt_name_at(text, nuntracked, untracked[nuntracked]))
        nuntracked++;
}

static bool hides_pointers(const char *path)
{
    const char *base = strrchr(path, '/');
    base = base != NULL ? base + 1 : path;
    for (int i = 0; i < nuntracked; i++)
        if (strcmp(base, untracked[i]) == 0)
            return true;
    return false;
}

static GCM_NOINLINE bool caller_hides_slow(const void *caller, uintptr_t *slot)
{
    const char *path = gcm__object_name(caller);
    bool hides = path != NULL && hides_pointers(path);
    __atomic_store_n(slot, (uintptr_t)caller >> 12 << 1 | hides, __ATOMIC_RELAXED);
    return hides;
}

static inline bool caller_hides(const void *caller)
{
    if (nuntracked == 0)
        return false;
    uintptr_t page = (uintptr_t)caller >> 12;
    uintptr_t *slot = &caller_pages[(page ^ page >> 10) % CALLER_SLOTS];
    uintptr_t v = __atomic_load_n(slot, __ATOMIC_RELAXED);
    if (GCM_LIKELY(v >> 1 == page))
        return v & 1;
    return caller_hides_slow(caller, slot);
}

static unsigned gc_flags(const void *caller)
{
    if (in(&ld_code, caller))
        return GCM_GCA_UNCOLLECTABLE;
    if (mode == MODE_GC && in(&libc_code, caller))
        return GCM_GCA_UNCOLLECTABLE;
    if (caller_hides(caller))
        return GCM_GCA_UNCOLLECTABLE;
    return 0;
}

static void *gc_alloc_flags(size_t n, size_t align, const void *caller, unsigned more)
{
    unsigned flags = gc_flags(caller) | more;
    if (mode != MODE_LEAKCHECK)
        return gcm__gc_alloc(n, align, 0, flags, caller, NULL);
    gcm__gc_obj obj;
    void *p = gcm__gc_alloc(n, align, GCM_LC_HEADER, flags, caller, &obj);
    if (p != NULL)
        gcm__lc_track(p, &obj, n, !(flags & GCM_GCA_UNCOLLECTABLE));
    return p;
}

static void *gc_alloc(size_t n, size_t align, const void *caller)
{
    return gc_alloc_flags(n, align, caller, 0);
}

/* leakcheck: a free the tracking proves wrong (a second free of a block,
 * or a pointer malloc never returned).  glibc aborts on the double frees it
 * notices; leakcheck is a mode for finding such bugs, so it says what and
 * where, and leaves the block alone: freeing it again would hand it out
 * twice. */
#define BAD_FREE_REPORTS 20
static void bad_free(void *p, const void *caller)
{
    static unsigned reported;
    unsigned k = __atomic_fetch_add(&reported, 1, __ATOMIC_RELAXED);
    if (k < BAD_FREE_REPORTS)
        gcm__diag_misuse(caller,
                         "free(%p): not a block from malloc, or freed already; "
                         "left alone%s",
                         p, k + 1 == BAD_FREE_REPORTS ? " (further ones are not reported)" : "");
}

static void gc_free(void *p, const void *caller)
{
    if (!gcm__gc_owns(p)) {
        mi_free(p); /* from start-up, served by mimalloc */
        return;
    }
    if (mode == MODE_LEAKCHECK) {
        gcm__gc_obj obj;
        switch (gcm__lc_release(p, &obj)) {
        case GCM_LC_RELEASED:
            gcm__gc_free_obj(p, &obj);
            return;
        case GCM_LC_INVALID:
            bad_free(p, caller);
            return;
        case GCM_LC_UNTRACKED:
            break;
        }
    }
    gcm__gc_free_any(p);
}

static size_t usable(void *p)
{
    if (mode == MODE_LEAKCHECK && gcm__gc_owns(p))
        return gcm__lc_size(p); /* the header makes the rest unusable */
    if (mode != MODE_FAST && gcm__gc_owns(p))
        return gcm__gc_usable(p);
    return mi_usable_size(p);
}

static void *gc_realloc(void *p, size_t n, const void *caller)
{
    if (!gcm__gc_owns(p)) {
        /* A start-up object from mimalloc moves to the collector's heap. */
        void *q = gc_alloc(n, 16, caller);
        if (q != NULL) {
            size_t have = mi_usable_size(p);
            memcpy(q, p, have < n ? have : n);
            mi_free(p);
        }
        return q;
    }
    if (mode == MODE_LEAKCHECK) {
        /* In place when the collector's block has room (its size is rounded
         * up to 16 bytes, or to 4 KiB above 2 KiB) and would not be more
         * than half empty: only the size the program asked for changes. */
        size_t room = gcm__gc_usable(p), have = gcm__lc_size(p);
        if (gcm__realloc_in_place(n, room)) {
            if (n < have) /* what the program dropped must not keep objects alive */
                memset((char *)p + n, 0, have - n);
            gcm__lc_resize(p, n);
            return p;
        }
        /* Else a new object, the old one's contents, the old one released.
         * One grown by less than a quarter gets a quarter more room
         * (GCM_GCA_GROW): a buffer grown by realloc in small steps is then
         * copied O(log n) times, not at every step (it was copied whole at
         * every call, 120x glibc's time growing buffers to 1 MiB). */
        void *q = gc_alloc_flags(n, 16, caller,
                                 gcm__realloc_small_step(n, have) ? GCM_GCA_GROW : 0);
        if (q == NULL)
            return NULL;
        memcpy(q, p, have < n ? have : n);
        gc_free(p, caller);
        return q;
    }
    return gcm__gc_realloc_any(p, n, caller);
}

/* --- fast mode ------------------------------------------------------------------- */

/* Fast mode's hot paths do as little as mimalloc's own: malloc subtracts
 * the size from the sampling countdown and tail-calls mi_malloc; free
 * compares the address with one range and tail-calls mi_free.
 *
 * The range is what makes free cheap.  Sampled blocks (one per
 * GCMALLOC_PROFILE_RATE bytes) come from a per-thread mimalloc heap that
 * allocates only in an exclusive arena reserved at start-up, so "was this
 * block sampled?" is a subtraction and a compare, with no memory touched
 * (jemalloc marks sampled objects in its extent metadata; the arena is our
 * metadata).  If the arena cannot be reserved or fills up, sampled blocks
 * come from mimalloc's normal heaps and frees fall back to the profiler's
 * counting filter. */
static struct {
    int ready;            /* booted in fast mode                            */
    uintptr_t lo, len;    /* free's slow path covers [lo, lo + len): every
                             address until fast mode is ready, then the
                             sampled blocks' arena, or every address again
                             once a sampled block had to come from
                             elsewhere                                     */
    uintptr_t arena_lo, arena_len;
    mi_arena_id_t arena;
} F __attribute__((aligned(GCM_CACHELINE))) = {.lo = 0, .len = UINTPTR_MAX};
static GCM_TLS mi_heap_t *samp_heap; /* this thread's heap in the arena */

/* gcm__tls.prof_budget: bytes this thread's malloc family may still
 * allocate before the slow path runs.  It is the profiler's countdown to
 * the next sample, held apart and unsigned so that one compare also sends
 * sizes no allocator can give (above PTRDIFF_MAX) and calls before
 * start-up (every thread's budget starts at 0) to the slow path.  It stays
 * 0 outside fast mode, so the collected modes always take the slow path,
 * and the profiler zeroes every thread's when the rate changes.  The slow
 * path lends it to the profiler as prof_countdown, which nothing else uses
 * in fast mode (gcmalloc's own allocations do not sample). */

/* A sampled block lives outside the arena: from now on every free takes
 * the slow path, which asks the profiler's filter.  (Rare: the arena is
 * large; it happens when it cannot be reserved or fills up.)  len first, so
 * a racing free never sees a narrower range than either value pair. */
static void everything_slow(void)
{
    __atomic_store_n(&F.len, UINTPTR_MAX, __ATOMIC_RELEASE);
    __atomic_store_n(&F.lo, 0, __ATOMIC_RELEASE);
}

/* Reserves the arena (address space only; mimalloc commits what it uses)
 * and opens the fast paths. */
static void fast_init(void)
{
    static const size_t sizes[] = {(size_t)64 << 30, (size_t)16 << 30,
                                   (size_t)4 << 30, (size_t)1 << 30};
    for (size_t i = 0; i < GCM_ARRAY_LEN(sizes); i++) {
        mi_arena_id_t id;
        if (mi_reserve_os_memory_ex(sizes[i], false, false, true, &id) != 0)
            continue;
        size_t len = 0;
        void *lo = mi_arena_area(id, &len);
        if (lo == NULL || len == 0)
            continue;
        F.arena = id;
        F.arena_lo = (uintptr_t)lo;
        F.arena_len = len;
        break;
    }
    __atomic_store_n(&F.ready, 1, __ATOMIC_RELEASE);
    if (F.arena_len != 0) {
        /* (lo, every address) then (lo, len): never narrower than both. */
        __atomic_store_n(&F.lo, F.arena_lo, __ATOMIC_RELEASE);
        __atomic_store_n(&F.len, F.arena_len, __ATOMIC_RELEASE);
    } /* else no arena: every free keeps checking the filter */
}

static inline bool fast_ready(void)
{
    return __atomic_load_n(&F.ready, __ATOMIC_ACQUIRE);
}

/* True when free must look at p: it may have been sampled, or fast mode
 * is not running. */
static inline bool maybe_sampled(const void *p)
{
    return (uintptr_t)p - __atomic_load_n(&F.lo, __ATOMIC_RELAXED) <
           __atomic_load_n(&F.len, __ATOMIC_RELAXED);
}

/* A block for a sampled allocation: from this thread's heap in the arena,
 * or from mimalloc's default heap when that is not possible. */
static void *samp_alloc(size_t n, size_t align, bool zero)
{
    if (samp_heap == NULL && F.arena_len != 0)
        samp_heap = mi_heap_new_in_arena(F.arena);
    void *p = NULL;
    if (samp_heap != NULL)
        p = align > 16 ? mi_heap_malloc_aligned(samp_heap, n, align)
            : zero     ? mi_heap_zalloc(samp_heap, n)
                       : mi_heap_malloc(samp_heap, n);
    if (p == NULL) {
        p = align > 16 ? mi_malloc_aligned(n, align) : zero ? mi_zalloc(n) : mi_malloc(n);
        if (p != NULL && __atomic_load_n(&F.len, __ATOMIC_RELAXED) != UINTPTR_MAX)
            everything_slow();
    }
    return p;
}

/* Takes n off the budget; false when the slow path must decide. */
static inline bool fast_tick(size_t n)
{
    gcm__tls *t = &gcm__tls_self;
    uint64_t b = GCM_LOAD(&t->prof_budget);
    if (GCM_UNLIKELY(n >= b))
        return false;
    GCM_STORE(&t->prof_budget, b - n);
    return true;
}

/* fast_tick said no in fast mode: n crossed the budget.  Spends it through
 * the profiler's countdown; true when this allocation is to be sampled. */
static bool fast_sample(size_t n)
{
    gcm__tls *t = &gcm__tls_self;
    GCM_STORE(&t->prof_countdown, (int64_t)GCM_LOAD(&t->prof_budget) - (int64_t)n);
    bool sample = gcm__prof_sample_slow(t, n);
    int64_t c = GCM_LOAD(&t->prof_countdown);
    GCM_STORE(&t->prof_budget, c > 0 ? (uint64_t)c : 0);
    return sample;
}

/* The fast-mode slow path of malloc, calloc and the aligned family: a
 * sample, or a size no allocator can give. */
static GCM_NOINLINE void *fast_slow(size_t n, size_t align, bool zero,
                                    const void *caller)
{
    if (n > (size_t)PTRDIFF_MAX) {
        errno = ENOMEM;
        return NULL;
    }
    if (!fast_sample(n))
        return align > 16 ? mi_malloc_aligned(n, align) : zero ? mi_zalloc(n) : mi_malloc(n);
    void *p = samp_alloc(n, align, zero);
    if (p != NULL)
        gcm__prof_record_alloc(p, n, GCM_PROF_MALLOC, NULL, caller);
    else
        errno = ENOMEM;
    return p;
}

static GCM_NOINLINE void fast_free_slow(void *p)
{
    gcm__prof_free(p); /* records the release if p was sampled */
    mi_free(p);
}

/* --- start-up, and the collected modes' entry points ----------------------------- */

/* Every allocation the fast path did not serve: fast mode's samples, the
 * calls made while starting, and the collected modes' allocations (their
 * budget is always 0).  align 0 = malloc's. */
static void *alloc_slow_inner(size_t n, size_t align, bool zero, const void *caller)
{
    if (GCM_LIKELY(fast_ready()))
        return fast_slow(n, align, zero, caller);
    if (n > (size_t)PTRDIFF_MAX) {
        errno = ENOMEM;
        return NULL;
    }
    if (plain())
        return align > 16 ? mi_malloc_aligned(n, align) : zero ? mi_zalloc(n) : mi_malloc(n);
    if (mode == MODE_FAST) /* started by this very call */
        return fast_slow(n, align, zero, caller);
    /* The collector clears the objects it hands out (the preload modes
     * never ask for pointer-free ones, which it would not), so zero needs
     * nothing more. */
    return gc_alloc(n, align > 16 ? align : 16, caller);
}

static void free_slow_inner(void *p, const void *caller)
{
    if (p == NULL)
        return;
    if (GCM_LIKELY(fast_ready())) {
        fast_free_slow(p);
        return;
    }
    if (plain()) {
        /* A collected block made before the thread stopped being scanned
         * is released as on any other thread (leakcheck's tracking slot
         * with it: left set, the next collection read the freed block as
         * a leak, and crashed on it once reused). */
        gc_free(p, caller);
        return;
    }
    if (mode == MODE_FAST) /* started by this very call */
        fast_free_slow(p);
    else
        gc_free(p, caller);
}

/* True when mi_realloc(p, n) keeps p where it is (its rule: n within the
 * block's usable size and at least half of it): nothing is allocated, so
 * the sampler is not charged.  Charging every realloc its whole new size
 * sampled a buffer grown in small steps at nearly every call once it was
 * larger than the rate, each sample a stack walk and a copy of the whole
 * buffer into the sampled blocks' arena: 64x glibc's time (180x
 * mimalloc's) growing buffers to 1 MiB at the default rate. */
static inline bool mi_in_place(void *p, size_t n, size_t *usable)
{
    *usable = mi_usable_size(p);
    return gcm__realloc_in_place(n, *usable);
}

/* realloc of a sampled block (or with the budget crossed): a new block
 * through the sampler, the contents copied, the old block released.  A
 * block that stays in place keeps its record. */
static void *fast_realloc_slow(void *p, size_t n, const void *caller)
{
    size_t have;
    if (mi_in_place(p, n, &have))
        return mi_realloc(p, n);
    bool sample = !fast_tick(n) && fast_sample(n);
    if (!sample && !maybe_sampled(p))
        return mi_realloc(p, n);
    /* A sampled block's record comes out first: once mimalloc has freed p,
     * another thread may get (and sample) the same address. */
    gcm__prof_obj po;
    bool was = gcm__prof_detach(p, &po);
    void *q;
    if (sample) {
        q = samp_alloc(n, 0, false);
        if (q != NULL) {
            memcpy(q, p, have < n ? have : n);
            mi_free(p);
            gcm__prof_record_alloc(q, n, GCM_PROF_MALLOC, NULL, caller);
        }
    } else {
        q = mi_realloc(p, n);
    }
    if (q == NULL) {
        if (was)
            gcm__prof_reattach(p, &po);
        errno = ENOMEM;
        return NULL;
    }
    if (was)
        gcm__prof_release(&po);
    return q;
}

static void *realloc_slow_inner(void *p, size_t n, const void *caller)
{
    if (GCM_LIKELY(fast_ready()))
        return fast_realloc_slow(p, n, caller);
    if (plain()) {
        if (!gcm__gc_owns(p))
            return mi_realloc(p, n);
        /* A collected block from before: its contents move to mimalloc,
         * as the thread's new blocks must (the collector does not scan it:
         * a collected one only it points to could be reclaimed), and the
         * old one is released as a free would. */
        void *q = mi_malloc(n);
        if (q == NULL) {
            errno = ENOMEM;
            return NULL;
        }
        size_t have = usable(p);
        memcpy(q, p, have < n ? have : n);
        gc_free(p, caller);
        return q;
    }
    if (mode == MODE_FAST)
        return fast_realloc_slow(p, n, caller);
    return gc_realloc(p, n, caller);
}

/* The slow paths leave errno as they found it unless they fail, as glibc's
 * malloc does: a sample's stack capture (libunwind validates addresses by
 * reading from a pipe: EAGAIN, in every mode) or mimalloc's start-up
 * (ENOENT) would otherwise change it under a successful call, and programs
 * that check errno after a sequence of calls break: CMake's directory count
 * (errno = 0; opendir; readdir...; errno != 0 means failure) printed
 * "[-150%]" progress in fast mode.
 * free never changes errno (POSIX.1-2024; glibc since 2.33). */
static GCM_NOINLINE void *alloc_slow(size_t n, size_t align, bool zero, const void *caller)
{
    int *err = &errno, saved = *err; /* one call to find errno, not two */
    void *p = alloc_slow_inner(n, align, zero, caller);
    if (p != NULL)
        *err = saved;
    return p;
}

static GCM_NOINLINE void free_slow(void *p, const void *caller)
{
    int *err = &errno, saved = *err;
    free_slow_inner(p, caller);
    *err = saved;
}

static GCM_NOINLINE void *realloc_slow(void *p, size_t n, const void *caller)
{
    int *err = &errno, saved = *err;
    void *q = realloc_slow_inner(p, n, caller);
    if (q != NULL)
        *err = saved;
    return q;
}

/* --- the family ------------------------------------------------------------------- */

/* In fast mode malloc is a compare, a subtract and a tail call, free a
 * subtract, a compare and a tail call: everything else is behind them. */
API void *malloc(size_t n)
{
    if (GCM_LIKELY(fast_tick(n)))
        return mi_malloc(n);
    return alloc_slow(n, 0, false, GCM_PROF_CALLER());
}

API void free(void *p)
{
    if (GCM_UNLIKELY(maybe_sampled(p)))
        return free_slow(p, GCM_PROF_CALLER());
    mi_free(p); /* NULL included */
}

API void *calloc(size_t count, size_t size)
{
    size_t n;
    if (__builtin_mul_overflow(count, size, &n)) {
        errno = ENOMEM;
        return NULL;
    }
    if (GCM_LIKELY(fast_tick(n)))
        return mi_calloc(count, size);
    return alloc_slow(n, 0, true, GCM_PROF_CALLER());
}

API void *realloc(void *p, size_t n)
{
    if (p == NULL)
        return malloc(n);
    if (n == 0) {
        /* glibc frees and returns NULL; so do we. */
        free(p);
        return NULL;
    }
    if (GCM_UNLIKELY(n > (size_t)PTRDIFF_MAX)) {
        errno = ENOMEM; /* p stays valid */
        return NULL;
    }
    size_t have;
    if (GCM_LIKELY(!maybe_sampled(p)) && (mi_in_place(p, n, &have) || fast_tick(n)))
        return mi_realloc(p, n);
    return realloc_slow(p, n, GCM_PROF_CALLER());
}

API void *reallocarray(void *p, size_t count, size_t size)
{
    size_t n;
    if (__builtin_mul_overflow(count, size, &n)) {
        errno = ENOMEM;
        return NULL;
    }
    return realloc(p, n);
}

static bool valid_align(size_t align)
{
    return align != 0 && (align & (align - 1)) == 0;
}

static void *aligned(size_t align, size_t n, const void *caller)
{
    if (align < sizeof(void *))
        align = sizeof(void *);
    if (GCM_LIKELY(fast_tick(n)))
        return mi_malloc_aligned(n, align);
    return alloc_slow(n, align, false, caller);
}

API int posix_memalign(void **out, size_t align, size_t n)
{
    /* glibc declares `out` non-null; a bad caller still gets EINVAL, not a
     * crash (the volatile copy keeps the compiler from dropping the test). */
    void **volatile dest = out;
    if (dest == NULL || !valid_align(align) || align % sizeof(void *) != 0)
        return EINVAL;
    int saved = errno;
    void *p = aligned(align, n, __builtin_return_address(0));
    errno = saved; /* posix_memalign reports through its result only */
    if (p == NULL)
        return ENOMEM;
    *dest = p;
    return 0;
}

API void *aligned_alloc(size_t align, size_t n)
{
    if (!valid_align(align)) {
        errno = EINVAL;
        return NULL;
    }
    return aligned(align, n, __builtin_return_address(0));
}

API void *memalign(size_t align, size_t n)
{
    if (!valid_align(align)) {
        errno = EINVAL;
        return NULL;
    }
    return aligned(align, n, __builtin_return_address(0));
}

static size_t page_size(void)
{
    static size_t ps;
    if (ps == 0)
        ps = (size_t)sysconf(_SC_PAGESIZE);
    return ps;
}

API void *valloc(size_t n)
{
    return aligned(page_size(), n, __builtin_return_address(0));
}

API void *pvalloc(size_t n)
{
    size_t ps = page_size();
    size_t r;
    if (__builtin_add_overflow(n, ps - 1, &r)) {
        errno = ENOMEM;
        return NULL;
    }
    r &= ~(ps - 1);
    return aligned(ps, r ? r : ps, __builtin_return_address(0));
}

API size_t malloc_usable_size(void *p)
{
    if (p == NULL)
        return 0;
    return usable(p);
}

/* leakcheck: a last collection and the report, when the program exits.
 * Registered with atexit by the constructor (so it runs after the
 * program's own exit handlers, which were registered later) and also a
 * destructor: some programs leave through exit() without the dynamic
 * loader's finalizers running (coreutils sort, for one), others unload us
 * without exit(); whichever comes first reports, once. */
static void preload_exit(void)
{
    static int done;
    if (__atomic_exchange_n(&done, 1, __ATOMIC_ACQ_REL))
        return;
    if (__atomic_load_n(&boot_state, __ATOMIC_ACQUIRE) == 2 && mode == MODE_LEAKCHECK)
        gcm__lc_report_exit();
}

__attribute__((destructor)) static void preload_destructor(void) { preload_exit(); }

/* --- what the statistics read ------------------------------------------------------ */

static void preload_memstats(struct gcm_memstats *ms)
{
    ms->preload_mode = (uint32_t)mode + 1;
    if (mode == MODE_LEAKCHECK)
        gcm__lc_totals(&ms->leaked_objects, &ms->leaked_bytes);
}
