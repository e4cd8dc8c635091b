/*
 * gc_counts.h — the figures every gcmalloc strategy reports from MemStats.
 */
#ifndef GCM_DEMO_GC_COUNTS_H
#define GCM_DEMO_GC_COUNTS_H

#include <gcmalloc.h>

#include "sim.h"

/* Collected objects, cycles, the collector's CPU share since start, pauses. */
static inline void demo_gc_counts(struct demo_counts *c)
{
    struct gcm_memstats ms;
    gcm_read_memstats(&ms);
    *c = (struct demo_counts){
        .allocs = ms.mallocs,
        .gc_cycles = ms.num_gc,
        .gc_cpu = ms.gc_cpu_fraction,
        .gc_pause_ns = ms.pause_total_ns,
    };
}

#endif
