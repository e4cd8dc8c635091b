/*
 * mt_alloc.c — an allocation-heavy multithreaded program for comparing
 * malloc implementations under LD_PRELOAD (bench/preload_bench.sh).
 *
 * T threads each run N operations over a private working set of S slots:
 * free the slot's block, allocate a new one of a random size (mostly
 * 16–512 bytes, one in 64 up to 16 KiB), write its first and last byte.
 * One operation in 16 also swaps a block with a shared exchange array, so
 * blocks are freed by other threads than the one that allocated them, as
 * in a server handing requests between threads.  Everything is freed at
 * the end.  The printed checksum does not depend on the allocator.
 *
 *   mt_alloc [threads] [operations per thread] [slots per thread]
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define XCHG 1024
static void *exchange[XCHG];
static long ops = 2000000, slots = 1000;

static uint64_t next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static size_t pick_size(uint64_t r)
{
    if ((r & 63) == 0)
        return 512 + (r >> 8) % (16 * 1024 - 512);
    return 16 + (r >> 8) % 497;
}

static void *worker(void *arg)
{
    uint64_t seed = 0x9E3779B97F4A7C15ULL * ((uintptr_t)arg + 1);
    unsigned char **set = calloc((size_t)slots, sizeof *set);
    size_t *len = calloc((size_t)slots, sizeof *len);
    uint64_t sum = 0;
    for (long i = 0; i < ops; i++) {
        uint64_t r = next(&seed);
        long k = (long)(r % (uint64_t)slots);
        if (set[k] != NULL) {
            sum += set[k][0] + set[k][len[k] - 1];
            free(set[k]);
        }
        size_t n = pick_size(next(&seed));
        set[k] = malloc(n);
        len[k] = n;
        set[k][0] = (unsigned char)n;
        set[k][n - 1] = (unsigned char)(n >> 3);
        if ((r >> 32 & 15) == 0) {
            /* hand the block to whoever takes this exchange slot next */
            unsigned char *mine = set[k];
            size_t x = (size_t)(r >> 40) % XCHG;
            unsigned char *theirs = __atomic_exchange_n((unsigned char **)&exchange[x],
                                                        mine, __ATOMIC_ACQ_REL);
            set[k] = NULL;
            if (theirs != NULL)
                free(theirs); /* freed on another thread than it came from */
        }
    }
    for (long k = 0; k < slots; k++)
        free(set[k]);
    free(set);
    free(len);
    return (void *)(uintptr_t)sum;
}

int main(int argc, char **argv)
{
    int threads = argc > 1 ? atoi(argv[1]) : 2;
    if (argc > 2)
        ops = atol(argv[2]);
    if (argc > 3)
        slots = atol(argv[3]);
    if (threads < 1 || threads > 256 || ops < 1 || slots < 1) {
        fprintf(stderr, "usage: mt_alloc [threads 1-256] [ops] [slots]\n");
        return 2;
    }
    pthread_t th[256];
    for (int i = 0; i < threads; i++)
        pthread_create(&th[i], NULL, worker, (void *)(uintptr_t)i);
    uint64_t sum = 0;
    for (int i = 0; i < threads; i++) {
        void *r;
        pthread_join(th[i], &r);
        sum += (uint64_t)(uintptr_t)r;
    }
    for (int i = 0; i < XCHG; i++)
        free(exchange[i]);
    printf("threads %d ops %ld checksum %llu\n", threads, ops, (unsigned long long)sum);
    return 0;
}
