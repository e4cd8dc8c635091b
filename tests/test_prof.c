/*
 * test_prof.c — src/prof.c: the sampling countdown and its statistics, the
 * unbiasing arithmetic (Go's scaleHeapSample), rate changes, nesting and
 * internal threads, arena lists, and the public API's argument checks.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "gcmalloc.h"
#include "internal.h"

/* --- the draw -------------------------------------------------------------- */

static void test_draw_is_exponential(void **state)
{
    (void)state;
    uint64_t rng = 12345;
    const int64_t rate = 512 * 1024;
    const int n = 200000;
    double sum = 0, sumsq = 0;
    int below_mean = 0;
    for (int i = 0; i < n; i++) {
        int64_t x = gcm__prof_draw(&rng, rate);
        assert_true(x >= 1);
        sum += (double)x;
        sumsq += (double)x * (double)x;
        below_mean += x < rate;
    }
    double mean = sum / n;
    double sd = sqrt(sumsq / n - mean * mean);
    /* Exponential: mean = sd = rate; P(x < mean) = 1 - 1/e = 0.632. */
    assert_true(fabs(mean - (double)rate) < 0.01 * (double)rate);
    assert_true(fabs(sd - (double)rate) < 0.02 * (double)rate);
    assert_true(fabs((double)below_mean / n - 0.6321) < 0.005);
}

static void test_draw_edges(void **state)
{
    (void)state;
    uint64_t rng = 99;
    assert_int_equal(gcm__prof_draw(&rng, 1), 1);
    assert_true(gcm__prof_draw(&rng, 0) >= (int64_t)1 << 20); /* a re-check */
    assert_true(gcm__prof_draw(&rng, -5) >= (int64_t)1 << 20);
    for (int i = 0; i < 1000; i++)
        assert_true(gcm__prof_draw(&rng, 2) >= 1);
}

/* --- unbiasing -------------------------------------------------------------- */

static void test_unbias_table(void **state)
{
    (void)state;
    static const struct {
        uint64_t count, bytes;
        int64_t rate;
        uint64_t want_count, want_bytes;
    } rows[] = {
        {0, 0, 524288, 0, 0},
        {3, 0, 524288, 0, 0},
        {0, 100, 524288, 0, 0},
        {7, 700, 1, 7, 700},         /* rate 1: exact */
        {7, 700, 0, 7, 700},         /* off: as recorded */
        /* avg = rate: scale = 1/(1 - e^-1) = 1.5819767068693265 */
        {1, 524288, 524288, 1, 829411},
        {10, 5242880, 524288, 15, 8294113},
        /* avg 64 at 512 KiB: scale = 1/(1 - e^(-64/524288)) = 8192.500... */
        {100, 6400, 524288, 819250, 52432000},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        uint64_t c, b;
        gcm__prof_unbias(rows[i].count, rows[i].bytes, rows[i].rate, &c, &b);
        double ec = (double)rows[i].want_count, eb = (double)rows[i].want_bytes;
        if (fabs((double)c - ec) > 1 + ec * 1e-6 || fabs((double)b - eb) > 1 + eb * 1e-6)
            fail_msg("row %zu: got %llu/%llu, want %llu/%llu", i,
                     (unsigned long long)c, (unsigned long long)b,
                     (unsigned long long)rows[i].want_count,
                     (unsigned long long)rows[i].want_bytes);
    }
}

/* --- the tick --------------------------------------------------------------- */

static int count_samples(size_t size, int n)
{
    gcm__tls *t = &gcm__tls_self;
    int k = 0;
    for (int i = 0; i < n; i++)
        k += gcm__prof_tick(t, size);
    return k;
}

static void test_tick_probability(void **state)
{
    (void)state;
    /* An allocation of s bytes is sampled with probability 1 - e^(-s/R),
     * independently of the ones before it. */
    gcm_profile_set_rate(4096);
    static const size_t sizes[] = {16, 1024, 4096, 16384};
    for (size_t i = 0; i < 4; i++) {
        const int n = 200000;
        double p = 1 - exp(-(double)sizes[i] / 4096.0);
        double want = p * n, sd = sqrt(n * p * (1 - p));
        int got = count_samples(sizes[i], n);
        if (fabs(got - want) > 5 * sd + 2)
            fail_msg("size %zu: %d samples of %d, expected %.0f (sd %.1f)",
                     sizes[i], got, n, want, sd);
    }
    gcm_profile_set_rate(512 * 1024);
}

static void test_rate_one_and_off(void **state)
{
    (void)state;
    int64_t old = gcm_profile_set_rate(1);
    assert_int_equal(gcm_profile_set_rate(-1), 1); /* query only */
    assert_int_equal(count_samples(1, 1000), 1000);
    assert_int_equal(count_samples(100000, 1000), 1000);
    assert_int_equal(gcm_profile_set_rate(0), 1);
    assert_int_equal(count_samples(1 << 20, 200), 0);
    assert_int_equal(gcm__prof_rate(), 0);
    /* Turning it back on is noticed at once. */
    gcm_profile_set_rate(1);
    assert_int_equal(count_samples(8, 10), 10);
    gcm_profile_set_rate(old);
    assert_int_equal(gcm_profile_set_rate(-1), old);
}

static void test_busy_not_sampled_nor_counted(void **state)
{
    (void)state;
    gcm_profile_set_rate(1);
    gcm__tls *t = &gcm__tls_self;
    assert_true(gcm__prof_tick(t, 64)); /* fresh countdown */
    t->prof_busy = 1;
    int64_t before = t->prof_countdown;
    for (int i = 0; i < 100; i++)
        assert_false(gcm__prof_tick(t, 64));
    assert_int_equal(t->prof_countdown, before); /* nothing consumed */
    t->prof_busy = 0;
    assert_true(gcm__prof_tick(t, 64));
    gcm_profile_set_rate(512 * 1024);
}

static void *internal_thread(void *arg)
{
    (void)arg;
    intptr_t k = 0;
    for (int i = 0; i < 1000; i++)
        k += gcm__prof_tick(&gcm__tls_self, 4096);
    return (void *)k;
}

static void test_internal_threads_not_sampled(void **state)
{
    (void)state;
    gcm_profile_set_rate(1);
    pthread_t th;
    assert_int_equal(gcm__thread_spawn(&th, internal_thread, NULL), 0);
    void *r;
    pthread_join(th, &r);
    assert_int_equal((intptr_t)r, 0);
    gcm_profile_set_rate(512 * 1024);
}

/* --- records: one function per site so stacks differ ---------------------- */

static gcm__prof_counts totals_of(gcm__prof_kind kind, const char *name)
{
    gcm__prof_snap s;
    assert_int_equal(gcm__prof_snap_take(&s), 0);
    gcm__prof_counts c = {0};
    for (size_t i = 0; i < s.n; i++) {
        const gcm__bucket *b = s.recs[i].b;
        if (b->kind != kind || b->name == NULL || strcmp(b->name, name) != 0)
            continue;
        c.allocs += s.recs[i].c.allocs;
        c.alloc_bytes += s.recs[i].c.alloc_bytes;
        c.frees += s.recs[i].c.frees;
        c.free_bytes += s.recs[i].c.free_bytes;
    }
    gcm__prof_snap_free(&s);
    return c;
}

__attribute__((noinline)) static void list_alloc(gcm__prof_list *l, size_t bytes)
{
    gcm__prof_record_alloc_list(l, bytes, GCM_PROF_ARENA, "test-list",
                                __builtin_return_address(0));
}

static void test_list_release_with_savepoints(void **state)
{
    (void)state;
    gcm__prof_list l = {0};
    for (int i = 0; i < 100; i++)
        list_alloc(&l, 32);
    size_t mark = gcm__prof_list_mark(&l);
    assert_int_equal(mark, 100);
    for (int i = 0; i < 150; i++)
        list_alloc(&l, 64);
    gcm__prof_counts c = totals_of(GCM_PROF_ARENA, "test-list");
    assert_int_equal(c.allocs, 250);
    assert_int_equal(c.alloc_bytes, 100 * 32 + 150 * 64);
    assert_int_equal(c.frees, 0);
    /* Back to the savepoint: the later 150 are released. */
    gcm__prof_list_release(&l, mark);
    assert_int_equal(l.n, 100);
    c = totals_of(GCM_PROF_ARENA, "test-list");
    assert_int_equal(c.frees, 150);
    assert_int_equal(c.free_bytes, 150 * 64);
    /* Everything (reset/free). */
    gcm__prof_list_release(&l, 0);
    assert_int_equal(l.n, 0);
    assert_null(l.head);
    c = totals_of(GCM_PROF_ARENA, "test-list");
    assert_int_equal(c.frees, 250);
    assert_int_equal(c.free_bytes, c.alloc_bytes);
    /* Releasing an empty list, or to a mark beyond it, is harmless. */
    gcm__prof_list_release(&l, 0);
    gcm__prof_list_release(&l, 10);
    gcm__prof_list_release(NULL, 0);
    /* A GC-kind list is refused (the collector finds those frees). */
    gcm__prof_record_alloc_list(&l, 8, GCM_PROF_GC, NULL, NULL);
    assert_int_equal(l.n, 0);
}

static void test_record_bad_arguments(void **state)
{
    (void)state;
    size_t before = gcm__sampled_live();
    gcm__prof_record_alloc(NULL, 8, GCM_PROF_MALLOC, NULL, NULL);
    char x;
    gcm__prof_record_alloc(&x, 8, (gcm__prof_kind)99, NULL, NULL);
    assert_int_equal(gcm__sampled_live(), before);
    gcm__prof_record_free(NULL);
    gcm__prof_free(NULL);
}

/* --- the API ---------------------------------------------------------------- */

static void test_api_arguments(void **state)
{
    (void)state;
    assert_int_equal(gcm_profile_write(NULL), EINVAL);
    assert_int_equal(gcm_profile_write(""), EINVAL);
    assert_int_equal(gcm_profile_write_fd(-1), EBADF);
    assert_int_equal(gcm_profile_write_view_fd(-3, GCM_PROFILE_ALLOCS), EBADF);
    assert_int_equal(gcm_profile_write_view("/tmp/x", (gcm_profile_view)7), EINVAL);
    assert_int_equal(gcm_profile_write_view(NULL, GCM_PROFILE_HEAP), EINVAL);
    int fd = open("/dev/null", O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(gcm_profile_write_view_fd(fd, (gcm_profile_view)-1), EINVAL);
    assert_int_equal(gcm_profile_write_fd(fd), 0);
    assert_int_equal(gcm_profile_report(fd), 0);
    close(fd);
    assert_int_equal(gcm_profile_write("/nonexistent-dir/x/heap.pb.gz"), ENOENT);
    assert_int_equal(gcm_profile_report(-1), EBADF);
    /* Writes to a full device report its error. */
    fd = open("/dev/full", O_WRONLY);
    if (fd >= 0) {
        assert_int_equal(gcm_profile_write_fd(fd), ENOSPC);
        close(fd);
    }
    /* A closed descriptor. */
    int p[2];
    assert_int_equal(pipe(p), 0);
    close(p[0]);
    close(p[1]);
    assert_int_equal(gcm_profile_write_fd(p[1]), EBADF);
}

static void test_option_default_rate(void **state)
{
    (void)state;
    /* The table's default is Go's MemProfileRate. */
    const gcm__opt_def *d = gcm__opt_find("GCMALLOC_PROFILE_RATE");
    assert_non_null(d);
    int64_t v;
    const char *why;
    assert_int_equal(gcm__opt_parse(d, d->def, &v, &why), 0);
    assert_int_equal(v, 512 * 1024);
}

int main(void)
{
    gcm_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_draw_is_exponential),
        cmocka_unit_test(test_draw_edges),
        cmocka_unit_test(test_unbias_table),
        cmocka_unit_test(test_tick_probability),
        cmocka_unit_test(test_rate_one_and_off),
        cmocka_unit_test(test_busy_not_sampled_nor_counted),
        cmocka_unit_test(test_internal_threads_not_sampled),
        cmocka_unit_test(test_list_release_with_savepoints),
        cmocka_unit_test(test_record_bad_arguments),
        cmocka_unit_test(test_api_arguments),
        cmocka_unit_test(test_option_default_rate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
