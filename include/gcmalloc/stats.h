/*
 * gcmalloc/stats.h — memory statistics, like Go's runtime.MemStats.
 *
 * Field names follow Go's where the meaning matches (in snake case), so a
 * reader of Go's MemStats documentation knows them.  Byte figures for the
 * collected heap count what objects occupy in the collector's size classes,
 * as Go's do.  Where gcmalloc differs from Go a comment says how.
 */
#ifndef GCMALLOC_STATS_H
#define GCMALLOC_STATS_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define GCM_PAUSE_RING 256

struct gcm_memstats {
    /* --- general ---------------------------------------------------- */
    uint64_t alloc;          /* = heap_alloc                                  */
    uint64_t total_alloc;    /* cumulative bytes allocated on the GC heap     */
    uint64_t sys;            /* all memory gcmalloc obtained from the OS:
                                heap_sys + nongc_sys                          */
    uint64_t mallocs;        /* cumulative GC heap objects allocated          */
    uint64_t frees;          /* cumulative GC heap objects freed (explicitly
                                or collected); heap_objects = mallocs - frees */

    /* --- the collected heap ------------------------------------------ */
    uint64_t heap_alloc;     /* bytes of allocated heap objects, reachable or
                                not yet collected (Go's HeapAlloc)            */
    uint64_t heap_sys;       /* heap memory mapped from the OS                */
    uint64_t heap_idle;      /* heap blocks holding no object                 */
    uint64_t heap_inuse;     /* heap_sys - heap_idle                          */
    uint64_t heap_released;  /* idle heap returned to the OS (unmapped)       */
    uint64_t heap_objects;   /* allocated heap objects                        */
    uint64_t heap_live;      /* bytes marked live by the last collection
                                (Go's runtime/metrics /gc/heap/live)         */

    /* --- non-collected memory (mimalloc) ------------------------------ */
    uint64_t nongc_sys;      /* bytes gcmalloc holds outside the GC heap
                                (arena chunks, pooled buffers, tables)        */

    /* --- collector --------------------------------------------------- */
    uint64_t next_gc;        /* heap goal of the next cycle; 0 with GOGC=off
                                and no memory limit                           */
    uint64_t last_gc;        /* end of the last cycle, ns since 1970          */
    uint64_t pause_total_ns; /* cumulative stop-the-world time                */
    uint64_t pause_ns[GCM_PAUSE_RING];  /* recent pauses; the most recent is
                                pause_ns[(num_gc + 255) % 256]                */
    uint64_t pause_end[GCM_PAUSE_RING]; /* when each ended, ns since 1970   */
    uint32_t num_gc;         /* completed cycles                              */
    uint32_t num_forced_gc;  /* cycles forced by gcm_gc()                     */
    double gc_cpu_fraction;  /* fraction of available CPU time used by the
                                collector since start: stop-the-world time ×
                                all CPUs, over elapsed time × all CPUs        */
    int64_t gc_percent;      /* current GOGC; -1 when off                     */
    int64_t memory_limit;    /* current soft limit; INT64_MAX when none       */
    uint32_t limiter_active; /* 1 while the 50% GC-CPU limiter holds
                                collections back (limit below live heap)      */
};

/* Fills *ms with a consistent snapshot.  Cheap enough to call once a second;
 * does not stop the world.  Returns 0, or EINVAL when ms is NULL. */
GCM_API int gcm_read_memstats(struct gcm_memstats *ms);

#ifdef __cplusplus
}
#endif

#endif /* GCMALLOC_STATS_H */
