/*
 * bench_pool.c — pools against the allocators they save calls to.
 *
 *   PoolGetPut         gcm_pool_get + gcm_pool_put of a 128-byte object: the
 *                      hit path (the object comes back from the thread's
 *                      private slot)
 *   MiMallocFree       mi_malloc + mi_free of 128 bytes
 *   GlibcMallocFree    glibc's malloc + free of 128 bytes (__libc_malloc:
 *                      in a program linked with mimalloc, plain malloc may
 *                      resolve to mimalloc's)
 *   BufGetPut/N        gcm_buf_get(N) + gcm_buf_put, N = 64 B .. 32 KiB
 *   BufMiMalloc/N      mi_malloc(N) + mi_free
 *   BufGlibcMalloc/N   glibc malloc(N) + free
 *   Requests           a steady request workload: per request one object
 *                      from a pointer-holding pool, 1-4 buffers of 128 B to
 *                      16 KiB, some collected garbage (so GC cycles come, and
 *                      with them victim rotation); reports the pools' hit rate
 *
 * Every benchmark runs on -cpu threads (bench_run_parallel, as Go's
 * b.RunParallel), each thread on its own objects, so `-cpu 1` and `-cpu 2`
 * give the single-thread cost and the scaling.  bench/run_pool.sh runs both
 * and Go's sync.Pool on the same workloads (bench/go), side by side.
 *
 *   ./bench_pool [-bench REGEX] [-benchtime 1s] [-cpu N]
 *   GCMALLOC_POOLSTATS=1 ./bench_pool -bench Requests   # pool stats at exit
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mimalloc.h>

#include <gcmalloc.h>

#include "harness.h"

/* glibc's own allocator, whatever `malloc` resolves to in this process. */
extern void *__libc_malloc(size_t);
extern void __libc_free(void *);

#define OBJ 128

static gcm_pool *obj_pool;

/* --- object pools vs allocators ------------------------------------------------------- */

static void body_pool(void *arg, int64_t n)
{
    (void)arg;
    for (int64_t i = 0; i < n; i++) {
        void *p = gcm_pool_get(obj_pool);
        bench_sink(p);
        gcm_pool_put(obj_pool, p);
    }
}

static void body_mi(void *arg, int64_t n)
{
    size_t sz = (size_t)(uintptr_t)arg;
    for (int64_t i = 0; i < n; i++) {
        void *p = mi_malloc(sz);
        bench_sink(p);
        mi_free(p);
    }
}

static void body_glibc(void *arg, int64_t n)
{
    size_t sz = (size_t)(uintptr_t)arg;
    for (int64_t i = 0; i < n; i++) {
        void *p = __libc_malloc(sz);
        bench_sink(p);
        __libc_free(p);
    }
}

static void body_buf(void *arg, int64_t n)
{
    size_t sz = (size_t)(uintptr_t)arg;
    for (int64_t i = 0; i < n; i++) {
        void *p = gcm_buf_get(sz);
        bench_sink(p);
        gcm_buf_put(p);
    }
}

static void pool_get_put(bench_b *b) { bench_run_parallel(b, body_pool, NULL); }
static void mi_malloc_free(bench_b *b)
{
    bench_run_parallel(b, body_mi, (void *)(uintptr_t)OBJ);
    bench_count_alloc(b, (uint64_t)b->n, (uint64_t)b->n * OBJ);
}
static void glibc_malloc_free(bench_b *b)
{
    bench_run_parallel(b, body_glibc, (void *)(uintptr_t)OBJ);
    bench_count_alloc(b, (uint64_t)b->n, (uint64_t)b->n * OBJ);
}

#define BUF_SIZES(X) X(64) X(256) X(1024) X(4096) X(16384) X(32768)
#define BUF_DEFS(sz)                                                            \
    static void buf_##sz(bench_b *b)                                            \
    {                                                                           \
        bench_run_parallel(b, body_buf, (void *)(uintptr_t)sz);                 \
    }                                                                           \
    static void bufmi_##sz(bench_b *b)                                          \
    {                                                                           \
        bench_run_parallel(b, body_mi, (void *)(uintptr_t)sz);                  \
        bench_count_alloc(b, (uint64_t)b->n, (uint64_t)b->n * sz);              \
    }                                                                           \
    static void bufglibc_##sz(bench_b *b)                                       \
    {                                                                           \
        bench_run_parallel(b, body_glibc, (void *)(uintptr_t)sz);               \
        bench_count_alloc(b, (uint64_t)b->n, (uint64_t)b->n * sz);              \
    }
BUF_SIZES(BUF_DEFS)

/* --- a steady request workload -------------------------------------------------------- */

typedef struct request {
    uint64_t id;
    void *bufs[4];       /* buffers from gcm_buf_get             */
    size_t sizes[4];
    void *session;       /* a collected object the request uses  */
} request;

static gcm_pool *req_pool;

static void req_reset(void *obj, void *arg)
{
    (void)arg;
    request *r = obj;
    memset(r->bufs, 0, sizeof r->bufs);
    r->session = NULL;
}

static uint32_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return (uint32_t)(*s >> 16);
}

static void body_requests(void *arg, int64_t n)
{
    uint64_t seed = 0x9e3779b97f4a7c15ull ^ (uint64_t)(uintptr_t)&n;
    (void)arg;
    for (int64_t i = 0; i < n; i++) {
        request *r = gcm_pool_get(req_pool);
        r->id = (uint64_t)i;
        int nb = 1 + (int)(rnd(&seed) % 4);
        for (int k = 0; k < nb; k++) {
            /* 128 B .. 16 KiB, small sizes more likely. */
            size_t sz = (size_t)128 << (rnd(&seed) % 8);
            sz += rnd(&seed) % sz;
            if (sz > 16384)
                sz = 16384;
            r->sizes[k] = sz;
            r->bufs[k] = gcm_buf_get(sz);
            memset(r->bufs[k], (int)k, 64);
        }
        /* Per-request garbage on the collected heap drives GC cycles. */
        r->session = gcm_malloc(256);
        bench_sink(r->session);
        for (int k = 0; k < nb; k++)
            gcm_buf_put(r->bufs[k]);
        gcm_pool_put(req_pool, r);
    }
}

static void requests(bench_b *b)
{
    struct gcm_memstats m0, m1;
    gcm_read_memstats(&m0);
    bench_run_parallel(b, body_requests, NULL);
    gcm_read_memstats(&m1);
    uint64_t gets = m1.pool_gets - m0.pool_gets;
    uint64_t misses = m1.pool_misses - m0.pool_misses;
    if (gets > 0)
        bench_report_metric(b, 100.0 * (double)(gets - misses) / (double)gets,
                            "hit%");
    bench_report_metric(b, (double)(m1.num_gc - m0.num_gc), "gcs");
}

int main(int argc, char **argv)
{
    gcm_init();
    gcm_pool_options oo = {.name = "bench-obj", .size = OBJ};
    obj_pool = gcm_pool_new(&oo);
    gcm_pool_options ro = {.name = "request", .size = sizeof(request),
                           .holds_pointers = 1, .reset_fn = req_reset};
    req_pool = gcm_pool_new(&ro);
    if (obj_pool == NULL || req_pool == NULL) {
        fprintf(stderr, "bench_pool: cannot create pools\n");
        return 1;
    }
    static const bench_def defs[] = {
        {"PoolGetPut", pool_get_put},
        {"MiMallocFree", mi_malloc_free},
        {"GlibcMallocFree", glibc_malloc_free},
#define BUF_ROWS(sz)                                                            \
    {"BufGetPut/" #sz, buf_##sz}, {"BufMiMalloc/" #sz, bufmi_##sz},             \
    {"BufGlibcMalloc/" #sz, bufglibc_##sz},
        BUF_SIZES(BUF_ROWS)
        {"Requests", requests},
        {NULL, NULL},
    };
    return bench_main(argc, argv, defs);
}
