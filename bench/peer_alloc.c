/*
 * peer_alloc.c — allocation patterns of the usual allocator benchmarks
 * (mimalloc-bench and glibc's), written from their descriptions, as one
 * plain program (no gcmalloc) for bench/peer_bench.sh to run under each
 * malloc with LD_PRELOAD.
 *
 *   peer_alloc WORKLOAD [threads] [scale]
 *
 * Workloads (scale multiplies the operation counts; 1 = about 0.2-0.5 s
 * under glibc on one core):
 *
 *   larson      threads replace random slots of per-thread arrays of
 *               8-1000 byte objects; one replacement in 8 goes through a
 *               shared exchange, so frees are often remote, and every
 *               thread is replaced by a new one (which inherits its array)
 *               several times, so live objects outlive their thread
 *   xmalloc     producers allocate 16-256 byte blocks in batches, hand
 *               them to consumers through a queue; consumers free them
 *   cscratch    cache-scratch: one thread allocates a small object for each
 *               worker; each worker frees it, then allocates, writes and
 *               frees its own small objects (passive false sharing)
 *   cthrash     cache-thrash: each thread allocates, writes and frees small
 *               objects of its own (active false sharing)
 *   mstress     mixed sizes 16 B-64 KiB with long- and short-lived
 *               objects, a few of 256 KiB-4 MiB, per thread, a part of the
 *               long-lived set replaced every round
 *   sh6         batches of growing sizes, freed in reverse, in order and
 *               alternately (sh6bench-like)
 *   simple      glibc's bench-malloc-simple: N blocks of one size
 *               allocated then freed, for several sizes and counts
 *   churn       cfrac/espresso-like single-thread churn: many short-lived
 *               16-128 byte objects freed mostly LIFO, some survivors
 *   realloc     buffers grown by realloc in small steps to 64 KiB-1 MiB,
 *               several interleaved, then freed
 *   burst       allocate 256 MiB of small and medium objects, free them
 *               all, and report the resident set afterwards (rss-after-KiB):
 *               is memory given back after a burst?
 *
 * Each run prints one line in Go's benchmark format on stdout, with the
 * process's peak resident set as a metric (peak-KiB), and a check line
 * ("WORKLOAD: threads T ok N bad B") whose contents do not depend on the
 * allocator or on scheduling: every block carries its size at both ends,
 * checked when it is freed; bad counts mismatches.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static int nthreads = 2;
static long scale = 1;
static uint64_t total_ops, total_bytes, bad_blocks;

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void account(uint64_t ops, uint64_t bytes)
{
    __atomic_add_fetch(&total_ops, ops, __ATOMIC_RELAXED);
    __atomic_add_fetch(&total_bytes, bytes, __ATOMIC_RELAXED);
}

/* A block of n >= 16 bytes carrying its size at both ends. */
static void *blk_new(size_t n)
{
    unsigned char *p = malloc(n);
    if (p == NULL) {
        perror("malloc");
        exit(3);
    }
    memcpy(p, &n, sizeof n);
    memcpy(p + n - sizeof n, &n, sizeof n);
    return p;
}

static size_t blk_size(const void *p)
{
    size_t n;
    memcpy(&n, p, sizeof n);
    return n;
}

static void blk_free(void *p)
{
    if (p == NULL)
        return;
    size_t n = blk_size(p), m;
    memcpy(&m, (unsigned char *)p + n - sizeof n, sizeof m);
    if (n < 16 || n != m)
        __atomic_add_fetch(&bad_blocks, 1, __ATOMIC_RELAXED);
    free(p);
}

static void run_threads(void *(*fn)(void *), int n)
{
    pthread_t th[64];
    for (int i = 0; i < n; i++)
        if (pthread_create(&th[i], NULL, fn, (void *)(intptr_t)i) != 0) {
            perror("pthread_create");
            exit(3);
        }
    for (int i = 0; i < n; i++)
        pthread_join(th[i], NULL);
}

/* --- larson ------------------------------------------------------------------------ */

#define LARSON_SLOTS 5000
#define LARSON_XCHG 4096
static void *larson_xchg[LARSON_XCHG];
static void **larson_sets[64];

static void *larson_worker(void *arg)
{
    intptr_t id = (intptr_t)arg;
    void **set = larson_sets[id % nthreads];
    uint64_t seed = 0x9E3779B97F4A7C15ULL * (uint64_t)(id + 1), bytes = 0;
    long ops = 1000000;
    for (long i = 0; i < ops; i++) {
        uint64_t r = rnd(&seed);
        size_t k = (size_t)(r % LARSON_SLOTS);
        size_t n = 8 + (size_t)(rnd(&seed) >> 16) % 993;
        if (n < 16)
            n = 16;
        blk_free(set[k]);
        set[k] = blk_new(n);
        bytes += n;
        if ((r >> 40 & 7) == 0) {
            size_t x = (size_t)(r >> 44) % LARSON_XCHG;
            set[k] = __atomic_exchange_n(&larson_xchg[x], set[k], __ATOMIC_ACQ_REL);
        }
    }
    account((uint64_t)ops, bytes);
    return NULL;
}

static void larson(void)
{
    for (int t = 0; t < nthreads; t++)
        larson_sets[t] = calloc(LARSON_SLOTS, sizeof(void *));
    /* Generations of threads: each new one takes over an array full of its
     * predecessor's objects. */
    for (long g = 0; g < 5 * scale; g++) {
        pthread_t th[64];
        for (int t = 0; t < nthreads; t++)
            pthread_create(&th[t], NULL, larson_worker, (void *)(intptr_t)(g * nthreads + t));
        for (int t = 0; t < nthreads; t++)
            pthread_join(th[t], NULL);
    }
    for (int t = 0; t < nthreads; t++) {
        for (size_t k = 0; k < LARSON_SLOTS; k++)
            blk_free(larson_sets[t][k]);
        free(larson_sets[t]);
    }
    for (size_t x = 0; x < LARSON_XCHG; x++)
        blk_free(larson_xchg[x]);
}

/* --- xmalloc: producers and consumers ---------------------------------------------- */

#define XM_BATCH 256
#define XM_QCAP 64
static struct {
    pthread_mutex_t mu;
    pthread_cond_t nonempty, nonfull;
    void **q[XM_QCAP];
    int head, len, producers_left;
} xm = {.mu = PTHREAD_MUTEX_INITIALIZER,
        .nonempty = PTHREAD_COND_INITIALIZER,
        .nonfull = PTHREAD_COND_INITIALIZER};

static void *xm_producer(void *arg)
{
    uint64_t seed = 0xD1B54A32D192ED03ULL * (uint64_t)((intptr_t)arg + 1), bytes = 0;
    long batches = 16000 * scale;
    for (long b = 0; b < batches; b++) {
        void **batch = malloc(XM_BATCH * sizeof *batch);
        for (int i = 0; i < XM_BATCH; i++) {
            size_t n = 16 + (size_t)(rnd(&seed) >> 20) % 241;
            batch[i] = blk_new(n);
            bytes += n;
        }
        pthread_mutex_lock(&xm.mu);
        while (xm.len == XM_QCAP)
            pthread_cond_wait(&xm.nonfull, &xm.mu);
        xm.q[(xm.head + xm.len++) % XM_QCAP] = batch;
        pthread_cond_signal(&xm.nonempty);
        pthread_mutex_unlock(&xm.mu);
    }
    pthread_mutex_lock(&xm.mu);
    xm.producers_left--;
    pthread_cond_broadcast(&xm.nonempty);
    pthread_mutex_unlock(&xm.mu);
    account((uint64_t)batches * XM_BATCH, bytes);
    return NULL;
}

static void *xm_consumer(void *arg)
{
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&xm.mu);
        while (xm.len == 0 && xm.producers_left > 0)
            pthread_cond_wait(&xm.nonempty, &xm.mu);
        if (xm.len == 0) {
            pthread_mutex_unlock(&xm.mu);
            return NULL;
        }
        void **batch = xm.q[xm.head];
        xm.head = (xm.head + 1) % XM_QCAP;
        xm.len--;
        pthread_cond_signal(&xm.nonfull);
        pthread_mutex_unlock(&xm.mu);
        for (int i = 0; i < XM_BATCH; i++)
            blk_free(batch[i]);
        free(batch);
    }
}

static void *xm_role(void *arg)
{
    intptr_t id = (intptr_t)arg;
    return id % 2 == 0 ? xm_producer(arg) : xm_consumer(arg);
}

static void xmalloc_test(void)
{
    int n = nthreads < 2 ? 2 : nthreads;
    xm.producers_left = (n + 1) / 2;
    run_threads(xm_role, n);
}

/* --- cache-scratch and cache-thrash ------------------------------------------------ */

static void *cs_given[64];
static int cs_passive;

static void *cache_worker(void *arg)
{
    intptr_t id = (intptr_t)arg;
    if (cs_passive)
        blk_free(cs_given[id]);
    long iters = 1000000 * scale;
    uint64_t sum = 0;
    for (long i = 0; i < iters; i++) {
        volatile unsigned char *p = blk_new(32); /* size at 0-7 and 24-31 */
        for (int w = 0; w < 200; w++)
            p[8 + (w & 3)] = (unsigned char)(p[8 + (w & 3)] + w);
        sum += p[8];
        blk_free((void *)p);
    }
    account((uint64_t)iters, (uint64_t)iters * 32);
    return (void *)(uintptr_t)sum;
}

static void cache_bench(int passive)
{
    cs_passive = passive;
    if (passive)
        for (int i = 0; i < nthreads; i++)
            cs_given[i] = blk_new(32); /* neighbours, from this one thread */
    run_threads(cache_worker, nthreads);
}

/* --- mstress / rptest -------------------------------------------------------------- */

static void *mstress_worker(void *arg)
{
    uint64_t seed = 0xA0761D6478BD642FULL * (uint64_t)((intptr_t)arg + 1), bytes = 0, ops = 0;
    enum { LONG = 2000, SHORT = 64 };
    void **keep = calloc(LONG, sizeof *keep);
    void *tmp[SHORT];
    for (long round = 0; round < 1000 * scale; round++) {
        /* a tenth of the long-lived set is replaced */
        for (int i = 0; i < LONG / 10; i++) {
            uint64_t r = rnd(&seed);
            size_t k = (size_t)(r % LONG);
            size_t n = (r >> 32 & 15) == 0 ? 1024 + (size_t)(r >> 40) % (63 * 1024)
                                           : 16 + (size_t)(r >> 40) % 1009;
            blk_free(keep[k]);
            keep[k] = blk_new(n);
            bytes += n, ops++;
        }
        /* bursts of short-lived objects, one in 500 large */
        for (int b = 0; b < 50; b++) {
            for (int i = 0; i < SHORT; i++) {
                uint64_t r = rnd(&seed);
                size_t n = r % 500 == 0 ? (256u << 10) + (size_t)(r >> 32) % (3840u << 10)
                                        : 16 + (size_t)(r >> 40) % 2033;
                tmp[i] = blk_new(n);
                bytes += n, ops++;
            }
            for (int i = SHORT - 1; i >= 0; i--)
                blk_free(tmp[(i * 7) % SHORT]);
        }
    }
    for (int k = 0; k < LONG; k++)
        blk_free(keep[k]);
    free(keep);
    account(ops, bytes);
    return NULL;
}

/* --- sh6bench-like ----------------------------------------------------------------- */

static void sh6(void)
{
    enum { N = 4000 };
    void **p = malloc(N * sizeof *p);
    uint64_t ops = 0, bytes = 0;
    for (long rep = 0; rep < 1500 * scale; rep++) {
        size_t base = 16 + (size_t)(rep % 8) * 24;
        for (int i = 0; i < N; i++) {
            size_t n = base + (size_t)i % 512;
            p[i] = blk_new(n);
            bytes += n;
        }
        ops += N;
        switch (rep % 3) {
        case 0: /* reverse */
            for (int i = N - 1; i >= 0; i--)
                blk_free(p[i]);
            break;
        case 1: /* in order */
            for (int i = 0; i < N; i++)
                blk_free(p[i]);
            break;
        default: /* alternate: evens, then odds */
            for (int i = 0; i < N; i += 2)
                blk_free(p[i]);
            for (int i = 1; i < N; i += 2)
                blk_free(p[i]);
        }
    }
    free(p);
    account(ops, bytes);
}

static void *sh6_worker(void *arg)
{
    (void)arg;
    sh6();
    return NULL;
}

/* --- glibc bench-malloc-simple ----------------------------------------------------- */

static void simple(void)
{
    static const size_t sizes[] = {16, 64, 256, 1024, 4096};
    static const int counts[] = {25, 100, 400, 1600};
    void **p = malloc(1600 * sizeof *p);
    uint64_t ops = 0, bytes = 0;
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++)
        for (size_t c = 0; c < sizeof counts / sizeof *counts; c++) {
            long reps = 400000L * scale / counts[c] / 5;
            for (long r = 0; r < reps; r++) {
                for (int i = 0; i < counts[c]; i++)
                    p[i] = blk_new(sizes[s]);
                for (int i = 0; i < counts[c]; i++)
                    blk_free(p[i]);
            }
            ops += (uint64_t)reps * (uint64_t)counts[c];
            bytes += (uint64_t)reps * (uint64_t)counts[c] * sizes[s];
        }
    free(p);
    account(ops, bytes);
}

/* --- cfrac/espresso-like churn ----------------------------------------------------- */

static void churn(void)
{
    enum { STACK = 256, KEEP = 4096 };
    void *stack[STACK];
    void **keep = calloc(KEEP, sizeof *keep);
    uint64_t seed = 42, ops = 0, bytes = 0;
    for (long it = 0; it < 3200000 * scale; it++) {
        uint64_t r = rnd(&seed);
        int depth = 1 + (int)(r % 24);
        for (int d = 0; d < depth; d++) {
            size_t n = 16 + (size_t)(rnd(&seed) >> 24) % 113;
            stack[d] = blk_new(n);
            bytes += n;
        }
        ops += (uint64_t)depth;
        /* most die LIFO; the deepest result survives for a while */
        size_t k = (size_t)(r >> 32) % KEEP;
        blk_free(keep[k]);
        keep[k] = stack[depth - 1];
        for (int d = depth - 2; d >= 0; d--)
            blk_free(stack[d]);
    }
    for (int k = 0; k < KEEP; k++)
        blk_free(keep[k]);
    free(keep);
    account(ops, bytes);
}

/* --- realloc growth ---------------------------------------------------------------- */

static void realloc_grow(void)
{
    enum { BUFS = 8 };
    uint64_t seed = 7, ops = 0, bytes = 0;
    for (long rep = 0; rep < 160 * scale; rep++) {
        unsigned char *b[BUFS] = {0};
        size_t len[BUFS] = {0}, goal[BUFS];
        for (int i = 0; i < BUFS; i++)
            goal[i] = (64u << 10) << (rnd(&seed) % 5);
        for (int live = BUFS; live > 0;) {
            live = 0;
            for (int i = 0; i < BUFS; i++) {
                if (len[i] >= goal[i])
                    continue;
                live++;
                size_t step = 16 + (size_t)(rnd(&seed) >> 40) % 240;
                unsigned char *q = realloc(b[i], len[i] + step);
                if (q == NULL) {
                    perror("realloc");
                    exit(3);
                }
                memset(q + len[i], i + 1, step);
                b[i] = q, len[i] += step, ops++, bytes += step;
            }
        }
        for (int i = 0; i < BUFS; i++) {
            for (size_t j = 0; j < len[i]; j += 4093) /* did realloc keep it all? */
                if (b[i][j] != i + 1 || b[i][len[i] - 1] != i + 1)
                    __atomic_add_fetch(&bad_blocks, 1, __ATOMIC_RELAXED);
            free(b[i]);
        }
    }
    account(ops, bytes);
}

/* --- burst ------------------------------------------------------------------------- */

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, res = 0;
    if (f != NULL) {
        if (fscanf(f, "%ld %ld", &size, &res) != 2)
            res = 0;
        fclose(f);
    }
    return res * (sysconf(_SC_PAGESIZE) / 1024);
}

static long burst_after;

static void burst(void)
{
    size_t goal = (size_t)256 << 20, have = 0, cap = 1 << 20, n = 0;
    void **p = malloc(cap * sizeof *p);
    uint64_t seed = 99;
    while (have < goal) {
        uint64_t r = rnd(&seed);
        size_t sz = (r & 15) == 0 ? 4096 + (size_t)(r >> 32) % 60000 : 16 + (size_t)(r >> 32) % 500;
        p[n] = blk_new(sz);
        memset((unsigned char *)p[n] + 8, 1, sz - 16); /* resident, as used memory is */
        n++;
        have += sz;
        if (n == cap) {
            cap *= 2;
            p = realloc(p, cap * sizeof *p);
        }
    }
    for (size_t i = 0; i < n; i++)
        blk_free(p[i]);
    free(p);
    /* a little ordinary work afterwards, as a program would do */
    for (int i = 0; i < 100000; i++)
        blk_free(blk_new(64));
    usleep(100000);
    for (int i = 0; i < 1000; i++)
        blk_free(blk_new(64));
    burst_after = rss_kib();
    account(n + 101000, have + 101000 * 64);
}

/* ------------------------------------------------------------------------------------ */

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: peer_alloc larson|xmalloc|cscratch|cthrash|mstress|sh6|"
                        "simple|churn|realloc|burst [threads] [scale]\n");
        return 2;
    }
    const char *w = argv[1];
    if (argc > 2)
        nthreads = atoi(argv[2]);
    if (argc > 3)
        scale = atol(argv[3]);
    if (nthreads < 1 || nthreads > 64 || scale < 1) {
        fprintf(stderr, "peer_alloc: threads 1-64, scale >= 1\n");
        return 2;
    }
    int64_t t0 = now_ns();
    if (strcmp(w, "larson") == 0)
        larson();
    else if (strcmp(w, "xmalloc") == 0)
        xmalloc_test();
    else if (strcmp(w, "cscratch") == 0)
        cache_bench(1);
    else if (strcmp(w, "cthrash") == 0)
        cache_bench(0);
    else if (strcmp(w, "mstress") == 0)
        run_threads(mstress_worker, nthreads);
    else if (strcmp(w, "sh6") == 0)
        run_threads(sh6_worker, nthreads);
    else if (strcmp(w, "simple") == 0)
        simple();
    else if (strcmp(w, "churn") == 0)
        churn();
    else if (strcmp(w, "realloc") == 0)
        realloc_grow();
    else if (strcmp(w, "burst") == 0)
        burst();
    else {
        fprintf(stderr, "peer_alloc: unknown workload %s\n", w);
        return 2;
    }
    int64_t el = now_ns() - t0;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    uint64_t ops = total_ops ? total_ops : 1;
    printf("Benchmark%c%s-%d %10llu %14.2f ns/op %10.1f B/op %6d allocs/op %10ld peak-KiB",
           w[0] - 32, w + 1, nthreads, (unsigned long long)total_ops, (double)el / (double)ops,
           (double)total_bytes / (double)ops, 1, ru.ru_maxrss);
    if (strcmp(w, "burst") == 0)
        printf(" %10ld rss-after-KiB", burst_after);
    printf("\n%s: threads %d ok %llu bad %llu\n", w, nthreads, (unsigned long long)total_ops,
           (unsigned long long)bad_blocks);
    return bad_blocks != 0;
}
