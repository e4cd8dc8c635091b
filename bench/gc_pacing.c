/*
 * gc_pacing.c — does the collector follow GOGC and the memory limit?
 *
 * Each scenario runs in a fresh child process (a fresh heap) and prints one
 * row of a markdown table:
 *
 *   steady    live set L, 1 GiB of small-object churn, at a given GOGC:
 *             collections vs Go's ideal = allocated / (L × GOGC/100), and
 *             the heap at each cycle's start against that cycle's goal.
 *   spike     the same after a 256 MiB live spike is dropped (the case where
 *             bdwgc's own trigger stops collecting: 12 cycles where GOGC=100
 *             calls for ~99).  Go's ideal here is one cycle at the goal the
 *             spike set, then one per L bytes.
 *   threads   two threads share the churn.
 *   limit     GOGC=off and a 64 MiB limit with an 11 MiB live set: peak
 *             memory held must stay within limit × 1.1.
 *   below     a 96 MiB live set under a 64 MiB limit: the limit cannot be
 *             met; the limiter must keep the collector near half the CPU.
 *   limitfrag the limit run after a fragmenting spike: 256 MiB of small
 *             objects of which one in 16 stays live for a while, so the
 *             heap holds far more than the limit in blocks it cannot
 *             return; then 2 GiB of churn.  Memory must come back under
 *             the limit as the survivors die, and the collector's CPU
 *             share over the run must stay near the limiter's half.
 *
 * Usage: gc_pacing [all | steady GOGC | spike | threads | limit | below |
 *                   limitfrag]
 * Sizes can be scaled down with GCM_PACING_SCALE=0.25 for a quick run.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <gcmalloc.h>

#include "internal.h"

#define MiB ((uint64_t)1 << 20)
#define GiB ((uint64_t)1 << 30)

static double scale = 1.0;

/* Per-cycle observations, from a "GC cycle finished" hook. */
static struct {
    uint64_t cycles;          /* paced (non-forced) cycles */
    double worst_ratio;       /* max heap0 / goal */
    uint64_t worst_heap0, worst_goal;
    uint64_t live_sum, live_n;
    uint64_t max_heap0;
    uint64_t pause_max_ns, pause_sum_ns;
    int64_t gc_cpu_ns;        /* collector CPU time, all cycles */
} obs;

static int track = 1;

static void on_cycle(const gcm__cycle *c, void *arg)
{
    (void)arg;
    if (c->forced || !track)
        return;
    obs.cycles++;
    obs.gc_cpu_ns += c->gc_cpu_ns;
    double r = c->goal ? (double)c->heap0 / (double)c->goal : 0;
    if (r > obs.worst_ratio) {
        obs.worst_ratio = r;
        obs.worst_heap0 = c->heap0;
        obs.worst_goal = c->goal;
    }
    if (c->heap0 > obs.max_heap0)
        obs.max_heap0 = c->heap0;
    obs.live_sum += c->heap2;
    obs.live_n++;
    obs.pause_sum_ns += (uint64_t)c->pause_ns;
    if ((uint64_t)c->pause_ns > obs.pause_max_ns)
        obs.pause_max_ns = (uint64_t)c->pause_ns;
}

static struct gcm_memstats stats(void)
{
    struct gcm_memstats m;
    gcm_read_memstats(&m);
    return m;
}

static uint64_t held(const struct gcm_memstats *m)
{
    return m->sys - m->heap_released;
}

/* The live set: `n` slots pointing at small objects. */
static void **live;
static size_t nlive;

static void make_live(uint64_t bytes)
{
    nlive = bytes / 64;
    live = gcm_malloc(nlive * sizeof(void *));
    for (size_t i = 0; i < nlive; i++)
        live[i] = gcm_malloc(48);
}

static uint64_t rng = 88172645463325252ULL;
static inline uint64_t xorshift(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Allocates `bytes` of small objects (16–128 B requested); every 8th
 * replaces a random live slot, so the live set keeps its size while its
 * members turn over, as in a server's session cache. */
static void churn(uint64_t bytes, uint64_t *seed, uint64_t *peak_held)
{
    uint64_t done = 0, next_sample = 0;
    while (done < bytes) {
        uint64_t r = xorshift(seed);
        size_t sz = 16 + (r & 0x70);
        void *p = gcm_malloc(sz);
        if ((r >> 8 & 7) == 0)
            __atomic_store_n(&live[(r >> 16) % nlive], p, __ATOMIC_RELAXED);
        done += sz;
        if (peak_held != NULL && done >= next_sample) {
            struct gcm_memstats m = stats();
            if (held(&m) > *peak_held)
                *peak_held = held(&m);
            next_sample = done + 4 * MiB;
        }
    }
}

static double secs(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static double peak_rss_mib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024.0;
}

static void row(const char *name, int gogc, double total, double live_b,
                double ideal, const char *extra)
{
    double got = (double)obs.cycles;
    char gs[16], is[16], rs[16];
    snprintf(gs, sizeof gs, gogc < 0 ? "off" : "%d", gogc);
    snprintf(is, sizeof is, ideal > 0 ? "%.1f" : "n/a", ideal);
    snprintf(rs, sizeof rs, ideal > 0 ? "%.2f" : "n/a", got / ideal);
    printf("| %-8s | %5s | %6.1f | %7.0f | %6.0f | %6s | %5s | %5.3f | %6.1f | %s |\n",
           name, gs, live_b / MiB, total / MiB, got, is, rs, obs.worst_ratio,
           (double)obs.max_heap0 / MiB, extra);
    fflush(stdout);
}

static double avg_live(void)
{
    return obs.live_n ? (double)obs.live_sum / (double)obs.live_n : 0;
}

static void scenario_steady(int gogc)
{
    gcm_set_gc_percent(gogc);
    make_live((uint64_t)(11 * MiB * scale));
    gcm_gc();
    struct gcm_memstats a = stats();
    uint64_t seed = rng;
    churn((uint64_t)(GiB * scale), &seed, NULL);
    struct gcm_memstats b = stats();
    double total = (double)(b.total_alloc - a.total_alloc);
    double L = avg_live();
    char extra[128];
    snprintf(extra, sizeof extra, "pause max %.2f ms, RSS %.0f MiB",
             obs.pause_max_ns / 1e6, peak_rss_mib());
    char name[32];
    snprintf(name, sizeof name, "steady");
    row(name, gogc, total, L, total / (L * gogc / 100.0), extra);
}

static void **volatile spike;

static __attribute__((noinline)) void make_spike(size_t n)
{
    spike = gcm_malloc(n * sizeof(void *));
    for (size_t i = 0; i < n; i++)
        spike[i] = gcm_malloc_atomic(4000);
}

static void scenario_spike(void)
{
    gcm_set_gc_percent(100);
    make_live((uint64_t)(11 * MiB * scale));
    gcm_gc();
    /* A burst: 256 MiB held for a moment (a big request, a cache fill).
     * Only a global points at it, so dropping it is certain; a local could
     * linger in a stack slot and keep it alive (the collector is
     * conservative). */
    make_spike((size_t)(256 * MiB * scale) / 4096);
    gcm_gc(); /* the spike is live at a cycle: the next goal is sized on it */
    spike = NULL;
    memset(&obs, 0, sizeof obs);
    struct gcm_memstats a = stats();
    uint64_t seed = rng;
    churn((uint64_t)(GiB * scale), &seed, NULL);
    struct gcm_memstats b = stats();
    double total = (double)(b.total_alloc - a.total_alloc);
    /* Go's ideal: the first cycle comes when the heap reaches the goal the
     * spike set; from then on one cycle per L × GOGC/100 bytes. */
    double first = (double)a.next_gc - (double)a.heap_alloc;
    double L = (double)b.heap_live;
    double ideal = 1 + (total - first) / L;
    char extra[160];
    snprintf(extra, sizeof extra, "first goal after spike %.0f MiB, RSS %.0f MiB",
             a.next_gc / (double)MiB, peak_rss_mib());
    row("spike", 100, total, L, ideal, extra);
}

struct worker {
    uint64_t bytes, seed;
};

static void *thread_churn(void *p)
{
    struct worker *w = p;
    churn(w->bytes, &w->seed, NULL);
    return NULL;
}

static void scenario_threads(void)
{
    gcm_set_gc_percent(100);
    make_live((uint64_t)(11 * MiB * scale));
    gcm_gc();
    struct gcm_memstats a = stats();
    pthread_t th[2];
    struct worker w[2] = {{(uint64_t)(GiB * scale) / 2, rng},
                          {(uint64_t)(GiB * scale) / 2, rng * 31 + 7}};
    for (int i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, thread_churn, &w[i]);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    struct gcm_memstats b = stats();
    double total = (double)(b.total_alloc - a.total_alloc);
    double L = avg_live();
    char extra[128];
    snprintf(extra, sizeof extra, "2 threads, RSS %.0f MiB", peak_rss_mib());
    row("threads", 100, total, L, total / L, extra);
}

static void scenario_limit(void)
{
    const uint64_t limit = (uint64_t)(64 * MiB * (scale < 1 ? 1 : scale));
    gcm_set_gc_percent(-1);
    gcm_set_memory_limit((int64_t)limit);
    make_live((uint64_t)(11 * MiB * scale));
    gcm_gc();
    struct gcm_memstats a = stats();
    uint64_t seed = rng, peak = 0;
    churn((uint64_t)(GiB * scale), &seed, &peak);
    struct gcm_memstats b = stats();
    double total = (double)(b.total_alloc - a.total_alloc);
    double L = avg_live();
    /* Go's ideal under a limit: one cycle per (limit − overhead − live). */
    char extra[200];
    snprintf(extra, sizeof extra,
             "GOGC=off, limit %.0f MiB: peak held %.1f MiB = %.3f× limit, "
             "RSS %.0f MiB, GC CPU %.1f%%",
             limit / (double)MiB, peak / (double)MiB, (double)peak / limit,
             peak_rss_mib(), 100 * b.gc_cpu_fraction);
    /* Go's ideal under a binding limit: one cycle per (limit − 1 MiB
     * headroom − live) bytes; the collector's fragmentation, which also
     * counts against the limit, makes the real runway somewhat shorter. */
    double growth = (double)limit - 1.0 * MiB - L;
    row("limit", -1, total, L, total / growth, extra);
}

static void scenario_below(void)
{
    const uint64_t limit = (uint64_t)(64 * MiB * (scale < 1 ? 1 : scale));
    gcm_set_gc_percent(100);
    gcm_set_memory_limit((int64_t)limit);
    make_live((uint64_t)(96 * MiB * (scale < 1 ? 1 : scale)));
    gcm_gc();
    struct gcm_memstats a = stats();
    double t0 = secs();
    uint64_t seed = rng;
    churn((uint64_t)(GiB * scale), &seed, NULL);
    double dt = secs() - t0;
    struct gcm_memstats b = stats();
    double total = (double)(b.total_alloc - a.total_alloc);
    double L = avg_live();
    char extra[200];
    snprintf(extra, sizeof extra,
             "limit %.0f MiB below live: %.2f s, GC CPU %.1f%% (limiter %s), "
             "RSS %.0f MiB",
             limit / (double)MiB, dt, 100 * b.gc_cpu_fraction,
             b.limiter_active ? "holding" : "idle", peak_rss_mib());
    /* No ideal count: the limit cannot be met, and what matters is that
     * the limiter keeps the collector's share of the CPU near half. */
    (void)L;
    row("below", 100, total, (double)b.heap_live, 0, extra);
}

static void scenario_limitfrag(void)
{
    const uint64_t limit = (uint64_t)(64 * MiB * (scale < 1 ? 1 : scale));
    gcm_set_gc_percent(-1);
    make_live((uint64_t)(11 * MiB * scale));
    gcm_gc();
    /* The spike, before the limit is set (a limit lowered at run time, or
     * a heap that grew while the collector was off): small objects, one in
     * 16 kept in `spike`, so every block holds survivors and none can be
     * returned until they die. */
    size_t n = (size_t)(256 * MiB * scale) / 64;
    spike = gcm_malloc(n / 16 * sizeof(void *));
    for (size_t i = 0; i < n; i++) {
        void *p = gcm_malloc(64);
        if (i % 16 == 0)
            spike[i / 16] = p;
    }
    gcm_gc();
    struct gcm_memstats s = stats();
    gcm_set_memory_limit((int64_t)limit);
    /* The survivors die one by one as the churn goes on. */
    size_t nsurv = n / 16, killed = 0;
    memset(&obs, 0, sizeof obs);
    struct gcm_memstats a = stats();
    double t0 = secs();
    uint64_t seed = rng, peak = 0;
    for (int step = 0; step < 64; step++) {
        churn((uint64_t)(2 * GiB * scale) / 64, &seed, &peak);
        size_t upto = nsurv * (size_t)(step + 1) / 32;
        for (; killed < upto && killed < nsurv; killed++)
            spike[killed] = NULL;
    }
    spike = NULL;
    double dt = secs() - t0;
    struct gcm_memstats b = stats();
    double total = (double)(b.total_alloc - a.total_alloc);
    double L = avg_live();
    int procs = (int)sysconf(_SC_NPROCESSORS_ONLN);
    char extra[240];
    snprintf(extra, sizeof extra,
             "after a spike to %.0f MiB held: held %.1f MiB at the end "
             "(%.3f× limit), GC CPU %.1f%% over the churn (%.2f s)",
             held(&s) / (double)MiB, held(&b) / (double)MiB,
             (double)held(&b) / limit,
             100 * (double)obs.gc_cpu_ns / (dt * 1e9 * (procs > 0 ? procs : 1)), dt);
    double growth = (double)limit - 1.0 * MiB - L;
    (void)a;
    row("limitfrag", -1, total, L, total / growth, extra);
}

static void run_child(const char *what, int arg)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        gcm__gc_on_cycle(on_cycle, NULL);
        if (strcmp(what, "steady") == 0)
            scenario_steady(arg);
        else if (strcmp(what, "spike") == 0)
            scenario_spike();
        else if (strcmp(what, "threads") == 0)
            scenario_threads();
        else if (strcmp(what, "limit") == 0)
            scenario_limit();
        else if (strcmp(what, "below") == 0)
            scenario_below();
        else if (strcmp(what, "limitfrag") == 0)
            scenario_limitfrag();
        _exit(0);
    }
    int st;
    waitpid(pid, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        printf("| %s | scenario failed (status %d) |\n", what, st);
}

int main(int argc, char **argv)
{
    const char *s = getenv("GCM_PACING_SCALE");
    if (s != NULL && atof(s) > 0)
        scale = atof(s);
    gcm_init();
    printf("| scenario | GOGC | live MiB | churn MiB | cycles | ideal | ratio "
           "| max heap/goal | max heap MiB | notes |\n");
    printf("|---|---|---|---|---|---|---|---|---|---|\n");
    if (argc < 2 || strcmp(argv[1], "all") == 0) {
        int gogcs[] = {50, 100, 200, 400};
        for (int i = 0; i < 4; i++)
            run_child("steady", gogcs[i]);
        run_child("spike", 0);
        run_child("threads", 0);
        run_child("limit", 0);
        run_child("below", 0);
        run_child("limitfrag", 0);
        return 0;
    }
    run_child(argv[1], argc > 2 ? atoi(argv[2]) : 100);
    return 0;
}
