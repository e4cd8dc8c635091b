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
 * like the program's: a leak report may name them, nothing is lost).
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
    if (mode != MODE_FAST) {
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
 * way on this thread. */
static inline bool plain(void)
{
    if (GCM_LIKELY(__atomic_load_n(&boot_state, __ATOMIC_ACQUIRE) == 2))
        return false;
    boot();
    return __atomic_load_n(&boot_state, __ATOMIC_ACQUIRE) != 2;
}

/* --- the collected modes ---------------------------------------------------------- */

static unsigned gc_flags(const void *caller)
{
    if (in(&ld_code, caller))
        return GCM_GCA_UNCOLLECTABLE;
    if (mode == MODE_GC && in(&libc_code, caller))
        return GCM_GCA_UNCOLLECTABLE;
    return 0;
}

static void *gc_alloc(size_t n, size_t align, const void *caller)
{
    unsigned flags = gc_flags(caller);
    void *p = gcm__gc_alloc(n, align, flags, caller);
    if (p != NULL && mode == MODE_LEAKCHECK && !(flags & GCM_GCA_UNCOLLECTABLE))
        gcm__lc_track(p, n);
    return p;
}

static void gc_free(void *p)
{
    if (!gcm__gc_owns(p)) {
        mi_free(p); /* from start-up, served by mimalloc */
        return;
    }
    if (mode == MODE_LEAKCHECK)
        gcm__lc_untrack(p, NULL);
    gcm__gc_free_any(p);
}

static size_t usable(void *p)
{
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
        /* Only what the program allocated is tracked (not the loader's). */
        size_t old = 0;
        bool tracked = gcm__lc_untrack(p, &old);
        void *q = gcm__gc_realloc_any(p, n, caller);
        if (tracked)
            gcm__lc_track(q != NULL ? q : p, q != NULL ? n : old);
        return q;
    }
    return gcm__gc_realloc_any(p, n, caller);
}

/* --- fast mode ------------------------------------------------------------------- */

/* Counts an allocation and passes it by the sampler.  The malloc kind
 * records the bytes the program asked for (cheaper than asking mimalloc for
 * the usable size on every call, and what the program's own arithmetic
 * expects). */
static inline void count_malloc(gcm__tls *t, void *p, size_t n, const void *caller)
{
    GCM_BUMP(&t->pl_mallocs, 1);
    GCM_BUMP(&t->pl_bytes, n);
    if (gcm__prof_tick(t, n))
        gcm__prof_record_alloc(p, n, GCM_PROF_MALLOC, NULL, caller);
}

static inline void count_free(gcm__tls *t, void *p)
{
    GCM_BUMP(&t->pl_frees, 1);
    gcm__prof_free(p); /* one filter word; a lookup only if it may be sampled */
}

/* --- the family ------------------------------------------------------------------- */

API void *malloc(size_t n)
{
    if (GCM_UNLIKELY(plain()))
        return mi_malloc(n);
    if (GCM_LIKELY(mode == MODE_FAST)) {
        void *p = mi_malloc(n);
        if (GCM_LIKELY(p != NULL))
            count_malloc(&gcm__tls_self, p, n, GCM_PROF_CALLER());
        else
            errno = ENOMEM;
        return p;
    }
    return gc_alloc(n, 16, GCM_PROF_CALLER());
}

API void free(void *p)
{
    if (p == NULL)
        return;
    if (GCM_UNLIKELY(plain())) {
        if (gcm__gc_owns(p))
            gcm__gc_free_any(p);
        else
            mi_free(p);
        return;
    }
    if (GCM_LIKELY(mode == MODE_FAST)) {
        count_free(&gcm__tls_self, p);
        mi_free(p);
        return;
    }
    gc_free(p);
}

API void *calloc(size_t count, size_t size)
{
    size_t n;
    if (__builtin_mul_overflow(count, size, &n)) {
        errno = ENOMEM;
        return NULL;
    }
    if (GCM_UNLIKELY(plain()))
        return mi_calloc(count, size);
    if (GCM_LIKELY(mode == MODE_FAST)) {
        void *p = mi_calloc(count, size);
        if (GCM_LIKELY(p != NULL))
            count_malloc(&gcm__tls_self, p, n, GCM_PROF_CALLER());
        else
            errno = ENOMEM;
        return p;
    }
    /* The collector clears the objects it hands out (the preload modes
     * never ask for pointer-free ones, which it would not). */
    return gc_alloc(n, 16, GCM_PROF_CALLER());
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
    if (GCM_UNLIKELY(plain())) {
        if (gcm__gc_owns(p))
            return gcm__gc_realloc_any(p, n, __builtin_return_address(0));
        return mi_realloc(p, n);
    }
    if (GCM_LIKELY(mode == MODE_FAST)) {
        /* A sampled block's record comes out first: once mimalloc has
         * freed p, another thread may get (and sample) the same address. */
        gcm__prof_obj po;
        bool sampled = gcm__prof_detach(p, &po);
        void *q = mi_realloc(p, n);
        if (q == NULL) {
            if (sampled)
                gcm__prof_reattach(p, &po);
            errno = ENOMEM;
            return NULL;
        }
        gcm__tls *t = &gcm__tls_self;
        if (sampled)
            gcm__prof_release(&po);
        GCM_BUMP(&t->pl_frees, 1);
        count_malloc(t, q, n, GCM_PROF_CALLER());
        return q;
    }
    return gc_realloc(p, n, GCM_PROF_CALLER());
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
    if (GCM_UNLIKELY(plain()))
        return mi_malloc_aligned(n, align);
    if (GCM_LIKELY(mode == MODE_FAST)) {
        void *p = mi_malloc_aligned(n, align);
        if (GCM_LIKELY(p != NULL))
            count_malloc(&gcm__tls_self, p, n, caller);
        else
            errno = ENOMEM;
        return p;
    }
    return gc_alloc(n, align, caller);
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
