/*
 * strategy_gc.c — the collected heap: nothing is released by hand.  A
 * request's objects are garbage once it ends, an evicted session once the
 * cache forgets it; the collector reclaims both, paced by GOGC.
 */
#include "gc_counts.h"
#include "mem.h"

const char demo_strategy_name[] = "gc";

static struct demo_mem mem;

int demo_strategy_init(void) { return 0; }

int demo_strategy_worker_init(struct worker *w)
{
    w->mem = &mem;
    return 0;
}

void demo_strategy_worker_done(struct worker *w) { (void)w; }

void demo_strategy_end_request(struct worker *w, struct request *r)
{
    (void)w;
    (void)r; /* garbage from here on */
}

void demo_strategy_session_drop(struct worker *w, struct session *s)
{
    (void)w;
    (void)s; /* unreachable once the cache slot is cleared */
}

void demo_strategy_counts(struct demo_counts *c) { demo_gc_counts(c); }
