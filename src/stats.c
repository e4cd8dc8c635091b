/*
 * stats.c — MemStats: the collector's history and the heap's figures,
 * assembled on demand.
 *
 * gc.c records each finished cycle here (pause ring, totals); everything
 * else is read when asked for: thread counters are summed over the thread
 * registry, heap sizes come from bdwgc.  Nothing stops the world, so a
 * snapshot taken while other threads allocate is consistent to within
 * their unfolded per-thread counts (a few KiB each).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>

#define GC_THREADS
#define GC_NO_THREAD_REDIRECTS /* we interpose pthread_create ourselves */
#include <gc/gc.h>

#include "internal.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

/* Set by the preload library (the plain library has no preload code). */
void (*gcm__memstats_preload)(struct gcm_memstats *ms);
static struct {
    uint32_t num_gc, num_forced;
    uint64_t pause_total_ns;
    uint64_t pause_ns[GCM_PAUSE_RING];
    uint64_t pause_end[GCM_PAUSE_RING];
    uint64_t last_gc;
    double cpu_fraction;
} H;

void gcm__stats_record_cycle(const gcm__cycle *c)
{
    pthread_mutex_lock(&mu);
    uint32_t i = H.num_gc % GCM_PAUSE_RING;
    H.pause_ns[i] = (uint64_t)c->pause_ns;
    H.pause_end[i] = (uint64_t)c->end_unix_ns;
    H.pause_total_ns += (uint64_t)c->pause_ns;
    H.last_gc = (uint64_t)c->end_unix_ns;
    H.num_gc++;
    if (c->forced)
        H.num_forced++;
    H.cpu_fraction = c->cpu_fraction;
    pthread_mutex_unlock(&mu);
}

void gcm__stats_fork(int phase)
{
    gcm__fork_mutex(&mu, phase);
}

void gcm__counts_read(gcm__counts *c)
{
    c->mallocs = gcm__thread_sum(offsetof(gcm__tls, gc_mallocs));
    c->frees = gcm__thread_sum(offsetof(gcm__tls, gc_frees));
    c->alloc_bytes = gcm__thread_sum(offsetof(gcm__tls, gc_alloc_bytes));
    c->free_bytes = gcm__thread_sum(offsetof(gcm__tls, gc_free_bytes));
}

int gcm_read_memstats(struct gcm_memstats *ms)
{
    if (ms == NULL)
        return EINVAL;
    gcm__ensure_init();
    memset(ms, 0, sizeof *ms);
    gcm__gc_state s;
    gcm__gc_snapshot(&s);
    gcm__counts now;
    gcm__counts_read(&now);

    /* Objects and bytes: what the last cycle found live, plus what was
     * allocated since, minus what was freed explicitly since. */
    uint64_t objs = s.live_objects + (now.mallocs - s.at_cycle.mallocs);
    uint64_t freed_since = now.frees - s.at_cycle.frees;
    ms->heap_objects = objs > freed_since ? objs - freed_since : 0;
    uint64_t bytes = s.marked + (now.alloc_bytes - s.at_cycle.alloc_bytes);
    uint64_t bfreed = now.free_bytes - s.at_cycle.free_bytes;
    ms->heap_alloc = bytes > bfreed ? bytes - bfreed : 0;
    ms->alloc = ms->heap_alloc;
    ms->total_alloc = now.alloc_bytes;
    ms->mallocs = now.mallocs;
    ms->frees = ms->mallocs > ms->heap_objects ? ms->mallocs - ms->heap_objects : 0;
    ms->heap_live = s.marked;

    GC_word heap_size = 0, free_bytes = 0, unmapped = 0, since = 0, total = 0;
    if (gcm__gc_ready())
        GC_get_heap_usage_safe(&heap_size, &free_bytes, &unmapped, &since, &total);
    ms->heap_sys = heap_size + unmapped;
    ms->heap_released = unmapped;
    ms->heap_idle = free_bytes + unmapped;
    ms->heap_inuse = heap_size > free_bytes ? heap_size - free_bytes : 0;
    ms->nongc_sys = s.nongc;
    gcm__arena_memstats(ms);
    gcm__pool_memstats(ms);
    ms->sys = ms->heap_sys + s.nongc;
    void (*preload)(struct gcm_memstats *) =
        __atomic_load_n(&gcm__memstats_preload, __ATOMIC_ACQUIRE);
    if (preload != NULL)
        preload(ms);

    ms->next_gc = s.next_goal;
    ms->gc_percent = s.gogc;
    ms->memory_limit = s.memlimit;
    ms->limiter_active = s.limiter_active;

    pthread_mutex_lock(&mu);
    ms->num_gc = H.num_gc;
    ms->num_forced_gc = H.num_forced;
    ms->pause_total_ns = H.pause_total_ns;
    memcpy(ms->pause_ns, H.pause_ns, sizeof ms->pause_ns);
    memcpy(ms->pause_end, H.pause_end, sizeof ms->pause_end);
    ms->last_gc = H.last_gc;
    ms->gc_cpu_fraction = H.cpu_fraction;
    pthread_mutex_unlock(&mu);
    return 0;
}
