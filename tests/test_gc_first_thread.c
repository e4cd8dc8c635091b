/*
 * test_gc_first_thread.c — a program whose first act is to create threads.
 *
 * The collector starts its marker threads lazily, at the first thread
 * creation, registration or collection (gc.c, gcm__gc_allow_threads).  When
 * that first event is the program's own pthread_create, bdwgc creates its
 * markers from inside our interposed pthread_create; under a sanitizer its
 * calls come back to us through the sanitizer's interceptor with another
 * start routine, and once deadlocked on the lock they were started under.
 * Each test here runs in a fresh child process, so it really is the first
 * thread creation; the parent waits for it at most DEADLINE_S seconds (an
 * alarm in the child would not do: the deadlock happens with every signal
 * blocked, inside the interceptor).
 */
#define _GNU_SOURCE
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

static int tags[8];

static void *worker(void *arg)
{
    /* Allocate enough to run collections from this thread. */
    uintptr_t sum = 0;
    for (int i = 0; i < 20000; i++) {
        char *p = gcm_malloc(256);
        if (p == NULL)
            return NULL;
        p[0] = (char)i;
        sum += (uintptr_t)p[0];
    }
    return arg != NULL ? (void *)(sum + 1) : NULL;
}

#define DEADLINE_S 20

/* In a fresh child: threads first, then a collection; exit 0 when all went
 * through. */
static int child(int threads)
{
    pthread_t th[8];
    for (int i = 0; i < threads; i++)
        if (pthread_create(&th[i], NULL, worker, &tags[i]) != 0)
            return 2;
    for (int i = 0; i < threads; i++) {
        void *r = NULL;
        pthread_join(th[i], &r);
        if (r == NULL)
            return 3;
    }
    if (gcm_gc() != 0)
        return 4;
    struct gcm_memstats m;
    if (gcm_read_memstats(&m) != 0 || m.num_gc == 0)
        return 5;
    return 0;
}

static void run_in_child(int threads)
{
    assert_child_passes(child, threads, DEADLINE_S,
                        "the first pthread_create (a deadlock if it hangs)");
}

static void test_one_thread_first(void **state)
{
    (void)state;
    run_in_child(1);
}

static void test_several_threads_first(void **state)
{
    (void)state;
    run_in_child(8);
}

int main(void)
{
    /* Nothing of the collector's may run in this parent before the fork:
     * the children must start from a collector that has started no thread. */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_thread_first),
        cmocka_unit_test(test_several_threads_first),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
