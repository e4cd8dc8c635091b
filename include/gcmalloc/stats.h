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

    /* --- arenas (gcm_arena_*; not in Go's MemStats) -------------------- */
    uint64_t arena_inuse;    /* bytes of chunks held by live arenas.  The
                                pacer and gctrace count them as heap, as Go
                                counts its arenas; heap_* above do not        */
    uint64_t arena_cached;   /* bytes of free chunks kept for new arenas,
                                trimmed at each cycle to recent use           */
    uint64_t arena_sys;      /* arena_inuse + arena_cached: all chunk memory
                                (part of nongc_sys)                           */
    uint64_t arena_count;    /* live arenas                                   */

    /* --- the preload library (zero when not preloaded).  In the gc and
     * leakcheck modes the malloc family's objects are counted in heap_*,
     * mallocs and frees above; fast mode counts nothing on its hot path,
     * so it adds no counters here (docs/preload.md). ------------------- */
    uint32_t preload_mode;   /* 0 not preloaded, 1 fast, 2 leakcheck, 3 gc    */
    uint64_t leaked_objects; /* leakcheck: unreachable objects found so far   */
    uint64_t leaked_bytes;   /* leakcheck: and their bytes                    */

    /* --- pools (gcm_pool_*, gcm_buf_*; not in Go's MemStats) --------- */
    uint64_t pool_gets;      /* gets from every pool (buffer pools too),
                                destroyed pools included; cumulative          */
    uint64_t pool_puts;      /* objects put back                              */
    uint64_t pool_hits_private; /* gets served by the thread's private slot   */
    uint64_t pool_hits_shared;  /* ... by the thread's own shared list        */
    uint64_t pool_hits_stolen;  /* ... by another thread's list               */
    uint64_t pool_hits_victim;  /* ... by a victim cache                      */
    uint64_t pool_misses;    /* objects made because none was cached;
                                hit rate = 1 - pool_misses / pool_gets        */
    uint64_t pool_dropped;   /* cached objects released by GC cycles          */
    uint64_t pool_cached;    /* objects in pools now (primary and victim)     */
    uint64_t pool_count;     /* live pools, one per buffer class in use       */
    uint64_t buf_sys;        /* buffer chunks mapped (part of nongc_sys)      */

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
