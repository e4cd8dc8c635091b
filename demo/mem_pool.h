/*
 * mem_pool.h — sync.Pool's way: typed pools for the request's structs and
 * for sessions, size-classed buffer pools (gcm_buf) for every string and
 * buffer.  Everything is given back, and the next request gets it again
 * from the thread's cache: after warm-up nearly every get is a hit.  The
 * objects hold no pointers into the collected heap, so none of this is
 * collected memory; the pools zero an object when it is put back (their
 * reset function), as calloc would hand it out.
 */
#ifndef GCM_DEMO_MEM_POOL_H
#define GCM_DEMO_MEM_POOL_H

#include <string.h>

#include <gcmalloc.h>

struct demo_mem {
    int unused;
};

/* strategy_pool.c */
extern gcm_pool *demo_pool_request, *demo_pool_field, *demo_pool_session;

/* A buffer from the class of n bytes, keeping p's first `old` bytes; p
 * itself when its class already holds n. */
static inline char *demo_buf_grow(char *p, size_t old, size_t n)
{
    if (p != NULL && gcm_buf_cap(p) >= n)
        return p;
    char *q = gcm_buf_get(n);
    if (q != NULL && p != NULL) {
        memcpy(q, p, old);
        gcm_buf_put(p);
    }
    return q;
}

#define MEM_REQ_NEW(w, T) ((struct T *)gcm_pool_get(demo_pool_##T))
#define MEM_REQ_BYTES(w, n) ((char *)gcm_buf_get(n))
#define MEM_REQ_GROW(w, p, old, n) demo_buf_grow((p), (old), (n))
#define MEM_REQ_FREE_EACH 1
#define MEM_REQ_FREE(w, T, p) gcm_pool_put(demo_pool_##T, (p))
#define MEM_REQ_FREE_BYTES(w, p) gcm_buf_put(p)
#define MEM_SES_NEW(w) ((struct session *)gcm_pool_get(demo_pool_session))
#define MEM_SES_BYTES(w, n) ((char *)gcm_buf_get(n))
#define MEM_SES_FREE_BYTES(w, p) gcm_buf_put(p)

#endif
