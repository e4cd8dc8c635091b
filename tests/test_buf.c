/*
 * test_buf.c — buffer pools (src/buf.c) and their chunks (src/bufmem.c):
 * capacities of every kind of size, reuse through the class pools, large
 * buffers, chunks mapped and unmapped as buffers come and go with GC
 * cycles, buffers handed between threads, and debug-mode misuse reports.
 */
#define _GNU_SOURCE
#include <errno.h>
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

#include "diag_capture.h"
#include "env_option.h"

static int setup(void **state)
{
    (void)state;
    gcm_init();
    gcm_set_gc_percent(-1);
    return 0;
}

static struct gcm_pool_stats bstats(size_t size)
{
    struct gcm_pool_stats st;
    assert_int_equal(gcm_buf_stats(size, &st), 0);
    return st;
}

static void test_capacities(void **state)
{
    (void)state;
    static const size_t sizes[] = {0,    1,    3,    7,     8,     9,    15,
                                   16,   17,   63,   64,    65,    100,  127,
                                   128,  129,  1000, 1024,  1025,  4095, 4096,
                                   4097, 9000, 30000, 32767, 32768};
    for (size_t i = 0; i < GCM_ARRAY_LEN(sizes); i++) {
        size_t n = sizes[i], want = n ? n : 1;
        unsigned char *b = gcm_buf_get(n);
        assert_non_null(b);
        size_t cap = gcm_buf_cap(b);
        assert_true(cap >= want);
        assert_int_equal(cap, gcm_buf_size_class(n));
        assert_true(cap - want <= cap / 8); /* at most 12.5% over */
        if (cap >= 128)
            assert_int_equal((uintptr_t)b % 16, 0);
        memset(b, 0x5c, cap); /* the whole capacity is usable */
        /* An interior pointer knows how much of its buffer is left. */
        if (cap > 1)
            assert_int_equal(gcm_buf_cap(b + 1), cap - 1);
        gcm_buf_put(b);
    }
    assert_int_equal(gcm_buf_cap(NULL), 0);
    gcm_buf_put(NULL);
    assert_int_equal(gcm_buf_size_class(4096), 4096);
    assert_int_equal(gcm_buf_size_class(4097), 4608);
    struct gcm_pool_stats st;
    assert_int_equal(gcm_buf_stats(32769, &st), EINVAL);
    assert_int_equal(gcm_buf_stats(64, NULL), EINVAL);
}

/* Puts find a buffer's index with a multiply and a shift instead of a
 * division: exact at every offset of every class's chunk. */
static void test_index_without_division(void **state)
{
    (void)state;
    for (unsigned c = 1; c <= GCM_SC_COUNT; c++) {
        size_t size = gcm__class_bytes(c), chunk = gcm__class_chunk_bytes(c);
        for (size_t off = 0; off < chunk; off++)
            if (gcm__bufmem_index(c, off) != off / size)
                fail_msg("class %u (%zu B): offset %zu gives %u, not %zu", c,
                         size, off, gcm__bufmem_index(c, off), off / size);
    }
}

static void test_reuse_and_stats(void **state)
{
    (void)state;
    /* 3000 bytes: class 3072, used by no other test. */
    struct gcm_pool_stats st = bstats(3000);
    assert_string_equal(st.name, "buf-3072");
    assert_int_equal(st.object_size, 3072);
    assert_int_equal(st.gets, 0);
    void *a = gcm_buf_get(3000);
    gcm_buf_put(a);
    void *b = gcm_buf_get(2900); /* same class: the same buffer back */
    assert_ptr_equal(a, b);
    void *c = gcm_buf_get(3072);
    assert_ptr_not_equal(c, a);
    gcm_buf_put(b);
    gcm_buf_put(c);
    st = bstats(3001);
    assert_int_equal(st.gets, 3);
    assert_int_equal(st.misses, 2);
    assert_int_equal(st.hits_private, 1);
    assert_int_equal(st.puts, 3);
    assert_int_equal(st.cached, 2);
    /* Buffers carry no header: two fresh ones of a class are adjacent. */
    assert_int_equal(labs((long)((char *)c - (char *)a)), 3072);
}

static void test_large_buffers(void **state)
{
    (void)state;
    struct gcm_memstats m0, m1, m2;
    assert_int_equal(gcm_read_memstats(&m0), 0);
    size_t sizes[] = {32769, 100000, 1 << 20};
    void *b[3];
    for (int i = 0; i < 3; i++) {
        b[i] = gcm_buf_get(sizes[i]);
        assert_non_null(b[i]);
        assert_true(gcm_buf_cap(b[i]) >= sizes[i]);
        assert_true(gcm_buf_size_class(sizes[i]) >= sizes[i]);
        memset(b[i], 1, sizes[i]);
    }
    assert_int_equal(gcm_read_memstats(&m1), 0);
    assert_true(m1.nongc_sys >= m0.nongc_sys + 32769 + 100000 + (1 << 20));
    for (int i = 0; i < 3; i++)
        gcm_buf_put(b[i]); /* freed at once, not pooled */
    assert_int_equal(gcm_read_memstats(&m2), 0);
    assert_true(m1.nongc_sys - m2.nongc_sys >= 32769 + 100000 + (1 << 20));
    for (int i = 0; i < 3; i++)
        assert_int_equal(gcm_buf_cap(b[i]), 0); /* not ours any more */
    errno = 0;
    assert_null(gcm_buf_get(SIZE_MAX));
    assert_int_equal(errno, ENOMEM);
}

/* 20 KiB buffers (class 20480: 16 per 320 KiB chunk), used only here. */
#define BIG 20000
#define NBIG 40

static void test_chunks_follow_cycles(void **state)
{
    (void)state;
    /* Let earlier tests' buffers and spare chunks go first: three cycles
     * release every cached buffer and then every spare chunk. */
    for (int i = 0; i < 3; i++)
        assert_int_equal(gcm_gc(), 0);
    uint64_t base = gcm__bufmem_bytes();
    void *b[NBIG];
    for (int i = 0; i < NBIG; i++) {
        b[i] = gcm_buf_get(BIG);
        memset(b[i], i, BIG);
    }
    uint64_t chunk = gcm__class_chunk_bytes(gcm__size_class(BIG));
    assert_int_equal(chunk, 327680);
    /* 40 buffers: three chunks (and perhaps a leaf of the address map). */
    uint64_t held = gcm__bufmem_bytes() - base;
    assert_true(held == 3 * chunk || held == 3 * chunk + (512 << 10));
    base += held - 3 * chunk;
    struct gcm_memstats ms;
    assert_int_equal(gcm_read_memstats(&ms), 0);
    assert_int_equal(ms.buf_sys, gcm__bufmem_bytes());

    for (int i = 0; i < NBIG; i++)
        gcm_buf_put(b[i]);
    assert_int_equal(bstats(BIG).cached, NBIG);
    assert_int_equal(gcm_gc(), 0); /* cached -> victims */
    assert_int_equal(bstats(BIG).victims, NBIG);
    assert_int_equal(gcm__bufmem_bytes() - base, 3 * chunk);
    assert_int_equal(gcm_gc(), 0); /* victims released: one chunk kept spare */
    assert_int_equal(bstats(BIG).dropped, NBIG);
    assert_int_equal(gcm__bufmem_bytes() - base, chunk);
    assert_int_equal(gcm_gc(), 0); /* the spare went unused for a cycle */
    assert_int_equal(gcm__bufmem_bytes() - base, 0);

    /* The class starts again from a fresh chunk. */
    void *x = gcm_buf_get(BIG);
    assert_int_equal(gcm__bufmem_bytes() - base, chunk);
    gcm_buf_put(x);
}

/* Buffers taken on one thread and put back on another. */
static void *taker(void *arg)
{
    void **slots = arg;
    for (int i = 0; i < 64; i++) {
        slots[i] = gcm_buf_get(700);
        memset(slots[i], 0x77, 700);
    }
    return NULL;
}

static void test_cross_thread(void **state)
{
    (void)state;
    void *slots[64];
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, taker, slots), 0);
    pthread_join(t, NULL);
    for (int i = 0; i < 64; i++) {
        assert_int_equal(gcm_buf_cap(slots[i]), 704);
        gcm_buf_put(slots[i]);
    }
    struct gcm_pool_stats st = bstats(700);
    assert_int_equal(st.gets, 64);
    assert_int_equal(st.puts, 64);
    assert_int_equal(st.cached, 64);
    /* And got back here, from this thread's own cache. */
    for (int i = 0; i < 64; i++)
        slots[i] = gcm_buf_get(701);
    st = bstats(700);
    assert_int_equal(st.misses, 64);
    assert_int_equal(st.hits_private + st.hits_shared, 64);
    for (int i = 0; i < 64; i++)
        gcm_buf_put(slots[i]);
}

static void test_debug_misuse(void **state)
{
    (void)state;
    /* A class's debug mode is fixed when its pool is made (as GCMALLOC_DEBUG
     * is read at start-up in a real program): class 2560 is first used
     * here, with debug on. */
    set_env_option("GCMALLOC_DEBUG", "1", true);
    char *b = gcm_buf_get(2500);
    char *big = gcm_buf_get(100000);
    char *m = malloc(256);
    int on_stack;
    capture_begin();
    gcm_buf_put(b + 16);     /* inside a buffer        */
    gcm_buf_put(m);          /* from malloc            */
    gcm_buf_put(&on_stack);  /* not a heap pointer     */
    assert_int_equal(gcm_buf_cap(m), 0);
    char *out = capture_end();
    assert_int_equal(count_lines(out), 4);
    assert_non_null(strstr(out, "not the start of a buffer"));
    assert_non_null(strstr(out, "gcm_buf_put"));
    assert_non_null(strstr(out, "not a buffer from gcm_buf_get"));
    assert_int_equal(bstats(2500).puts, 0);

    gcm_buf_put(b);
    capture_begin();
    gcm_buf_put(b); /* double put */
    out = capture_end();
    assert_int_equal(count_lines(out), 1);
    assert_non_null(strstr(out, "double put"));
    assert_int_equal(bstats(2500).puts, 1);
    /* Back once, and it can be put once more. */
    assert_ptr_equal(gcm_buf_get(2400), b); /* class 2560 */
    capture_begin();
    gcm_buf_put(b);
    gcm_buf_put(big);
    out = capture_end();
    assert_int_equal(count_lines(out), 0);
    assert_int_equal(bstats(2500).puts, 2);
    capture_begin();
    gcm_buf_put(big); /* a large buffer, freed already */
    out = capture_end();
    assert_int_equal(count_lines(out), 1);
    assert_non_null(strstr(out, "not a buffer from gcm_buf_get"));
    set_env_option("GCMALLOC_DEBUG", NULL, true);
    /* Without debug mode a foreign pointer is still refused, silently: m
     * (malloc's) is not freed by the call, so free() below is its only one.
     * (A debug build cannot turn the checks off: there it is reported.) */
    capture_begin();
    gcm_buf_put(m);
    out = capture_end();
    assert_int_equal(count_lines(out), gcm__config_debug ? 1 : 0);
    memset(m, 1, 256);
    free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_capacities),
        cmocka_unit_test(test_index_without_division),
        cmocka_unit_test(test_reuse_and_stats),
        cmocka_unit_test(test_large_buffers),
        cmocka_unit_test(test_chunks_follow_cycles),
        cmocka_unit_test(test_cross_thread),
        cmocka_unit_test(test_debug_misuse),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
