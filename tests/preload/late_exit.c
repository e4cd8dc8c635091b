/*
 * late_exit.c — threads that go on working past gcmalloc's exit destructor
 * (late_exit.sh).
 *
 * gcmalloc's key destructor unregisters an exiting thread from the
 * collector in the last round of destructors.  Other keys' destructors may
 * run after it in that round (a key made later runs later), and glibc
 * itself frees blocks after the last round (other threads' cached stacks).
 * From then on the thread is not stopped by collections, and whatever it
 * does must not depend on being stopped.  Each worker here allocates while
 * registered, then sets a key (newer than gcmalloc's) whose destructor
 * waits for the last round and then:
 *
 *   unmap   maps, fills and unmaps a 4 MiB region for a while, gaps
 *           between, as the main thread allocates and so collects.  In the
 *           collected modes the program's mappings are roots
 *           (src/preload_maps.c), taken out of the table before the real
 *           munmap; a collection that had pushed the range before then
 *           read it after it was gone: a SIGSEGV in bdwgc's marker.  This
 *           is what libunwind does (its 256 KiB per-thread cache goes in a
 *           key destructor's last round); test_preload_coroutines crashed
 *           so once in CI, and once in about 4,900 runs of its threaded
 *           case here.
 *   free    frees the blocks the thread allocated.  In leakcheck mode a
 *           free must clear the block's tracking slot whichever thread
 *           makes it: left set, the next collections read the freed block
 *           as a leak, and crashed on it once it was reused.
 *   realloc grows each block, checks what it held, and frees it.  A block
 *           that moves must come back as one free accepts (leakcheck's
 *           header), from memory this unscanned thread may keep alone.
 *
 * Then the main thread allocates and frees enough to collect a few times.
 * Prints "ok" when it survives; the script checks the rest.
 *
 * Usage: late_exit unmap|free|realloc [threads] [milliseconds per thread]
 */
#define _GNU_SOURCE
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

enum { REGION = 4 << 20, LATE_BLOCKS = 1000, CHURN_BLOCKS = 2000 };

static pthread_key_t key;
static enum { UNMAP, FREE, REALLOC } what;
static int bad;
static int busy_ms = 100;
static int running;
static void *late[LATE_BLOCKS];
static void *volatile sink;

static long elapsed_ms(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000;
}

static void pause_us(long us)
{
    struct timespec d = {0, us * 1000};
    nanosleep(&d, NULL);
}

static void unmap_for_a_while(void)
{
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (elapsed_ms(&t0) < busy_ms) {
        char *m = mmap(NULL, REGION, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                       -1, 0);
        if (m == MAP_FAILED)
            abort();
        memset(m, 1, REGION); /* resident: a collection scans all of it */
        pause_us(200);
        munmap(m, REGION);
        pause_us(200);
    }
}

static void last_round(void *arg)
{
    /* Set again until the last round, as libunwind's destructor does. */
    long round = (long)arg;
    if (round < PTHREAD_DESTRUCTOR_ITERATIONS) {
        pthread_setspecific(key, (void *)(round + 1));
        return;
    }
    if (what == UNMAP) {
        unmap_for_a_while();
    } else if (what == FREE) {
        for (int i = 0; i < LATE_BLOCKS; i++)
            free(late[i]);
    } else {
        for (int i = 0; i < LATE_BLOCKS; i++) {
            char *q = realloc(late[i], 4000);
            if (q == NULL)
                abort();
            for (int j = 0; j < 100; j++)
                bad += q[j] != 7;
            memset(q + 100, 8, 3900);
            free(q);
        }
    }
    __atomic_sub_fetch(&running, 1, __ATOMIC_RELEASE);
}

static void *worker(void *arg)
{
    (void)arg;
    /* Allocated while the thread is registered with the collector. */
    for (int i = 0; i < LATE_BLOCKS; i++) {
        late[i] = malloc(100);
        if (late[i] == NULL)
            abort();
        memset(late[i], 7, 100);
    }
    if (what == UNMAP) {
        for (int i = 0; i < LATE_BLOCKS; i++)
            free(late[i]);
    }
    pthread_setspecific(key, (void *)1L);
    return NULL;
}

/* Allocation that reaches the pacer's goal, all of it freed: collections
 * and nothing leaked. */
static void churn(void)
{
    static void *keep[CHURN_BLOCKS];
    for (int i = 0; i < CHURN_BLOCKS; i++) {
        keep[i] = malloc(1024);
        if (keep[i] == NULL)
            abort();
        ((char *)keep[i])[0] = 1;
    }
    for (int i = 0; i < CHURN_BLOCKS; i++)
        free(keep[i]);
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "unmap") == 0)
        what = UNMAP;
    else if (argc >= 2 && strcmp(argv[1], "free") == 0)
        what = FREE;
    else if (argc >= 2 && strcmp(argv[1], "realloc") == 0)
        what = REALLOC;
    else {
        fprintf(stderr, "usage: %s unmap|free|realloc [threads] [milliseconds per thread]\n",
                argv[0]);
        return 2;
    }
    int threads = argc > 2 ? atoi(argv[2]) : 4;
    if (argc > 3)
        busy_ms = atoi(argv[3]);
    if (threads < 1 || busy_ms < 1)
        return 2;
    if (pthread_key_create(&key, last_round) != 0)
        return 3;
    for (int i = 0; i < threads; i++) {
        pthread_t th;
        __atomic_store_n(&running, 1, __ATOMIC_RELEASE);
        if (pthread_create(&th, NULL, worker, NULL) != 0)
            return 3;
        /* Collections while the thread works past its exit. */
        while (__atomic_load_n(&running, __ATOMIC_ACQUIRE) > 0)
            churn();
        pthread_join(th, NULL);
    }
    for (int i = 0; i < 8; i++)
        churn();
    if (bad != 0) {
        fprintf(stderr, "FAIL: %d bytes changed by realloc\n", bad);
        return 1;
    }
    printf("ok\n");
    return 0;
}
