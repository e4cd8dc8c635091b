/*
 * test_thread_join.c — a collected object a thread returns survives until
 * pthread_join takes it, and no longer than the program holds it
 * (src/thread_join.c).
 *
 * Between a thread's end and its join, the value waits in glibc's thread
 * descriptor, which the collector does not scan.  Each test ends a thread
 * with a collected value, runs collections with garbage in between, and
 * checks with a finalizer and the value's contents that it was not
 * reclaimed; then that a value nobody can join any more is reclaimed.
 *
 * Linked with the shared library, as programs are.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "gcmalloc.h"

#define WORDS 64

static int finalized[8];

static void on_final(void *obj, void *arg)
{
    (void)obj;
    __atomic_store_n((int *)arg, 1, __ATOMIC_RELEASE);
}

/* A collected result the caller can check, with a finalizer that says
 * when it is reclaimed. */
static uint64_t *make_result(int slot)
{
    uint64_t *r = gcm_malloc(WORDS * sizeof *r);
    if (r == NULL)
        return NULL;
    for (int i = 0; i < WORDS; i++)
        r[i] = 0x9e3779b97f4a7c15u * (uint64_t)(i + 1) + (uint64_t)slot;
    gcm_set_finalizer(r, on_final, &finalized[slot]);
    return r;
}

static int intact(const uint64_t *r, int slot)
{
    for (int i = 0; i < WORDS; i++)
        if (r[i] != 0x9e3779b97f4a7c15u * (uint64_t)(i + 1) + (uint64_t)slot)
            return 0;
    return 1;
}

static volatile int ended[8];

static void *returns(void *arg)
{
    int slot = (int)(intptr_t)arg;
    void *r = make_result(slot);
    __atomic_store_n(&ended[slot], 1, __ATOMIC_RELEASE);
    return r;
}

static void *exits(void *arg)
{
    int slot = (int)(intptr_t)arg;
    void *r = make_result(slot);
    __atomic_store_n(&ended[slot], 1, __ATOMIC_RELEASE);
    pthread_exit(r);
}

static void nap(long ms)
{
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

/* Collections with garbage between them, so that freed memory is reused. */
static void churn(int cycles)
{
    for (int c = 0; c < cycles; c++) {
        for (int i = 0; i < 2000; i++) {
            uint64_t *g = gcm_malloc(WORDS * sizeof *g);
            if (g != NULL)
                memset(g, 0xA5, WORDS * sizeof *g);
        }
        assert_int_equal(gcm_gc(), 0);
    }
}

static void wait_ended(int slot)
{
    while (!__atomic_load_n(&ended[slot], __ATOMIC_ACQUIRE))
        nap(1);
    nap(20); /* past the return, the key destructors, the unregistration */
}

static void join_after_collections(void *(*fn)(void *), int slot)
{
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, fn, (void *)(intptr_t)slot), 0);
    wait_ended(slot);
    churn(10);
    nap(50); /* the finalizer thread would have run by now */
    assert_int_equal(__atomic_load_n(&finalized[slot], __ATOMIC_ACQUIRE), 0);
    void *v = NULL;
    assert_int_equal(pthread_join(t, &v), 0);
    assert_non_null(v);
    assert_true(intact(v, slot));
}

static void test_returned_value_survives(void **state)
{
    (void)state;
    join_after_collections(returns, 0);
}

static void test_pthread_exit_value_survives(void **state)
{
    (void)state;
    join_after_collections(exits, 1);
}

static void test_tryjoin_and_timedjoin(void **state)
{
    (void)state;
    pthread_t a, b;
    assert_int_equal(pthread_create(&a, NULL, returns, (void *)(intptr_t)2), 0);
    assert_int_equal(pthread_create(&b, NULL, returns, (void *)(intptr_t)3), 0);
    wait_ended(2);
    wait_ended(3);
    churn(5);
    void *v = NULL;
    while (pthread_tryjoin_np(a, &v) != 0)
        nap(1);
    assert_true(intact(v, 2));
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 30;
    assert_int_equal(pthread_timedjoin_np(b, &v, &deadline), 0);
    assert_true(intact(v, 3));
}

/* Once nobody can join the thread, its value is the collector's again. */
static int reclaimed_soon(int slot)
{
    for (int i = 0; i < 200; i++) {
        if (__atomic_load_n(&finalized[slot], __ATOMIC_ACQUIRE))
            return 1;
        churn(1);
        nap(5);
    }
    return 0;
}

static void test_detached_value_is_not_pinned(void **state)
{
    (void)state;
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    assert_int_equal(pthread_create(&t, &attr, returns, (void *)(intptr_t)4), 0);
    pthread_attr_destroy(&attr);
    wait_ended(4);
    assert_true(reclaimed_soon(4));

    /* Detached after it ended: the kept value is let go. */
    assert_int_equal(pthread_create(&t, NULL, returns, (void *)(intptr_t)5), 0);
    wait_ended(5);
    churn(3);
    assert_int_equal(__atomic_load_n(&finalized[5], __ATOMIC_ACQUIRE), 0);
    assert_int_equal(pthread_detach(t), 0);
    assert_true(reclaimed_soon(5));
}

/* Joined, and dropped by the program: reclaimed. */
static void test_joined_value_is_released(void **state)
{
    (void)state;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, returns, (void *)(intptr_t)6), 0);
    void *v = NULL;
    assert_int_equal(pthread_join(t, &v), 0);
    assert_true(intact(v, 6));
    memset(&v, 0, sizeof v);
    assert_true(reclaimed_soon(6));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_returned_value_survives),
        cmocka_unit_test(test_pthread_exit_value_survives),
        cmocka_unit_test(test_tryjoin_and_timedjoin),
        cmocka_unit_test(test_detached_value_is_not_pinned),
        cmocka_unit_test(test_joined_value_is_released),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
