/*
 * gc.c — the collected heap: Boehm GC, paced the way Go paces its own.
 *
 * Allocation.  gcm_malloc asks bdwgc for an object (its thread-local free
 * lists make that a few instructions) and then does three cheap things on
 * the calling thread's state: counts the object, adds its size to a
 * thread-local byte count, and checks that count against a per-thread
 * threshold.  Only when the count crosses the threshold (every 8–256 KiB of
 * allocation) does the thread fold it into the global count and compare the
 * heap with its goal.  Sizes are counted as bdwgc stores them (its size
 * class, including the byte it adds so that a pointer just past the end of
 * an object keeps it alive), so the pacer's heap and the marked heap it is
 * compared with are measured in the same units.
 *
 * Pacing.  bdwgc's own trigger does not follow GOGC: it collects when it
 * runs out of free blocks, a rule that tracks heap *size*, not growth, and
 * after a heap spike lets the live heap grow far past what GOGC allows.  So
 * automatic collection is switched off and the decision is ours: when
 *
 *     live heap after the last cycle + bytes allocated since  ≥  goal
 *
 * the thread that notices runs a stop-the-world collection itself.  The goal
 * comes from pacer.c (GOGC, the memory limit, the CPU limiter).  "Live heap"
 * is the exact marked size: at the end of each cycle, still holding the
 * collector's lock, we enumerate the marked objects.  bdwgc's
 * heap-size-minus-free-bytes overstates it badly, because bdwgc sweeps
 * lazily and counts a block with a single live object as used; pacing on it
 * makes the heap run away.  The enumeration costs about a tenth of the mark.
 *
 * A cycle.  Collections are serialized by our own mutex.  The collecting
 * thread calls GC_gcollect; bdwgc reports the phases through its event
 * callback (which runs inside bdwgc's lock and sometimes with the world
 * stopped, so it only records timestamps and, at reclaim end, the marked
 * size):
 *
 *     START ─ stop world ─ MARK_START ─ mark ─ MARK_END ─ start world ─
 *     RECLAIM_START ─ (lazy sweep set-up) ─ RECLAIM_END ─ END
 *       |<------ A ------>|<---- B ---->|<-------------- C ------------>|
 *
 * After GC_gcollect returns, outside bdwgc's lock, the thread computes the
 * next goal, records MemStats, and runs the "GC cycle finished" hooks —
 * gctrace's line, pool victim rotation, arena chunk-cache trimming, the
 * profiler's snapshot.  A hook that allocates may cross the goal again; the
 * nested collection is deferred rather than run inside the hook.
 *
 * What the collector scans: stacks of registered threads (thread.c; those
 * running on stacks of their own, coroutines, as gc_stacks.c settles them
 * at each stop), data segments of loaded objects, other collected objects,
 * and whatever the root providers push (scan arenas, pool caches), through
 * bdwgc's push_other_roots callback, chained to bdwgc's own (which pushes
 * the thread stacks).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <link.h>
#include <sched.h>
#include <semaphore.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define GC_THREADS
#define GC_NO_THREAD_REDIRECTS /* we interpose pthread_create ourselves */
#include <gc/gc.h>
#include <gc/gc_mark.h>

#include "internal.h"

/* --- clocks ------------------------------------------------------------------ */

static int64_t start_ns;
bool gcm__gc_lazy;

int64_t gcm__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t gcm__since_start_ns(void) { return gcm__now_ns() - start_ns; }

void gcm__clock_start(void)
{
    if (start_ns == 0)
        start_ns = gcm__now_ns();
}

static int64_t unix_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* --- state ------------------------------------------------------------------- */

/* Bounds on what all threads' free-block caches hold together (the cache
 * is described below, at fcache_put). */
#define FC_CAP_MIN ((int64_t)4 << 20)
#define FC_CAP_MAX ((int64_t)256 << 20)

static struct {
    int ready;                 /* bdwgc initialized and configured         */
    pthread_mutex_t mu;        /* serializes cycles                        */
    int procs;                 /* CPUs available (GOMAXPROCS equivalent)   */

    /* pacer inputs, read lock-free on the allocation slow path */
    int64_t alloc_since;       /* net GC-heap bytes since the last cycle   */
    uint64_t marked;           /* bytes marked by the last cycle           */
    uint64_t live;             /* marked + extra heap at the last cycle    */
    uint64_t frag;             /* heap mapped, neither live nor free       */
    uint64_t mapped;           /* GC heap mapped (not returned to the OS)  */
    uint64_t unmapped;         /* GC heap returned to the OS               */
    int64_t extra;             /* heap outside the GC heap (arenas)        */
    int64_t nongc;             /* non-collected memory we hold             */
    int64_t flush_bytes;       /* per-thread fold threshold                */
    int64_t fc_reserved;       /* bytes all threads' free-block caches may
                                  hold now (their reservations)            */
    int64_t fc_cap;            /* ... and at most, from the pacer's room   */
    int foreign_pending;       /* bdwgc collected on its own: publish it   */

    /* guarded by mu */
    uint64_t cycles, forced;
    int64_t gc_cpu_total_ns;
    gcm__limiter lim;
    uint64_t live_objects;
    gcm__counts at_cycle;      /* thread counters when the last cycle ended */
    bool markers_started;
} G = {.mu = PTHREAD_MUTEX_INITIALIZER, .flush_bytes = 64 * 1024,
       .fc_cap = FC_CAP_MIN};

/* Filled by the event callback, in the collecting thread, inside bdwgc's
 * lock.  Read after GC_gcollect returns. */
static struct {
    int driver;                /* our collect() is running                 */
    int64_t start, pre_stop, post_stop, mark_start, mark_end, pre_start,
        post_start, reclaim_start, reclaim_end, end;
    uint64_t marked, marked_objs;
} ev;

/* The free-block cache (below) frees what threads stopped using, at the
 * end of each cycle. */
static void fcache_orphans_free(void);

/* --- hooks ---------------------------------------------------------------------- */

#define MAX_HOOKS 16
static struct {
    gcm__cycle_hook fn;
    void *arg;
} cycle_hooks[MAX_HOOKS];
static int n_cycle_hooks;
static void (*locked_hooks[2][MAX_HOOKS])(void);
static int n_locked_hooks[2];
static void (*root_providers[MAX_HOOKS])(void);
static int n_root_providers;
static pthread_mutex_t hooks_mu = PTHREAD_MUTEX_INITIALIZER;

void gcm__gc_on_cycle(gcm__cycle_hook fn, void *arg)
{
    pthread_mutex_lock(&hooks_mu);
    if (n_cycle_hooks < MAX_HOOKS) {
        cycle_hooks[n_cycle_hooks].fn = fn;
        cycle_hooks[n_cycle_hooks].arg = arg;
        __atomic_store_n(&n_cycle_hooks, n_cycle_hooks + 1, __ATOMIC_RELEASE);
    } else {
        gcm__diag("internal: too many GC cycle hooks");
    }
    pthread_mutex_unlock(&hooks_mu);
}

void gcm__gc_on_locked(gcm__gc_phase phase, void (*fn)(void))
{
    pthread_mutex_lock(&hooks_mu);
    int n = n_locked_hooks[phase];
    if (n < MAX_HOOKS) {
        locked_hooks[phase][n] = fn;
        __atomic_store_n(&n_locked_hooks[phase], n + 1, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&hooks_mu);
}

void gcm__gc_add_roots(void (*push)(void))
{
    pthread_mutex_lock(&hooks_mu);
    if (n_root_providers < MAX_HOOKS) {
        root_providers[n_root_providers] = push;
        __atomic_store_n(&n_root_providers, n_root_providers + 1,
                         __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&hooks_mu);
}

void gcm__gc_push_range(const void *lo, const void *hi)
{
    if ((const char *)hi > (const char *)lo)
        GC_push_all((void *)lo, (void *)hi);
}

static GC_push_other_roots_proc bdwgc_push_other_roots;

static void GC_CALLBACK push_other_roots(void)
{
    gcm__stacks_settle(); /* before bdwgc reads where each stack ends */
    if (bdwgc_push_other_roots != NULL)
        bdwgc_push_other_roots(); /* thread stacks */
    int n = __atomic_load_n(&n_root_providers, __ATOMIC_ACQUIRE);
    for (int i = 0; i < n; i++)
        root_providers[i]();
}

/* --- the event callback -------------------------------------------------------- */

static void GC_CALLBACK count_marked(void *obj, size_t bytes, void *cd)
{
    (void)obj;
    (void)cd;
    ev.marked += bytes;
    ev.marked_objs++;
}

static void run_locked(gcm__gc_phase phase)
{
    int n = __atomic_load_n(&n_locked_hooks[phase], __ATOMIC_ACQUIRE);
    for (int i = 0; i < n; i++)
        locked_hooks[phase][i]();
}

static void GC_CALLBACK on_event(GC_EventType e)
{
    int64_t now = gcm__now_ns();
    switch (e) {
    case GC_EVENT_START:
        ev.start = now;
        ev.pre_stop = ev.post_stop = ev.mark_start = ev.mark_end = now;
        ev.pre_start = ev.post_start = ev.reclaim_start = ev.reclaim_end = now;
        break;
    case GC_EVENT_PRE_STOP_WORLD:
        ev.pre_stop = now;
        gcm__stacks_stop_begin();
        break;
    case GC_EVENT_POST_STOP_WORLD: ev.post_stop = now; break;
    case GC_EVENT_MARK_START: ev.mark_start = now; break;
    case GC_EVENT_MARK_END: ev.mark_end = now; break;
    case GC_EVENT_PRE_START_WORLD: ev.pre_start = now; break;
    case GC_EVENT_POST_START_WORLD: ev.post_start = now; break;
    case GC_EVENT_RECLAIM_START:
        ev.reclaim_start = now;
        run_locked(GCM_GC_RECLAIM_START);
        break;
    case GC_EVENT_RECLAIM_END:
        /* Mark bits are exact here and nothing can allocate from the
         * global free lists until we return: count what survived. */
        ev.marked = ev.marked_objs = 0;
        GC_enumerate_reachable_objects_inner(count_marked, NULL);
        run_locked(GCM_GC_RECLAIM_END);
        ev.reclaim_end = gcm__now_ns();
        break;
    case GC_EVENT_END:
        ev.end = now;
        if (!ev.driver)
            __atomic_store_n(&G.foreign_pending, 1, __ATOMIC_RELEASE);
        break;
    default:
        break;
    }
}

/* --- roots we report as "globals" ------------------------------------------------- */

static int sum_writable(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    uint64_t *sum = arg;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_LOAD && (ph->p_flags & PF_W))
            *sum += ph->p_memsz;
    }
    return 0;
}

/* bdwgc does not report how many bytes of roots it scanned; the writable
 * segments of the loaded objects are what it registers as static roots. */
static uint64_t globals_size(void)
{
    uint64_t sum = 0;
    dl_iterate_phdr(sum_writable, &sum);
    return sum;
}

/* --- pacing -------------------------------------------------------------------- */

static int64_t opt_gogc(void)
{
    int64_t v = gcm__opt_int(GCM_OPT_GOGC);
    return v == GCM_OPT_OFF ? -1 : v;
}

static int64_t opt_memlimit(void)
{
    int64_t v = gcm__opt_int(GCM_OPT_MEMLIMIT);
    return v == GCM_OPT_OFF ? INT64_MAX : v;
}

static void current_goal(gcm__pacer_goal *g)
{
    int64_t nongc = GCM_LOAD(&G.nongc);
    gcm__pacer_input in = {
        .gogc = opt_gogc(),
        .memlimit = opt_memlimit(),
        .live = GCM_LOAD(&G.live),
        .overhead = GCM_LOAD(&G.frag) + (uint64_t)(nongc > 0 ? nongc : 0),
        .held = GCM_LOAD(&G.mapped) + (uint64_t)(nongc > 0 ? nongc : 0),
    };
    gcm__pacer_compute(&in, g);
}

/* The heap as the pacer sees it: what the last cycle marked, what was
 * allocated (net of explicit frees) since, and the extra heap now. */
static uint64_t heap_now(void)
{
    int64_t h = (int64_t)GCM_LOAD(&G.marked) + GCM_LOAD(&G.alloc_since) +
                GCM_LOAD(&G.extra);
    return h > 0 ? (uint64_t)h : 0;
}

/* Per-thread fold threshold: small enough that all threads together
 * overshoot the goal by a few percent at most, large enough that folding is
 * rare.  And the cap on what the threads' free-block caches hold together
 * (see fcache_put): half the room the pacer leaves before the next cycle,
 * so that blocks one thread keeps from the others cannot move the heap by
 * more than half a cycle's growth; never below FC_CAP_MIN, and FC_CAP_MAX
 * when nothing bounds the heap (no goal). */
static void update_thread_limits(uint64_t goal, uint64_t live)
{
    int64_t fb = 256 * 1024;
    int64_t cap = FC_CAP_MAX;
    if (goal > live) {
        int threads = gcm__thread_count();
        uint64_t per = (goal - live) / (32 * (uint64_t)(threads > 0 ? threads : 1));
        if (per < (uint64_t)fb)
            fb = (int64_t)per;
        if ((goal - live) / 2 < (uint64_t)cap)
            cap = (int64_t)((goal - live) / 2);
    } else if (goal != 0) {
        fb = 0;
        cap = 0;
    }
    if (fb < 8 * 1024)
        fb = 8 * 1024;
    if (cap < FC_CAP_MIN)
        cap = FC_CAP_MIN;
    GCM_STORE(&G.flush_bytes, fb);
    GCM_STORE(&G.fc_cap, cap);
}

enum { REASON_PACER, REASON_FORCED, REASON_FOREIGN };

/* Finishes the bookkeeping of a cycle whose events are in `ev`.  Called
 * with G.mu held, outside bdwgc's lock. */
static void finish_cycle(int reason, uint64_t heap0, uint64_t goal,
                         int64_t since_at_start)
{
    int64_t now = gcm__now_ns();
    gcm__cycle c;
    memset(&c, 0, sizeof c);
    c.n = G.cycles + 1;
    GCM_STORE(&G.cycles, c.n); /* read without G.mu by fcache_put */
    c.forced = reason == REASON_FORCED;
    c.foreign = reason == REASON_FOREIGN;
    if (c.forced)
        G.forced++;
    c.start_ns = ev.start - start_ns;
    c.clock_a_ns = ev.mark_start - ev.start;
    c.clock_b_ns = ev.mark_end - ev.mark_start;
    c.clock_c_ns = ev.end - ev.mark_end;
    c.stw_a_ns = ev.mark_start - ev.pre_stop;
    c.stw_c_ns = ev.post_start - ev.mark_end;
    c.pause_ns = ev.post_start - ev.pre_stop;
    c.procs = G.procs;
    int par = GC_get_parallel();
    c.markers = par > 0 ? par + 1 : 1;
    /* The world is stopped for the pause: every processor is lost to the
     * program.  The rest of the cycle occupies the collecting thread. */
    int64_t total = ev.end - ev.start;
    c.gc_cpu_ns = c.pause_ns * c.procs + (total - c.pause_ns);

    /* Keep what other threads allocated while this cycle ran. */
    __atomic_fetch_sub(&G.alloc_since, since_at_start, __ATOMIC_RELAXED);
    int64_t extra = GCM_LOAD(&G.extra);
    GCM_STORE(&G.marked, ev.marked);
    GCM_STORE(&G.live, ev.marked + (uint64_t)(extra > 0 ? extra : 0));
    G.live_objects = ev.marked_objs;
    gcm__counts_read(&G.at_cycle);

    GC_word heap_size = 0, free_bytes = 0, unmapped = 0, since = 0, total_b = 0;
    GC_get_heap_usage_safe(&heap_size, &free_bytes, &unmapped, &since, &total_b);
    GCM_STORE(&G.mapped, (uint64_t)heap_size);
    GCM_STORE(&G.unmapped, (uint64_t)unmapped);

    c.heap0 = heap0;
    c.heap1 = heap0; /* nothing allocates while the world is stopped */
    c.heap2 = GCM_LOAD(&G.live);
    c.live_objects = ev.marked_objs;
    c.goal = goal;
    gcm__pacer_goal next;
    current_goal(&next);
    c.next_goal = next.goal;
    c.globals = globals_size();
    update_thread_limits(next.goal, c.heap2);
    fcache_orphans_free();

    G.gc_cpu_total_ns += c.gc_cpu_ns;
    int64_t elapsed = now - start_ns;
    c.cpu_fraction = elapsed > 0 ? (double)G.gc_cpu_total_ns /
                                       ((double)elapsed * c.procs)
                                 : 0;
    c.end_unix_ns = unix_ns();
    gcm__limiter_update(&G.lim, now, total);

    gcm__stats_record_cycle(&c);

    /* The thread-local itself, not a pointer to it: GCC 12 at -O2 with
     * -fsanitize=undefined drops the test of UBSan's null check on &TLS but
     * keeps its branch, which then reads the loop's flags and reports a
     * null member access that is not there. */
    uint8_t was = gcm__tls_self.in_hooks;
    gcm__tls_self.in_hooks = 1;
    int n = __atomic_load_n(&n_cycle_hooks, __ATOMIC_ACQUIRE);
    for (int i = 0; i < n; i++)
        cycle_hooks[i].fn(&c, cycle_hooks[i].arg);
    gcm__tls_self.in_hooks = was;
}

/* Publishes a cycle bdwgc ran on its own (an explicit GC_gcollect by the
 * program, or a collection bdwgc needed to satisfy an allocation). */
static void publish_foreign_locked(void)
{
    if (!__atomic_exchange_n(&G.foreign_pending, 0, __ATOMIC_ACQ_REL))
        return;
    gcm__pacer_goal g;
    current_goal(&g);
    finish_cycle(REASON_FOREIGN, heap_now(), g.goal,
                 GCM_LOAD(&G.alloc_since));
}

/* The memory the collector's heap holds beyond its objects: partly used
 * blocks, size-class rounding of blocks, blocks not yet swept.  Measured
 * just before a cycle, when the heap's objects are counted exactly (marked
 * + allocated since) and lazy sweeping has caught up with the size classes
 * in use; right after a cycle the unswept garbage would be counted as
 * overhead and halve the memory limit's runway.  Go's equivalent is
 * mappedReady − heapFree − heapAlloc.
 *
 * Sweeping catches up only as the program allocates, so a measurement
 * taken after less allocation than the live heap (a forced cycle right
 * after another, or cycles driven back to back by the limit) still counts
 * unswept garbage — reusable space, not overhead.  Such a measurement may
 * lower the estimate, never raise it: otherwise a cycle that found the
 * heap unswept would shrink the limit's goal to the live heap, the next
 * cycle would come at once and find it unswept again, and so on (a storm
 * of cycles at "12->12->12 MB, 12 MB goal" was seen after a forced cycle
 * followed a limit-driven one). */
static void measure_overhead(uint64_t heap0)
{
    GC_word heap_size = 0, free_bytes = 0, unmapped = 0, since = 0, total = 0;
    GC_get_heap_usage_safe(&heap_size, &free_bytes, &unmapped, &since, &total);
    uint64_t used = heap_size > free_bytes ? heap_size - free_bytes : 0;
    int64_t extra = GCM_LOAD(&G.extra);
    uint64_t gc_heap = heap0 - (uint64_t)(extra > 0 ? extra : 0);
    uint64_t frag = used > gc_heap ? used - gc_heap : 0;
    int64_t allocated = GCM_LOAD(&G.alloc_since);
    uint64_t prev = GCM_LOAD(&G.frag);
    if (allocated < (int64_t)GCM_LOAD(&G.marked) && frag > prev)
        frag = prev;
    GCM_STORE(&G.frag, frag);
}

/* Zeroes `bytes` of stack below the caller.  The empty asm keeps the
 * stores: a memset of memory nothing reads again is otherwise dropped, and
 * the call with it.  Not instrumented by ASan, whose redzones around the
 * area would be left unwritten. */
__attribute__((noinline, no_sanitize_address)) static void clear_stack_below(size_t bytes)
{
    unsigned char *pad = __builtin_alloca(bytes);
    memset(pad, 0, bytes);
    __asm__ volatile("" : : "r"(pad) : "memory");
}

/* How much stack a collection clears below itself first.  The collector
 * scans the collecting thread's stack conservatively, its own frames
 * included, and the slots of those frames it has not written yet this
 * cycle hold what the last collection left at that depth: bdwgc passes
 * {object, descriptor} pairs of what it marks through them.  An object
 * dropped since was then found through its own stale pair and marked
 * again, leaving a fresh pair at the same depth for the next cycle: a
 * program that collects from the same depth (a loop calling gcm_gc, a
 * service's steady allocation path) could keep such objects for good.
 * Clearing the depth the collector's frames will take first breaks the
 * chain.  2 KiB: about what a collection takes below this frame anyway
 * (1.9 KiB below gcm_gc's caller, measured), so a thread with room to
 * collect has room for it; bdwgc's own GC_clear_stack clears 1.7 KiB. */
#define COLLECT_CLEAR_BYTES 2048

/* A forced collection (gcm_gc, a profile asked for with gc=1) finishes the
 * last cycle's sweep before it marks, as Go's runtime.GC finishes sweeping
 * so that the figures it leaves are exact.  bdwgc sweeps lazily: a
 * collection drops its free lists, and the free objects of a block go back
 * on one only when the allocator next needs that block.  Until then they
 * are on no list, and a stale word that points at one (a program's own
 * pools keep them: Python's freed small objects still hold the addresses
 * of the buffers they owned) marks it again at the next collection, and at
 * every one after while nothing sweeps it: memory the program freed stays
 * live.  Python that built and dropped 100,000 1 KB bytearrays and went
 * idle kept 14 MB live through forced collections; 2.4 MB with the sweep
 * finished first.  (bdwgc clears the marks of objects on its free lists.)
 *
 * Not for the pacer's collections: sweeping every block first, clearing
 * its free objects whether or not they will be reused before the next
 * cycle, cost xmalloc 1.28 -> 1.43x glibc's time in gc mode and 1.61 ->
 * 2.07x in leakcheck (peer_bench.sh, 5 rounds).  bdwgc finishes the sweep
 * only when given a stop function other than its never-stop one; this one
 * never stops either.  The unmapping collection (the memory limit binds)
 * has no such entry point and sweeps lazily. */
static int GC_CALLBACK sweep_first(void) { return 0; }

/* Runs one collection.  G.mu must be held. */
static void collect_locked(int reason, uint64_t goal, bool unmap)
{
    clear_stack_below(COLLECT_CLEAR_BYTES);
    gcm__gc_allow_threads();
    uint64_t heap0 = heap_now();
    measure_overhead(heap0);
    int64_t since = GCM_LOAD(&G.alloc_since);
    ev.driver = 1;
    if (unmap)
        GC_gcollect_and_unmap();
    else if (reason == REASON_FORCED)
        GC_try_to_collect(sweep_first);
    else
        GC_gcollect();
    ev.driver = 0;
    __atomic_store_n(&G.foreign_pending, 0, __ATOMIC_RELEASE);
    finish_cycle(reason, heap0, goal, since);
}

static void maybe_collect(gcm__tls *t)
{
    if (t->in_hooks)
        return; /* deferred: the next fold after the hooks will collect */
    gcm__thread_gc_register(t);
    pthread_mutex_lock(&G.mu);
    publish_foreign_locked();
    gcm__pacer_goal g;
    current_goal(&g);
    uint64_t heap = heap_now();
    gcm__limiter_update(&G.lim, gcm__now_ns(), 0);
    if (gcm__pacer_should_collect(&g, heap, &G.lim)) {
        /* When the memory limit drives the cycle, hand idle heap back to
         * the OS as well: the limit counts mapped memory. */
        collect_locked(REASON_PACER, g.goal, g.limit_binds);
    }
    pthread_mutex_unlock(&G.mu);
}

void gcm__gc_flush(gcm__tls *t)
{
    int64_t pend = t->gc_pending;
    t->gc_pending = 0;
    t->gc_flush_at = GCM_LOAD(&G.flush_bytes);
    GCM_ADD(&G.alloc_since, pend);
    if (GCM_UNLIKELY(__atomic_load_n(&G.foreign_pending, __ATOMIC_ACQUIRE))) {
        maybe_collect(t);
        return;
    }
    /* With a memory limit, what the collector holds mapped matters between
     * cycles: bdwgc maps blocks back in (after returning them to the OS)
     * without resizing its heap, so on_heap_resize does not see it.  Ask
     * bdwgc (it takes its lock: only with a limit, once per fold). */
    if (opt_memlimit() != INT64_MAX)
        GCM_STORE(&G.mapped, (uint64_t)GC_get_heap_size());
    gcm__pacer_goal g;
    current_goal(&g);
    if (g.goal != 0 && heap_now() >= g.goal)
        maybe_collect(t);
}

void gcm__gc_extra_heap(int64_t n)
{
    GCM_ADD(&G.extra, n);
    if (n > 0 && GCM_LOAD(&G.ready)) {
        gcm__tls *t = &gcm__tls_self;
        gcm__pacer_goal g;
        current_goal(&g);
        if (g.goal != 0 && heap_now() >= g.goal)
            maybe_collect(t);
    }
}

void gcm__gc_nongc(int64_t n) { GCM_ADD(&G.nongc, n); }

/* --- bdwgc set-up ---------------------------------------------------------------- */

static void GC_CALLBACK warn_proc(char *msg, GC_word arg)
{
    char line[512];
    gcm__fmt(line, sizeof line, msg, (unsigned long)arg);
    size_t n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == ' '))
        line[--n] = '\0';
    char *m = line;
    if (strncmp(m, "GC Warning: ", 12) == 0)
        m += 12;
    /* bdwgc's hint to its own users that large blocks allocated again and
     * again may be kept by false pointers: a malloc'ing program (gcc's cc1,
     * node, the JVM) can do nothing about it, and it came once per fifth
     * large allocation (71 lines for one gcc -O2 run under GCMALLOC_GCTRACE). */
    if (strncmp(m, "Repeated allocation of very large block", 39) == 0 && !gcm__debug_on())
        return;
    /* One diagnostic line per line of the message: bdwgc continues some
     * with "\n\t", which would reach the sink without our prefix. */
    for (char *nl; (nl = strchr(m, '\n')) != NULL; m = nl + 1) {
        *nl = '\0';
        gcm__diag("bdwgc: %s", m);
        while (nl[1] == '\t' || nl[1] == ' ')
            nl++;
    }
    gcm__diag("bdwgc: %s", m);
}

static void GC_CALLBACK abort_proc(const char *msg)
{
    gcm__diag("bdwgc is aborting the process: %s", msg ? msg : "(no message)");
}

/* bdwgc grows its heap between cycles when free blocks run out; the
 * memory limit must see that at once, not at the next cycle's end.  Called
 * inside bdwgc's lock with the total including unmapped blocks. */
static void GC_CALLBACK on_heap_resize(GC_word new_size)
{
    uint64_t un = GCM_LOAD(&G.unmapped);
    GCM_STORE(&G.mapped, new_size > un ? (uint64_t)new_size - un : 0);
}

static int count_procs(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0)
            return n;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

static sem_t fin_sem;
static int fin_thread_state; /* 0 none, 1 starting/running */

static void GC_CALLBACK finalizer_notify(void)
{
    if (__atomic_load_n(&fin_thread_state, __ATOMIC_ACQUIRE))
        sem_post(&fin_sem);
}

/* The free-block cache, below. */
static void fcache_drop(gcm__tls *t);
static void fcache_fork_child(void);

/* fork(): our cycle mutex is the outermost lock (a cycle takes bdwgc's
 * lock inside it).  bdwgc's own fork handling is driven from here
 * (GC_set_handle_fork(-1)) so that its lock is taken after ours, as a
 * collection takes them; it keeps the heap consistent and turns parallel
 * marking off in the child, which starts marker threads again at its first
 * collection. */
void gcm__gc_fork_outer(int phase)
{
    if (phase == GCM_FORK_PREPARE) {
        pthread_mutex_lock(&G.mu);
    } else if (phase == GCM_FORK_PARENT) {
        pthread_mutex_unlock(&G.mu);
    } else {
        pthread_mutex_init(&G.mu, NULL);
        __atomic_store_n(&G.markers_started, false, __ATOMIC_RELEASE);
        fcache_fork_child();
    }
}

void gcm__gc_fork_inner(int phase)
{
    static bool held; /* prepared while the collector was running */
    if (phase == GCM_FORK_PREPARE) {
        held = gcm__gc_ready();
        if (held)
            GC_atfork_prepare();
    } else if (held) {
        if (phase == GCM_FORK_PARENT)
            GC_atfork_parent();
        else
            GC_atfork_child();
    }
}

static pthread_mutex_t init_mu = PTHREAD_MUTEX_INITIALIZER;

/* bdwgc's GC_allow_register_threads starts the parallel marker threads and
 * turns on its locking.  Both must happen before a second thread uses the
 * collector, but not at start-up: the preloaded library initializes the
 * collector inside the program's first malloc, possibly before the C
 * library has finished starting, when creating threads is not safe.  So it
 * is done here, on the first thread creation, the first registration of
 * another thread, or the first collection, whichever comes first. */
static GCM_TLS bool starting_markers;

/* The calling thread's signal mask, read and set with the system call
 * itself.  bdwgc blocks every signal while it creates its markers and
 * restores the old mask through pthread_sigmask, which never blocks glibc's
 * internal signals: on glibc's timer thread (SIGEV_THREAD timers, which
 * waits for SIGTIMER, glibc's first real-time signal, with it blocked) that
 * unblocked it, and the next expiry killed the process. */
static void raw_sigmask(int how, const sigset_t *set, sigset_t *old)
{
    syscall(SYS_rt_sigprocmask, how, set, old, (size_t)(_NSIG / 8));
}

void gcm__gc_allow_threads(void)
{
    if (__atomic_load_n(&G.markers_started, __ATOMIC_ACQUIRE) || starting_markers)
        return;
    pthread_mutex_lock(&init_mu);
    if (!G.markers_started) {
        static bool allowed;
        starting_markers = true;
        sigset_t mask;
        raw_sigmask(SIG_BLOCK, NULL, &mask);
        if (!allowed) {
            GC_allow_register_threads();
            allowed = true;
        } else {
            GC_start_mark_threads(); /* again, in a forked child */
        }
        raw_sigmask(SIG_SETMASK, &mask, NULL);
        starting_markers = false;
        __atomic_store_n(&G.markers_started, true, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&init_mu);
}

/* bdwgc's marker threads are normally told apart by their start routine
 * (thread.c), but a sanitizer's pthread_create interceptor replaces it
 * with its own on the way to ours: while this thread starts them, every
 * thread it creates is one of them. */
bool gcm__gc_starting_markers(void)
{
    return starting_markers;
}

static int kind_normal;               /* bdwgc's kind number of the objects
                                         gcm__scan_malloc makes; set once,
                                         before any is made */

void gcm__gc_init(void)
{
    if (gcm__gc_ready())
        return;
    /* Normally called once at start-up; lazily (preload fast mode), any
     * thread may get here first. */
    pthread_mutex_lock(&init_mu);
    if (G.ready) {
        pthread_mutex_unlock(&init_mu);
        return;
    }
    gcm__clock_start();
    G.procs = count_procs();
    gcm__limiter_init(&G.lim, G.procs, start_ns);
    gcm__thread_init();

    GC_set_handle_fork(-1); /* driven by gcm__gc_fork_inner, in order */
    int64_t markers = gcm__opt_int(GCM_OPT_MARKERS);
    if (markers > 0)
        GC_set_markers_count((unsigned)markers);
    GC_set_disable_automatic_collection(1);
    /* With its own trigger off, bdwgc's free-space divisor only sets how
     * much the heap grows when it runs out of blocks: heap/divisor at a
     * time.  Its default (3) grows a 48 MiB heap by 16 MiB in one step,
     * which can carry memory far past a soft limit before the next check
     * sees it; 16 keeps each step near 6%. */
    GC_set_free_space_divisor(16);
    GC_set_dont_precollect(1);
    GC_set_finalize_on_demand(1);
    GC_set_warn_proc(warn_proc);
    GC_set_abort_func(abort_proc);
    gcm__signals_choose(); /* GCMALLOC_GC_SIGNALS, before GC_init */
    GC_init();
    gcm__scan_init(); /* GCMALLOC_POINTER_ALIGN: the kind objects are of */
    kind_normal = gcm__scan_kind();
    gcm__thread_main_tls_root();
    /* From here on the program's signal masks leave bdwgc's stop-the-world
     * signals deliverable (signals.c): its handlers are installed now. */
    gcm__signals_init();
    GC_set_on_collection_event(on_event);
    gcm__thread_on_exit(fcache_drop);
    GC_set_on_heap_resize(on_heap_resize);
    bdwgc_push_other_roots = GC_get_push_other_roots();
    GC_set_push_other_roots(push_other_roots);
    sem_init(&fin_sem, 0, 0);
    GC_set_finalizer_notifier(finalizer_notify);

    gcm__pacer_goal g;
    current_goal(&g);
    update_thread_limits(g.goal, 0);
    __atomic_store_n(&G.ready, 1, __ATOMIC_RELEASE);

    /* The calling thread (normally main, from the constructor) is
     * registered by GC_init. */
    gcm__tls *t = &gcm__tls_self;
    t->flags |= GCM_T_GC_REGISTERED;
    gcm__stacks_registered(t);
    gcm__thread_attach(t);
    pthread_mutex_unlock(&init_mu);
}

bool gcm__gc_ready(void) { return __atomic_load_n(&G.ready, __ATOMIC_ACQUIRE); }

/* --- the allocation API ------------------------------------------------------- */

/* bdwgc's size for an object of n requested bytes, cached per request size
 * for small objects (the mapping is fixed once bdwgc has made it). */
#define FP_SMALL 2048
static uint32_t fp_tab[FP_SMALL + 1];

static inline size_t footprint(size_t n, void *p)
{
    if (n <= FP_SMALL) {
        uint32_t f = GCM_LOAD(&fp_tab[n]);
        if (GCM_LIKELY(f != 0))
            return f;
        f = (uint32_t)GC_size(p);
        GCM_STORE(&fp_tab[n], f);
        return f;
    }
    return GC_size(p);
}

static GCM_NOINLINE void thread_setup(gcm__tls *t)
{
    gcm__ensure_init();
    if (!gcm__gc_ready())
        gcm__gc_init(); /* lazy start (preload fast mode) */
    gcm__thread_gc_register(t);
    gcm__thread_attach(t);
}

static inline void count_alloc(gcm__tls *t, size_t fp)
{
    GCM_BUMP(&t->gc_mallocs, 1);
    GCM_BUMP(&t->gc_alloc_bytes, fp);
    t->gc_pending += (int64_t)fp;
    if (GCM_UNLIKELY(t->gc_pending >= t->gc_flush_at))
        gcm__gc_flush(t);
}

static inline void count_free(gcm__tls *t, size_t fp)
{
    GCM_BUMP(&t->gc_frees, 1);
    GCM_BUMP(&t->gc_free_bytes, fp);
    t->gc_pending -= (int64_t)fp;
}

/* `caller` is the return address into the program (GCM_PROF_CALLER() in
 * the exported function), where a sampled allocation's stack starts. */
static inline void *alloc(size_t n, bool atomic, const void *caller)
{
    gcm__tls *t = &gcm__tls_self;
    if (GCM_UNLIKELY(!(t->flags & GCM_T_GC_REGISTERED)))
        thread_setup(t);
    if (GCM_UNLIKELY(n > (size_t)PTRDIFF_MAX)) {
        errno = ENOMEM;
        return NULL;
    }
    void *p = atomic ? GC_MALLOC_ATOMIC(n) : gcm__scan_malloc(n);
    if (GCM_UNLIKELY(p == NULL)) {
        errno = ENOMEM;
        return NULL;
    }
    size_t fp = footprint(n, p);
    count_alloc(t, fp);
    if (gcm__prof_tick(t, fp))
        gcm__prof_record_alloc(p, fp, GCM_PROF_GC, NULL, caller);
    return p;
}

void *gcm_malloc(size_t n) { return alloc(n, false, GCM_PROF_CALLER()); }

void *gcm_malloc_atomic(size_t n)
{
    return alloc(n, true, GCM_PROF_CALLER());
}

void *gcm_calloc(size_t count, size_t size)
{
    size_t n;
    if (__builtin_mul_overflow(count, size, &n)) {
        errno = ENOMEM;
        return NULL;
    }
    /* bdwgc clears pointer-holding objects */
    return alloc(n, false, GCM_PROF_CALLER());
}

char *gcm_strdup(const char *s)
{
    if (s == NULL) {
        errno = EINVAL;
        return NULL;
    }
    size_t n = strlen(s) + 1;
    char *p = alloc(n, true, GCM_PROF_CALLER());
    if (p != NULL)
        memcpy(p, s, n);
    return p;
}

/* In debug mode, check that p is the start of a collected object before
 * handing it to bdwgc, which would corrupt its heap otherwise. */
static bool valid_object(void *p, const char *what, const void *caller)
{
    if (!gcm__debug_on())
        return true;
    if (GC_base(p) != p) {
        gcm__diag_misuse(caller, "%s(%p): not the start of an object from "
                         "gcm_malloc", what, p);
        return false;
    }
    return true;
}

void gcm_free(void *p)
{
    if (p == NULL)
        return;
    if (!valid_object(p, "gcm_free", __builtin_return_address(0)))
        return;
    gcm__tls *t = &gcm__tls_self;
    if (GCM_UNLIKELY(!(t->flags & GCM_T_GC_REGISTERED)))
        thread_setup(t);
    count_free(t, GC_size(p));
    gcm__prof_free(p); /* before the address can be reused */
    GC_FREE(p);
}

/* bdwgc's realloc of p, the start of a collected object, to cap >= n
 * bytes, with the accounting and the profiler's record moved along.  A
 * resized or moved object is a new allocation to the profiler, of its
 * footprint or of the requested size n (by_footprint), as the caller's
 * allocation path counts. */
static void *resize(void *p, size_t n, size_t cap, unsigned kind, bool by_footprint,
                    const void *caller)
{
    gcm__tls *t = &gcm__tls_self;
    if (GCM_UNLIKELY(!(t->flags & GCM_T_GC_REGISTERED)))
        thread_setup(t);
    size_t old = GC_size(p);
    /* A sampled object's record is taken out first: once bdwgc frees p,
     * another thread may get (and sample) the same address. */
    gcm__prof_obj po;
    bool sampled = gcm__prof_detach(p, &po);
    void *q = GC_REALLOC(p, cap);
    if (q == NULL) {
        if (sampled)
            gcm__prof_reattach(p, &po);
        errno = ENOMEM;
        return NULL;
    }
    size_t now = GC_size(q);
    if (q != p || now != old) {
        if (sampled)
            gcm__prof_release(&po);
        count_free(t, old);
        count_alloc(t, now);
        size_t rec = by_footprint ? now : n;
        if (gcm__prof_tick(t, rec))
            gcm__prof_record_alloc(q, rec, kind, NULL, caller);
    } else if (sampled) {
        gcm__prof_reattach(p, &po);
    }
    return q;
}

void *gcm_realloc(void *p, size_t n)
{
    if (p == NULL)
        return alloc(n, false, GCM_PROF_CALLER());
    if (n == 0) {
        gcm_free(p);
        return NULL;
    }
    if (!valid_object(p, "gcm_realloc", __builtin_return_address(0))) {
        errno = EINVAL;
        return NULL;
    }
    if (n > (size_t)PTRDIFF_MAX) {
        errno = ENOMEM;
        return NULL;
    }
    return resize(p, n, n, GCM_PROF_GC, true, GCM_PROF_CALLER());
}

int gcm_gc(void)
{
    gcm__tls *t = &gcm__tls_self;
    if (GCM_UNLIKELY(!(t->flags & GCM_T_GC_REGISTERED)))
        thread_setup(t);
    if (t->in_hooks)
        return EDEADLK;
    /* Fold this thread's count so the cycle's heap figures include it. */
    GCM_ADD(&G.alloc_since, t->gc_pending);
    t->gc_pending = 0;
    pthread_mutex_lock(&G.mu);
    publish_foreign_locked();
    gcm__pacer_goal g;
    current_goal(&g);
    collect_locked(REASON_FORCED, g.goal, false);
    pthread_mutex_unlock(&G.mu);
    return 0;
}

int gcm_set_gc_percent(int percent)
{
    gcm__ensure_init();
    int64_t old = gcm__opt_set_int(GCM_OPT_GOGC,
                                   percent < 0 ? GCM_OPT_OFF : (int64_t)percent);
    gcm__pacer_goal g;
    current_goal(&g);
    update_thread_limits(g.goal, GCM_LOAD(&G.live));
    return old == GCM_OPT_OFF ? -1 : (int)old;
}

int64_t gcm_set_memory_limit(int64_t bytes)
{
    gcm__ensure_init();
    int64_t old = opt_memlimit();
    if (bytes < 0)
        return old;
    gcm__opt_set_int(GCM_OPT_MEMLIMIT, bytes == INT64_MAX ? GCM_OPT_OFF : bytes);
    gcm__pacer_goal g;
    current_goal(&g);
    update_thread_limits(g.goal, GCM_LOAD(&G.live));
    return old;
}

/* --- finalizers ------------------------------------------------------------------ */

static void *GC_CALLBACK wait_for_finalizers(void *arg)
{
    (void)arg;
    while (sem_wait(&fin_sem) != 0 && errno == EINTR)
        ;
    return NULL;
}

/* Finalizers run on a thread of their own, as Go runs them on a dedicated
 * goroutine: never inside an allocation of the program's, never while a
 * lock of the program's might be held.  bdwgc queues ready finalizers and
 * calls the notifier; the thread then invokes them.
 *
 * Between batches the thread must not keep the last batch alive.  bdwgc
 * unhides an object's pointer in its finalization record when it queues
 * it, and does not free spent records; running a batch leaves pointers to
 * them in this thread's registers and in the stack below its loop.  A
 * thread that sleeps as usual is stopped by a signal at each collection
 * and scanned from inside bdwgc's suspend handler, so the kernel's signal
 * frame (the registers) and the handler's frames, which land on that stale
 * memory and leave much of it unwritten, are scanned too.  That kept the
 * records of 10 to 13 objects of the last batch, and through them the
 * objects, alive for as long as the thread slept.  So the thread clears
 * the stack below itself, then waits inside GC_do_blocking: a blocked
 * thread is not signalled, and is scanned only from where it blocked up
 * (the clearing covers the frames in which GC_do_blocking saves the
 * registers; without it one object stayed alive nearly every time). */
static void *finalizer_main(void *arg)
{
    (void)arg;
    for (;;) {
        clear_stack_below(16 * 1024);
        GC_do_blocking(wait_for_finalizers, NULL);
        GC_invoke_finalizers();
    }
    return NULL;
}

static int start_finalizer_thread(void)
{
    int expected = 0;
    if (!__atomic_compare_exchange_n(&fin_thread_state, &expected, 1, false,
                                     __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        return 0;
    pthread_t th;
    int rc = gcm__thread_spawn(&th, finalizer_main, NULL);
    if (rc != 0) {
        __atomic_store_n(&fin_thread_state, 0, __ATOMIC_RELEASE);
        return rc;
    }
    pthread_detach(th);
    if (GC_should_invoke_finalizers())
        sem_post(&fin_sem);
    return 0;
}

int gcm_set_finalizer(void *obj, gcm_finalizer_fn fn, void *arg)
{
    gcm__tls *t = &gcm__tls_self;
    if (GCM_UNLIKELY(!(t->flags & GCM_T_GC_REGISTERED)))
        thread_setup(t);
    if (obj == NULL || GC_base(obj) != obj)
        return EINVAL;
    if (fn != NULL) {
        int rc = start_finalizer_thread();
        if (rc != 0)
            return rc;
    }
    GC_register_finalizer(obj, (GC_finalization_proc)fn, arg, NULL, NULL);
    return 0;
}

/* --- what stats.c reads ---------------------------------------------------------- */

void gcm__gc_snapshot(gcm__gc_state *s)
{
    gcm__pacer_goal g;
    current_goal(&g);
    s->next_goal = g.goal;
    s->marked = GCM_LOAD(&G.marked);
    int64_t nongc = GCM_LOAD(&G.nongc);
    s->nongc = nongc > 0 ? (uint64_t)nongc : 0;
    int64_t extra = GCM_LOAD(&G.extra);
    s->extra = extra > 0 ? (uint64_t)extra : 0;
    s->gogc = opt_gogc();
    s->memlimit = opt_memlimit();
    pthread_mutex_lock(&G.mu);
    s->live_objects = G.live_objects;
    s->limiter_active = G.lim.enabled;
    s->at_cycle = G.at_cycle;
    pthread_mutex_unlock(&G.mu);
}

/* --- the malloc family's collected modes (preload.c) ------------------------------
 *
 * The preloaded library's gc and leakcheck modes hand out collected objects
 * through malloc.  Unlike gcm_malloc's callers, theirs may ask for any
 * alignment, and some of their objects must never be collected (those the
 * C library and the dynamic loader keep in places the collector cannot
 * scan); and free() receives whatever pointer malloc returned, which for an
 * over-aligned object is inside it.  So these entry points work from an
 * object's base wherever it matters. */

/* A per-thread cache of freed blocks, in front of bdwgc.  GC_free takes
 * bdwgc's global lock and clears the block; programs that free what they
 * allocate (most of them) then contend on that lock from every thread, and
 * the block they get next is a cold one.  So free() keeps small blocks of
 * the collectable kind on per-thread, per-size lists (cleared, as bdwgc
 * keeps its own free lists), and malloc() takes from them first — no lock,
 * and the memory is hot, as in glibc's tcache.  The lists are chained
 * through the blocks' first word from heads in a per-thread uncollectable
 * block, so a cached block is reachable and the collector never reclaims
 * it under us.  When a thread exits, its blocks go back to bdwgc.
 *
 * How much to keep.  Programs free in batches: a request's objects at its
 * end, sh6bench's 4,000 at a time, a whole tree of 131,072 nodes in
 * bench/trees.  Every block past the cache pays GC_free's lock and, when
 * the program allocates again, bdwgc's allocation path: with at most 256
 * blocks a size and 1 MiB a thread, 40% of leakcheck's time on
 * bench/trees went to bdwgc's lock and allocator, and sh6 ran at 3.2x
 * glibc's time (1.3x with whole batches cached; docs/performance.md).
 *
 * What a cached block costs is not resident memory (a block GC_free takes
 * back stays in bdwgc's heap too) but sharing: it serves only its thread,
 * and is live to the collector.  So the cache is bounded four ways:
 *  - in time: the first free after a collection hands what is left on the
 *    thread's lists back to bdwgc (fcache_reset) and starts anew.  A
 *    thread that stops freeing would keep its lists for good, so each
 *    collection also takes the lists of every thread that has not freed
 *    since the collection before (gcm__gc_fcache_stopped, in the thread's
 *    own stop-signal handler, where it is known not to be inside this code)
 *    and hands them back to bdwgc once the world runs again;
 *  - all threads together: at most G.fc_cap, half the room the pacer
 *    leaves before the next cycle; a thread reserves it FC_RESERVE bytes
 *    at a time, with one atomic add, and returns its reservation when its
 *    lists are reset;
 *  - one thread: FC_THREAD_MAX (8 MiB, a batch of 100,000 small blocks).
 *    With the shared cap alone, a program that freed 100 MB and then
 *    slept kept 35 MB of heap live, against 0.5 MB with the old 1 MiB
 *    cache; with this bound, 8.6 MB, and with the idle lists taken at
 *    the collections, 0.2-0.25 MB;
 *  - a thread that does not reuse: FC_SOLO.  A consumer of a
 *    producer/consumer pair only frees, and its cache only makes the
 *    others take fresh blocks (with the cap alone, xmalloc's peak resident
 *    set went from 9 to 17 MiB).  What a thread caches is either taken
 *    back (reused) or left on its lists at a reset (dropped); beyond
 *    FC_SOLO a thread must have reused at least as much as it ever
 *    dropped.  A batch freer takes back nearly all; a consumer drops all
 *    it cached at the first cycle, and from then on keeps FC_SOLO. */
#define FC_MAX 2048               /* bytes, as bdwgc sizes them          */
#define FC_CLASSES (FC_MAX / 16 + 1)
#define FC_RESERVE (64u << 10)    /* budget taken from G.fc_reserved at once */
#define FC_SOLO (1u << 20)        /* what a thread that does not reuse gets */
#define FC_THREAD_MAX (8u << 20)  /* what any one thread may keep          */

struct gcm__fcache {
    void *head[FC_CLASSES];
    uint8_t busy;                 /* the thread is changing the lists:
                                     its stop handler leaves them alone  */
    uint64_t bytes;               /* bytes on the lists                  */
    uint64_t reserved;            /* this thread's share of fc_reserved  */
    uint64_t cycle;               /* G.cycles when the lists were started */
    uint64_t reused, dropped;     /* bytes ever taken off the lists, and
                                     left on them when they were dropped */
};

/* Hands the blocks on the lists back to bdwgc and returns the thread's
 * reservation. */
static void fcache_reset(struct gcm__fcache *fc)
{
    fc->dropped += fc->bytes;
    /* Through GC_free, one by one, rather than left for the sweep: a list
     * left behind is a chain through its blocks, and one stale word
     * pointing into it (a freed object's old field; a program's freed
     * memory is full of them) would keep everything after it alive.
     * bdwgc never keeps a block alive that is on its own free lists.
     * The lock per block is paid only for what the thread did not reuse:
     * a consumer's 1 MiB, or nothing for a thread that takes its batches
     * back. */
    if (fc->bytes != 0) {
        for (size_t c = 0; c < FC_CLASSES; c++) {
            void **b = fc->head[c];
            while (b != NULL) {
                void **next = *b;
                *b = NULL;
                GC_FREE(b);
                b = next;
            }
        }
    }
    memset(fc->head, 0, sizeof fc->head);
    fc->bytes = 0;
    if (fc->reserved != 0)
        __atomic_fetch_sub(&G.fc_reserved, (int64_t)fc->reserved, __ATOMIC_RELAXED);
    fc->reserved = 0;
}

/* Around every change of a thread's lists, so that the stop handler,
 * which runs on the same thread, sees either none or all of it. */
static inline void fc_enter(struct gcm__fcache *fc)
{
    fc->busy = 1;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
}

static inline void fc_leave(struct gcm__fcache *fc)
{
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    fc->busy = 0;
}

static void fcache_drop(gcm__tls *t)
{
    struct gcm__fcache *fc = t->gc_fcache;
    if (fc == NULL)
        return;
    fc_enter(fc);
    fcache_reset(fc);
    t->gc_fcache = NULL; /* before the block goes: the handler reads it */
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    GC_free(fc);
}

/* In a forked child: the other threads' caches are gone with them; only
 * this thread's reservation is still held. */
static void fcache_fork_child(void)
{
    const struct gcm__fcache *fc = gcm__tls_self.gc_fcache;
    GCM_STORE(&G.fc_reserved, fc != NULL ? (int64_t)fc->reserved : 0);
}

/* The thread's cache, made on its first free; none past its exit
 * destructor (it still frees: glibc frees other threads' cached stacks
 * then), where nothing would drop a new one and its reservation would be
 * lost to every thread. */
static struct gcm__fcache *fcache_of(gcm__tls *t)
{
    if (GCM_LIKELY(t->gc_fcache != NULL))
        return t->gc_fcache;
    if (t->flags & GCM_T_EXITED)
        return NULL;
    t->gc_fcache = GC_malloc_uncollectable(sizeof(struct gcm__fcache));
    return t->gc_fcache;
}

/* Takes a cached block of `bytes` (as bdwgc would size it), or NULL. */
static inline void *fcache_take(gcm__tls *t, size_t bytes, size_t *fp)
{
    if (bytes > FC_MAX || t->gc_fcache == NULL)
        return NULL;
    uint32_t f = GCM_LOAD(&fp_tab[bytes]);
    if (f == 0 || f > FC_MAX)
        return NULL;
    struct gcm__fcache *fc = t->gc_fcache;
    size_t c = f / 16;
    fc_enter(fc);
    void **b = fc->head[c];
    if (b != NULL) {
        fc->head[c] = *b;
        *b = NULL; /* handed out cleared, as bdwgc's own blocks */
        fc->bytes -= f;
        fc->reused += f;
        *fp = f;
    }
    fc_leave(fc);
    return b;
}

/* Grows the thread's reservation to cover `need` bytes; false when the
 * threads together would pass the cap, when the thread would pass
 * FC_THREAD_MAX, or FC_SOLO having dropped more than it reused. */
static bool fcache_reserve(struct gcm__fcache *fc, uint64_t need)
{
    uint64_t add = (need - fc->reserved + FC_RESERVE - 1) / FC_RESERVE * FC_RESERVE;
    if (fc->reserved + add > FC_THREAD_MAX ||
        (fc->reserved + add > FC_SOLO && fc->reused < fc->dropped))
        return false;
    int64_t was = __atomic_fetch_add(&G.fc_reserved, (int64_t)add, __ATOMIC_RELAXED);
    if (was + (int64_t)add > GCM_LOAD(&G.fc_cap)) {
        __atomic_fetch_sub(&G.fc_reserved, (int64_t)add, __ATOMIC_RELAXED);
        return false;
    }
    fc->reserved += add;
    return true;
}

void gcm__gc_fcache_read(gcm__fcache_state *s)
{
    const struct gcm__fcache *fc = gcm__tls_self.gc_fcache;
    s->thread_bytes = fc != NULL ? fc->bytes : 0;
    s->reserved = GCM_LOAD(&G.fc_reserved);
    s->cap = GCM_LOAD(&G.fc_cap);
    s->solo = FC_SOLO;
    s->thread_max = FC_THREAD_MAX;
}

/* Keeps a freed block (of bdwgc's kind `kind`) for reuse; false when it
 * must go back to bdwgc. */
static inline bool fcache_put(gcm__tls *t, void *base, size_t fp, int kind)
{
    if (fp > FC_MAX)
        return false;
    struct gcm__fcache *fc = fcache_of(t);
    if (fc == NULL || kind != kind_normal)
        return false; /* uncollectable (the C library's) or pointer-free */
    uint64_t cycle = GCM_LOAD(&G.cycles);
    fc_enter(fc);
    if (GCM_UNLIKELY(fc->cycle != cycle)) {
        /* A collection since the lists were started: drop them (see
         * above).  Their blocks were counted freed when they came in. */
        fcache_reset(fc);
        fc->cycle = cycle;
    }
    bool kept = false;
    if (GCM_LIKELY(fc->bytes + fp <= fc->reserved) || fcache_reserve(fc, fc->bytes + fp)) {
        size_t c = fp / 16;
        memset(base, 0, fp);
        *(void **)base = fc->head[c];
        fc->head[c] = base;
        fc->bytes += fp;
        kept = true;
    }
    fc_leave(fc);
    return kept;
}

/* Lists taken from threads that stopped freeing (see the essay), kept
 * here, where the collector looks, from the stop that takes them to the
 * end of that cycle, when the collecting thread hands their blocks back to
 * bdwgc.
 * A slot is claimed by a stop handler (FREE -> FILLING -> FULL) and
 * emptied by the collecting thread (FULL -> EMPTYING -> FREE); bdwgc may
 * run a cycle of its own (a foreign one) that is not ours to finish, whose
 * slots wait for our next.  When all are in use, a thread keeps its lists
 * until it frees again. */
#define FC_ORPHANS 32
enum { ORPHAN_FREE, ORPHAN_FILLING, ORPHAN_FULL, ORPHAN_EMPTYING };
struct fc_orphan {
    int state;
    void *head[FC_CLASSES];
};
/* Scanned as part of this library's data, as bdwgc scans every loaded
 * object's.  Not allocated from bdwgc at start-up: a 33 KiB allocation
 * then moved its size classes (255-byte objects took 272 bytes, not 256). */
static struct fc_orphan orphans[FC_ORPHANS];

static bool orphan_claim(struct fc_orphan *o, int from, int to)
{
    return __atomic_compare_exchange_n(&o->state, &from, to, false, __ATOMIC_ACQUIRE,
                                       __ATOMIC_RELAXED);
}

/* In the stop-signal handler of every thread a collection stops (before
 * it marks): async-signal-safe, no lock, no allocation. */
void gcm__gc_fcache_stopped(void)
{
    struct gcm__fcache *fc = gcm__tls_self.gc_fcache;
    if (fc == NULL || fc->busy || fc->bytes == 0 || fc->cycle >= GCM_LOAD(&G.cycles))
        return; /* changing them, nothing kept, or freed since the last */
    for (int i = 0; i < FC_ORPHANS; i++) {
        struct fc_orphan *o = &orphans[i];
        if (!orphan_claim(o, ORPHAN_FREE, ORPHAN_FILLING))
            continue;
        for (size_t c = 0; c < FC_CLASSES; c++) {
            __atomic_store_n(&o->head[c], fc->head[c], __ATOMIC_RELAXED);
            fc->head[c] = NULL;
        }
        __atomic_store_n(&o->state, ORPHAN_FULL, __ATOMIC_RELEASE);
        fc->dropped += fc->bytes;
        fc->bytes = 0;
        if (fc->reserved != 0)
            __atomic_fetch_sub(&G.fc_reserved, (int64_t)fc->reserved, __ATOMIC_RELAXED);
        fc->reserved = 0;
        return;
    }
}

/* At the end of each of our cycles, G.mu held, outside bdwgc's lock. */
static void fcache_orphans_free(void)
{
    for (int i = 0; i < FC_ORPHANS; i++) {
        struct fc_orphan *o = &orphans[i];
        if (!orphan_claim(o, ORPHAN_FULL, ORPHAN_EMPTYING))
            continue;
        for (size_t c = 0; c < FC_CLASSES; c++) {
            void **b = __atomic_load_n(&o->head[c], __ATOMIC_RELAXED);
            __atomic_store_n(&o->head[c], NULL, __ATOMIC_RELAXED);
            while (b != NULL) {
                void **next = *b;
                *b = NULL;
                GC_FREE(b);
                b = next;
            }
        }
        __atomic_store_n(&o->state, ORPHAN_FREE, __ATOMIC_RELEASE);
    }
}

void *gcm__gc_alloc(size_t n, size_t align, size_t head, unsigned flags,
                    const void *caller, gcm__gc_obj *obj)
{
    gcm__tls *t = &gcm__tls_self;
    if (GCM_UNLIKELY(!(t->flags & GCM_T_GC_REGISTERED)))
        thread_setup(t);
    size_t extra = head + (align > 16 ? align - 1 : 0) +
                   (flags & GCM_GCA_GROW ? gcm__realloc_room(n) : 0);
    if (GCM_UNLIKELY(n > (size_t)PTRDIFF_MAX - extra)) {
        errno = ENOMEM;
        return NULL;
    }
    void *base = NULL;
    size_t fp = 0;
    /* fp is the block's true size when it came from the cache (its list
     * is its size) or from GC_size, not when from the footprint table:
     * bdwgc may round a size differently on its thread-local and global
     * paths (the first allocations of a size per thread take the global
     * one), and the table keeps the first answer.  Good enough to count,
     * not to file a block under at free. */
    bool cacheable = flags == 0 && align <= 16, exact = true;
    if (cacheable)
        base = fcache_take(t, n + extra, &fp);
    if (base == NULL) {
        if (flags & GCM_GCA_UNCOLLECTABLE)
            base = GC_malloc_uncollectable(n + extra);
        else if (flags & GCM_GCA_ATOMIC)
            base = GC_MALLOC_ATOMIC(n + extra);
        else
            base = gcm__scan_malloc(n + extra);
        if (GCM_UNLIKELY(base == NULL)) {
            errno = ENOMEM;
            return NULL;
        }
        exact = !cacheable;
        fp = exact ? GC_size(base) : footprint(n + extra, base);
    }
    count_alloc(t, fp);
    uintptr_t a = (uintptr_t)base + head;
    if (align > 16)
        a = (a + align - 1) & ~(uintptr_t)(align - 1);
    if (obj != NULL) {
        obj->base = base;
        obj->fp = exact ? fp : 0;
    }
    /* The malloc kind records the bytes the program asked for, in every
     * mode, so profiles and leak reports agree with its own arithmetic. */
    if (gcm__prof_tick(t, n))
        gcm__prof_record_alloc((void *)a, n, GCM_PROF_MALLOC | GCM_PROF_COLLECTED,
                               NULL, caller);
    return (void *)a;
}

bool gcm__gc_owns(const void *p)
{
    return gcm__gc_ready() && GC_is_heap_ptr(p);
}

size_t gcm__gc_usable(const void *p)
{
    void *base = GC_base((void *)p);
    if (base == NULL)
        return 0;
    return GC_size(base) - (size_t)((const char *)p - (const char *)base);
}

/* The end of every free: the profile, the counts, and the block to this
 * thread's cache or back to bdwgc.  kind and fp as bdwgc has them. */
static inline void free_object(void *p, void *base, size_t fp, int kind)
{
    gcm__tls *t = &gcm__tls_self;
    if (GCM_UNLIKELY(!(t->flags & GCM_T_GC_REGISTERED)))
        thread_setup(t);
    gcm__prof_free(p); /* before the address can be reused */
    count_free(t, fp);
    if (!fcache_put(t, base, fp, kind))
        GC_FREE(base);
}

void gcm__gc_free_any(void *p)
{
    void *base = GC_base(p);
    if (base == NULL)
        return;
    /* One look-up of the block's header for both its size and its kind
     * (GC_size and a second call for the kind were a quarter of a
     * free-heavy program's time in leakcheck mode). */
    size_t fp = 0;
    int kind = GC_get_kind_and_size(base, &fp);
    free_object(p, base, fp, kind);
}

/* Each of GC_base and GC_get_kind_and_size reads bdwgc's header for the
 * block, which lives apart from the block and misses the cache in a
 * free-heavy program (a third of leakcheck's time in a cfrac-like churn).
 * A caller that kept what gcm__gc_alloc told it needs neither. */
void gcm__gc_free_obj(void *p, const gcm__gc_obj *obj)
{
    int kind = kind_normal;
    size_t fp = obj->fp;
    if (GCM_UNLIKELY(fp == 0))
        kind = GC_get_kind_and_size(obj->base, &fp);
    free_object(p, obj->base, fp, kind);
}

/* realloc for objects from gcm__gc_alloc: in place through bdwgc when p is
 * an object's base (bdwgc keeps its kind, collectable or not), else a new
 * object of the same kind and a copy.
 *
 * bdwgc grows an object in place only within its block (sizes rounded to
 * 16 bytes, or to 4 KiB above 2 KiB) and otherwise copies it whole, so a
 * buffer grown by realloc in small steps was copied every 4 KiB: 9x
 * glibc's time growing buffers to 1 MiB.  An object that must move to
 * grow by less than a quarter gets a quarter more room (as tcmalloc's
 * realloc does), so it moves O(log n) times. */
void *gcm__gc_realloc_any(void *p, size_t n, const void *caller)
{
    void *base = GC_base(p);
    if (base == p && n <= (size_t)PTRDIFF_MAX) {
        size_t old = GC_size(p), cap = n;
        /* Room in the block (bdwgc's own rule: no more than half of it
         * left empty): p as it is, its record kept.  Not through
         * GC_REALLOC, which clears the rest of the block at every call so
         * that bytes a shrink dropped hold no stale pointers: with the room
         * given below, that made each step of a growing buffer clear up to
         * a quarter of it (gc mode 12x mimalloc's time in peer_alloc
         * realloc).  malloc's realloc promises nothing past n; what a shrink
         * in place leaves there stays until the object is freed or moves,
         * keeping at worst what it points to alive that long. */
        if (gcm__realloc_in_place(n, old))
            return p;
        if (gcm__realloc_small_step(n, old) &&
            n <= (size_t)PTRDIFF_MAX - gcm__realloc_room(n))
            cap = n + gcm__realloc_room(n);
        return resize(p, n, cap, GCM_PROF_MALLOC | GCM_PROF_COLLECTED, false, caller);
    }
    /* An over-aligned object (p inside it): a fresh one of the same kind.
     * realloc promises max_align_t alignment only, as glibc's does. */
    size_t have = gcm__gc_usable(p);
    if (n > (size_t)PTRDIFF_MAX) {
        errno = ENOMEM;
        return NULL;
    }
    void *q = GC_generic_or_special_malloc(n, GC_get_kind_and_size(base, NULL));
    if (q == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    gcm__tls *t = &gcm__tls_self;
    count_alloc(t, GC_size(q));
    if (gcm__prof_tick(t, n))
        gcm__prof_record_alloc(q, n, GCM_PROF_MALLOC | GCM_PROF_COLLECTED, NULL,
                               caller);
    memcpy(q, p, have < n ? have : n);
    gcm__gc_free_any(p);
    return q;
}
