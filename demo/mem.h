/*
 * mem.h — where the demo server's memory comes from, chosen at build time.
 *
 * Each server binary is built with one of DEMO_MEM_MALLOC, DEMO_MEM_GC,
 * DEMO_MEM_ARENA or DEMO_MEM_POOL, which selects a header defining:
 *
 *   MEM_REQ_NEW(w, T)            a zeroed struct T that lives as long as the
 *                                request (T is request or field)
 *   MEM_REQ_BYTES(w, n)          n bytes for the request: text, strings
 *   MEM_REQ_GROW(w, p, old, n)   p (old bytes used) grown to n bytes; NULL
 *                                and p untouched on failure
 *   MEM_REQ_FREE_EACH            1 if the request's objects must be given
 *                                back one by one (demo_request_free), with
 *   MEM_REQ_FREE(w, T, p)        and MEM_REQ_FREE_BYTES(w, p)
 *   MEM_SES_NEW(w)               a zeroed struct session (outlives requests)
 *   MEM_SES_BYTES(w, n)          bytes a session owns
 *   MEM_SES_FREE_BYTES(w, p)     gives such bytes back (may do nothing)
 *
 * and struct demo_mem, the strategy's per-worker state.  Each expands to
 * the allocator call itself, at the place that needs the memory (see
 * sim.h for why).  Allocation results are checked by the caller.
 */
#ifndef GCM_DEMO_MEM_H
#define GCM_DEMO_MEM_H

#if defined(DEMO_MEM_MALLOC)
#include "mem_malloc.h"
#elif defined(DEMO_MEM_GC)
#include "mem_gc.h"
#elif defined(DEMO_MEM_ARENA)
#include "mem_arena.h"
#elif defined(DEMO_MEM_POOL)
#include "mem_pool.h"
#else
#error "build with one of DEMO_MEM_MALLOC, DEMO_MEM_GC, DEMO_MEM_ARENA, DEMO_MEM_POOL"
#endif

#endif
