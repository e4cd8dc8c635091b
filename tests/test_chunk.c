/*
 * test_chunk.c — the chunks arenas are made of (src/chunk.c): reuse through
 * the thread and shared caches, trimming to recent use at each GC cycle,
 * the exit of a thread with a full cache, and fork.
 *
 * Each test uses a chunk size no other test uses, so what it measures in
 * the caches is its own.
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

#include "gcmalloc.h"
#include "internal.h"

#define KiB ((size_t)1024)

static struct gcm_memstats ms(void)
{
    struct gcm_memstats m;
    assert_int_equal(gcm_read_memstats(&m), 0);
    return m;
}

static gcm_arena *new_arena(size_t chunk)
{
    gcm_arena_options o = {.chunk_size = chunk, .noscan = 1};
    gcm_arena *a = gcm_arena_new(&o);
    assert_non_null(a);
    return a;
}

static unsigned cls_of(size_t size)
{
    return (unsigned)(__builtin_ctzll(size) - GCM_CHUNK_MIN_SHIFT);
}

/* Free chunks of this size in the calling thread's cache. */
static int tcache_count(size_t size)
{
    gcm__tls *t = &gcm__tls_self;
    int n = 0;
    for (int i = 0; i < GCM_CHUNK_TCACHE; i++) {
        gcm__chunk *c = GCM_LOAD(&t->chunk_cache[i]);
        n += c != NULL && c->cls == cls_of(size);
    }
    return n;
}

static int tcache_empty_slots(void)
{
    gcm__tls *t = &gcm__tls_self;
    int n = 0;
    for (int i = 0; i < GCM_CHUNK_TCACHE; i++)
        n += GCM_LOAD(&t->chunk_cache[i]) == NULL;
    return n;
}

/* The cache level for chunks other tests leave behind: drain by trimming
 * until nothing is cached (a few quiet cycles). */
static void drain(void)
{
    for (int i = 0; i < 6; i++)
        gcm__chunk_trim();
    assert_int_equal(gcm__chunk_shared_bytes(), 0);
    assert_int_equal(tcache_empty_slots(), GCM_CHUNK_TCACHE);
}

static void test_reuse(void **state)
{
    (void)state;
    gcm_arena *a = new_arena(8 * KiB);
    struct gcm_memstats m0 = ms();
    gcm_arena_free(a);
    /* The chunk stays, cached. */
    struct gcm_memstats m1 = ms();
    assert_int_equal(m1.arena_sys, m0.arena_sys);
    assert_int_equal(m1.arena_inuse, m0.arena_inuse - 8 * KiB);
    assert_int_equal(m1.arena_cached, m0.arena_cached + 8 * KiB);
    assert_int_equal(tcache_count(8 * KiB), 1);
    /* and the next arena of that size gets it back: no new memory. */
    gcm_arena *b = new_arena(8 * KiB);
    assert_ptr_equal(b, a);
    assert_int_equal(ms().arena_sys, m0.arena_sys);
    assert_int_equal(tcache_count(8 * KiB), 0);
    /* A different size does not. */
    gcm_arena *c = new_arena(16 * KiB);
    assert_int_equal(ms().arena_sys, m0.arena_sys + 16 * KiB);
    gcm_arena_free(b);
    gcm_arena_free(c);
}

static void test_spill_to_shared(void **state)
{
    (void)state;
    drain();
    const size_t size = 32 * KiB;
    int empty = tcache_empty_slots();
    struct gcm_memstats m0 = ms();
    gcm_arena *a[20];
    for (int i = 0; i < 20; i++)
        a[i] = new_arena(size);
    struct gcm_memstats m1 = ms();
    assert_int_equal(m1.arena_sys, m0.arena_sys + 20 * size);
    assert_int_equal(m1.arena_count, m0.arena_count + 20);
    for (int i = 0; i < 20; i++)
        gcm_arena_free(a[i]);
    /* The thread keeps what fits in its slots; the rest is shared. */
    assert_int_equal(tcache_count(size), empty);
    assert_int_equal(gcm__chunk_shared_bytes(), (20 - (size_t)empty) * size);
    struct gcm_memstats m2 = ms();
    assert_int_equal(m2.arena_sys, m1.arena_sys);
    assert_int_equal(m2.arena_cached, m0.arena_cached + 20 * size);
    /* Getting them back: slots first, then the shared lists. */
    for (int i = 0; i < 20; i++)
        a[i] = new_arena(size);
    assert_int_equal(ms().arena_sys, m1.arena_sys);
    assert_int_equal(gcm__chunk_shared_bytes(), 0);
    for (int i = 0; i < 20; i++)
        gcm_arena_free(a[i]);
}

/* A burst fills the cache; quiet cycles empty it again, but not at once:
 * chunks go back to mimalloc after two full cycles unused. */
static void test_trim_after_burst(void **state)
{
    (void)state;
    drain();
    const size_t size = 128 * KiB;
    struct gcm_memstats m0 = ms();
    gcm_arena *a[100];
    for (int i = 0; i < 100; i++) {
        a[i] = new_arena(size);
        memset(gcm_arena_alloc(a[i], 1000), 1, 1000);
    }
    for (int i = 0; i < 100; i++)
        gcm_arena_free(a[i]);
    struct gcm_memstats m1 = ms();
    assert_int_equal(m0.arena_cached, 0);
    assert_int_equal(m1.arena_cached, 100 * size);
    assert_int_equal(m1.arena_sys, m0.arena_sys + 100 * size);
    assert_true(m1.nongc_sys >= m1.arena_sys);

    /* The cycle that saw the burst keeps it (it was used in this cycle). */
    gcm_gc();
    assert_true(ms().arena_cached >= 100 * size);
    /* Quiet cycles: gone within four, and the memory with it (the slots'
     * share straight from them, the shared lists' coldest first). */
    for (int i = 0; i < 4; i++)
        gcm_gc();
    struct gcm_memstats m2 = ms();
    assert_int_equal(m2.arena_cached, 0);
    assert_int_equal(m2.arena_sys, m0.arena_sys);
    assert_int_equal(m2.arena_sys, m2.arena_inuse);
    assert_int_equal(gcm__chunk_shared_bytes(), 0);
    assert_int_equal(tcache_count(size), 0);
}

/* A steady request rate keeps what it uses cached through any number of
 * cycles; only the excess goes. */
static void test_steady_use_keeps_cache(void **state)
{
    (void)state;
    drain();
    const size_t size = 256 * KiB;
    /* Burst of 30, then steady use of 2 at a time. */
    gcm_arena *a[30];
    for (int i = 0; i < 30; i++)
        a[i] = new_arena(size);
    for (int i = 0; i < 30; i++)
        gcm_arena_free(a[i]);
    for (int cycle = 0; cycle < 8; cycle++) {
        uint64_t sys = ms().arena_sys;
        gcm_arena *x = new_arena(size), *y = new_arena(size);
        /* served from the cache, never from mimalloc */
        assert_int_equal(ms().arena_sys, sys);
        gcm_arena_free(x);
        gcm_arena_free(y);
        gcm__chunk_trim();
    }
    /* The burst's excess is gone; the two in use each cycle stay. */
    uint64_t cached = tcache_count(size) * size + gcm__chunk_shared_bytes();
    assert_int_equal(cached, 2 * size);
    uint64_t sys = ms().arena_sys;
    gcm_arena *x = new_arena(size), *y = new_arena(size);
    assert_int_equal(ms().arena_sys, sys);
    gcm_arena_free(x);
    gcm_arena_free(y);
}

/* --- threads ----------------------------------------------------------------- */

#define EXIT_SIZE (512 * KiB)

static void *burst_and_exit(void *arg)
{
    (void)arg;
    gcm_arena *a[5];
    for (int i = 0; i < 5; i++)
        a[i] = new_arena(EXIT_SIZE);
    for (int i = 0; i < 5; i++)
        gcm_arena_free(a[i]);
    return (void *)(intptr_t)tcache_count(EXIT_SIZE);
}

/* A thread's cache outlives it in the shared lists, where trimming finds
 * it; without the exit hook those chunks would be lost for good. */
static void test_thread_exit_returns_cache(void **state)
{
    (void)state;
    drain();
    struct gcm_memstats m0 = ms();
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, burst_and_exit, NULL), 0);
    void *kept;
    pthread_join(th, &kept);
    assert_int_equal((intptr_t)kept, 5); /* cached in the thread's slots */
    assert_int_equal(gcm__chunk_shared_bytes(), 5 * EXIT_SIZE);
    assert_int_equal(ms().arena_sys, m0.arena_sys + 5 * EXIT_SIZE);
    for (int i = 0; i < 4; i++)
        gcm__chunk_trim();
    assert_int_equal(gcm__chunk_shared_bytes(), 0);
    assert_int_equal(ms().arena_sys, m0.arena_sys);
}

/* An idle thread's slots are emptied by the trimmer, two cycles after it
 * last needed them. */
typedef struct idler {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stage;
    int kept;
} idler;

static void *cache_then_idle(void *arg)
{
    idler *w = arg;
    gcm_arena *a = new_arena(EXIT_SIZE), *b = new_arena(EXIT_SIZE);
    gcm_arena_free(a);
    gcm_arena_free(b);
    pthread_mutex_lock(&w->mu);
    w->stage = 1;
    pthread_cond_broadcast(&w->cv);
    while (w->stage != 2)
        pthread_cond_wait(&w->cv, &w->mu);
    w->kept = tcache_count(EXIT_SIZE);
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

static void test_idle_thread_cache_trimmed(void **state)
{
    (void)state;
    drain();
    struct gcm_memstats m0 = ms();
    idler w = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, cache_then_idle, &w), 0);
    pthread_mutex_lock(&w.mu);
    while (w.stage != 1)
        pthread_cond_wait(&w.cv, &w.mu);
    pthread_mutex_unlock(&w.mu);
    assert_int_equal(ms().arena_sys, m0.arena_sys + 2 * EXIT_SIZE);
    assert_int_equal(ms().arena_cached, m0.arena_cached + 2 * EXIT_SIZE);
    /* The cycle in which it needed them, and one quiet cycle: kept. */
    gcm__chunk_trim();
    gcm__chunk_trim();
    assert_int_equal(ms().arena_sys, m0.arena_sys + 2 * EXIT_SIZE);
    /* Two quiet cycles: given back, straight from its slots. */
    gcm__chunk_trim();
    assert_int_equal(ms().arena_sys, m0.arena_sys);
    assert_int_equal(gcm__chunk_shared_bytes(), 0);
    pthread_mutex_lock(&w.mu);
    w.stage = 2;
    pthread_cond_broadcast(&w.cv);
    pthread_mutex_unlock(&w.mu);
    pthread_join(th, NULL);
    assert_int_equal(w.kept, 0);
}

/* In a forked child only the forking thread exists: chunks another thread
 * had cached move to the shared lists instead of being stranded. */
static void test_fork_child_recovers_caches(void **state)
{
    (void)state;
    drain();
    idler w = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, cache_then_idle, &w), 0);
    pthread_mutex_lock(&w.mu);
    while (w.stage != 1)
        pthread_cond_wait(&w.cv, &w.mu);
    pthread_mutex_unlock(&w.mu);
    assert_int_equal(gcm__chunk_shared_bytes(), 0);
    fflush(stdout);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int ok = gcm__chunk_shared_bytes() == 2 * EXIT_SIZE;
        /* and they are usable: two arenas, no new memory */
        uint64_t sys = ms().arena_sys;
        gcm_arena *a = new_arena(EXIT_SIZE), *b = new_arena(EXIT_SIZE);
        ok &= ms().arena_sys == sys && gcm__chunk_shared_bytes() == 0;
        gcm_arena_free(a);
        gcm_arena_free(b);
        _exit(ok ? 0 : 1);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    /* The parent's caches are as they were. */
    assert_int_equal(gcm__chunk_shared_bytes(), 0);
    pthread_mutex_lock(&w.mu);
    w.stage = 2;
    pthread_cond_broadcast(&w.cv);
    pthread_mutex_unlock(&w.mu);
    pthread_join(th, NULL);
    assert_int_equal(w.kept, 2);
}

int main(void)
{
    gcm_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reuse),
        cmocka_unit_test(test_spill_to_shared),
        cmocka_unit_test(test_trim_after_burst),
        cmocka_unit_test(test_steady_use_keeps_cache),
        cmocka_unit_test(test_thread_exit_returns_cache),
        cmocka_unit_test(test_idle_thread_cache_trimmed),
        cmocka_unit_test(test_fork_child_recovers_caches),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
