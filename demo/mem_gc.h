/*
 * mem_gc.h — Go's way: everything on the collected heap, nothing freed.
 * A request's objects become garbage when it ends and an evicted session
 * when the cache forgets it; the collector finds both, paced by GOGC.
 * Strings and buffers hold no pointers: gcm_malloc_atomic, never scanned.
 */
#ifndef GCM_DEMO_MEM_GC_H
#define GCM_DEMO_MEM_GC_H

#include <gcmalloc.h>

struct demo_mem {
    int unused;
};

#define MEM_REQ_NEW(w, T) ((struct T *)gcm_malloc(sizeof(struct T)))
#define MEM_REQ_BYTES(w, n) ((char *)gcm_malloc_atomic(n))
#define MEM_REQ_GROW(w, p, old, n) ((char *)gcm_realloc((p), (n)))
#define MEM_REQ_FREE_EACH 0
#define MEM_SES_NEW(w) ((struct session *)gcm_malloc(sizeof(struct session)))
#define MEM_SES_BYTES(w, n) ((char *)gcm_malloc_atomic(n))
#define MEM_SES_FREE_BYTES(w, p) ((void)(p))

#endif
