/*
 * mem_arena.h — a request's memory from an arena, sessions on the
 * collected heap: the split docs/arenas.md recommends.  Each worker keeps
 * one arena and resets it when a request ends (no per-object free, and
 * after the first request no trip to the chunk cache).  The arena is
 * `noscan`: request data holds no pointers into the collected heap, so the
 * collector need not look at it.  Sessions outlive requests, so they go to
 * the collected heap, as in mem_gc.h.
 */
#ifndef GCM_DEMO_MEM_ARENA_H
#define GCM_DEMO_MEM_ARENA_H

#include <gcmalloc.h>

struct demo_mem {
    gcm_arena *arena;
    uint64_t extra_chunks; /* chunks beyond the one a reset keeps */
};

#define MEM_REQ_NEW(w, T) \
    ((struct T *)gcm_arena_calloc((w)->mem->arena, 1, sizeof(struct T)))
#define MEM_REQ_BYTES(w, n) ((char *)gcm_arena_alloc((w)->mem->arena, (n)))
#define MEM_REQ_GROW(w, p, old, n) \
    ((char *)gcm_arena_realloc((w)->mem->arena, (p), (old), (n)))
#define MEM_REQ_FREE_EACH 0
#define MEM_SES_NEW(w) ((struct session *)gcm_malloc(sizeof(struct session)))
#define MEM_SES_BYTES(w, n) ((char *)gcm_malloc_atomic(n))
#define MEM_SES_FREE_BYTES(w, p) ((void)(p))

#endif
