/*
 * thread_args.c — a new thread's argument, held by nothing else while the
 * thread starts (thread_args.sh).
 *
 * A program that hands a thread a malloc'd argument and forgets it (as
 * std::thread does with the state holding its callable) leaves a moment
 * when only the thread's start-up holds it: pthread_create has returned,
 * and the new thread has not yet run far enough to be scanned.  In the
 * collected modes that start-up is gcmalloc's (src/thread.c interposes
 * pthread_create to register each thread), so where it keeps the argument
 * must be memory the collector scans: kept in mimalloc's, a collection in
 * that moment found the argument unreachable, leakcheck reported it as a
 * leak (a C++ program with std::thread, a few times in 200 threads) and gc
 * mode could reclaim it under the thread.
 *
 * Here a collecting thread allocates without pause while the main thread
 * starts threads one after another, each with a fresh argument (filled
 * with its number) that only the thread frees, after checking it.  Prints
 * "ok" when every argument arrived intact; the script checks that
 * leakcheck reported nothing.
 *
 * Usage: thread_args [threads]
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../stack_scrub.h"

enum { ARG_BYTES = 64, CHURN = 2048 };

static int stop, bad;

static __attribute__((noinline)) unsigned char *make_arg(int i)
{
    unsigned char *a = malloc(ARG_BYTES);
    if (a == NULL)
        abort();
    memset(a, i & 0xff, ARG_BYTES);
    return a;
}

static void *worker(void *arg)
{
    unsigned char *a = arg;
    unsigned char want = a[ARG_BYTES - 1];
    for (int j = 0; j < ARG_BYTES; j++)
        if (a[j] != want) {
            __atomic_add_fetch(&bad, 1, __ATOMIC_RELAXED);
            break;
        }
    free(a);
    return NULL;
}

/* Collections: batches held and freed, reaching the pacer's goal. */
static void *collector(void *unused)
{
    (void)unused;
    static void *held[CHURN];
    while (!__atomic_load_n(&stop, __ATOMIC_ACQUIRE)) {
        for (int i = 0; i < CHURN; i++) {
            held[i] = malloc(4000);
            if (held[i] == NULL)
                abort();
            memset(held[i], 1, 64);
        }
        for (int i = 0; i < CHURN; i++) {
            free(held[i]);
            held[i] = NULL;
        }
    }
    return NULL;
}

/* Starts one thread and returns without keeping its argument. */
static __attribute__((noinline)) int start_one(pthread_t *th, int i)
{
    return pthread_create(th, NULL, worker, make_arg(i));
}

int main(int argc, char **argv)
{
    int threads = argc > 1 ? atoi(argv[1]) : 500;
    if (threads < 1) {
        fprintf(stderr, "usage: %s [threads]\n", argv[0]);
        return 2;
    }
    pthread_t col;
    if (pthread_create(&col, NULL, collector, NULL) != 0)
        return 3;
    for (int i = 0; i < threads; i++) {
        pthread_t th;
        if (start_one(&th, i) != 0)
            return 3;
        /* No stale copy of the argument left below this frame, where the
         * join's frames would keep it visible. */
        scrub_stack();
        pthread_join(th, NULL);
    }
    __atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
    pthread_join(col, NULL);
    if (bad != 0) {
        fprintf(stderr, "FAIL: %d arguments changed before their thread read them\n", bad);
        return 1;
    }
    printf("ok\n");
    return 0;
}
