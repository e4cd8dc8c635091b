/*
 * pacer.c — when to collect: Go's heap goal and GC-CPU limiter, as pure
 * arithmetic.
 *
 * Nothing in this file calls the collector or reads a clock; gc.c feeds it
 * numbers and acts on the answers, and tests/test_pacer.c drives it through
 * table-driven simulations (steady state, a step in allocation rate, high
 * GOGC, an oscillating live heap, GOGC=off, a binding memory limit, a limit
 * below the live heap), as Go tests mgcpacer.go.
 *
 * The heap goal.  GOGC says how much the heap may grow between collections,
 * as a percentage of what survived the last one:
 *
 *     goal = live × (1 + GOGC/100),   at least 4 MiB × GOGC/100
 *
 * (Go 1.18's formula; Go 1.19 also adds GOGC% of the stack and global roots,
 * which bdwgc does not report, so gcmalloc keeps the simpler form.)  Because
 * bdwgc marks with the world stopped there is no concurrent mark phase to
 * give runway to: the collection starts when the heap reaches the goal, so
 * the trigger is the goal itself.
 *
 * The soft memory limit.  With a limit, the goal is also capped so that all
 * the memory gcmalloc holds stays under it:
 *
 *     limit goal = limit − (memory that is not heap in use) − overage
 *                  − 1 MiB headroom
 *
 * where "not heap in use" counts the non-collected memory (arena chunks,
 * pooled buffers, tables) and the part of the collector's mapped heap that
 * is neither live nor free for reuse (fragmentation), and the overage is
 * how far all held memory already exceeds the limit (idle heap not yet
 * returned to the OS, say after the limit was lowered): Go subtracts it too,
 * so the heap is pushed down until the idle memory has been released.  The
 * limit goal is never below the live heap: a collection cannot free what is
 * live.
 *
 * The limiter.  When the live heap alone is at or above the limit, every
 * allocation check would trigger another collection and the program would
 * do nothing else.  Go bounds this with a leaky bucket: GC CPU time fills it,
 * mutator CPU time drains it, and while it is full the limit stops forcing
 * collections, so the collector takes at most about half the CPU.  The
 * bucket holds one CPU-second per processor, as Go's does.  Collections due
 * to GOGC itself are never held back.
 */
#include "internal.h"

#define MIN_HEAP ((uint64_t)4 << 20)
#define LIMIT_HEADROOM ((uint64_t)1 << 20)

static uint64_t sat_add(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* a × b / 100 without overflow (saturating). */
static uint64_t mul_pct(uint64_t a, uint64_t pct)
{
    unsigned __int128 r = (unsigned __int128)a * pct / 100;
    return r > UINT64_MAX ? UINT64_MAX : (uint64_t)r;
}

void gcm__pacer_compute(const gcm__pacer_input *in, gcm__pacer_goal *out)
{
    out->gogc_goal = 0;
    out->limit_goal = 0;
    out->goal = 0;
    out->limit_binds = false;

    bool gogc_on = in->gogc >= 0;
    if (gogc_on) {
        uint64_t pct = (uint64_t)in->gogc;
        uint64_t goal = sat_add(in->live, mul_pct(in->live, pct));
        uint64_t floor = mul_pct(MIN_HEAP, pct);
        out->gogc_goal = goal > floor ? goal : floor;
        out->goal = out->gogc_goal;
    }

    bool limit_on = in->memlimit >= 0 && in->memlimit != INT64_MAX;
    if (limit_on) {
        uint64_t limit = (uint64_t)in->memlimit;
        uint64_t overage = in->held > limit ? in->held - limit : 0;
        uint64_t reserved = sat_add(sat_add(in->overhead, overage), LIMIT_HEADROOM);
        uint64_t lg = limit > reserved ? limit - reserved : 0;
        if (lg < in->live)
            lg = in->live;
        out->limit_goal = lg;
        if (!gogc_on || lg < out->goal) {
            out->goal = lg;
            out->limit_binds = true;
        }
    }
}

void gcm__limiter_init(gcm__limiter *l, int procs, int64_t now_ns)
{
    l->procs = procs > 0 ? procs : 1;
    l->cap_ns = (int64_t)l->procs * 1000000000;
    l->fill_ns = 0;
    l->last_ns = now_ns;
    l->enabled = false;
    l->overflow_ns = 0;
    l->last_gc_ns = 0;
}

void gcm__limiter_update(gcm__limiter *l, int64_t now_ns, int64_t gc_ns)
{
    int64_t elapsed = now_ns - l->last_ns;
    if (elapsed < 0)
        elapsed = 0;
    l->last_ns = now_ns;
    if (gc_ns < 0)
        gc_ns = 0;
    /* A stop-the-world collection takes every processor: GC CPU time is
     * gc × procs, mutator time the rest of elapsed × procs.  The bucket
     * changes by their difference. */
    __int128 change = (__int128)l->procs * (2 * (__int128)gc_ns - elapsed);
    __int128 fill = (__int128)l->fill_ns + change;
    if (fill > l->cap_ns) {
        l->overflow_ns += (uint64_t)(fill - l->cap_ns);
        fill = l->cap_ns;
    }
    l->fill_ns = fill < 0 ? 0 : (int64_t)fill;
    if (gc_ns > 0)
        l->last_gc_ns = gc_ns;
    /* Go's collector works a little at a time, so "bucket full" is precise
     * enough for it.  Ours stops the world for a whole cycle at once: hold
     * collections back while the next one, costing what the last did, would
     * overflow the bucket.  An empty bucket always allows one, so a cycle
     * longer than the whole bucket cannot stop collection for good. */
    int64_t next = l->procs * l->last_gc_ns;
    l->enabled = l->fill_ns > 0 && l->fill_ns > l->cap_ns - next;
}

bool gcm__pacer_should_collect(const gcm__pacer_goal *g, uint64_t heap,
                               const gcm__limiter *l)
{
    if (g->goal == 0 || heap < g->goal)
        return false;
    if (!g->limit_binds)
        return true;
    /* The limit is what asks for this collection.  Hold it back while the
     * limiter is full, unless GOGC's own goal is reached as well. */
    if (l != NULL && l->enabled)
        return g->gogc_goal != 0 && heap >= g->gogc_goal;
    return true;
}
