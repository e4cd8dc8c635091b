/*
 * bench_arena.c — a request's memory, allocated and released all at once,
 * with gcmalloc's arenas and their peers, in one run.
 *
 * A "request" makes N small allocations of mixed sizes (16–256 bytes, the
 * same pseudo-random sequence for every variant), links each to the
 * previous one through its first word, as a request building its data
 * structures would, and then releases everything:
 *
 *   ArenaScan, ArenaNoscan   gcm_arena_new, gcm_arena_alloc ×N, gcm_arena_free
 *   ArenaScanReset           one arena per worker, gcm_arena_reset per request
 *   Glibc                    glibc's malloc ×N, free ×N (walking the list)
 *   Mimalloc                 mi_malloc ×N, mi_free ×N
 *   MiHeap                   mi_heap_new, mi_heap_malloc ×N, mi_heap_destroy
 *   APR                      apr_pool_create, apr_palloc ×N, apr_pool_destroy
 *                            (child of a long-lived root pool, as httpd does)
 *   AprClear                 one pool per worker, apr_pool_clear per request
 *   TallocPool               talloc_pool sized for the request,
 *                            talloc_size ×N, talloc_free
 *
 * for N = 10, 100, 1000.  B/op and allocs/op are what the request asked for
 * (the same for every variant).
 *
 * Debian's libmimalloc.so.2 exports malloc and free (and __libc_malloc,
 * __libc_free) itself, so in any program linked with it (this one, through
 * gcmalloc) plain malloc is mimalloc's.  The Glibc variant therefore looks
 * malloc and free up in libc.so.6's own symbol table (dlsym on its handle,
 * not the global scope).  APR and talloc get their blocks from mimalloc's
 * malloc, which favours them if anything.
 *
 *   ./bench_arena [-bench REGEX] [-benchtime 1s] [-count N]
 */
#ifndef _GNU_SOURCE /* apr-1's pkg-config flags define it too */
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mimalloc.h>

#include <gcmalloc.h>

#ifdef GCM_BENCH_APR
#include <apr_pools.h>
#endif
#ifdef GCM_BENCH_TALLOC
#include <talloc.h>
#endif

#include "harness.h"

#define GCM_ARRAY_LEN_(a) (sizeof(a) / sizeof((a)[0]))

#define MAXN 1000
static size_t sizes[MAXN];
static uint64_t bytes_upto[MAXN + 1];

static void make_sizes(void)
{
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < MAXN; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        sizes[i] = 16 + (size_t)(x % 241); /* 16..256 */
        bytes_upto[i + 1] = bytes_upto[i] + sizes[i];
    }
}

static void count(bench_b *b, int n)
{
    bench_count_alloc(b, (uint64_t)n * (uint64_t)b->n, bytes_upto[n] * (uint64_t)b->n);
}

/* --- gcmalloc arenas ------------------------------------------------------ */

static void arena_request(gcm_arena *a, int n)
{
    void *prev = NULL;
    for (int k = 0; k < n; k++) {
        void **p = gcm_arena_alloc(a, sizes[k]);
        p[0] = prev;
        prev = p;
    }
    bench_sink(prev);
}

static void bench_arena(bench_b *b, int n, int noscan)
{
    gcm_arena_options o = {.noscan = noscan, .name = "bench"};
    for (int64_t i = 0; i < b->n; i++) {
        gcm_arena *a = gcm_arena_new(&o);
        arena_request(a, n);
        gcm_arena_free(a);
    }
    count(b, n);
}

static void bench_arena_reset(bench_b *b, int n)
{
    gcm_arena *a = gcm_arena_new(&(gcm_arena_options){.name = "bench"});
    for (int64_t i = 0; i < b->n; i++) {
        arena_request(a, n);
        gcm_arena_reset(a);
    }
    gcm_arena_free(a);
    count(b, n);
}

/* --- glibc and mimalloc ---------------------------------------------------- */

static void *(*glibc_malloc)(size_t);
static void (*glibc_free)(void *);

static int find_glibc(void)
{
    void *libc = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
    if (libc == NULL)
        return -1;
    *(void **)&glibc_malloc = dlsym(libc, "malloc");
    *(void **)&glibc_free = dlsym(libc, "free");
    Dl_info mi, fi;
    /* Make sure they are libc's and not an interposer's. */
    if (glibc_malloc == NULL || glibc_free == NULL ||
        dladdr(*(void **)&glibc_malloc, &mi) == 0 ||
        dladdr(*(void **)&glibc_free, &fi) == 0 ||
        strstr(mi.dli_fname, "libc.so") == NULL ||
        strstr(fi.dli_fname, "libc.so") == NULL)
        return -1;
    return 0;
}

static void bench_glibc(bench_b *b, int n)
{
    for (int64_t i = 0; i < b->n; i++) {
        void *prev = NULL;
        for (int k = 0; k < n; k++) {
            void **p = glibc_malloc(sizes[k]);
            p[0] = prev;
            prev = p;
        }
        bench_sink(prev);
        while (prev != NULL) {
            void *next = *(void **)prev;
            glibc_free(prev);
            prev = next;
        }
    }
    count(b, n);
}

static void bench_mimalloc(bench_b *b, int n)
{
    for (int64_t i = 0; i < b->n; i++) {
        void *prev = NULL;
        for (int k = 0; k < n; k++) {
            void **p = mi_malloc(sizes[k]);
            p[0] = prev;
            prev = p;
        }
        bench_sink(prev);
        while (prev != NULL) {
            void *next = *(void **)prev;
            mi_free(prev);
            prev = next;
        }
    }
    count(b, n);
}

/* --- mimalloc heaps ---------------------------------------------------------- */

static void bench_mi_heap(bench_b *b, int n)
{
    for (int64_t i = 0; i < b->n; i++) {
        mi_heap_t *h = mi_heap_new();
        void *prev = NULL;
        for (int k = 0; k < n; k++) {
            void **p = mi_heap_malloc(h, sizes[k]);
            p[0] = prev;
            prev = p;
        }
        bench_sink(prev);
        mi_heap_destroy(h);
    }
    count(b, n);
}

/* --- APR pools --------------------------------------------------------------- */

#ifdef GCM_BENCH_APR
static apr_pool_t *apr_root;

static void apr_request(apr_pool_t *p, int n)
{
    void *prev = NULL;
    for (int k = 0; k < n; k++) {
        void **q = apr_palloc(p, sizes[k]);
        q[0] = prev;
        prev = q;
    }
    bench_sink(prev);
}

static void bench_apr(bench_b *b, int n)
{
    for (int64_t i = 0; i < b->n; i++) {
        apr_pool_t *p;
        apr_pool_create(&p, apr_root);
        apr_request(p, n);
        apr_pool_destroy(p);
    }
    count(b, n);
}

static void bench_apr_clear(bench_b *b, int n)
{
    apr_pool_t *p;
    apr_pool_create(&p, apr_root);
    for (int64_t i = 0; i < b->n; i++) {
        apr_request(p, n);
        apr_pool_clear(p);
    }
    apr_pool_destroy(p);
    count(b, n);
}
#endif

/* --- talloc pools -------------------------------------------------------------- */

#ifdef GCM_BENCH_TALLOC
static void bench_talloc(bench_b *b, int n)
{
    /* Room for the whole request: talloc's per-object header (about 100
     * bytes) plus the object, so no allocation falls back to malloc. */
    size_t room = bytes_upto[n] + (size_t)n * 128;
    for (int64_t i = 0; i < b->n; i++) {
        void *pool = talloc_pool(NULL, room);
        void *prev = NULL;
        for (int k = 0; k < n; k++) {
            void **p = talloc_size(pool, sizes[k]);
            p[0] = prev;
            prev = p;
        }
        bench_sink(prev);
        talloc_free(pool);
    }
    count(b, n);
}
#endif

/* --- the table ------------------------------------------------------------------ */

#define NS(X) X(10) X(100) X(1000)
#define DEFS(n)                                                                 \
    static void scan_##n(bench_b *b) { bench_arena(b, n, 0); }                  \
    static void noscan_##n(bench_b *b) { bench_arena(b, n, 1); }                \
    static void reset_##n(bench_b *b) { bench_arena_reset(b, n); }              \
    static void glibc_##n(bench_b *b) { bench_glibc(b, n); }                    \
    static void mimalloc_##n(bench_b *b) { bench_mimalloc(b, n); }              \
    static void miheap_##n(bench_b *b) { bench_mi_heap(b, n); }
NS(DEFS)

#ifdef GCM_BENCH_APR
#define APR_DEFS(n)                                                             \
    static void apr_##n(bench_b *b) { bench_apr(b, n); }                        \
    static void aprclear_##n(bench_b *b) { bench_apr_clear(b, n); }
NS(APR_DEFS)
#define APR_ROWS(n) {"APR/" #n, apr_##n}, {"AprClear/" #n, aprclear_##n},
#else
#define APR_ROWS(n)
#endif

#ifdef GCM_BENCH_TALLOC
#define TALLOC_DEFS(n)                                                          \
    static void talloc_##n(bench_b *b) { bench_talloc(b, n); }
NS(TALLOC_DEFS)
#define TALLOC_ROWS(n) {"TallocPool/" #n, talloc_##n},
#else
#define TALLOC_ROWS(n)
#endif

int main(int argc, char **argv)
{
    gcm_init();
    make_sizes();
    if (find_glibc() != 0) {
        fprintf(stderr, "bench_arena: cannot find glibc's own malloc\n");
        return 1;
    }
#ifdef GCM_BENCH_APR
    apr_pool_initialize();
    apr_pool_create(&apr_root, NULL);
#endif
    static const bench_def defs[] = {
#define ROWS(n)                                                                 \
    {"ArenaScan/" #n, scan_##n}, {"ArenaNoscan/" #n, noscan_##n},               \
    {"ArenaScanReset/" #n, reset_##n}, {"Glibc/" #n, glibc_##n},                \
    {"Mimalloc/" #n, mimalloc_##n}, {"MiHeap/" #n, miheap_##n},                 \
    APR_ROWS(n) TALLOC_ROWS(n)
        NS(ROWS)
        {NULL, NULL},
    };
    int rc = bench_main(argc, argv, defs);
    const char *ns[] = {"10", "100", "1000"};
    const char *peers[] = {"Glibc", "Mimalloc", "MiHeap", "APR", "AprClear",
                           "TallocPool"};
    const char *ours[] = {"ArenaScan", "ArenaNoscan", "ArenaScanReset"};
    for (size_t i = 0; i < 3; i++) {
        for (size_t o = 0; o < 3; o++) {
            for (size_t p = 0; p < GCM_ARRAY_LEN_(peers); p++) {
                char a[64], c[64];
                snprintf(a, sizeof a, "%s/%s", ours[o], ns[i]);
                snprintf(c, sizeof c, "%s/%s", peers[p], ns[i]);
                bench_print_ratio(a, c);
            }
        }
    }
    /* The target: at N = 1000, scan on, against the best of APR and talloc
     * (each in its best form). */
    double best = 0;
    const char *best_name = NULL;
    const char *pools[] = {"APR/1000", "AprClear/1000", "TallocPool/1000"};
    for (size_t p = 0; p < 3; p++) {
        double v = bench_result_ns(pools[p]);
        if (v > 0 && (best == 0 || v < best)) {
            best = v;
            best_name = pools[p];
        }
    }
    if (best_name != NULL) {
        printf("best of APR and talloc at N=1000: %s\n", best_name);
        bench_print_ratio("ArenaScan/1000", best_name);
        bench_print_ratio("ArenaScanReset/1000", best_name);
    }
#ifdef GCM_BENCH_APR
    apr_pool_destroy(apr_root);
    apr_pool_terminate();
#endif
    return rc;
}
