/*
 * thread_join.c — a thread's result stays alive until pthread_join takes it.
 *
 * A worker that returns a malloc'd result (or passes one to pthread_exit)
 * hands it to the C library, which keeps it in the thread's descriptor
 * until pthread_join.  Between the thread's end and the join, nothing the
 * collector scans refers to it: the thread has unregistered (its stack is
 * gone), and glibc's descriptor is memory the collector does not scan.  A
 * collection in that window reclaims the result, and the joiner reads
 * whatever was allocated there next.  Measured before this file existed:
 * tests/preload/sigblock.c, whose four workers each return a malloc'd sum,
 * printed a wrong total in about half its runs under GCMALLOC_MODE=gc
 * (leakcheck, which reclaims nothing, would report the result as a leak).
 * bdwgc's own pthread_create wrapper keeps the value in its thread table
 * for this reason; gcmalloc registers threads itself, so it keeps the value
 * itself.
 *
 * When a thread our trampoline started ends with a value in the collected
 * heap, the value goes into a cell allocated uncollectable (scanned as a
 * root, never reclaimed) and listed by thread; a successful pthread_join,
 * pthread_tryjoin_np, pthread_timedjoin_np or pthread_clockjoin_np, or a
 * pthread_detach, drops the cell.  A thread that is detached when it ends
 * keeps nothing (nobody can join it): the end-of-thread check and
 * pthread_detach serialize on one mutex, so a detach either sees the cell
 * or happens before the check that makes it unnecessary.  Threads end far
 * less often than they allocate; a mutex and a short list are enough.
 *
 * Not covered: threads started before gcmalloc was loaded, or by a runtime
 * that interposes pthread_create ahead of it and starts the thread's
 * routine itself; their values are the C library's alone.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <time.h>

#define GC_THREADS
#define GC_NO_THREAD_REDIRECTS /* thread.c interposes pthread_create */
#include <gc/gc.h>

#include "internal.h"

#define API __attribute__((visibility("default")))

struct cell {
    struct cell *next;
    pthread_t th;
    void *value;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct cell *cells;

enum { F_JOIN, F_TRYJOIN, F_TIMEDJOIN, F_CLOCKJOIN, F_DETACH, F_EXIT, F__N };
static const char *const fn_names[F__N] = {
    "pthread_join", "pthread_tryjoin_np", "pthread_timedjoin_np",
    "pthread_clockjoin_np", "pthread_detach", "pthread_exit",
};
static void *real_fn[F__N];

static void *next(int f)
{
    return gcm__next_symbol(&real_fn[f], fn_names[f]);
}

/* True when the calling thread can still be joined. */
static bool joinable_self(void)
{
    pthread_attr_t attr;
    int state = PTHREAD_CREATE_JOINABLE;
    if (pthread_getattr_np(pthread_self(), &attr) != 0)
        return true; /* keeping the value is the safe side */
    pthread_attr_getdetachstate(&attr, &state);
    pthread_attr_destroy(&attr);
    return state == PTHREAD_CREATE_JOINABLE;
}

void gcm__thread_exit_value(void *value)
{
    if (value == NULL || !gcm__gc_ready() || GC_base(value) == NULL)
        return;
    pthread_mutex_lock(&mu);
    if (joinable_self()) {
        struct cell *c = GC_malloc_uncollectable(sizeof *c);
        if (c != NULL) {
            *c = (struct cell){cells, pthread_self(), value};
            cells = c;
        }
    }
    pthread_mutex_unlock(&mu);
}

/* Drops th's cell, if any; called with mu held. */
static void drop_locked(pthread_t th)
{
    for (struct cell **p = &cells; *p != NULL; p = &(*p)->next) {
        if (pthread_equal((*p)->th, th)) {
            struct cell *c = *p;
            *p = c->next;
            GC_free(c);
            return;
        }
    }
}

static int joined(pthread_t th, int rc)
{
    if (rc == 0) {
        pthread_mutex_lock(&mu);
        drop_locked(th);
        pthread_mutex_unlock(&mu);
    }
    return rc;
}

/* fork(): under mu a cell is allocated from (or returned to) the
 * collector, so init.c takes mu before bdwgc's lock.  The child's cells
 * for threads that did not come along are kept: nothing joins them, and
 * they are a few words each. */
void gcm__thread_join_fork(int phase)
{
    gcm__fork_mutex(&mu, phase);
}

API int pthread_join(pthread_t th, void **value)
{
    return joined(th, ((int (*)(pthread_t, void **))next(F_JOIN))(th, value));
}

API int pthread_tryjoin_np(pthread_t th, void **value)
{
    return joined(th, ((int (*)(pthread_t, void **))next(F_TRYJOIN))(th, value));
}

API int pthread_timedjoin_np(pthread_t th, void **value, const struct timespec *abstime)
{
    return joined(th, ((int (*)(pthread_t, void **, const struct timespec *))next(F_TIMEDJOIN))(
                          th, value, abstime));
}

API int pthread_clockjoin_np(pthread_t th, void **value, clockid_t clock,
                             const struct timespec *abstime)
{
    return joined(th, ((int (*)(pthread_t, void **, clockid_t,
                                const struct timespec *))next(F_CLOCKJOIN))(th, value, clock,
                                                                            abstime));
}

API int pthread_detach(pthread_t th)
{
    /* Under the mutex, so that an ending thread's check comes wholly
     * before or wholly after it. */
    pthread_mutex_lock(&mu);
    int rc = ((int (*)(pthread_t))next(F_DETACH))(th);
    if (rc == 0)
        drop_locked(th);
    pthread_mutex_unlock(&mu);
    return rc;
}

API void pthread_exit(void *value)
{
    if (gcm__tls_self.flags & GCM_T_STARTED)
        gcm__thread_exit_value(value);
    ((void (*)(void *))next(F_EXIT))(value);
    __builtin_unreachable();
}
