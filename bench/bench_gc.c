/*
 * bench_gc.c — the collected heap's allocation cost against its peers, in
 * one run: gcm_malloc (our pacer) vs raw GC_MALLOC (bdwgc's own pacing) vs
 * glibc malloc/free vs mimalloc.  Each allocates a small object and drops
 * it; the GC variants pay for their collections inside the timed loop, the
 * explicit allocators for their frees.  A live set of 8 MiB gives the
 * collector something to mark, as a real program would.
 *
 *   ./bench_gc [-benchtime 1s] [-count N]
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GC_THREADS
#define GC_NO_THREAD_REDIRECTS
#include <gc/gc.h>
#include <mimalloc.h>

#include <gcmalloc.h>

#include "harness.h"

#define LIVE (8u << 20)
static void **live_gcm, **live_raw;

/* Collections per million allocations: the two triggers collect at
 * different rates (both share one bdwgc heap in this process), so time per
 * op alone would mislead. */
static void report_gc(bench_b *b, uint64_t cycles)
{
    bench_report_metric(b, (double)cycles * 1e6 / (double)b->n, "gcs/Mop");
}

static void bench_gcm(bench_b *b, size_t sz)
{
    struct gcm_memstats a, z;
    gcm_read_memstats(&a);
    for (int64_t i = 0; i < b->n; i++) {
        void *p = gcm_malloc(sz);
        if ((i & 63) == 0)
            live_gcm[(size_t)i % (LIVE / 64)] = p;
        bench_sink(p);
    }
    gcm_read_memstats(&z);
    report_gc(b, z.num_gc - a.num_gc);
}

static void bench_raw(bench_b *b, size_t sz)
{
    /* bdwgc's own trigger, as a program calling it directly would have. */
    GC_set_disable_automatic_collection(0);
    size_t gc0 = GC_get_gc_no();
    for (int64_t i = 0; i < b->n; i++) {
        void *p = GC_MALLOC(sz);
        if ((i & 63) == 0)
            live_raw[(size_t)i % (LIVE / 64)] = p;
        bench_sink(p);
    }
    GC_set_disable_automatic_collection(1);
    report_gc(b, GC_get_gc_no() - gc0);
    bench_count_alloc(b, (uint64_t)b->n, (uint64_t)b->n * sz);
}

static void bench_gcm_free(bench_b *b, size_t sz)
{
    for (int64_t i = 0; i < b->n; i++) {
        void *p = gcm_malloc(sz);
        bench_sink(p);
        gcm_free(p);
    }
}

static void bench_glibc(bench_b *b, size_t sz)
{
    for (int64_t i = 0; i < b->n; i++) {
        void *p = malloc(sz);
        bench_sink(p);
        free(p);
    }
    bench_count_alloc(b, (uint64_t)b->n, (uint64_t)b->n * sz);
}

static void bench_mi(bench_b *b, size_t sz)
{
    for (int64_t i = 0; i < b->n; i++) {
        void *p = mi_malloc(sz);
        bench_sink(p);
        mi_free(p);
    }
    bench_count_alloc(b, (uint64_t)b->n, (uint64_t)b->n * sz);
}

#define SIZES(X) X(32) X(256)
#define DEFS(sz)                                                                \
    static void gcm_##sz(bench_b *b) { bench_gcm(b, sz); }                      \
    static void raw_##sz(bench_b *b) { bench_raw(b, sz); }                      \
    static void gcmfree_##sz(bench_b *b) { bench_gcm_free(b, sz); }             \
    static void glibc_##sz(bench_b *b) { bench_glibc(b, sz); }                  \
    static void mi_##sz(bench_b *b) { bench_mi(b, sz); }
SIZES(DEFS)

int main(int argc, char **argv)
{
    gcm_init();
    live_gcm = gcm_malloc((LIVE / 64) * sizeof(void *));
    live_raw = GC_MALLOC((LIVE / 64) * sizeof(void *));
    for (size_t i = 0; i < LIVE / 64; i++) {
        live_gcm[i] = gcm_malloc(48);
        live_raw[i] = GC_MALLOC(48);
    }
    static const bench_def defs[] = {
#define ROWS(sz)                                                                \
    {"GCMalloc/" #sz, gcm_##sz}, {"GCRaw/" #sz, raw_##sz},                       \
    {"GCMallocFree/" #sz, gcmfree_##sz}, {"GlibcMalloc/" #sz, glibc_##sz},       \
    {"Mimalloc/" #sz, mi_##sz},
        SIZES(ROWS)
        {NULL, NULL},
    };
    int rc = bench_main(argc, argv, defs);
    const char *sz[] = {"32", "256"};
    for (int i = 0; i < 2; i++) {
        char a[64], r[64], f[64], g[64], m[64];
        snprintf(a, sizeof a, "GCMalloc/%s", sz[i]);
        snprintf(r, sizeof r, "GCRaw/%s", sz[i]);
        snprintf(f, sizeof f, "GCMallocFree/%s", sz[i]);
        snprintf(g, sizeof g, "GlibcMalloc/%s", sz[i]);
        snprintf(m, sizeof m, "Mimalloc/%s", sz[i]);
        bench_print_ratio(a, r);
        bench_print_ratio(a, g);
        bench_print_ratio(a, m);
        bench_print_ratio(f, g);
    }
    return rc;
}
