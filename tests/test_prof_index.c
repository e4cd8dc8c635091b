/*
 * test_prof_index.c — src/prof_index.c: the u64 map and the content-keyed
 * index keep every entry findable across many rebuilds.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "internal.h"

/* Keys that collide in their low bits, to make the probes run long. */
static uint64_t key_of(uint64_t i) { return (i + 1) << 20 | 1; }

static void test_u64map_survives_growth(void **state)
{
    (void)state;
    gcm__u64map m = {0};
    uint64_t v;
    assert_false(gcm__u64map_get(&m, 42, &v)); /* empty: no table yet */
    enum { N = 20000 };
    for (uint64_t i = 0; i < N; i++) {
        assert_false(gcm__u64map_get(&m, key_of(i), &v));
        assert_true(gcm__u64map_put(&m, key_of(i), i * 3));
        /* At most half full, so a probe always ends at an empty slot. */
        assert_true(m.n * 2 <= m.cap);
    }
    assert_int_equal(m.n, N);
    for (uint64_t i = 0; i < N; i++) {
        assert_true(gcm__u64map_get(&m, key_of(i), &v));
        assert_int_equal(v, i * 3);
    }
    assert_false(gcm__u64map_get(&m, key_of(N), &v));
    gcm__u64map_free(&m);
    assert_null(m.k);
    assert_int_equal(m.cap, 0);
}

typedef struct strs {
    char s[5001][12]; /* one spare row for the candidate */
    size_t n;
} strs;

static uint64_t str_hash(const void *ctx, size_t i)
{
    const char *s = ((const strs *)ctx)->s[i];
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

/* What a caller does: reserve, probe, compare, insert. */
static size_t intern(strs *S, uint32_t **t, size_t *cap, const char *s)
{
    assert_true(gcm__index_reserve(t, cap, S->n, 8, str_hash, S));
    assert_true(*cap >= 8 && (*cap & (*cap - 1)) == 0);
    snprintf(S->s[S->n], sizeof S->s[0], "%s", s); /* hash the candidate */
    size_t j = (size_t)str_hash(S, S->n) & (*cap - 1);
    for (; (*t)[j] != 0; j = (j + 1) & (*cap - 1))
        if (strcmp(S->s[(*t)[j] - 1], s) == 0)
            return (*t)[j] - 1;
    (*t)[j] = (uint32_t)S->n + 1;
    return S->n++;
}

static void test_index_survives_growth(void **state)
{
    (void)state;
    static strs S;
    uint32_t *t = NULL;
    size_t cap = 0;
    char buf[12];
    for (int i = 0; i < 5000; i++) {
        snprintf(buf, sizeof buf, "s%d", i);
        assert_int_equal(intern(&S, &t, &cap, buf), i);
    }
    assert_true(cap >= 2 * 5000);
    for (int i = 4999; i >= 0; i--) {
        snprintf(buf, sizeof buf, "s%d", i);
        assert_int_equal(intern(&S, &t, &cap, buf), i); /* found, not added */
    }
    assert_int_equal(S.n, 5000);
    gcm__prof_dealloc(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_u64map_survives_growth),
        cmocka_unit_test(test_index_survives_growth),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
