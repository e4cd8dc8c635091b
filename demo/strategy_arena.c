/*
 * strategy_arena.c — an arena per worker, reset when each request ends;
 * sessions on the collected heap (mem_arena.h).  A reset keeps the arena's
 * first chunk, so a request that fits in it (all of them here: about 3 KB
 * in a 64 KiB chunk) allocates nothing from any allocator; a larger one
 * takes more chunks, which are counted as allocations.
 */
#include <errno.h>

#include "gc_counts.h"
#include "mem.h"

const char demo_strategy_name[] = "arena";

static struct {
    _Alignas(64) struct demo_mem m;
} mems[DEMO_MAX_WORKERS];

int demo_strategy_init(void) { return 0; }

int demo_strategy_worker_init(struct worker *w)
{
    w->mem = &mems[w->id].m;
    w->mem->arena = gcm_arena_new(&(gcm_arena_options){.name = "request", .noscan = 1});
    return w->mem->arena != NULL ? 0 : ENOMEM;
}

/* Chunks the arena holds beyond the first (which it keeps across resets). */
static void count_chunks(struct demo_mem *m, size_t kept)
{
    struct gcm_arena_stats st;
    if (gcm_arena_stats(m->arena, &st) == 0 && st.chunks > kept)
        __atomic_add_fetch(&m->extra_chunks, st.chunks - kept, __ATOMIC_RELAXED);
}

void demo_strategy_worker_done(struct worker *w)
{
    count_chunks(w->mem, 0); /* the first chunk too: it was allocated once */
    gcm_arena_free(w->mem->arena);
    w->mem->arena = NULL;
}

void demo_strategy_end_request(struct worker *w, struct request *r)
{
    (void)r;
    count_chunks(w->mem, 1);
    gcm_arena_reset(w->mem->arena);
}

void demo_strategy_session_drop(struct worker *w, struct session *s)
{
    (void)w;
    (void)s; /* sessions are collected */
}

void demo_strategy_counts(struct demo_counts *c)
{
    demo_gc_counts(c);
    for (int i = 0; i < DEMO_MAX_WORKERS; i++)
        c->allocs += __atomic_load_n(&mems[i].m.extra_chunks, __ATOMIC_RELAXED);
}
