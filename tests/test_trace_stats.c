/*
 * test_trace_stats.c — the gctrace analyzer's arithmetic
 * (tools/trace_stats.c): percentiles, the least-squares trend, each
 * verdict on a series built to deserve it, the stop-the-world rules, and
 * the automatic choice between them — checked against lines printed by
 * gcmalloc's own formatter (src/gctrace.c) with known pauses, and against
 * the committed real logs of both producers.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "internal.h"
#include "test_rng.h"
#include "trace.h"

#define DATA GCM_SOURCE_DIR "/tests/data/"

static void near(double got, double want, double tol)
{
    if (!(fabs(got - want) <= tol))
        fail_msg("got %.12g, want %.12g (±%g)", got, want, tol);
}

static void test_dist(void **state)
{
    (void)state;
    double v[100];
    for (int i = 0; i < 100; i++)
        v[i] = 100 - i; /* unsorted on purpose */
    gct_dist d;
    gct_dist_of(v, 100, &d);
    assert_int_equal(d.n, 100);
    near(d.min, 1, 0);
    near(d.max, 100, 0);
    near(d.mean, 50.5, 1e-12);
    near(d.p50, 50, 0);
    near(d.p90, 90, 0);
    near(d.p99, 99, 0);

    double w[] = {3, 1, 2};
    gct_dist_of(w, 3, &d);
    near(d.p50, 2, 0); /* rank ceil(1.5) = 2 */
    near(d.p90, 3, 0);
    near(d.p99, 3, 0);

    double one[] = {7};
    gct_dist_of(one, 1, &d);
    near(d.p50, 7, 0);
    near(d.max, 7, 0);

    gct_dist_of(NULL, 0, &d);
    assert_int_equal(d.n, 0);
    near(d.max, 0, 0);
}

static void test_fit(void **state)
{
    (void)state;
    double x[] = {0, 1, 2, 3, 4}, y[] = {1, 3, 5, 7, 9};
    gct_fit f;
    gct_fit_line(x, y, 5, &f);
    near(f.slope, 2, 1e-12);
    near(f.intercept, 1, 1e-12);
    near(f.r2, 1, 1e-12);
    double flat[] = {4, 4, 4, 4, 4};
    gct_fit_line(x, flat, 5, &f);
    near(f.slope, 0, 0);
    near(f.intercept, 4, 0);
    near(f.r2, 0, 0);
    double same_x[] = {1, 1, 1};
    gct_fit_line(same_x, y, 3, &f);
    near(f.slope, 0, 0);
    near(f.r2, 0, 0);
    /* y = x² on symmetric x: no linear trend at all */
    double sx[] = {-2, -1, 0, 1, 2}, sq[] = {4, 1, 0, 1, 4};
    gct_fit_line(sx, sq, 5, &f);
    near(f.slope, 0, 1e-12);
    near(f.r2, 0, 1e-12);
}

/* A run of n cycles one second apart with H2 = live(i); goals 2 × H2. */
static gct_cycle *series(size_t n, double (*live)(size_t i, size_t n))
{
    gct_cycle *c = calloc(n, sizeof *c);
    assert_non_null(c);
    for (size_t i = 0; i < n; i++) {
        c[i].n = i + 1;
        c[i].t_s = (double)i;
        c[i].nphases = 3;
        c[i].clock_ms[0] = c[i].clock_ms[2] = 0.01;
        c[i].clock_ms[1] = 1;
        c[i].procs = 4;
        c[i].heap2_mb = (uint64_t)live(i, n);
        c[i].goal_mb = 2 * c[i].heap2_mb + 4;
        c[i].heap0_mb = c[i].heap1_mb = c[i].goal_mb;
    }
    return c;
}

static double l_leak(size_t i, size_t n) { (void)n; return 100 + 0.5 * (double)i; }
static double l_fast(size_t i, size_t n) { (void)n; return 10 + 5 * (double)i; }
static double l_flat(size_t i, size_t n) { (void)n; return 100 + (double)(i % 2); }
static double l_small(size_t i, size_t n) { (void)n; return 100 + (double)i / 100; }
static double l_warmup(size_t i, size_t n)
{
    return i < n / 5 ? 20 + 400 * (double)i / (double)n : 100;
}
/* Upward drift under swings three times its size. */
static double l_noise(size_t i, size_t n)
{
    (void)n;
    static const double wild[] = {60, 140, 90, 180, 50, 120, 70, 160, 100};
    return wild[(i * 7) % 9] + 0.5 * (double)i;
}
static double l_shrink(size_t i, size_t n) { return 200 - (double)i * 100 / (double)n; }

static gct_verdict verdict_of(size_t n, double (*live)(size_t, size_t))
{
    gct_cycle *c = series(n, live);
    gct_summary s;
    assert_int_equal(gct_summarize(c, n, GCT_STW_AUTO, &s), 0);
    free(c);
    return s.verdict;
}

static void test_verdicts(void **state)
{
    (void)state;
    assert_int_equal(verdict_of(120, l_leak), GCT_VERDICT_LEAK);
    assert_int_equal(verdict_of(120, l_flat), GCT_VERDICT_STABLE);
    assert_int_equal(verdict_of(120, l_small), GCT_VERDICT_STABLE); /* 1.2 MiB */
    assert_int_equal(verdict_of(120, l_warmup), GCT_VERDICT_LEVELLED);
    assert_int_equal(verdict_of(120, l_noise), GCT_VERDICT_UNEVEN);
    assert_int_equal(verdict_of(120, l_shrink), GCT_VERDICT_SHRINKS);
    assert_int_equal(verdict_of(GCT_TREND_MIN_CYCLES - 1, l_fast), GCT_VERDICT_TOO_FEW);
    assert_int_equal(verdict_of(GCT_TREND_MIN_CYCLES, l_fast), GCT_VERDICT_LEAK);
    /* +0.5 MiB/s for 5 s on 100 MiB: 2% growth, under the 10% bar. */
    assert_int_equal(verdict_of(GCT_TREND_MIN_CYCLES, l_leak), GCT_VERDICT_STABLE);

    /* All cycles at one instant: no time, no trend. */
    gct_cycle *c = series(10, l_leak);
    for (int i = 0; i < 10; i++)
        c[i].t_s = 5;
    gct_summary s;
    assert_int_equal(gct_summarize(c, 10, GCT_STW_AUTO, &s), 0);
    assert_int_equal(s.verdict, GCT_VERDICT_TOO_FEW);
    free(c);

    /* The slope is in MiB per minute: 0.5 MiB per second is 30. */
    c = series(120, l_leak);
    assert_int_equal(gct_summarize(c, 120, GCT_STW_AUTO, &s), 0);
    near(s.trend.slope, 30, 0.05); /* whole MiB: 100,100,101,... */
    near(s.span_s, 119, 0);
    near(s.live.min, 100, 0);
    near(s.live.max, 159, 0);
    free(c);
}

static void test_goals_and_forced(void **state)
{
    (void)state;
    gct_cycle *c = series(10, l_flat);
    c[3].heap1_mb = c[3].goal_mb + 1;   /* over at mark end */
    c[4].heap0_mb = c[4].goal_mb + 2;   /* over at start    */
    c[4].heap1_mb = c[4].goal_mb + 2;
    c[5].forced = true;                 /* forced: not the pacer's */
    c[5].heap0_mb = c[5].heap1_mb = 1;
    c[6].goal_mb = 0;                   /* no goal (GOGC=off) */
    c[7].forced = true;
    gct_summary s;
    assert_int_equal(gct_summarize(c, 10, GCT_STW_AUTO, &s), 0);
    assert_int_equal(s.start_ratio.n, 7);
    assert_int_equal(s.over_goal, 2);
    assert_true(s.end_ratio.max > 1);
    near(s.start_ratio.min, 1, 0); /* the forced cycle's 1 MB was left out */
    assert_int_equal(s.forced, 2);
    assert_int_equal(s.forced_n[0], 6);
    assert_int_equal(s.forced_n[1], 8);
    free(c);
}

static gct_cycle line(const char *s)
{
    gct_cycle c;
    if (gct_parse_line(s, strlen(s), &c) != GCT_LINE_CYCLE)
        fail_msg("does not parse: %s", s);
    return c;
}

static void test_stw_rules(void **state)
{
    (void)state;
    /* Go: A + C. */
    gct_cycle go = line("gc 1 @0.000s 15%: 0.021+0.38+0.085 ms clock, "
                        "0.042+0.074/0.11/0+0.17 ms cpu, 3->4->0 MB, 4 MB goal, "
                        "0 MB stacks, 0 MB globals, 2 P");
    assert_false(gct_gcmalloc_shaped(&go));
    near(gct_pause_ms(&go, GCT_STW_GO), 0.106, 1e-12);
    near(gct_pause_ms(&go, GCT_STW_ALL), 0.486, 1e-12);
    /* Go 1.5: the STW phases are the first, third and fifth. */
    gct_cycle go15 = line("gc 7 @0.036s 1%: 0.062+0.033+0.16+1.1+0.21 ms clock, "
                          "0.062+0.033+0+0.17/0.95/0.070+0.21 ms cpu, 4->4->1 MB, "
                          "4 MB goal, 4 P");
    assert_false(gct_gcmalloc_shaped(&go15));
    near(gct_pause_ms(&go15, GCT_STW_GO), 0.062 + 0.16 + 0.21, 1e-12);
    /* gcmalloc, 4 P: a = stopped(A)·4 + (A − stopped(A)) → stopped(A) =
     * (0.25 − 0.1)/3 = 0.05; c likewise: (0.5 − 0.2)/3 = 0.1. */
    gct_cycle g = line("gc 3 @1.000s 10%: 0.1+2.0+0.2 ms clock, "
                       "0.25+0/4.0/4.0+0.5 ms cpu, 8->8->4 MB, 8 MB goal, "
                       "0 MB stacks, 0 MB globals, 4 P");
    assert_true(gct_gcmalloc_shaped(&g));
    near(gct_pause_ms(&g, GCT_STW_GCMALLOC), 0.05 + 2.0 + 0.1, 1e-12);
    near(gct_pause_ms(&g, GCT_STW_ALL), 2.3, 1e-12);
    near(gct_pause_ms(&g, GCT_STW_GO), 0.3, 1e-12);
    /* One P: the split cannot be read; the whole cycle is the pause. */
    gct_cycle one = line("gc 3 @1.000s 10%: 0.1+2.0+0.2 ms clock, "
                         "0.1+0/2.0/0+0.2 ms cpu, 8->8->4 MB, 8 MB goal, 1 P");
    assert_true(gct_gcmalloc_shaped(&one));
    near(gct_pause_ms(&one, GCT_STW_GCMALLOC), 2.3, 1e-12);

    gct_stw r;
    assert_int_equal(gct_stw_parse("gcmalloc", &r), 0);
    assert_int_equal(r, GCT_STW_GCMALLOC);
    assert_int_equal(gct_stw_parse("GO", &r), -1);
}

/* gcmalloc's own formatter: every line it prints reads back with the same
 * fields, carries gcmalloc's signature, and the gcmalloc rule recovers the
 * true pause within the printing precision. */
static void test_gcmalloc_formatter_round_trip(void **state)
{
    (void)state;
    test_rng rng = test_rng_seeded(0x9e3779b97f4a7c15ull);
#define RND(m) test_rng_below(&rng, (m))
    for (int i = 0; i < 20000; i++) {
        gcm__cycle k;
        memset(&k, 0, sizeof k);
        k.n = 1 + RND(1000000);
        k.start_ns = (int64_t)RND(86400000000000ull);
        k.clock_a_ns = 1000 + (int64_t)RND(5000000);
        k.clock_b_ns = 1000 + (int64_t)RND(i % 2 ? 500000000 : 2000000);
        k.clock_c_ns = 1000 + (int64_t)RND(5000000);
        k.stw_a_ns = (int64_t)RND((uint64_t)k.clock_a_ns + 1);
        k.stw_c_ns = (int64_t)RND((uint64_t)k.clock_c_ns + 1);
        k.procs = 1 + (int)RND(64);
        k.markers = 1 + (int)RND(16);
        k.heap0 = RND(1ull << 40);
        k.heap1 = k.heap0;
        k.heap2 = RND(k.heap0 + 1);
        k.goal = RND(1ull << 40);
        k.globals = RND(1ull << 30);
        k.cpu_fraction = (double)RND(100) / 100;
        k.forced = RND(4) == 0;
        char buf[512];
        size_t len = gcm__gctrace_format(&k, buf, sizeof buf);
        assert_true(len < sizeof buf);
        assert_true(len > 0 && buf[len - 1] == '\n');
        gct_cycle c;
        if (gct_parse_line(buf, len - 1, &c) != GCT_LINE_CYCLE)
            fail_msg("does not parse: %s", buf);
        assert_int_equal(c.n, k.n);
        assert_int_equal(c.heap0_mb, k.heap0 >> 20);
        assert_int_equal(c.heap2_mb, k.heap2 >> 20);
        assert_int_equal(c.goal_mb, k.goal >> 20);
        assert_int_equal(c.globals_mb, (int64_t)(k.globals >> 20));
        assert_int_equal(c.procs, (uint64_t)k.procs);
        assert_int_equal(c.forced, k.forced);
        if (!gct_gcmalloc_shaped(&c))
            fail_msg("not recognized as gcmalloc's: %s", buf);
        double A = (double)k.clock_a_ns / 1e6, B = (double)k.clock_b_ns / 1e6,
               C = (double)k.clock_c_ns / 1e6;
        double truth = ((double)k.stw_a_ns + (double)k.clock_b_ns + (double)k.stw_c_ns) / 1e6;
        double got = gct_pause_ms(&c, GCT_STW_GCMALLOC);
        /* Two significant digits: B is up to 10% low; the stopped parts
         * are read from differences of such figures (docs). */
        if (k.procs == 1) {
            /* One P: no split to read; the whole printed cycle, which is
             * never below the true pause by more than the printing. */
            double whole = gct_clock_a(&c) + gct_clock_b(&c) + gct_clock_c(&c);
            near(got, whole, 1e-12);
            if (!(got >= 0.89 * truth - 0.003))
                fail_msg("pause %.6f ms below true %.6f ms: %s", got, truth, buf);
            continue;
        }
        double tol = 0.11 * B + 0.35 * (A + C) + 0.005;
        if (!(fabs(got - truth) <= tol) || got > A + B + C + 1e-9)
            fail_msg("pause %.6f ms, true %.6f ms: %s", got, truth, buf);
    }
#undef RND
}

static void summarize_file(const char *path, gct_log *log, gct_summary *s)
{
    gct_log_init(log);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        fail_msg("cannot open %s", path);
    assert_int_equal(gct_log_read(log, f), 0);
    fclose(f);
    assert_int_equal(log->runs, 1);
    assert_int_equal(gct_summarize(log->cycles, log->n, GCT_STW_AUTO, s), 0);
}

/* The committed real logs: the rule each gets, and the verdicts. */
static void test_fixture_summaries(void **state)
{
    (void)state;
    gct_log log;
    gct_summary s;

    summarize_file(DATA "gctrace-gcmalloc-leak.log", &log, &s);
    assert_int_equal(s.rule, GCT_STW_GCMALLOC);
    assert_true(s.rule_detected);
    assert_int_equal(s.gcmalloc_shaped, 43);
    assert_int_equal(s.verdict, GCT_VERDICT_LEAK);
    assert_int_equal(s.cycles, 43);
    assert_int_equal(s.cpu_pct, 6);
    assert_int_equal(s.forced, 3);
    assert_int_equal(s.forced_n[0], 19);
    assert_int_equal(s.forced_n[1], 30);
    assert_int_equal(s.forced_n[2], 38);
    assert_int_equal(s.missing, 0);
    near(s.live.min, 2, 0);
    near(s.live.max, 22, 0);
    gct_log_free(&log);

    summarize_file(DATA "gctrace-gcmalloc-steady.log", &log, &s);
    assert_int_equal(s.rule, GCT_STW_GCMALLOC);
    assert_int_equal(s.verdict, GCT_VERDICT_STABLE);
    gct_log_free(&log);

    summarize_file(DATA "gctrace-go1.19-leak.log", &log, &s);
    assert_int_equal(s.rule, GCT_STW_GO);
    assert_int_equal(s.gcmalloc_shaped, 0);
    assert_int_equal(s.verdict, GCT_VERDICT_LEAK);
    assert_int_equal(s.missing, 1);
    assert_int_equal(s.forced, 3);
    gct_log_free(&log);

    summarize_file(DATA "gctrace-go1.19-steady.log", &log, &s);
    assert_int_equal(s.rule, GCT_STW_GO);
    assert_int_equal(s.gcmalloc_shaped, 0);
    assert_int_equal(s.verdict, GCT_VERDICT_STABLE);
    /* Go's pauses are the short STW phases: well under a millisecond. */
    assert_true(s.pause.max < 1.0);
    gct_log_free(&log);

    /* An explicit rule is taken as given. */
    summarize_file(DATA "gctrace-go1.19-steady.log", &log, &s);
    assert_int_equal(gct_summarize(log.cycles, log.n, GCT_STW_ALL, &s), 0);
    assert_int_equal(s.rule, GCT_STW_ALL);
    assert_false(s.rule_detected);
    gct_log_free(&log);

    assert_int_equal(gct_summarize(NULL, 0, GCT_STW_AUTO, &s), 0);
    assert_int_equal(s.cycles, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dist),
        cmocka_unit_test(test_fit),
        cmocka_unit_test(test_verdicts),
        cmocka_unit_test(test_goals_and_forced),
        cmocka_unit_test(test_stw_rules),
        cmocka_unit_test(test_gcmalloc_formatter_round_trip),
        cmocka_unit_test(test_fixture_summaries),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
