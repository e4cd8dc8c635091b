/*
 * test_prof_bucket.c — src/prof_bucket.c: one bucket per (stack, kind,
 * name), found again by content, names copied, concurrent interning.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "gcmalloc.h"
#include "internal.h"

static void fake_stack(uintptr_t *pcs, int depth, uintptr_t seed)
{
    for (int i = 0; i < depth; i++)
        pcs[i] = 0x400000 + seed * 0x1000 + (uintptr_t)i * 8;
}

static void test_same_stack_same_bucket(void **state)
{
    (void)state;
    uintptr_t a[10], b[10];
    fake_stack(a, 10, 1);
    memcpy(b, a, sizeof a);
    size_t before = gcm__bucket_count();
    gcm__bucket *x = gcm__bucket_intern(a, 10, GCM_PROF_GC, NULL);
    assert_non_null(x);
    assert_int_equal(gcm__bucket_count(), before + 1);
    assert_ptr_equal(gcm__bucket_intern(b, 10, GCM_PROF_GC, NULL), x);
    assert_int_equal(gcm__bucket_count(), before + 1);
    assert_int_equal(x->depth, 10);
    assert_int_equal(x->kind, GCM_PROF_GC);
    assert_null(x->name);
    assert_memory_equal(x->pcs, a, sizeof a);
    assert_ptr_equal(gcm__bucket_list(), x); /* newest first */
    assert_int_equal(x->id, before + 1);
    /* A different depth, frame, kind or name is another site. */
    assert_ptr_not_equal(gcm__bucket_intern(a, 9, GCM_PROF_GC, NULL), x);
    b[9]++;
    assert_ptr_not_equal(gcm__bucket_intern(b, 10, GCM_PROF_GC, NULL), x);
    assert_ptr_not_equal(gcm__bucket_intern(a, 10, GCM_PROF_POOL, NULL), x);
    assert_ptr_not_equal(gcm__bucket_intern(a, 10, GCM_PROF_GC, "n"), x);
    assert_int_equal(gcm__bucket_count(), before + 5);
}

static void test_names_are_copied_and_compared_by_content(void **state)
{
    (void)state;
    uintptr_t a[3];
    fake_stack(a, 3, 2);
    char name[32];
    strcpy(name, "request-arena");
    gcm__bucket *x = gcm__bucket_intern(a, 3, GCM_PROF_ARENA, name);
    assert_non_null(x);
    assert_ptr_not_equal(x->name, name);
    assert_string_equal(x->name, "request-arena");
    strcpy(name, "something-else");
    assert_string_equal(x->name, "request-arena");
    assert_ptr_equal(gcm__bucket_intern(a, 3, GCM_PROF_ARENA, "request-arena"), x);
    gcm__bucket *y = gcm__bucket_intern(a, 3, GCM_PROF_ARENA, name);
    assert_ptr_not_equal(y, x);
    /* Long names are cut, not refused. */
    char longname[400];
    memset(longname, 'z', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    gcm__bucket *z = gcm__bucket_intern(a, 3, GCM_PROF_POOL, longname);
    assert_non_null(z);
    assert_int_equal(strlen(z->name), 127);
}

static void test_edges(void **state)
{
    (void)state;
    uintptr_t a[GCM_PROF_MAX_DEPTH + 8];
    fake_stack(a, GCM_PROF_MAX_DEPTH + 8, 3);
    gcm__bucket *e = gcm__bucket_intern(NULL, 0, GCM_PROF_MALLOC, NULL);
    assert_non_null(e); /* an empty stack is a site too */
    assert_int_equal(e->depth, 0);
    assert_ptr_equal(gcm__bucket_intern(a, 0, GCM_PROF_MALLOC, NULL), e);
    assert_null(gcm__bucket_intern(NULL, 3, GCM_PROF_GC, NULL));
    assert_null(gcm__bucket_intern(a, -1, GCM_PROF_GC, NULL));
    assert_null(gcm__bucket_intern(a, 3, GCM_PROF__KINDS, NULL));
    gcm__bucket *d = gcm__bucket_intern(a, GCM_PROF_MAX_DEPTH + 8, GCM_PROF_GC, NULL);
    assert_non_null(d);
    assert_int_equal(d->depth, GCM_PROF_MAX_DEPTH);
    assert_string_equal(gcm__prof_kind_name(GCM_PROF_GC), "gc");
    assert_string_equal(gcm__prof_kind_name(GCM_PROF_ARENA), "arena");
    assert_string_equal(gcm__prof_kind_name(GCM_PROF_POOL), "pool");
    assert_string_equal(gcm__prof_kind_name(GCM_PROF_BUF), "buf");
    assert_string_equal(gcm__prof_kind_name(GCM_PROF_MALLOC), "malloc");
    assert_string_equal(gcm__prof_kind_name((gcm__prof_kind)42), "?");
}

#define THREADS 4
#define STACKS 500

static gcm__bucket *seen[THREADS][STACKS];

static void *intern_many(void *arg)
{
    int id = (int)(intptr_t)arg;
    for (int round = 0; round < 3; round++)
        for (int i = 0; i < STACKS; i++) {
            uintptr_t pcs[8];
            fake_stack(pcs, 8, 1000 + (uintptr_t)i);
            gcm__bucket *b = gcm__bucket_intern(pcs, 8, GCM_PROF_BUF, "conc");
            if (round == 0)
                seen[id][i] = b;
            else if (seen[id][i] != b)
                seen[id][i] = NULL;
        }
    return NULL;
}

static void test_concurrent_interning(void **state)
{
    (void)state;
    size_t before = gcm__bucket_count();
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, intern_many, (void *)(intptr_t)i), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    /* Every thread got the same bucket for the same stack, exactly one
     * bucket per stack was made, and all are on the list. */
    assert_int_equal(gcm__bucket_count(), before + STACKS);
    for (int i = 0; i < STACKS; i++) {
        assert_non_null(seen[0][i]);
        for (int t = 1; t < THREADS; t++)
            assert_ptr_equal(seen[t][i], seen[0][i]);
    }
    size_t on_list = 0;
    for (gcm__bucket *b = gcm__bucket_list(); b != NULL; b = b->all)
        on_list += b->kind == GCM_PROF_BUF && b->name != NULL &&
                   strcmp(b->name, "conc") == 0;
    assert_int_equal(on_list, STACKS);
}

int main(void)
{
    gcm_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_stack_same_bucket),
        cmocka_unit_test(test_names_are_copied_and_compared_by_content),
        cmocka_unit_test(test_edges),
        cmocka_unit_test(test_concurrent_interning),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
