/*
 * init.c — library start-up.
 *
 * gcmalloc initializes itself on first use from any entry point, and also
 * from a constructor when the shared library is loaded, so that option
 * warnings and the GCMALLOC_VERBOSE listing appear at start-up rather than
 * at some later first allocation.  Initialization is idempotent and safe to
 * race: one thread runs it, the others wait for it to finish.  A thread
 * that re-enters while it is itself initializing (the preloaded malloc
 * called from inside start-up) must not wait for itself, so the running
 * thread is remembered and let through.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include "internal.h"

int gcm__init_state;
static GCM_TLS bool initializing_here;

/* fork().  A child gets a copy of every lock in whatever state some other
 * thread had it; one held at that moment would stay held for good.  So each
 * module's locks are taken before the fork and released after it, in one
 * order for the whole library — the order threads take them in — so that
 * taking them cannot deadlock against a thread that is running:
 *
 *   stack captures    (libunwind's own locks: no lock of ours is taken
 *                     inside it, so it goes first; prof_stack.c's gate)
 *   profile dumps     (a dump snapshots the profiler's tables)
 *   the cycle lock    (a collection runs inside it)
 *   gctrace's output  (no lock: its lines are written under the cycle
 *                     lock, so the child switches to its own file, when
 *                     the path has %p, while that lock is still held)
 *   the pools' rotation lock (the rotation is a cycle hook, and calls
 *                     drop_fn and the backends, which may take the rest)
 *   buffers' class-pool creation, then the large-buffer sets
 *   the pool registry and every pool's local locks and object sets
 *   buffer memory's class and map locks (leaves)
 *   the chunk cache   (trimmed by a cycle hook)
 *   the join cells    (allocated from the collector under their lock)
 *   bdwgc's own lock  (taken by a collection; reclaim hooks run inside it)
 *   the profiler's tables, the preload library's tables
 *   statistics, the thread registry (innermost: taken under all the rest)
 *
 * pthread_atfork would call per-module handlers in the reverse of the order
 * they were registered in, which depends on start-up order; one trio here
 * keeps the order explicit.  Parent and child release in reverse.  The live
 * /debug/pprof endpoint holds no lock across fork; its child handler, run
 * last, closes the sockets the child inherited without the server thread. */
void (*gcm__preload_fork)(int phase);

static void fork_each(int phase)
{
    void (*preload)(int) = __atomic_load_n(&gcm__preload_fork, __ATOMIC_ACQUIRE);
    if (phase == GCM_FORK_PREPARE) {
        gcm__stack_fork(phase);
        gcm__prof_dump_fork(phase);
        gcm__gc_fork_outer(phase);
        gcm__gctrace_fork(phase);
        gcm__pool_fork_outer(phase);
        gcm__buf_fork(phase);
        gcm__pool_fork_inner(phase);
        gcm__bufmem_fork(phase);
        gcm__chunk_fork(phase);
        gcm__thread_join_fork(phase);
        gcm__gc_fork_inner(phase);
        gcm__prof_fork(phase);
        if (preload != NULL)
            preload(phase);
        gcm__stats_fork(phase);
        gcm__thread_fork(phase);
    } else {
        gcm__thread_fork(phase);
        gcm__stats_fork(phase);
        if (preload != NULL)
            preload(phase);
        gcm__prof_fork(phase);
        gcm__gc_fork_inner(phase);
        gcm__thread_join_fork(phase);
        gcm__chunk_fork(phase);
        gcm__bufmem_fork(phase);
        gcm__pool_fork_inner(phase);
        gcm__buf_fork(phase);
        gcm__pool_fork_outer(phase);
        gcm__gctrace_fork(phase);
        gcm__gc_fork_outer(phase);
        gcm__prof_dump_fork(phase);
        gcm__stack_fork(phase);
        gcm__pprof_http_fork(phase);
    }
}

void gcm__fork_mutexes(pthread_mutex_t *const *mus, int n, int phase)
{
    for (int i = 0; i < n; i++) {
        if (phase == GCM_FORK_PREPARE)
            pthread_mutex_lock(mus[i]);
        else if (phase == GCM_FORK_PARENT)
            pthread_mutex_unlock(mus[n - 1 - i]);
        else
            pthread_mutex_init(mus[i], NULL);
    }
}

void gcm__fork_mutex(pthread_mutex_t *mu, int phase) { gcm__fork_mutexes(&mu, 1, phase); }

static void fork_prepare(void) { fork_each(GCM_FORK_PREPARE); }
static void fork_parent(void) { fork_each(GCM_FORK_PARENT); }
static void fork_child(void) { fork_each(GCM_FORK_CHILD); }

void gcm__init_slow(void)
{
    int expected = 0;
    if (initializing_here)
        return; /* re-entered from our own start-up: let it through */
    if (__atomic_compare_exchange_n(&gcm__init_state, &expected, 1, false,
                                    __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        initializing_here = true;
        pthread_atfork(fork_prepare, fork_parent, fork_child);
        gcm__options_init();
        gcm__diag_open();
        if (gcm__opt_bool(GCM_OPT_VERBOSE))
            gcm__options_print();
        /* Before the collector: arenas register their root provider, and
         * the chunk cache its fork handlers, which must come before the
         * collector's so that fork takes the collector's lock first (the
         * order the GC-cycle hooks take them in). */
        gcm__arena_init();
        gcm__clock_start();
        if (!gcm__gc_lazy)
            gcm__gc_init();
        gcm__gctrace_init();
        gcm__prof_init();
        gcm__pprof_http_init();
        initializing_here = false;
        __atomic_store_n(&gcm__init_state, 2, __ATOMIC_RELEASE);
        return;
    }
    while (__atomic_load_n(&gcm__init_state, __ATOMIC_ACQUIRE) != 2)
        sched_yield();
}

__attribute__((constructor)) static void gcm_constructor(void)
{
    gcm__ensure_init();
}

int gcm_init(void)
{
    gcm__ensure_init();
    return 0;
}

const char *gcm_version(void) { return GCMALLOC_VERSION_STRING; }
