/*
 * strategy_malloc.c — malloc/free: every object released by its owner.
 *
 * A request's objects are freed one by one when it ends (the walk in
 * request.c); an evicted session is freed with what it owns.
 *
 * THE DELIBERATE LEAK.  demo_strategy_session_drop below frees the
 * session, its user name and its last path, but not its activity log: 512
 * bytes lost per eviction, about one request in ten.  It is the kind of
 * leak C services have (a field added to a struct, and the free function
 * not updated), and the demo shows the two tools that find it pointing at
 * the log's allocation in session_new (demo/session.c):
 *
 *   - the leak checker: run under LD_PRELOAD=libgcmalloc-preload.so with
 *     GCMALLOC_MODE=leakcheck, every collection finds the logs no pointer
 *     reaches any more, and the exit report lists them by allocation site;
 *   - the profiler's leak suspects (GCMALLOC_PROFILE_LEAK): the in-use
 *     bytes at that site grow in snapshot after snapshot.
 *
 * The other three strategies release sessions their own way and do not
 * leak.  This file alone does not link gcmalloc.
 */
#include <stdlib.h>

#include "sim.h"
#include "mem.h"

const char demo_strategy_name[] = "malloc";

/* One counter per worker, each on its own cache line. */
static struct {
    _Alignas(64) struct demo_mem m;
} mems[DEMO_MAX_WORKERS];

int demo_strategy_init(void) { return 0; }

int demo_strategy_worker_init(struct worker *w)
{
    w->mem = &mems[w->id].m;
    return 0;
}

void demo_strategy_worker_done(struct worker *w) { (void)w; }

void demo_strategy_end_request(struct worker *w, struct request *r)
{
    demo_request_free(w, r);
}

void demo_strategy_session_drop(struct worker *w, struct session *s)
{
    (void)w;
    free(s->user);
    free(s->last_path);
    /* The leak: s->activity is not freed. */
    free(s);
}

void demo_strategy_counts(struct demo_counts *c)
{
    *c = (struct demo_counts){0};
    for (int i = 0; i < DEMO_MAX_WORKERS; i++)
        c->allocs += __atomic_load_n(&mems[i].m.allocs, __ATOMIC_RELAXED);
}
