/*
 * test_gc_thread_exit.c — a thread that allocates after its last exit
 * destructor.
 *
 * gcmalloc unregisters a thread from the collector in a pthread key
 * destructor, in the last round glibc runs (thread.c).  Code can still
 * allocate and free after that: other keys' destructors in the same round,
 * and glibc's own clean-up of cached thread stacks, which calls free with
 * every signal blocked.  A thread registered again then was never
 * unregistered, and the next collection waited for it to answer the stop
 * signal until bdwgc aborted ("Signals delivery fails constantly", after
 * about 15 s; python3 with threads under the preload library in gc mode).
 * Each case runs in a child process, so an abort or a hang is a failure
 * here rather than the end of the test program.
 */
#define _GNU_SOURCE
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "gcmalloc.h"

#include "child_deadline.h"

#define DEADLINE_S 40

static pthread_key_t late_key;
static __thread int late_rounds;
static int late_done; /* the late destructor allocated and freed */

/* Runs in every destructor round until the last, so that in the last it
 * runs after gcmalloc's own key (created earlier, so destroyed first). */
static void late_destructor(void *value)
{
    if (++late_rounds < PTHREAD_DESTRUCTOR_ITERATIONS) {
        pthread_setspecific(late_key, value);
        return;
    }
    char *p = gcm_malloc(64);
    if (p == NULL)
        return;
    memset(p, 1, 64);
    gcm_free(p);
    char *q = gcm_malloc(4096); /* and one left to the collector */
    if (q != NULL)
        __atomic_store_n(&late_done, 1, __ATOMIC_RELEASE);
}

static void *worker(void *arg)
{
    pthread_setspecific(late_key, arg);
    /* Registered with the collector on first use (or by the trampoline). */
    for (int i = 0; i < 1000; i++)
        if (gcm_malloc(128) == NULL)
            return NULL;
    return arg;
}

/* In a fresh child: threads that allocate after their exit destructor,
 * then collections; exit 0 when they went through. */
static int child(int threads)
{
    if (gcm_init() != 0)
        return 2;
    if (pthread_key_create(&late_key, late_destructor) != 0)
        return 3;
    for (int round = 0; round < 3; round++) {
        pthread_t th[8];
        for (int i = 0; i < threads; i++)
            if (pthread_create(&th[i], NULL, worker, (void *)(uintptr_t)(i + 1)) != 0)
                return 4;
        for (int i = 0; i < threads; i++)
            pthread_join(th[i], NULL);
        if (!__atomic_load_n(&late_done, __ATOMIC_ACQUIRE))
            return 5; /* the destructor never reached its allocations */
        if (gcm_gc() != 0 || gcm_gc() != 0)
            return 6;
    }
    struct gcm_memstats m;
    if (gcm_read_memstats(&m) != 0 || m.num_gc < 6)
        return 7;
    return 0;
}

static void run_in_child(int threads)
{
    assert_child_passes(child, threads, DEADLINE_S,
                        "collections after threads allocated past their exit (bdwgc aborts on a thread that never answers)");
}

static void test_one_thread(void **state)
{
    (void)state;
    run_in_child(1);
}

static void test_several_threads(void **state)
{
    (void)state;
    run_in_child(4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_thread),
        cmocka_unit_test(test_several_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
