/*
 * idle_workers.c — worker threads that free in batches and sit idle in
 * between, while collections run (idle_workers.sh).
 *
 * In the collected modes a thread's freed blocks wait on per-thread lists
 * for reuse (src/gc.c), and each collection takes the lists of a thread
 * that has stopped freeing, from inside that thread's stop-signal handler,
 * while the thread may be anywhere, its own list code included.  A list
 * taken at the wrong moment would hand one block out twice, or hand out a
 * block the collector reclaimed.  So every worker fills each block it gets
 * with a pattern of its own (thread, batch, index), checks every block of
 * a batch before freeing it, and between batches either goes on at once
 * or sleeps (idle: its lists are taken at the collection after the
 * next).  The main thread allocates batches and frees them, so that
 * collections come often.  Prints the number of batches and "ok"
 * when no block ever held another's pattern.
 *
 * Usage: idle_workers [threads] [milliseconds]
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { MAX_BATCH = 4000, MAX_THREADS = 16, KEEP = 512 };

static int run_ms = 1000;
static int stop;
static long bad, batches;

static uint64_t now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

static uint32_t next(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

/* The block's size from its pattern's seed: 16 to 1,500 bytes. */
static size_t size_of(uint64_t tag) { return 16 + (size_t)(tag * 2654435761u % 1485); }

static void fill(unsigned char *p, uint64_t tag)
{
    size_t n = size_of(tag);
    memcpy(p, &tag, sizeof tag);
    memset(p + sizeof tag, (int)(tag & 0xff), n - sizeof tag);
}

static bool intact(const unsigned char *p, uint64_t tag)
{
    size_t n = size_of(tag);
    uint64_t t;
    memcpy(&t, p, sizeof t);
    if (t != tag)
        return false;
    for (size_t i = sizeof tag; i < n; i++)
        if (p[i] != (unsigned char)(tag & 0xff))
            return false;
    return true;
}

static void *worker(void *arg)
{
    uint32_t seed = (uint32_t)(uintptr_t)arg * 2654435761u + 1;
    uint64_t id = (uint64_t)(uintptr_t)arg;
    unsigned char *block[MAX_BATCH]; /* on the stack, where the collector looks */
    for (uint64_t b = 0; !__atomic_load_n(&stop, __ATOMIC_ACQUIRE); b++) {
        int n = 1 + (int)(next(&seed) % MAX_BATCH);
        for (int i = 0; i < n; i++) {
            uint64_t tag = id << 56 | b << 16 | (uint64_t)i;
            block[i] = malloc(size_of(tag));
            if (block[i] == NULL)
                abort();
            fill(block[i], tag);
        }
        for (int i = 0; i < n; i++) {
            uint64_t tag = id << 56 | b << 16 | (uint64_t)i;
            if (!intact(block[i], tag))
                __atomic_add_fetch(&bad, 1, __ATOMIC_RELAXED);
            free(block[i]);
            block[i] = NULL;
        }
        __atomic_add_fetch(&batches, 1, __ATOMIC_RELAXED);
        if (next(&seed) % 3 == 0) {
            struct timespec d = {0, (long)(1 + next(&seed) % 150) * 1000000};
            nanosleep(&d, NULL); /* idle: the next collections stop it here */
        }
    }
    return NULL;
}

int main(int argc, char **argv)
{
    int threads = argc > 1 ? atoi(argv[1]) : 4;
    if (argc > 2)
        run_ms = atoi(argv[2]);
    if (threads < 1 || threads > MAX_THREADS || run_ms < 1) {
        fprintf(stderr, "usage: %s [threads 1-%d] [milliseconds]\n", argv[0], MAX_THREADS);
        return 2;
    }
    pthread_t th[MAX_THREADS];
    for (int i = 0; i < threads; i++)
        if (pthread_create(&th[i], NULL, worker, (void *)(uintptr_t)(i + 1)) != 0)
            return 3;
    /* Collections: batches of about 2 MB held and then freed, which take
     * the heap past the pacer's goal at its small settings. */
    static void *kept[KEEP];
    uint32_t seed = 12345;
    uint64_t end = now_ms() + (uint64_t)run_ms;
    while (now_ms() < end) {
        for (int k = 0; k < KEEP; k++) {
            kept[k] = malloc(64 + next(&seed) % 8000);
            if (kept[k] == NULL)
                abort();
            memset(kept[k], 1, 64);
        }
        for (int k = 0; k < KEEP; k++) {
            free(kept[k]);
            kept[k] = NULL;
        }
    }
    __atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < threads; i++)
        pthread_join(th[i], NULL);
    printf("batches %ld\n", batches);
    if (bad != 0) {
        fprintf(stderr, "FAIL: %ld blocks changed under their thread\n", bad);
        return 1;
    }
    printf("ok\n");
    return 0;
}
