/*
 * test_arena_threads.c — arenas on many threads at once (labelled
 * `threads`: the TSan job runs it).
 *
 * Workers each run requests on arenas of their own — scan and noscan, with
 * marks, rewinds, cleanups, chunk switches and big allocations — and check
 * every byte they wrote.  Some arenas are handed from one worker to another
 * through a queue, as a request moves from an acceptor to a handler.
 * Meanwhile another thread drives the GC cycle: in the normal and ASan
 * builds it collects for real, and the collected objects the workers keep
 * only in scan arenas must survive; under TSan, whose signal handling
 * deadlocks bdwgc's stop-the-world (see tests/CMakeLists.txt), it runs the
 * chunk cache's cycle hook directly and collections are switched off.
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
#include "test_rng.h"

#if defined(__SANITIZE_THREAD__)
#define UNDER_TSAN 1
#else
#define UNDER_TSAN 0
#endif

#define WORKERS 4
#define REQUESTS 3000
#define HANDOFF_SLOTS 16

static int failures;
static int live_finalized; /* finalizers of objects still referenced */

static void fail_once(void) { __atomic_fetch_add(&failures, 1, __ATOMIC_RELAXED); }

/* --- the hand-over queue ------------------------------------------------------- */

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    gcm_arena *q[HANDOFF_SLOTS];
    unsigned char tag[HANDOFF_SLOTS];
    int n;
} hand = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static bool hand_put(gcm_arena *a, unsigned char tag)
{
    pthread_mutex_lock(&hand.mu);
    bool ok = hand.n < HANDOFF_SLOTS;
    if (ok) {
        hand.q[hand.n] = a;
        hand.tag[hand.n] = tag;
        hand.n++;
    }
    pthread_mutex_unlock(&hand.mu);
    return ok;
}

static gcm_arena *hand_get(unsigned char *tag)
{
    pthread_mutex_lock(&hand.mu);
    gcm_arena *a = NULL;
    if (hand.n > 0) {
        hand.n--;
        a = hand.q[hand.n];
        *tag = hand.tag[hand.n];
    }
    pthread_mutex_unlock(&hand.mu);
    return a;
}

/* --- a request ----------------------------------------------------------------- */

typedef struct tracked {
    unsigned char *p;
    size_t n;
    unsigned char v;
} tracked;

#define OBJ 128
static void obj_final(void *obj, void *arg)
{
    (void)arg;
    /* Only objects whose arena let go of them may be finalized; those the
     * arena still holds are marked "live" (first byte 0x11). */
    if (((unsigned char *)obj)[0] == 0x11)
        __atomic_fetch_add(&live_finalized, 1, __ATOMIC_RELAXED);
}

static bool check(const tracked *t, int n)
{
    for (int i = 0; i < n; i++)
        for (size_t k = 0; k < t[i].n; k++)
            if (t[i].p[k] != t[i].v)
                return false;
    return true;
}

static int cleanups_run;
static void count_cleanup(void *arg)
{
    (void)arg;
    __atomic_fetch_add(&cleanups_run, 1, __ATOMIC_RELAXED);
}

/* One request: mixed allocations, a savepoint, collected objects held
 * only by the arena (scan arenas), a cleanup; everything checked. */
static void request(gcm_arena *a, unsigned seed, bool scan)
{
    tracked t[64];
    int n = 0;
    unsigned start = seed * 2654435761u + 1;
    test_rng rng = test_rng_seeded(start);
    for (int i = 0; i < 48; i++) {
        uint32_t x = (uint32_t)(test_rng_next(&rng) >> 32);
        size_t sz = 16 + (x >> 8) % 241;
        if (i % 16 == 15)
            sz = 5000 + (x >> 8) % 3000; /* above a quarter chunk: big */
        unsigned char *p = gcm_arena_alloc(a, sz);
        if (p == NULL) {
            fail_once();
            return;
        }
        memset(p, (int)(x & 0xff), sz);
        t[n++] = (tracked){p, sz, (unsigned char)(x & 0xff)};
    }
    /* Distinct args: an arena may serve two requests before its reset, and
     * debug mode refuses the same cleanup twice.  start is one per seed
     * (a multiplication by an odd number is one-to-one). */
    if (gcm_arena_add_cleanup(a, count_cleanup, (void *)(uintptr_t)start) != 0)
        fail_once();

    void **slots = NULL;
    if (scan) {
        slots = gcm_arena_calloc(a, 8, sizeof(void *));
        for (int i = 0; i < 8; i++) {
            unsigned char *o = gcm_malloc(OBJ);
            memset(o, 0x11, OBJ);
            if (!UNDER_TSAN)
                gcm_set_finalizer(o, obj_final, NULL);
            slots[i] = o;
        }
    }

    struct gcm_arena_mark mk;
    gcm_arena_mark(a, &mk);
    size_t used = 0;
    struct gcm_arena_stats s;
    gcm_arena_stats(a, &s);
    used = s.used;
    for (int i = 0; i < 40; i++)
        memset(gcm_arena_alloc(a, 100 + (size_t)i), 0xee, 100 + (size_t)i);
    if (gcm_arena_rewind(a, &mk) != 0)
        fail_once();
    gcm_arena_stats(a, &s);
    if (s.used != used)
        fail_once();
    if (!check(t, n))
        fail_once();
    if (scan) {
        for (int i = 0; i < 8; i++) {
            unsigned char *o = slots[i];
            for (int k = 0; k < OBJ; k++)
                if (o[k] != 0x11) {
                    fail_once();
                    break;
                }
            /* Let go: from now on it may be collected. */
            o[0] = 0x22;
        }
    }
}

/* Cycles run while the workers were running.  The workers go on past
 * REQUESTS until MIN_CYCLES have overlapped them, so that the overlap does
 * not depend on how the machine schedules the cycler (a loaded machine
 * once let the workers finish after 19). */
#define MIN_CYCLES 20
static int cycles;

static void *worker(void *arg)
{
    unsigned id = (unsigned)(uintptr_t)arg;
    gcm_arena *mine = NULL;
    for (unsigned r = 0;
         r < REQUESTS || __atomic_load_n(&cycles, __ATOMIC_RELAXED) < MIN_CYCLES; r++) {
        bool scan = (r + id) % 2 == 0;
        unsigned kind = r % 3;
        if (kind == 0) {
            /* A fresh arena per request. */
            gcm_arena_options o = {.chunk_size = 16 * 1024, .noscan = !scan};
            gcm_arena *a = gcm_arena_new(&o);
            if (a == NULL) {
                fail_once();
                continue;
            }
            request(a, id * 100000 + r, scan);
            /* Half of them finish on another worker. */
            if (r % 2 == 0 && hand_put(a, (unsigned char)scan))
                continue;
            gcm_arena_free(a);
        } else if (kind == 1) {
            /* One arena per worker, reset between requests. */
            if (mine == NULL) {
                gcm_arena_options o = {.chunk_size = 8 * 1024};
                mine = gcm_arena_new(&o);
            }
            request(mine, id * 100000 + r, true);
            gcm_arena_reset(mine);
        } else {
            /* Finish an arena another worker started. */
            unsigned char tag;
            gcm_arena *a = hand_get(&tag);
            if (a != NULL) {
                request(a, id * 100000 + r, tag != 0);
                gcm_arena_free(a);
            }
        }
    }
    gcm_arena_free(mine);
    return NULL;
}

static volatile int stop;

static void *cycler(void *arg)
{
    (void)arg;
    while (!__atomic_load_n(&stop, __ATOMIC_ACQUIRE)) {
        if (UNDER_TSAN)
            gcm__chunk_trim();
        else
            gcm_gc();
        __atomic_fetch_add(&cycles, 1, __ATOMIC_RELAXED);
        usleep(500);
    }
    return NULL;
}

static void test_concurrent_arenas(void **state)
{
    (void)state;
    struct gcm_memstats m0;
    gcm_read_memstats(&m0);
    pthread_t w[WORKERS], c;
    assert_int_equal(pthread_create(&c, NULL, cycler, NULL), 0);
    for (unsigned i = 0; i < WORKERS; i++)
        assert_int_equal(pthread_create(&w[i], NULL, worker, (void *)(uintptr_t)i), 0);
    for (unsigned i = 0; i < WORKERS; i++)
        pthread_join(w[i], NULL);
    __atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
    pthread_join(c, NULL);
    /* Arenas still queued for hand-over. */
    unsigned char tag;
    gcm_arena *a;
    while ((a = hand_get(&tag)) != NULL)
        gcm_arena_free(a);

    assert_int_equal(failures, 0);
    assert_int_equal(live_finalized, 0);
    /* The cycles really overlapped the requests. */
    printf("  %d cycles during at least %d requests\n", cycles, WORKERS * REQUESTS);
    assert_true(cycles >= MIN_CYCLES);
    /* Every request registered one cleanup, and every one ran. */
    assert_true(cleanups_run > 0);
    struct gcm_memstats m1;
    gcm_read_memstats(&m1);
    assert_int_equal(m1.arena_count, m0.arena_count);
    assert_int_equal(m1.arena_inuse, m0.arena_inuse);
    /* The workers have exited: their caches are in the shared lists, and
     * trimming gives everything back. */
    for (int i = 0; i < 4; i++)
        gcm__chunk_trim();
    gcm_read_memstats(&m1);
    assert_int_equal(m1.arena_cached, 0);
}

/* Arenas on different threads do not share anything mutable: a thread that
 * creates, fills and frees its own arenas in a loop never takes the shared
 * cache's lock once its slots are warm.  Checked by counting what reaches
 * mimalloc: nothing after the first round. */
static void *private_loop(void *arg)
{
    int64_t *grew = arg;
    gcm_arena_options o = {.chunk_size = 32 * 1024, .noscan = 1};
    int64_t before = 0;
    for (int r = 0; r < 2000; r++) {
        if (r == 1)
            before = (int64_t)gcm__chunk_held();
        gcm_arena *a = gcm_arena_new(&o);
        for (int i = 0; i < 300; i++)
            memset(gcm_arena_alloc(a, 64 + (size_t)(i % 100)), 1, 64);
        gcm_arena_free(a);
    }
    *grew = (int64_t)gcm__chunk_held() - before;
    return NULL;
}

static void test_private_arenas_in_parallel(void **state)
{
    (void)state;
    pthread_t th[WORKERS];
    int64_t grew[WORKERS];
    for (int i = 0; i < WORKERS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, private_loop, &grew[i]), 0);
    for (int i = 0; i < WORKERS; i++)
        pthread_join(th[i], NULL);
    /* Each thread's first round took its chunks from mimalloc; later rounds
     * reused them.  Another thread's first round may overlap, so held
     * memory may grow by what the others took at their start. */
    for (int i = 0; i < WORKERS; i++)
        assert_true(grew[i] <= (int64_t)(WORKERS - 1) * 2 * 32 * 1024);
}

int main(void)
{
    gcm_init();
    if (UNDER_TSAN)
        gcm_set_gc_percent(-1); /* no stop-the-world under TSan */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_concurrent_arenas),
        cmocka_unit_test(test_private_arenas_in_parallel),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
