/*
 * test_prof_sampled.c — src/prof_sampled.c: remembering sampled objects,
 * the free filter, explicit frees, realloc, frees found by the collector
 * (including objects revived for finalization), and publication of the
 * GC heap's counts as of the last completed cycle.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#define GC_THREADS
#define GC_NO_THREAD_REDIRECTS
#include <gc/gc.h>

#include "gcmalloc.h"
#include "internal.h"
#include "stack_scrub.h"

static gcm__bucket *fake_bucket(gcm__prof_kind kind, uintptr_t seed)
{
    uintptr_t pcs[4];
    for (int i = 0; i < 4; i++)
        pcs[i] = 0x500000 + seed * 0x100 + (uintptr_t)i * 8;
    gcm__bucket *b = gcm__bucket_intern(pcs, 4, kind, NULL);
    assert_non_null(b);
    return b;
}

/* The published counts of b, as a profile would show them. */
static gcm__prof_counts counts_of(const gcm__bucket *b)
{
    gcm__prof_snap s;
    assert_int_equal(gcm__prof_snap_take(&s), 0);
    gcm__prof_counts c = {0};
    for (size_t i = 0; i < s.n; i++)
        if (s.recs[i].b == b)
            c = s.recs[i].c;
    gcm__prof_snap_free(&s);
    return c;
}

/* The bucket whose innermost frame is in function fn. */
static gcm__bucket *bucket_at(const char *fn, gcm__prof_kind kind)
{
    for (gcm__bucket *b = gcm__bucket_list(); b != NULL; b = b->all) {
        if (b->kind != kind || b->depth == 0)
            continue;
        gcm__sym_frame f[16];
        int n = gcm__sym_resolve(GCM_SYM_LINES, b->pcs[0] - 1, f, 16);
        if (n > 0 && f[n - 1].function != NULL && strcmp(f[n - 1].function, fn) == 0)
            return b;
    }
    return NULL;
}

static uint32_t filter_word(const void *p)
{
    return gcm__prof_filter[gcm__prof_filter_slot(p)];
}

/* --- before any collection ------------------------------------------------ */

/* Sites are functions of their own; the empty asm after each call keeps
 * the compiler from turning it into a tail call (whose frame would be
 * gone from the stack). */
#define KEEP(p) __asm__ volatile("" : : "r"(p) : "memory")

__attribute__((noinline)) void *first_site(void)
{
    void *p = gcm_malloc(48);
    KEEP(p);
    return p;
}

static void *volatile keep_first;

static void test_pending_shown_before_first_cycle(void **state)
{
    (void)state;
    if (gcm__sampled_cycles() != 0)
        skip(); /* bdwgc collected on its own already */
    int64_t old = gcm_profile_set_rate(1);
    keep_first = first_site();
    gcm_profile_set_rate(old);
    gcm__bucket *b = bucket_at("first_site", GCM_PROF_GC);
    assert_non_null(b);
    /* Nothing is published before the first cycle, so a profile shows what
     * is pending rather than nothing (as Go's MemProfile does). */
    gcm__prof_counts c = counts_of(b);
    assert_int_equal(c.allocs, 1);
    assert_int_equal(c.alloc_bytes, GC_size(keep_first)); /* bdwgc's class */
}

/* --- explicitly released kinds -------------------------------------------- */

static char objs[1000][32];

static void test_explicit_kind_exact(void **state)
{
    (void)state;
    gcm__bucket *b = fake_bucket(GCM_PROF_MALLOC, 1);
    uint32_t before[1000];
    for (int i = 0; i < 1000; i++)
        before[i] = filter_word(objs[i]);
    size_t live0 = gcm__sampled_live();
    for (int i = 0; i < 1000; i++) {
        assert_true(gcm__sampled_add(objs[i], 32, b));
        assert_true(gcm__prof_maybe_sampled(objs[i]));
    }
    assert_int_equal(gcm__sampled_live(), live0 + 1000);
    gcm__prof_counts c = counts_of(b);
    assert_int_equal(c.allocs, 1000);
    assert_int_equal(c.alloc_bytes, 32000);
    assert_int_equal(c.frees, 0);
    for (int i = 0; i < 600; i++)
        gcm__prof_free(objs[i]);
    c = counts_of(b); /* exact at once: no cycle needed */
    assert_int_equal(c.frees, 600);
    assert_int_equal(c.free_bytes, 600 * 32);
    /* Freeing again, or an address never sampled, changes nothing. */
    gcm__prof_record_free(objs[0]);
    char other;
    gcm__prof_record_free(&other);
    assert_int_equal(counts_of(b).frees, 600);
    for (int i = 600; i < 1000; i++)
        gcm__prof_free(objs[i]);
    assert_int_equal(counts_of(b).frees, 1000);
    assert_int_equal(gcm__sampled_live(), live0);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(filter_word(objs[i]), before[i]);
}

static void test_address_reused_without_free(void **state)
{
    (void)state;
    gcm__bucket *a = fake_bucket(GCM_PROF_POOL, 2), *b = fake_bucket(GCM_PROF_POOL, 3);
    static char obj[64];
    assert_true(gcm__sampled_add(obj, 64, a));
    /* The same address sampled again: the first object must be gone. */
    assert_true(gcm__sampled_add(obj, 16, b));
    assert_int_equal(counts_of(a).frees, 1);
    assert_int_equal(counts_of(a).free_bytes, 64);
    gcm__prof_record_free(obj);
    assert_int_equal(counts_of(b).frees, 1);
    assert_int_equal(counts_of(b).free_bytes, 16);
}

static void test_detach_reattach_release(void **state)
{
    (void)state;
    gcm__bucket *b = fake_bucket(GCM_PROF_MALLOC, 4);
    static char obj[16];
    gcm__prof_obj o;
    assert_false(gcm__prof_detach(obj, &o)); /* not sampled */
    assert_true(gcm__sampled_add(obj, 16, b));
    assert_true(gcm__prof_detach(obj, &o));
    assert_ptr_equal(o.bucket, b);
    assert_int_equal(o.bytes, 16);
    assert_false(gcm__prof_maybe_sampled(obj) && gcm__prof_detach(obj, &o));
    assert_int_equal(counts_of(b).frees, 0); /* detaching is not a free */
    gcm__prof_reattach(obj, &o);
    assert_true(gcm__prof_maybe_sampled(obj));
    assert_int_equal(counts_of(b).allocs, 1); /* nor is re-attaching an alloc */
    assert_true(gcm__prof_detach(obj, &o));
    gcm__prof_release(&o);
    gcm__prof_counts c = counts_of(b);
    assert_int_equal(c.allocs, 1);
    assert_int_equal(c.frees, 1);
    gcm__prof_reattach(NULL, &o);
    gcm__prof_reattach(obj, NULL);
    gcm__prof_release(NULL);
}

/* A steady number of live samples, one freed and one added at a time (a
 * program at a steady heap, every allocation sampled): rebuilding the
 * table (a mapping, a copy of every entry, an unmapping) must stay rare at
 * every live count, including just under half the table's slots, where it
 * used to happen every few operations.  Plateaus in rising order: tables
 * never shrink, so each reaches a new size. */
static void test_table_rebuilds_amortized(void **state)
{
    (void)state;
    gcm__bucket *b = fake_bucket(GCM_PROF_MALLOC, 6);
    const uintptr_t base = (uintptr_t)0x6e0000000000;
    size_t live0 = gcm__sampled_live(), lo = 0, hi = 0; /* live: [lo, hi) */
    uint64_t churn_rebuilds = 0;
    for (int k = 10; k <= 13; k++) {
        size_t goal = ((size_t)1 << k) - 8 - (live0 < 8 ? live0 : 8);
        for (; hi - lo < goal; hi++)
            assert_true(gcm__sampled_add((void *)(base + hi * 16), 16, b));
        uint64_t r0 = gcm__sampled_rebuilds();
        /* The oldest freed, a new address added: each free leaves a
         * tombstone, as a program's frees and new allocations do. */
        for (size_t i = 0; i < 10000; i++, lo++, hi++) {
            gcm__prof_free((void *)(base + lo * 16));
            assert_true(gcm__sampled_add((void *)(base + hi * 16), 16, b));
        }
        churn_rebuilds += gcm__sampled_rebuilds() - r0;
    }
    print_message("%llu rebuilds in 40,000 operations\n", (unsigned long long)churn_rebuilds);
    /* Sized for half the slots: thousands.  Now a few dozen. */
    assert_true(churn_rebuilds <= 200);
    for (; lo < hi; lo++)
        gcm__prof_free((void *)(base + lo * 16));
    assert_int_equal(gcm__sampled_live(), live0);
}

static void test_table_growth(void **state)
{
    (void)state;
    gcm__bucket *b = fake_bucket(GCM_PROF_MALLOC, 5);
    size_t live0 = gcm__sampled_live();
    const uintptr_t base = (uintptr_t)0x6f0000000000;
    const int n = 200000;
    for (int i = 0; i < n; i++)
        assert_true(gcm__sampled_add((void *)(base + (uintptr_t)i * 16), 16, b));
    assert_int_equal(gcm__sampled_live(), live0 + (size_t)n);
    for (int i = 0; i < n; i += 2)
        gcm__prof_free((void *)(base + (uintptr_t)i * 16));
    /* Re-adding over tombstones, then everything out. */
    for (int i = 0; i < n; i += 2)
        assert_true(gcm__sampled_add((void *)(base + (uintptr_t)i * 16), 16, b));
    for (int i = 0; i < n; i++)
        gcm__prof_free((void *)(base + (uintptr_t)i * 16));
    assert_int_equal(gcm__sampled_live(), live0);
    gcm__prof_counts c = counts_of(b);
    assert_int_equal(c.allocs, n + n / 2);
    assert_int_equal(c.frees, n + n / 2);
}

/* --- the collected heap ------------------------------------------------------ */

#define N 1000
static void *gc_objs[N];

__attribute__((noinline)) static void make_gc_objects(gcm__bucket *b)
{
    for (int i = 0; i < N; i++) {
        gc_objs[i] = gcm_malloc(40);
        assert_non_null(gc_objs[i]);
        assert_true(gcm__sampled_add(gc_objs[i], 48, b));
    }
}

static void test_gc_published_as_of_last_cycle(void **state)
{
    (void)state;
    int64_t old = gcm_profile_set_rate(0); /* only our own records */
    gcm_gc();
    gcm__bucket *b = fake_bucket(GCM_PROF_GC, 6);
    make_gc_objects(b);
    /* Allocated since the last cycle: not published yet. */
    gcm__prof_counts c = counts_of(b);
    assert_int_equal(c.allocs, 0);
    uint64_t cycles = gcm__sampled_cycles();
    gcm_gc();
    assert_true(gcm__sampled_cycles() > cycles);
    c = counts_of(b);
    assert_int_equal(c.allocs, N);
    assert_int_equal(c.alloc_bytes, N * 48);
    assert_int_equal(c.frees, 0); /* all reachable */
    /* Explicit frees are published at the next cycle too. */
    for (int i = 0; i < N / 2; i++) {
        gcm_free(gc_objs[i]);
        gc_objs[i] = NULL;
    }
    assert_int_equal(counts_of(b).frees, 0);
    gcm_gc();
    assert_int_equal(counts_of(b).frees, N / 2);
    /* Dropped objects are found by the collector. */
    for (int i = N / 2; i < N; i++)
        gc_objs[i] = NULL;
    scrub_stack();
    gcm_gc();
    c = counts_of(b);
    assert_true(c.frees >= N - 10); /* conservative scanning may keep a few */
    assert_int_equal(c.free_bytes, c.frees * 48);
    gcm_gc();
    gcm_profile_set_rate(old);
}

#define NF 200
static int finalized;

static void on_finalize(void *obj, void *arg)
{
    (void)obj;
    (void)arg;
    __atomic_fetch_add(&finalized, 1, __ATOMIC_RELAXED);
}

__attribute__((noinline)) static void make_finalizable(gcm__bucket *b)
{
    for (int i = 0; i < NF; i++) {
        void *p = gcm_malloc(64);
        assert_non_null(p);
        assert_int_equal(gcm_set_finalizer(p, on_finalize, NULL), 0);
        assert_true(gcm__sampled_add(p, 80, b));
    }
}

static void test_finalizable_objects_freed_after_finalizing(void **state)
{
    (void)state;
    int64_t old = gcm_profile_set_rate(0);
    gcm__bucket *b = fake_bucket(GCM_PROF_GC, 7);
    make_finalizable(b);
    scrub_stack();
    gcm_gc();
    /* Unreachable, but bdwgc keeps them for their finalizers: not freed. */
    gcm__prof_counts c = counts_of(b);
    assert_int_equal(c.allocs, NF);
    assert_int_equal(c.frees, 0);
    /* Wait for every finalizer, not just most: an object whose finalizer
     * has not run yet is still queued, hence reachable, and the collections
     * below would not free it. */
    for (int i = 0; i < 500 && __atomic_load_n(&finalized, __ATOMIC_RELAXED) < NF; i++)
        usleep(10000);
    assert_true(__atomic_load_n(&finalized, __ATOMIC_RELAXED) >= NF - 10);
    scrub_stack();
    gcm_gc();
    gcm_gc();
    c = counts_of(b);
    assert_true(c.frees >= NF - 20);
    gcm_profile_set_rate(old);
}

/* A pool that holds pointers keeps its objects on the collected heap and
 * hands out pointers inside them (after a debug header, or aligned): the
 * collector must judge the object, not the pointer. */
static void *volatile interior_kept;

__attribute__((noinline)) static void make_interior(gcm__bucket *b)
{
    char *a = gcm_malloc(96), *c = gcm_malloc(96);
    assert_non_null(a);
    assert_non_null(c);
    assert_true(gcm__sampled_add(a + 32, 64, b));
    assert_true(gcm__sampled_add(c + 32, 64, b));
    interior_kept = a + 32; /* only an interior pointer keeps a alive */
}

static void test_collected_objects_of_other_kinds(void **state)
{
    (void)state;
    int64_t old = gcm_profile_set_rate(0);
    gcm_gc();
    uintptr_t pcs[2] = {0x580000, 0x580008};
    gcm__bucket *b = gcm__bucket_intern(pcs, 2, GCM_PROF_POOL | GCM_PROF_COLLECTED, "objs");
    assert_non_null(b);
    assert_true(b->collected);
    assert_int_equal(b->kind, GCM_PROF_POOL);
    assert_ptr_not_equal(gcm__bucket_intern(pcs, 2, GCM_PROF_POOL, "objs"), b);
    make_interior(b); /* c is dropped at once */
    /* Published as of the cycle, like the GC heap's. */
    assert_int_equal(counts_of(b).allocs, 0);
    scrub_stack();
    gcm_gc();
    gcm__prof_counts c = counts_of(b);
    assert_int_equal(c.allocs, 2);
    assert_int_equal(c.frees, 1); /* the one only its interior pointer held: kept */
    assert_true(gcm__prof_maybe_sampled(interior_kept));
    /* Released by its owner (a pool dropping it): counted at the next cycle. */
    gcm__prof_free(interior_kept);
    assert_int_equal(counts_of(b).frees, 1);
    gcm_gc();
    assert_int_equal(counts_of(b).frees, 2);
    interior_kept = NULL;
    gcm_profile_set_rate(old);
}

__attribute__((noinline)) void *grow_site(void)
{
    void *p = gcm_malloc(100);
    KEEP(p);
    return p;
}

__attribute__((noinline)) void *realloc_site(void *p, size_t n)
{
    void *q = gcm_realloc(p, n);
    KEEP(q);
    return q;
}

__attribute__((noinline)) void *free_site(void)
{
    void *p = gcm_malloc(24);
    KEEP(p);
    return p;
}

static void *volatile kept, *volatile kept2; /* reachable roots */

static void test_realloc_and_free_at_rate_one(void **state)
{
    (void)state;
    int64_t old = gcm_profile_set_rate(1);
    gcm_gc();
    void *p = grow_site();
    assert_true(gcm__prof_maybe_sampled(p));
    gcm__bucket *g1 = bucket_at("grow_site", GCM_PROF_GC);
    assert_non_null(g1);
    void *q = realloc_site(p, 5000); /* moves: a free and an allocation */
    assert_ptr_not_equal(q, p);
    assert_true(gcm__prof_maybe_sampled(q));
    size_t qsz = GC_size(q);
    gcm__bucket *rs = bucket_at("realloc_site", GCM_PROF_GC);
    assert_non_null(rs);
    /* Within its size class: in place, the same sampled object. */
    void *s = grow_site();
    gcm__bucket *g2 = bucket_at("grow_site", GCM_PROF_GC);
    assert_ptr_not_equal(g2, g1); /* another call site, another stack */
    void *t = realloc_site(s, 105);
    assert_ptr_equal(t, s);
    assert_true(gcm__prof_maybe_sampled(t));
    assert_ptr_equal(bucket_at("realloc_site", GCM_PROF_GC), rs); /* no new sample */
    kept = q;
    kept2 = t;
    void *f = free_site();
    gcm_free(f);
    gcm_profile_set_rate(0);
    gcm_gc();
    gcm__bucket *fs = bucket_at("free_site", GCM_PROF_GC);
    assert_non_null(fs);
    gcm__prof_counts c = counts_of(g1);
    assert_int_equal(c.allocs, 1);
    assert_int_equal(c.frees, 1);
    assert_int_equal(c.alloc_bytes, 112); /* bdwgc's class for 100 bytes */
    c = counts_of(rs);
    assert_int_equal(c.allocs, 1);
    assert_int_equal(c.frees, 0);
    assert_int_equal(c.alloc_bytes, qsz);
    c = counts_of(g2);
    assert_int_equal(c.allocs, 1);
    assert_int_equal(c.frees, 0);
    c = counts_of(fs);
    assert_int_equal(c.allocs, 1);
    assert_int_equal(c.frees, 1);
    gcm_profile_set_rate(old);
}

int main(void)
{
    gcm_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pending_shown_before_first_cycle),
        cmocka_unit_test(test_explicit_kind_exact),
        cmocka_unit_test(test_table_rebuilds_amortized),
        cmocka_unit_test(test_address_reused_without_free),
        cmocka_unit_test(test_detach_reattach_release),
        cmocka_unit_test(test_table_growth),
        cmocka_unit_test(test_gc_published_as_of_last_cycle),
        cmocka_unit_test(test_finalizable_objects_freed_after_finalizing),
        cmocka_unit_test(test_collected_objects_of_other_kinds),
        cmocka_unit_test(test_realloc_and_free_at_rate_one),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
