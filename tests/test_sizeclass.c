/*
 * test_sizeclass.c — the buffer size classes (src/sizeclass.c and the
 * generated src/sizeclasses.h).
 *
 * Checks every size from 0 to the largest class: the class it maps to is
 * the smallest that fits, and wastes at most 12.5%; the chunk geometry of
 * every class; and that the committed table is exactly what
 * tools/gen_sizeclasses prints today.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "internal.h"

static void test_every_size(void **state)
{
    (void)state;
    double worst = 0;
    size_t worst_at = 0;
    for (size_t n = 1; n <= GCM_SC_MAX; n++) {
        unsigned c = gcm__size_class(n);
        assert_true(c >= 1 && c <= GCM_SC_COUNT);
        size_t sz = gcm__class_bytes(c);
        if (sz < n)
            fail_msg("size %zu: class %u has only %zu bytes", n, c, sz);
        /* The smallest class that fits. */
        if (c > 1 && gcm__class_bytes(c - 1) >= n)
            fail_msg("size %zu: class %u (%zu) chosen but class %u (%zu) fits",
                     n, c, sz, c - 1, gcm__class_bytes(c - 1));
        double waste = (double)(sz - n) / (double)sz;
        if (waste > 0.125)
            fail_msg("size %zu: class %zu wastes %.2f%%", n, sz, 100 * waste);
        if (waste > worst) {
            worst = waste;
            worst_at = n;
        }
    }
    /* The bound is met with a margin everywhere: 1/9 is the design's worst. */
    assert_true(worst <= 1.0 / 9);
    assert_true(worst_at > 8);
    assert_int_equal(gcm__size_class(0), 1); /* 0 is served as 1 */
    assert_int_equal(gcm__size_class(GCM_SC_MAX + 1), 0);
    assert_int_equal(gcm__size_class(SIZE_MAX), 0);
    assert_int_equal(gcm__class_bytes(gcm__size_class(GCM_SC_MAX)), GCM_SC_MAX);
}

static void test_class_table(void **state)
{
    (void)state;
    assert_int_equal(gcm__class_bytes(0), 0);
    assert_int_equal(gcm__class_bytes(GCM_SC_COUNT + 1), 0);
    assert_int_equal(gcm__class_chunk_bytes(0), 0);
    assert_int_equal(gcm__class_objects(GCM_SC_COUNT + 1), 0);
    assert_int_equal(gcm__class_bytes(GCM_SC_COUNT), GCM_SC_MAX);
    for (unsigned c = 1; c <= GCM_SC_COUNT; c++) {
        size_t sz = gcm__class_bytes(c);
        if (c > 1)
            assert_true(sz > gcm__class_bytes(c - 1));
        /* Buffers of 128 bytes and up are 16-byte aligned in their chunk. */
        if (sz >= 128)
            assert_int_equal(sz % 16, 0);
        size_t chunk = gcm__class_chunk_bytes(c);
        assert_int_equal(chunk % 65536, 0);
        assert_true(chunk >= 65536 && chunk <= 16 * 65536);
        uint32_t n = gcm__class_objects(c);
        assert_int_equal(n, chunk / sz);
        assert_true(n >= 2);
        /* Go's "max waste": every buffer at its worst, plus the tail. */
        size_t prev = c > 1 ? gcm__class_bytes(c - 1) : 0;
        double max_waste = ((double)(sz - prev - 1) * n +
                            (double)(chunk - (size_t)n * sz)) / (double)chunk;
        if (max_waste > 0.125)
            fail_msg("class %u (%zu B): chunk max waste %.2f%%", c, sz,
                     100 * max_waste);
    }
    /* Every power of two is a class: a page-sized request takes a page. */
    for (size_t p2 = 1; p2 <= GCM_SC_MAX; p2 *= 2)
        assert_int_equal(gcm__class_bytes(gcm__size_class(p2)), p2);
}

static char *slurp(FILE *f, size_t *len)
{
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    assert_non_null(buf);
    size_t r;
    while ((r = fread(buf + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) {
            cap *= 2;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
    }
    *len = n;
    return buf;
}

static void test_generated_file_is_current(void **state)
{
    (void)state;
    FILE *gen = popen(GCM_BINARY_DIR "/tools/gen_sizeclasses", "r");
    assert_non_null(gen);
    size_t glen;
    char *fresh = slurp(gen, &glen);
    assert_int_equal(pclose(gen), 0);
    FILE *f = fopen(GCM_SOURCE_DIR "/src/sizeclasses.h", "r");
    assert_non_null(f);
    size_t clen;
    char *committed = slurp(f, &clen);
    fclose(f);
    if (glen != clen || memcmp(fresh, committed, glen) != 0)
        fail_msg("src/sizeclasses.h differs from what tools/gen_sizeclasses "
                 "prints: regenerate it with "
                 "./build/tools/gen_sizeclasses > src/sizeclasses.h");
    free(fresh);
    free(committed);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_size),
        cmocka_unit_test(test_class_table),
        cmocka_unit_test(test_generated_file_is_current),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
