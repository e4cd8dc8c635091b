/*
 * test_pacer.c — the pacer as Go tests its own: table-driven simulations.
 *
 * A simulated program allocates in 64 KiB steps at some rate while its live
 * heap follows a schedule.  Whenever the pacer says collect, a stop-the-world
 * collection costs a fixed time plus time per live byte, the heap drops to
 * the live heap, and the pacer computes the next goal.  Each scenario checks
 * the number of collections against Go's ideal (bytes allocated / the growth
 * GOGC allows), the heap at each collection against its goal, and, where a
 * memory limit is set, the peak against the limit and the collector's CPU
 * share against the limiter's 50%.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "internal.h"

#define MiB ((uint64_t)1 << 20)
#define GiB ((uint64_t)1 << 30)
#define STEP (64 * 1024)

typedef struct scenario {
    const char *name;
    int64_t gogc;           /* -1 = off */
    int64_t memlimit;       /* INT64_MAX = none */
    uint64_t total;         /* bytes allocated over the run */
    uint64_t live;          /* live heap (base) */
    uint64_t live_alt;      /* if non-zero, live alternates live/live_alt per cycle */
    uint64_t overhead;      /* non-heap memory counted against the limit */
    double rate1, rate2;    /* bytes per ns before/after half way */
    double ns_per_live_byte;/* mark cost */
    /* expectations */
    double ideal_growth;    /* bytes allowed between cycles for the ideal count; 0 = skip */
    double count_tol;       /* relative tolerance on the count */
    int64_t max_cycles;     /* -1 = no bound */
    double max_gc_cpu;      /* upper bound on GC CPU fraction; 0 = skip */
    double min_gc_cpu;      /* lower bound; 0 = skip */
} scenario;

typedef struct result {
    int64_t cycles;
    double worst_over_goal; /* max heap/goal at a collection */
    uint64_t peak;          /* max heap + overhead */
    double gc_cpu;          /* gc time / total time */
} result;

static result simulate(const scenario *s)
{
    result r = {0};
    gcm__limiter lim;
    gcm__limiter_init(&lim, 2, 0);
    gcm__pacer_input in = {.gogc = s->gogc, .memlimit = s->memlimit,
                           .live = s->live, .overhead = s->overhead};
    gcm__pacer_goal g;
    gcm__pacer_compute(&in, &g);
    uint64_t heap = s->live, allocated = 0;
    double now = 0, gc_time = 0;
    while (allocated < s->total) {
        double rate = allocated < s->total / 2 ? s->rate1 : s->rate2;
        heap += STEP;
        allocated += STEP;
        now += STEP / rate;
        if (heap + s->overhead > r.peak)
            r.peak = heap + s->overhead;
        gcm__limiter_update(&lim, (int64_t)now, 0);
        if (!gcm__pacer_should_collect(&g, heap, &lim))
            continue;
        double ratio = (double)heap / (double)g.goal;
        if (ratio > r.worst_over_goal)
            r.worst_over_goal = ratio;
        r.cycles++;
        uint64_t live = s->live;
        if (s->live_alt != 0 && (r.cycles & 1))
            live = s->live_alt;
        double cost = 50000 + live * s->ns_per_live_byte;
        now += cost;
        gc_time += cost;
        gcm__limiter_update(&lim, (int64_t)now, (int64_t)cost);
        heap = live;
        in.live = live;
        gcm__pacer_compute(&in, &g);
    }
    r.gc_cpu = gc_time / now;
    return r;
}

static void run(const scenario *s)
{
    result r = simulate(s);
    printf("  %-28s cycles=%-6lld worst heap/goal=%.3f peak=%.1fMiB gc_cpu=%.1f%%\n",
           s->name, (long long)r.cycles, r.worst_over_goal,
           (double)r.peak / MiB, 100 * r.gc_cpu);
    if (s->ideal_growth > 0) {
        double ideal = (double)s->total / s->ideal_growth;
        double err = fabs((double)r.cycles - ideal) / ideal;
        /* Cycles are whole: allow one cycle when the ideal is small. */
        if (err > s->count_tol && fabs((double)r.cycles - ideal) >= 1.0)
            fail_msg("%s: %lld cycles, ideal %.1f (off by %.1f%%)", s->name,
                     (long long)r.cycles, ideal, 100 * err);
    }
    if (s->max_cycles >= 0 && r.cycles > s->max_cycles)
        fail_msg("%s: %lld cycles, at most %lld expected", s->name,
                 (long long)r.cycles, (long long)s->max_cycles);
    /* The heap never overshoots its goal by more than one allocation step
     * (ignoring a limit below the live heap, where goal = live). */
    if (r.cycles > 0 && r.worst_over_goal > 1.0 + (double)STEP / (4 * MiB) + 1e-9 &&
        s->max_gc_cpu == 0)
        fail_msg("%s: heap reached %.3f× its goal", s->name, r.worst_over_goal);
    if (s->memlimit != INT64_MAX && s->max_gc_cpu == 0 &&
        r.peak > (uint64_t)s->memlimit)
        fail_msg("%s: peak %.1f MiB above the limit %.1f MiB", s->name,
                 (double)r.peak / MiB, (double)s->memlimit / MiB);
    if (s->max_gc_cpu > 0 && r.gc_cpu > s->max_gc_cpu)
        fail_msg("%s: GC took %.1f%% of CPU, limiter bound %.0f%%", s->name,
                 100 * r.gc_cpu, 100 * s->max_gc_cpu);
    if (s->min_gc_cpu > 0 && r.gc_cpu < s->min_gc_cpu)
        fail_msg("%s: GC took only %.1f%% of CPU", s->name, 100 * r.gc_cpu);
}

static void test_simulations(void **state)
{
    (void)state;
    const uint64_t L = 11 * MiB;
    const scenario table[] = {
        /* Steady state at the GOGC values the collector issue measures. */
        {"Steady GOGC=50", 50, INT64_MAX, GiB, L, 0, 0, 1, 1, 0.5, L * 0.5, 0.02, -1, 0, 0},
        {"Steady GOGC=100", 100, INT64_MAX, GiB, L, 0, 0, 1, 1, 0.5, L * 1.0, 0.02, -1, 0, 0},
        {"Steady GOGC=200", 200, INT64_MAX, GiB, L, 0, 0, 1, 1, 0.5, L * 2.0, 0.03, -1, 0, 0},
        {"Steady GOGC=400", 400, INT64_MAX, GiB, L, 0, 0, 1, 1, 0.5, L * 4.0, 0.05, -1, 0, 0},
        /* The count depends on bytes, not on how fast they come. */
        {"StepAlloc x8", 100, INT64_MAX, GiB, L, 0, 0, 0.5, 4, 0.5, L * 1.0, 0.02, -1, 0, 0},
        /* Tiny live heap: the 4 MiB × GOGC/100 floor sets the goal. */
        {"MinHeap", 100, INT64_MAX, GiB, 100 * 1024, 0, 0, 1, 1, 0.5,
         4.0 * MiB - 100 * 1024, 0.02, -1, 0, 0},
        /* High GOGC: few cycles, floor 4 MiB × 100. */
        {"HighGOGC=10000", 10000, INT64_MAX, 4 * GiB, L, 0, 0, 1, 1, 0.5,
         L * 100.0, 0.1, -1, 0, 0},
        /* Oscillating live heap: each goal follows the last live heap. */
        {"OscAlloc 5..40MiB", 100, INT64_MAX, GiB, 5 * MiB, 40 * MiB, 0, 1, 1, 0.5,
         22.5 * MiB, 0.05, -1, 0, 0},
        /* GOGC=off and no limit: never. */
        {"GOGC=off", -1, INT64_MAX, GiB, L, 0, 0, 1, 1, 0.5, 0, 0, 0, 0, 0},
        /* A limit that binds before GOGC's goal: growth = limit - overhead
         * - headroom - live = 80 - 5 - 1 - 50 = 24 MiB per cycle. */
        {"Limit binds", 100, 80 * MiB, GiB, 50 * MiB, 0, 5 * MiB, 1, 1, 0.5,
         24.0 * MiB, 0.03, -1, 0, 0},
        /* GOGC=off with a limit: collect only near the limit. */
        {"GOGC=off + limit", -1, 64 * MiB, GiB, L, 0, 2 * MiB, 1, 1, 0.5,
         (64.0 - 2 - 1) * MiB - L, 0.03, -1, 0, 0},
        /* A limit the live heap alone exceeds: without the limiter this
         * collects on every step; with it GC stays near half the CPU once
         * the bucket (one CPU-second per processor) has filled, so the run
         * is long enough for that first second not to dominate. */
        {"Limit below live", 100, 64 * MiB, 16 * GiB, 100 * MiB, 0, 0, 1, 1, 0.5,
         0, 0, -1, 0.56, 0.3},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        run(&table[i]);
}

static void test_goal_formula(void **state)
{
    (void)state;
    gcm__pacer_goal g;
    gcm__pacer_input in = {.gogc = 100, .memlimit = INT64_MAX, .live = 10 * MiB};
    gcm__pacer_compute(&in, &g);
    assert_int_equal(g.goal, 20 * MiB);
    assert_false(g.limit_binds);
    in.gogc = 50;
    gcm__pacer_compute(&in, &g);
    assert_int_equal(g.goal, 15 * MiB);
    in.live = 1 * MiB; /* floor: 4 MiB × 0.5 */
    gcm__pacer_compute(&in, &g);
    assert_int_equal(g.goal, 2 * MiB);
    in.gogc = 0; /* GOGC=0: collect as soon as anything is allocated */
    gcm__pacer_compute(&in, &g);
    assert_int_equal(g.goal, 1 * MiB);
    in.gogc = -1;
    gcm__pacer_compute(&in, &g);
    assert_int_equal(g.goal, 0);
    in.memlimit = 100 * MiB;
    in.overhead = 9 * MiB;
    gcm__pacer_compute(&in, &g);
    assert_int_equal(g.goal, 90 * MiB);
    assert_true(g.limit_binds);
    in.live = 95 * MiB; /* never below live */
    gcm__pacer_compute(&in, &g);
    assert_int_equal(g.goal, 95 * MiB);
    in.memlimit = 0; /* a zero limit: goal = live, still not 0 ("never") */
    gcm__pacer_compute(&in, &g);
    assert_int_equal(g.goal, 95 * MiB);
    /* Saturation instead of overflow. */
    in.gogc = INT64_MAX;
    in.memlimit = INT64_MAX;
    in.live = UINT64_MAX / 2;
    gcm__pacer_compute(&in, &g);
    assert_int_equal(g.goal, UINT64_MAX);
    in.overhead = UINT64_MAX;
    in.memlimit = 1000;
    in.live = 10;
    gcm__pacer_compute(&in, &g);
    assert_int_equal(g.goal, 10);
}

static void test_limiter(void **state)
{
    (void)state;
    gcm__limiter l;
    gcm__limiter_init(&l, 2, 0);
    /* 100% GC for 0.4 s: fill 2 × 0.4 = 0.8 of the 2 s bucket. */
    gcm__limiter_update(&l, 400000000, 400000000);
    assert_false(l.enabled);
    assert_int_equal(l.fill_ns, 800000000);
    /* 100% more for 0.7 s: full. */
    gcm__limiter_update(&l, 1100000000, 700000000);
    assert_true(l.enabled);
    assert_int_equal(l.fill_ns, l.cap_ns);
    assert_true(l.overflow_ns > 0);
    gcm__pacer_goal g = {.goal = 10, .gogc_goal = 100, .limit_goal = 10, .limit_binds = true};
    assert_false(gcm__pacer_should_collect(&g, 50, &l)); /* held back */
    assert_true(gcm__pacer_should_collect(&g, 100, &l)); /* GOGC still rules */
    /* Exactly 50% GC keeps the level; mutator time drains it. */
    gcm__limiter_update(&l, 1300000000, 100000000);
    assert_true(l.enabled);
    gcm__limiter_update(&l, 1400000000, 0);
    assert_false(l.enabled);
    assert_int_equal(l.fill_ns, l.cap_ns - 200000000);
    assert_true(gcm__pacer_should_collect(&g, 50, &l));
    /* Time going backwards changes nothing. */
    int64_t before = l.fill_ns;
    gcm__limiter_update(&l, 0, 0);
    assert_int_equal(l.fill_ns, before);
    /* Draining never goes below empty. */
    gcm__limiter_update(&l, 100000000000LL, 0);
    assert_int_equal(l.fill_ns, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_goal_formula),
        cmocka_unit_test(test_limiter),
        cmocka_unit_test(test_simulations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
