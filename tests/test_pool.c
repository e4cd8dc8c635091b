/*
 * test_pool.c — typed pools (src/pool.c): Get/Put paths and their exact
 * statistics after every step, victim rotation across GC cycles, objects
 * of pointer-holding pools kept alive while cached, cross-thread put/get,
 * thread exit, destroy, debug-mode misuse reports, MemStats and the
 * GCMALLOC_POOLSTATS lines.
 *
 * The collector's own pacing is off (GOGC=off) so the only cycles are the
 * tests' gcm_gc() calls and every count is exact.
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
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#define GC_THREADS
#define GC_NO_THREAD_REDIRECTS
#include <gc/gc.h>

#include "gcmalloc.h"
#include "internal.h"

#include "diag_capture.h"
#include "env_option.h"
#include "stack_scrub.h"

/* --- helpers ------------------------------------------------------------------- */

static struct gcm_pool_stats stats(gcm_pool *p)
{
    struct gcm_pool_stats st;
    assert_int_equal(gcm_pool_stats(p, &st), 0);
    return st;
}

/* Asserts every counter of the stats at once, so a failure shows which. */
#define EXPECT(p, g, pu, hp, hs, ht, hv, mi, dr, ca, vi)                       \
    do {                                                                       \
        struct gcm_pool_stats s_ = stats(p);                                   \
        assert_int_equal(s_.gets, g);                                          \
        assert_int_equal(s_.puts, pu);                                         \
        assert_int_equal(s_.hits_private, hp);                                 \
        assert_int_equal(s_.hits_shared, hs);                                  \
        assert_int_equal(s_.hits_stolen, ht);                                  \
        assert_int_equal(s_.hits_victim, hv);                                  \
        assert_int_equal(s_.misses, mi);                                       \
        assert_int_equal(s_.dropped, dr);                                      \
        assert_int_equal(s_.cached, ca);                                       \
        assert_int_equal(s_.victims, vi);                                      \
    } while (0)

static int news, resets, drops;

static int count_new(void *obj, void *arg)
{
    (void)arg;
    news++;
    ((uint64_t *)obj)[0] = 0xfeedface;
    return 0;
}

static void count_reset(void *obj, void *arg)
{
    (void)obj;
    (void)arg;
    resets++;
}

static void count_drop(void *obj, void *arg)
{
    (void)obj;
    (void)arg;
    __atomic_fetch_add(&drops, 1, __ATOMIC_RELAXED);
}

static gcm_pool *counted_pool(const char *name, size_t size, int gc)
{
    news = resets = drops = 0;
    gcm_pool_options o = {.name = name, .size = size, .holds_pointers = gc,
                          .new_fn = count_new, .reset_fn = count_reset,
                          .drop_fn = count_drop};
    gcm_pool *p = gcm_pool_new(&o);
    assert_non_null(p);
    return p;
}

static int setup(void **state)
{
    (void)state;
    gcm_init();
    gcm_set_gc_percent(-1);
    return 0;
}

/* --- arguments ----------------------------------------------------------------- */

static void test_bad_arguments(void **state)
{
    (void)state;
    errno = 0;
    assert_null(gcm_pool_new(NULL));
    assert_int_equal(errno, EINVAL);
    gcm_pool_options o = {.size = 0};
    errno = 0;
    assert_null(gcm_pool_new(&o));
    assert_int_equal(errno, EINVAL);
    o.size = 8;
    o.align = 24; /* not a power of two */
    errno = 0;
    assert_null(gcm_pool_new(&o));
    assert_int_equal(errno, EINVAL);
    o.align = 8192; /* above the largest alignment */
    errno = 0;
    assert_null(gcm_pool_new(&o));
    assert_int_equal(errno, EINVAL);

    errno = 0;
    assert_null(gcm_pool_get(NULL));
    assert_int_equal(errno, EINVAL);
    int x;
    gcm_pool_put(NULL, &x); /* ignored */
    assert_int_equal(gcm_pool_destroy(NULL), EINVAL);
    struct gcm_pool_stats st;
    assert_int_equal(gcm_pool_stats(NULL, &st), EINVAL);

    o.align = 0;
    gcm_pool *p = gcm_pool_new(&o);
    assert_non_null(p);
    assert_int_equal(gcm_pool_stats(p, NULL), EINVAL);
    gcm_pool_put(p, NULL); /* like free(NULL) */
    EXPECT(p, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
    assert_string_equal(stats(p).name, "pool"); /* the default name */
    assert_int_equal(gcm_pool_destroy(p), 0);
}

/* --- the paths of Get and Put, counted exactly ----------------------------------- */

static void test_paths_and_exact_stats(void **state)
{
    (void)state;
    gcm_pool *p = counted_pool("paths", 64, 0);
    EXPECT(p, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);

    uint64_t *a = gcm_pool_get(p); /* miss: new, zeroed, then new_fn */
    assert_non_null(a);
    assert_int_equal((uintptr_t)a % 16, 0);
    assert_int_equal(a[0], 0xfeedface);
    for (int i = 1; i < 8; i++)
        assert_int_equal(a[i], 0);
    assert_int_equal(news, 1);
    EXPECT(p, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0);

    a[1] = 42;
    gcm_pool_put(p, a); /* into the private slot */
    assert_int_equal(resets, 1);
    EXPECT(p, 1, 1, 0, 0, 0, 0, 1, 0, 1, 0);

    uint64_t *b = gcm_pool_get(p); /* private hit: the same object, as left */
    assert_ptr_equal(b, a);
    assert_int_equal(b[1], 42);
    EXPECT(p, 2, 1, 1, 0, 0, 0, 1, 0, 0, 0);

    uint64_t *c = gcm_pool_get(p); /* nothing cached: miss */
    assert_non_null(c);
    assert_ptr_not_equal(c, a);
    assert_int_equal(news, 2);
    EXPECT(p, 3, 1, 1, 0, 0, 0, 2, 0, 0, 0);

    gcm_pool_put(p, a); /* private */
    gcm_pool_put(p, c); /* private is full: shared list */
    EXPECT(p, 3, 3, 1, 0, 0, 0, 2, 0, 2, 0);

    assert_ptr_equal(gcm_pool_get(p), a); /* private first */
    assert_ptr_equal(gcm_pool_get(p), c); /* then the shared list */
    EXPECT(p, 5, 3, 2, 1, 0, 0, 2, 0, 0, 0);

    /* The shared list is LIFO for its owner: the newest comes back first. */
    uint64_t *o[5];
    o[0] = a;
    o[1] = c;
    for (int i = 2; i < 5; i++)
        o[i] = gcm_pool_get(p);
    EXPECT(p, 8, 3, 2, 1, 0, 0, 5, 0, 0, 0);
    for (int i = 0; i < 5; i++)
        gcm_pool_put(p, o[i]); /* o[0] private, o[1..4] shared */
    EXPECT(p, 8, 8, 2, 1, 0, 0, 5, 0, 5, 0);
    assert_ptr_equal(gcm_pool_get(p), o[0]);
    assert_ptr_equal(gcm_pool_get(p), o[4]);
    assert_ptr_equal(gcm_pool_get(p), o[3]);
    EXPECT(p, 11, 8, 3, 3, 0, 0, 5, 0, 2, 0);
    assert_int_equal(resets, 8);

    struct gcm_pool_stats st = stats(p);
    assert_string_equal(st.name, "paths");
    assert_int_equal(st.object_size, 64);
    assert_true(st.hit_rate > 6.0 / 11 - 1e-9 && st.hit_rate < 6.0 / 11 + 1e-9);
    for (int i = 0; i < 3; i++)
        gcm_pool_put(p, o[i == 0 ? 0 : 5 - i]);
    assert_int_equal(gcm_pool_destroy(p), 0);
    assert_int_equal(drops, 5); /* destroy releases what was cached */
}

/* --- GC cycles ---------------------------------------------------------------------- */

static void test_victim_rotation(void **state)
{
    (void)state;
    gcm_pool *p = counted_pool("victims", 128, 0);
    void *o[3];
    for (int i = 0; i < 3; i++)
        o[i] = gcm_pool_get(p);
    for (int i = 0; i < 3; i++)
        gcm_pool_put(p, o[i]); /* 1 private + 2 shared */
    EXPECT(p, 3, 3, 0, 0, 0, 0, 3, 0, 3, 0);

    assert_int_equal(gcm_gc(), 0); /* primary -> victim */
    EXPECT(p, 3, 3, 0, 0, 0, 0, 3, 0, 0, 3);
    assert_int_equal(stats(p).cycles, 1);
    assert_int_equal(drops, 0);

    /* A get now finds last cycle's objects in the victim cache. */
    void *v = gcm_pool_get(p);
    assert_true(v == o[0] || v == o[1] || v == o[2]);
    EXPECT(p, 4, 3, 0, 0, 0, 1, 3, 0, 0, 2);
    gcm_pool_put(p, v); /* back into the primary cache */
    EXPECT(p, 4, 4, 0, 0, 0, 1, 3, 0, 1, 2);

    /* Second cycle: the two left in the victim cache are released, the one
     * put back becomes the victim. */
    assert_int_equal(gcm_gc(), 0);
    EXPECT(p, 4, 4, 0, 0, 0, 1, 3, 2, 0, 1);
    assert_int_equal(drops, 2);
    assert_int_equal(stats(p).cycles, 2);

    /* Idle from here: empty after one more cycle (two after the last put). */
    assert_int_equal(gcm_gc(), 0);
    EXPECT(p, 4, 4, 0, 0, 0, 1, 3, 3, 0, 0);
    assert_int_equal(drops, 3);

    /* An idle pool with a full cache is empty after exactly two cycles. */
    void *m[20];
    for (int i = 0; i < 20; i++)
        m[i] = gcm_pool_get(p);
    for (int i = 0; i < 20; i++)
        gcm_pool_put(p, m[i]);
    EXPECT(p, 24, 24, 0, 0, 0, 1, 23, 3, 20, 0);
    assert_int_equal(gcm_gc(), 0);
    EXPECT(p, 24, 24, 0, 0, 0, 1, 23, 3, 0, 20);
    assert_int_equal(gcm_gc(), 0);
    EXPECT(p, 24, 24, 0, 0, 0, 1, 23, 23, 0, 0);
    assert_int_equal(drops, 23);

    /* MemStats sums the same counters. */
    struct gcm_memstats ms;
    assert_int_equal(gcm_read_memstats(&ms), 0);
    assert_true(ms.pool_gets >= 24 && ms.pool_dropped >= 23);
    assert_int_equal(gcm_pool_destroy(p), 0);
    assert_int_equal(drops, 23); /* nothing was left to release */
}

/* Objects of a pointer-holding pool whose only references are in the pool's
 * caches must survive collections, with what they point to. */
#define NOBJ 64
#define PAYLOAD 4096
typedef struct holder {
    uint64_t magic;
    unsigned char *payload; /* collected, reachable only through us */
} holder;

static int payloads_finalized;
static void payload_final(void *obj, void *arg)
{
    (void)obj;
    (void)arg;
    __atomic_fetch_add(&payloads_finalized, 1, __ATOMIC_RELAXED);
}

static void __attribute__((noinline)) fill_pool(gcm_pool *p)
{
    holder *h[NOBJ];
    for (int i = 0; i < NOBJ; i++) {
        h[i] = gcm_pool_get(p);
        assert_non_null(h[i]);
        assert_non_null(GC_base(h[i])); /* on the collected heap */
        h[i]->magic = 0x686f6c64ull + (uint64_t)i;
        h[i]->payload = gcm_malloc_atomic(PAYLOAD);
        memset(h[i]->payload, i, PAYLOAD);
        assert_int_equal(gcm_set_finalizer(h[i]->payload, payload_final, NULL), 0);
    }
    for (int i = 0; i < NOBJ; i++)
        gcm_pool_put(p, h[i]);
    memset(h, 0, sizeof h);
}

/* Allocates garbage, so that memory freed by a collection is reused. */
static void churn(int fill)
{
    for (int i = 0; i < 4000; i++)
        memset(gcm_malloc_atomic(PAYLOAD), fill, PAYLOAD);
}

static void test_cached_objects_stay_alive(void **state)
{
    (void)state;
    gcm_pool_options o = {.name = "holders", .size = sizeof(holder),
                          .holds_pointers = 1};
    gcm_pool *p = gcm_pool_new(&o);
    assert_non_null(p);
    payloads_finalized = 0;
    fill_pool(p);
    scrub_stack();
    /* A cycle while they sit in the primary cache (which it turns into the
     * victim cache), churn so freed memory would be reused, and a cycle
     * while they are victims -- that one releases them. */
    churn(0xee);
    assert_int_equal(gcm_gc(), 0);
    churn(0xdd);
    assert_int_equal(stats(p).victims, NOBJ);
    usleep(20000); /* give finalizers a chance to run, if (wrongly) due */
    assert_int_equal(payloads_finalized, 0);
    int seen[NOBJ] = {0};
    for (int n = 0; n < NOBJ; n++) {
        holder *h = gcm_pool_get(p);
        int i = (int)(h->magic - 0x686f6c64ull);
        assert_true(i >= 0 && i < NOBJ);
        assert_int_equal(seen[i], 0);
        seen[i] = 1;
        for (int b = 0; b < PAYLOAD; b++)
            if (h->payload[b] != (unsigned char)i)
                fail_msg("payload %d byte %d is %d: collected while cached", i,
                         b, h->payload[b]);
    }
    struct gcm_pool_stats st = stats(p);
    assert_int_equal(st.hits_victim, NOBJ);
    assert_int_equal(st.misses, NOBJ);
    assert_int_equal(payloads_finalized, 0);

    /* Those 64 were not put back: garbage now, as in Go.  Fresh ones put
     * back and left alone are released by the second cycle. */
    fill_pool(p);
    scrub_stack();
    assert_int_equal(gcm_gc(), 0);
    assert_int_equal(stats(p).dropped, 0);
    assert_int_equal(gcm_gc(), 0);
    assert_int_equal(stats(p).dropped, NOBJ);
    assert_int_equal(stats(p).victims + stats(p).cached, 0);
    assert_int_equal(gcm_pool_destroy(p), 0);
}

/* Alignment, for both kinds of pools, with and without debug headers. */
static void check_alignments(void)
{
    static const size_t aligns[] = {1, 8, 16, 32, 64, 256, 4096};
    for (int gc = 0; gc <= 1; gc++) {
        for (size_t i = 0; i < GCM_ARRAY_LEN(aligns); i++) {
            gcm_pool_options o = {.size = 40, .align = aligns[i],
                                  .holds_pointers = gc};
            gcm_pool *p = gcm_pool_new(&o);
            assert_non_null(p);
            void *x[3];
            for (int k = 0; k < 3; k++) {
                x[k] = gcm_pool_get(p);
                assert_non_null(x[k]);
                assert_int_equal((uintptr_t)x[k] % aligns[i], 0);
                memset(x[k], 0xab, 40);
            }
            for (int k = 0; k < 3; k++)
                gcm_pool_put(p, x[k]);
            assert_int_equal(gcm_pool_destroy(p), 0);
        }
    }
}

static void test_alignment(void **state)
{
    (void)state;
    check_alignments();
    set_env_option("GCMALLOC_DEBUG", "1", true);
    check_alignments();
    set_env_option("GCMALLOC_DEBUG", NULL, true);
}

static int fail_new(void *obj, void *arg)
{
    (void)obj;
    return *(int *)arg;
}

static void test_new_fn_error(void **state)
{
    (void)state;
    int err = ENOSPC;
    gcm_pool_options o = {.size = 1000, .new_fn = fail_new, .arg = &err};
    gcm_pool *p = gcm_pool_new(&o);
    err = 0;
    void *keep = gcm_pool_get(p); /* this thread's cache exists from here */
    assert_non_null(keep);
    err = ENOSPC;
    struct gcm_memstats m0, m1;
    assert_int_equal(gcm_read_memstats(&m0), 0);
    for (int i = 0; i < 10; i++) {
        errno = 0;
        assert_null(gcm_pool_get(p));
        assert_int_equal(errno, ENOSPC);
    }
    assert_int_equal(gcm_read_memstats(&m1), 0);
    /* The storage of each failed object went back. */
    assert_int_equal(m1.nongc_sys, m0.nongc_sys);
    EXPECT(p, 11, 0, 0, 0, 0, 0, 11, 0, 0, 0);
    gcm_pool_put(p, keep);
    assert_int_equal(gcm_pool_destroy(p), 0);
}

/* --- threads ------------------------------------------------------------------------ */

typedef struct handoff {
    gcm_pool *p;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stage;
    void *objs[100];
} handoff;

static void wait_stage(handoff *h, int s)
{
    pthread_mutex_lock(&h->mu);
    while (h->stage < s)
        pthread_cond_wait(&h->cv, &h->mu);
    pthread_mutex_unlock(&h->mu);
}

static void set_stage(handoff *h, int s)
{
    pthread_mutex_lock(&h->mu);
    h->stage = s;
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
}

/* Thread A: makes 100 objects and puts them back, then waits. */
static void *producer(void *arg)
{
    handoff *h = arg;
    for (int i = 0; i < 100; i++)
        h->objs[i] = gcm_pool_get(h->p);
    for (int i = 0; i < 100; i++)
        gcm_pool_put(h->p, h->objs[i]);
    set_stage(h, 1);
    wait_stage(h, 2);
    return NULL;
}

/* Thread B: takes 100 objects: 99 stolen from A's shared list (A's private
 * slot is A's alone), one new. */
static void *consumer(void *arg)
{
    handoff *h = arg;
    void *got[100];
    int from_a = 0;
    for (int i = 0; i < 100; i++) {
        got[i] = gcm_pool_get(h->p);
        for (int k = 0; k < 100; k++)
            from_a += got[i] == h->objs[k];
    }
    for (int i = 0; i < 100; i++)
        gcm_pool_put(h->p, got[i]); /* Put on B what was made on A */
    return (void *)(intptr_t)from_a;
}

static void test_cross_thread(void **state)
{
    (void)state;
    handoff h = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    h.p = counted_pool("handoff", 48, 0);
    pthread_t a, b;
    assert_int_equal(pthread_create(&a, NULL, producer, &h), 0);
    wait_stage(&h, 1);
    EXPECT(h.p, 100, 100, 0, 0, 0, 0, 100, 0, 100, 0);
    assert_int_equal(pthread_create(&b, NULL, consumer, &h), 0);
    void *from_a;
    pthread_join(b, &from_a);
    assert_int_equal((intptr_t)from_a, 99);
    /* B has exited: what it put back went to its local's victim cache. */
    EXPECT(h.p, 200, 200, 0, 0, 99, 0, 101, 0, 1, 100);

    /* A exits: its private object goes to its victim cache too. */
    set_stage(&h, 2);
    pthread_join(a, NULL);
    EXPECT(h.p, 200, 200, 0, 0, 99, 0, 101, 0, 0, 101);

    /* This thread finds them in the victim caches of exited threads. */
    void *x = gcm_pool_get(h.p);
    assert_non_null(x);
    EXPECT(h.p, 201, 200, 0, 0, 99, 1, 101, 0, 0, 100);
    gcm_pool_put(h.p, x);

    /* Exited threads' caches are released by the next cycle. */
    assert_int_equal(gcm_gc(), 0);
    EXPECT(h.p, 201, 201, 0, 0, 99, 1, 101, 100, 0, 1);
    assert_int_equal(drops, 100);
    assert_int_equal(gcm_pool_destroy(h.p), 0);
    assert_int_equal(drops, 101);
}

/* A drop function may use other pools (say, give back a buffer the object
 * owns): it runs with no pool lock held. */
typedef struct owner {
    void *buf;
} owner;

static gcm_pool *inner_pool;

static void drop_owner(void *obj, void *arg)
{
    (void)arg;
    owner *o = obj;
    gcm_pool_put(inner_pool, o->buf);
    o->buf = NULL;
}

static void *cycle_thread(void *arg)
{
    (void)arg;
    /* A thread that never used a pool finishes the cycle: the drop function
     * gives this thread its first pool slot from inside the rotation. */
    assert_int_equal(gcm_gc(), 0);
    return NULL;
}

static void test_drop_fn_uses_pools(void **state)
{
    (void)state;
    gcm_pool_options io = {.name = "inner", .size = 256};
    inner_pool = gcm_pool_new(&io);
    gcm_pool_options oo = {.name = "outer", .size = sizeof(owner),
                           .holds_pointers = 1, .drop_fn = drop_owner};
    gcm_pool *outer = gcm_pool_new(&oo);
    owner *o[4];
    for (int i = 0; i < 4; i++) {
        o[i] = gcm_pool_get(outer);
        o[i]->buf = gcm_pool_get(inner_pool);
    }
    for (int i = 0; i < 4; i++)
        gcm_pool_put(outer, o[i]);
    assert_int_equal(gcm_gc(), 0);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, cycle_thread, NULL), 0);
    pthread_join(t, NULL);
    struct gcm_pool_stats st = stats(inner_pool);
    assert_int_equal(st.puts, 4);
    assert_int_equal(stats(outer).dropped, 4);
    assert_int_equal(gcm_pool_destroy(outer), 0);
    assert_int_equal(gcm_pool_destroy(inner_pool), 0);
}

/* --- destroy and memory accounting ------------------------------------------------- */

static void test_destroy_returns_memory(void **state)
{
    (void)state;
    /* No sampling: the first sampled pool object in the process creates
     * the profiler's table of sampled objects (40 KiB of non-GC memory,
     * kept for good), and at the default rate that happened during the
     * gets below in about 3% of runs. */
    int64_t rate = gcm_profile_set_rate(0);
    /* Warm up: this thread's slot and the registry exist already. */
    gcm_pool_options o = {.name = "mem", .size = 300};
    gcm_pool *w = gcm_pool_new(&o);
    gcm_pool_put(w, gcm_pool_get(w));
    assert_int_equal(gcm_pool_destroy(w), 0);

    struct gcm_memstats m0, m1, m2, mp;
    assert_int_equal(gcm_read_memstats(&m0), 0);
    gcm_pool *p = gcm_pool_new(&o);
    /* In debug mode a destroyed pool stays as a tombstone (to recognize a
     * put after destroy): its struct is all that creating it allocated. */
    assert_int_equal(gcm_read_memstats(&mp), 0);
    uint64_t tombstone = gcm__debug_on() ? mp.nongc_sys - m0.nongc_sys : 0;
    void *x[50];
    for (int i = 0; i < 50; i++)
        x[i] = gcm_pool_get(p);
    for (int i = 0; i < 50; i++)
        gcm_pool_put(p, x[i]);
    assert_int_equal(gcm_read_memstats(&m1), 0);
    assert_true(m1.nongc_sys >= m0.nongc_sys + 50 * 300);
    assert_int_equal(m1.pool_count, m0.pool_count + 1);
    assert_int_equal(gcm_pool_destroy(p), 0);
    assert_int_equal(gcm_read_memstats(&m2), 0);
    assert_int_equal(m2.nongc_sys, m0.nongc_sys + tombstone);
    assert_int_equal(m2.pool_count, m0.pool_count);
    /* Destroyed pools still count in the cumulative figures. */
    assert_int_equal(m2.pool_gets, m0.pool_gets + 50);
    assert_int_equal(m2.pool_misses, m0.pool_misses + 50);
    assert_int_equal(m2.pool_puts, m0.pool_puts + 50);
    gcm_profile_set_rate(rate);
}

/* --- debug mode --------------------------------------------------------------------- */

static void check_misuse(int gc)
{
    set_env_option("GCMALLOC_DEBUG", "1", true);
    gcm_pool_options o = {.name = "strict", .size = 64, .holds_pointers = gc};
    gcm_pool *p = gcm_pool_new(&o), *q = gcm_pool_new(&o);
    void *a = gcm_pool_get(p), *b = gcm_pool_get(q);
    char *m = malloc(64);
    int on_stack;

    capture_begin();
    gcm_pool_put(p, m);          /* from malloc        */
    gcm_pool_put(p, b);          /* from another pool  */
    gcm_pool_put(p, &on_stack);  /* not from a heap    */
    gcm_pool_put(p, (char *)a + 8); /* inside an object */
    char *out = capture_end();
    assert_int_equal(count_lines(out), 4);
    assert_non_null(strstr(out, "misuse: gcm_pool_put(pool \"strict\""));
    assert_int_equal(strstr(out, "not an object from this pool") != NULL, 1);
    /* Nothing was cached by the rejected calls. */
    EXPECT(p, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0);

    gcm_pool_put(p, a);
    capture_begin();
    gcm_pool_put(p, a); /* double put */
    out = capture_end();
    assert_int_equal(count_lines(out), 1);
    assert_non_null(strstr(out, "double put"));
    EXPECT(p, 1, 1, 0, 0, 0, 0, 1, 0, 1, 0);
    /* The object comes back once, and can be put back once. */
    assert_ptr_equal(gcm_pool_get(p), a);
    assert_ptr_not_equal(gcm_pool_get(p), a);
    gcm_pool_put(p, a);
    EXPECT(p, 3, 2, 1, 0, 0, 0, 2, 0, 1, 0);

    assert_int_equal(gcm_pool_destroy(p), 0);
    capture_begin();
    gcm_pool_put(p, a);                     /* put after destroy     */
    assert_int_equal(gcm_pool_destroy(p), EINVAL); /* destroy twice */
    errno = 0;
    assert_null(gcm_pool_get(p));           /* get after destroy     */
    out = capture_end();
    assert_int_equal(errno, EINVAL);
    assert_int_equal(count_lines(out), 3);
    assert_non_null(strstr(out, "the pool was destroyed"));
    assert_non_null(strstr(out, "already destroyed"));
    gcm_pool_put(q, b);
    assert_int_equal(gcm_pool_destroy(q), 0);
    free(m);
    set_env_option("GCMALLOC_DEBUG", NULL, true);
}

static void test_debug_misuse(void **state)
{
    (void)state;
    check_misuse(0);
    check_misuse(1);
}

/* --- GCMALLOC_POOLSTATS -------------------------------------------------------------- */

static void test_poolstats_lines(void **state)
{
    (void)state;
    set_env_option("GCMALLOC_POOLSTATS", "1", true);
    gcm_pool_options o = {.name = "printed", .size = 32};
    gcm_pool *p = gcm_pool_new(&o);
    void *x = gcm_pool_get(p);
    gcm_pool_put(p, x);
    gcm_pool_put(p, gcm_pool_get(p));
    capture_begin();
    assert_int_equal(gcm_pool_destroy(p), 0);
    char *out = capture_end();
    assert_int_equal(count_lines(out), 1);
    assert_non_null(strstr(out, "gcmalloc: pool \"printed\" (32 B): gets 2, "
                                "hit 50.0% (private 50.0%, shared 0.0%, "
                                "stolen 0.0%, victim 0.0%), misses 1, puts 2, "
                                "dropped 0"));

    /* At exit, from a destructor, for the pools still alive. */
    int fd[2];
    assert_int_equal(pipe(fd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fd[1], gcm__diag_fd());
        close(fd[0]);
        gcm_pool *c = gcm_pool_new(&(gcm_pool_options){.name = "atexit",
                                                       .size = 8});
        for (int i = 0; i < 4; i++)
            gcm_pool_put(c, gcm_pool_get(c));
        exit(0);
    }
    close(fd[1]);
    char buf[4096];
    size_t len = 0;
    ssize_t n;
    while (len < sizeof buf - 1 && (n = read(fd[0], buf + len, sizeof buf - 1 - len)) > 0)
        len += (size_t)n;
    buf[len] = '\0';
    close(fd[0]);
    int status;
    waitpid(pid, &status, 0);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_non_null(strstr(buf, "gcmalloc: pool \"atexit\" (8 B): gets 4, "
                                "hit 75.0% (private 75.0%"));
    set_env_option("GCMALLOC_POOLSTATS", NULL, true);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_paths_and_exact_stats),
        cmocka_unit_test(test_victim_rotation),
        cmocka_unit_test(test_cached_objects_stay_alive),
        cmocka_unit_test(test_alignment),
        cmocka_unit_test(test_new_fn_error),
        cmocka_unit_test(test_cross_thread),
        cmocka_unit_test(test_drop_fn_uses_pools),
        cmocka_unit_test(test_destroy_returns_memory),
        cmocka_unit_test(test_debug_misuse),
        cmocka_unit_test(test_poolstats_lines),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
