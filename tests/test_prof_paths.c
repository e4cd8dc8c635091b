/*
 * test_prof_paths.c — the profiler's view of the allocation paths other
 * than gcm_malloc: arenas (the inline path, the slow path, own-chunk
 * allocations, sprintf, realloc growth; released by rewind, reset and
 * free), pools (a miss is an allocation, a hit is not; dropped by a cycle
 * or by destroy; collected objects of pools that hold pointers), and
 * buffers (size classes and large ones).  At rate 1 every figure is exact;
 * at a low rate the arena's own countdown must still give unbiased
 * estimates.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "gcmalloc.h"
#include "internal.h"
#include "stack_scrub.h"

/* Published counts of (kind, name), optionally only stacks whose innermost
 * frame (as profiles show it) is in function `leaf`. */
static gcm__prof_counts totals(gcm__prof_kind kind, const char *name, const char *leaf)
{
    gcm__prof_snap s;
    assert_int_equal(gcm__prof_snap_take(&s), 0);
    gcm__prof_counts c = {0};
    for (size_t i = 0; i < s.n; i++) {
        const gcm__bucket *b = s.recs[i].b;
        if (b->kind != kind || b->name == NULL || strcmp(b->name, name) != 0)
            continue;
        if (leaf != NULL) {
            gcm__sym_frame f[16];
            int k = gcm__sym_api_frames(GCM_SYM_LINES, b->pcs, b->depth);
            int n = b->depth > k ? gcm__sym_resolve(GCM_SYM_LINES, b->pcs[k] - 1, f, 16) : 0;
            if (n == 0 || f[n - 1].function == NULL || strcmp(f[n - 1].function, leaf) != 0)
                continue;
        }
        c.allocs += s.recs[i].c.allocs;
        c.alloc_bytes += s.recs[i].c.alloc_bytes;
        c.frees += s.recs[i].c.frees;
        c.free_bytes += s.recs[i].c.free_bytes;
    }
    gcm__prof_snap_free(&s);
    return c;
}

#define KEEP(p) __asm__ volatile("" : : "r"(p) : "memory")

/* --- arenas ------------------------------------------------------------------ */

__attribute__((noinline)) void arena_site(gcm_arena *a, int n, size_t size)
{
    for (int i = 0; i < n; i++) {
        void *p = gcm_arena_alloc(a, size); /* the inline path */
        assert_non_null(p);
        KEEP(p);
    }
}

__attribute__((noinline)) void arena_later(gcm_arena *a, int n)
{
    for (int i = 0; i < n; i++) {
        void *p = gcm_arena_alloc(a, 40);
        KEEP(p);
    }
}

__attribute__((noinline)) void arena_other(gcm_arena *a)
{
    void *big = gcm_arena_alloc(a, 1 << 20); /* its own chunk */
    assert_non_null(big);
    char *s = gcm_arena_sprintf(a, "%d", 12345); /* 6 bytes: 16 */
    assert_string_equal(s, "12345");
    void *g = gcm_arena_alloc(a, 16);
    void *h = gcm_arena_realloc(a, g, 16, 64); /* grows in place by 48 */
    assert_ptr_equal(h, g);
    KEEP(big);
}

static void test_arena_exact_at_rate_one(void **state)
{
    (void)state;
    int64_t old = gcm_profile_set_rate(1);
    gcm_arena_options o = {.name = "paths-arena"};
    gcm_arena *a = gcm_arena_new(&o);
    assert_non_null(a);
    arena_site(a, 100, 40);
    gcm__prof_counts c = totals(GCM_PROF_ARENA, "paths-arena", "arena_site");
    assert_int_equal(c.allocs, 100);
    assert_int_equal(c.alloc_bytes, 100 * 48); /* what each takes: 16-rounded */
    assert_int_equal(c.frees, 0);
    /* A savepoint: what came after it is released by the rewind. */
    struct gcm_arena_mark m;
    assert_int_equal(gcm_arena_mark(a, &m), 0);
    arena_later(a, 10);
    assert_int_equal(totals(GCM_PROF_ARENA, "paths-arena", "arena_later").allocs, 10);
    assert_int_equal(gcm_arena_rewind(a, &m), 0);
    c = totals(GCM_PROF_ARENA, "paths-arena", "arena_later");
    assert_int_equal(c.frees, 10);
    assert_int_equal(c.free_bytes, 480);
    assert_int_equal(totals(GCM_PROF_ARENA, "paths-arena", "arena_site").frees, 0);
    arena_other(a);
    c = totals(GCM_PROF_ARENA, "paths-arena", "arena_other");
    assert_int_equal(c.allocs, 4);
    assert_int_equal(c.alloc_bytes, (1 << 20) + 16 + 16 + 48);
    /* Reset releases everything. */
    assert_int_equal(gcm_arena_reset(a), 0);
    c = totals(GCM_PROF_ARENA, "paths-arena", NULL);
    assert_int_equal(c.allocs, 100 + 10 + 4);
    assert_int_equal(c.frees, c.allocs);
    assert_int_equal(c.free_bytes, c.alloc_bytes);
    /* And free. */
    arena_site(a, 7, 100);
    gcm_arena_free(a);
    c = totals(GCM_PROF_ARENA, "paths-arena", NULL);
    assert_int_equal(c.allocs, 121);
    assert_int_equal(c.frees, 121);
    gcm_profile_set_rate(old);
}

static void test_arena_sampling_unbiased(void **state)
{
    (void)state;
    /* A low rate: the arena's own countdown, across chunk switches (whose
     * wasted tails must not bias it) and the inline path. */
    int64_t old = gcm_profile_set_rate(4096);
    gcm_arena_options o = {.name = "paths-rate", .chunk_size = 64 * 1024};
    gcm_arena *a = gcm_arena_new(&o);
    assert_non_null(a);
    const int rounds = 20, per = 20000;
    for (int r = 0; r < rounds; r++) {
        arena_site(a, per, 100); /* 112 each: 2.24 MB a round */
        assert_int_equal(gcm_arena_reset(a), 0);
    }
    gcm_arena_free(a);
    gcm__prof_counts c = totals(GCM_PROF_ARENA, "paths-rate", NULL);
    uint64_t n, bytes;
    gcm__prof_unbias(c.allocs, c.alloc_bytes, 4096, &n, &bytes);
    double want = (double)rounds * per * 112;
    /* ~10,900 samples expected: 5% is about five standard deviations. */
    if (bytes < want * 0.95 || bytes > want * 1.05)
        fail_msg("estimated %llu bytes from %llu samples, allocated %.0f",
                 (unsigned long long)bytes, (unsigned long long)c.allocs, want);
    assert_int_equal(c.frees, c.allocs);
    gcm_profile_set_rate(old);
}

static void test_arena_notices_rate_changes(void **state)
{
    (void)state;
    int64_t old = gcm_profile_set_rate(0);
    gcm_arena_options o = {.name = "paths-change"};
    gcm_arena *a = gcm_arena_new(&o);
    assert_non_null(a);
    arena_site(a, 100, 32);
    assert_int_equal(totals(GCM_PROF_ARENA, "paths-change", NULL).allocs, 0);
    /* Turned on while the arena has room left in its chunk: its next reset
     * (or slow path) picks the new rate up. */
    gcm_profile_set_rate(1);
    assert_int_equal(gcm_arena_reset(a), 0);
    arena_site(a, 10, 32);
    assert_int_equal(totals(GCM_PROF_ARENA, "paths-change", NULL).allocs, 10);
    /* Turned off: nothing more is recorded. */
    gcm_profile_set_rate(0);
    assert_int_equal(gcm_arena_reset(a), 0);
    arena_site(a, 10, 32);
    gcm__prof_counts c = totals(GCM_PROF_ARENA, "paths-change", NULL);
    assert_int_equal(c.allocs, 10);
    assert_int_equal(c.frees, 10);
    gcm_arena_free(a);
    gcm_profile_set_rate(old);
}

/* --- pools ------------------------------------------------------------------- */

static void *pool_objs[64];

__attribute__((noinline)) void pool_site(gcm_pool *p, int n)
{
    for (int i = 0; i < n; i++) {
        pool_objs[i] = gcm_pool_get(p);
        assert_non_null(pool_objs[i]);
    }
}

static uint64_t gc_kind_allocs(void)
{
    gcm__prof_snap s;
    assert_int_equal(gcm__prof_snap_take(&s), 0);
    uint64_t n = 0;
    for (size_t i = 0; i < s.n; i++)
        if (s.recs[i].b->kind == GCM_PROF_GC)
            n += s.recs[i].c.allocs;
    gcm__prof_snap_free(&s);
    return n;
}

static void test_pool_misses_drops_destroy(void **state)
{
    (void)state;
    int64_t old = gcm_profile_set_rate(1);
    gcm_pool_options o = {.name = "paths-pool", .size = 100};
    gcm_pool *p = gcm_pool_new(&o);
    assert_non_null(p);
    pool_site(p, 50); /* 50 misses */
    gcm__prof_counts c = totals(GCM_PROF_POOL, "paths-pool", "pool_site");
    /* What an object takes: its size, and its header in debug mode. */
    const uint64_t obj = 100 + (gcm__debug_on() ? 16 : 0);
    assert_int_equal(c.allocs, 50);
    assert_int_equal(c.alloc_bytes, 50 * obj);
    for (int i = 0; i < 50; i++)
        gcm_pool_put(p, pool_objs[i]);
    pool_site(p, 1); /* a hit: no allocation */
    assert_int_equal(totals(GCM_PROF_POOL, "paths-pool", NULL).allocs, 50);
    gcm_pool_put(p, pool_objs[0]);
    /* Two cycles: the cached objects become victims, then are dropped. */
    gcm_gc();
    gcm_gc();
    c = totals(GCM_PROF_POOL, "paths-pool", NULL);
    assert_int_equal(c.frees, 50);
    assert_int_equal(c.free_bytes, 50 * obj);
    /* Destroy drops what is cached. */
    pool_site(p, 5);
    for (int i = 0; i < 5; i++)
        gcm_pool_put(p, pool_objs[i]);
    assert_int_equal(gcm_pool_destroy(p), 0);
    c = totals(GCM_PROF_POOL, "paths-pool", NULL);
    assert_int_equal(c.allocs, 55);
    assert_int_equal(c.frees, 55);
    gcm_profile_set_rate(old);
}

static void test_pool_of_collected_objects(void **state)
{
    (void)state;
    int64_t old = gcm_profile_set_rate(1);
    gcm_gc();
    gcm_pool_options o = {.name = "paths-gcpool", .size = 64, .holds_pointers = 1};
    gcm_pool *p = gcm_pool_new(&o);
    assert_non_null(p);
    uint64_t gc0 = gc_kind_allocs();
    pool_site(p, 20);
    gcm_gc();
    /* Sampled as the pool's objects, not as GC-heap allocations inside it;
     * published as of the cycle, as collected objects are. */
    assert_int_equal(gc_kind_allocs(), gc0);
    gcm__prof_counts c = totals(GCM_PROF_POOL, "paths-gcpool", "pool_site");
    assert_int_equal(c.allocs, 20);
    assert_int_equal(c.frees, 0);
    /* Ten are never put back: the collector finds them. */
    for (int i = 10; i < 20; i++)
        pool_objs[i] = NULL;
    scrub_stack();
    gcm_gc();
    c = totals(GCM_PROF_POOL, "paths-gcpool", NULL);
    assert_true(c.frees >= 8 && c.frees <= 10); /* conservative scanning may keep one */
    uint64_t lost = c.frees;
    /* The other ten go back and are dropped two cycles later. */
    for (int i = 0; i < 10; i++) {
        gcm_pool_put(p, pool_objs[i]);
        pool_objs[i] = NULL;
    }
    gcm_gc();
    gcm_gc();
    gcm_gc();
    c = totals(GCM_PROF_POOL, "paths-gcpool", NULL);
    assert_true(c.frees >= lost + 10);
    assert_int_equal(gcm_pool_destroy(p), 0);
    gcm_profile_set_rate(old);
}

/* --- buffers ------------------------------------------------------------------ */

static void *bufs[32];

__attribute__((noinline)) void buf_site(size_t size, int n)
{
    for (int i = 0; i < n; i++) {
        bufs[i] = gcm_buf_get(size);
        assert_non_null(bufs[i]);
    }
}

static void test_buffers(void **state)
{
    (void)state;
    int64_t old = gcm_profile_set_rate(1);
    gcm_gc();
    gcm_gc(); /* empty the class pools' caches */
    size_t cls = gcm_buf_size_class(3000);
    char name[32];
    snprintf(name, sizeof name, "buf-%zu", cls);
    gcm__prof_counts c0 = totals(GCM_PROF_BUF, name, "buf_site");
    buf_site(3000, 30);
    gcm__prof_counts c = totals(GCM_PROF_BUF, name, "buf_site");
    assert_int_equal(c.allocs - c0.allocs, 30);
    assert_int_equal(c.alloc_bytes - c0.alloc_bytes, 30 * cls);
    for (int i = 0; i < 30; i++)
        gcm_buf_put(bufs[i]);
    gcm_gc();
    gcm_gc();
    c = totals(GCM_PROF_BUF, name, "buf_site");
    assert_int_equal(c.frees - c0.frees, 30);
    /* Above the largest class: allocated and freed directly. */
    buf_site(100000, 1);
    c = totals(GCM_PROF_BUF, "buf-large", "buf_site");
    assert_int_equal(c.allocs, 1);
    assert_true(c.alloc_bytes >= 100000);
    assert_int_equal(c.frees, 0);
    gcm_buf_put(bufs[0]);
    assert_int_equal(totals(GCM_PROF_BUF, "buf-large", "buf_site").frees, 1);
    gcm_profile_set_rate(old);
}

int main(void)
{
    gcm_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_arena_exact_at_rate_one),
        cmocka_unit_test(test_arena_sampling_unbiased),
        cmocka_unit_test(test_arena_notices_rate_changes),
        cmocka_unit_test(test_pool_misses_drops_destroy),
        cmocka_unit_test(test_pool_of_collected_objects),
        cmocka_unit_test(test_buffers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
