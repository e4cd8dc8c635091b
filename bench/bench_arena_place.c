/*
 * bench_arena_place.c — how much of an arena loop's speed is the loop's
 * address.
 *
 * gcm_arena_alloc is inline, so a request's allocation loop *is* the
 * allocator, compiled into the caller and placed wherever the caller's
 * linker puts it.  On the machines this project is measured on (AMD Zen 5)
 * the same instructions run at two speeds depending on where the loop
 * lands.  This program measures that directly: the request of
 * bench_arena.c (N = 1000 allocations of 16–256 bytes, each linked to the
 * previous one, then a reset) compiled into eight copies that differ only
 * in how many bytes of padding precede the loop, for three loops:
 *
 *   Inline/padK     gcm_arena_alloc as users write it: the bump pointer
 *                   lives in the arena and is stored and reloaded on every
 *                   allocation
 *   Register/padK   the same bump with the pointer, the limit and the
 *                   counters copied into locals for the loop (registers),
 *                   written back around the slow path and at the end: what
 *                   an allocator could gain by never touching memory for
 *                   its own state
 *   Stores/padK     no allocator: the same addresses computed from a
 *                   preallocated buffer, and the same stores — the floor
 *                   every variant pays for writing 137 KB per request
 *
 * Read the spread within each family, and the Register family against the
 * Inline one; docs/performance.md has a run and what it shows.
 *
 *   ./bench_arena_place [-bench REGEX] [-benchtime 1s] [-count N]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <gcmalloc.h>

#include "harness.h"

#define N 1000
static size_t sizes[N];
static uint64_t total_bytes;
static gcm_arena *arena;
static char *buffer;

static void make_sizes(void)
{
    uint64_t x = 0x9e3779b97f4a7c15ull; /* bench_arena.c's sequence */
    for (int i = 0; i < N; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        sizes[i] = 16 + (size_t)(x % 241);
        total_bytes += sizes[i];
    }
}

/* K bytes of no-ops ahead of the loop, run once per request. */
#define PAD(K) __asm__ volatile(".rept " #K "\n\tnop\n\t.endr")

/* Each copy starts on its own 256-byte boundary, so the padding alone
 * decides where its loop falls. */
#define COPY __attribute__((noinline, aligned(256)))

#define INLINE_LOOP(K)                                                          \
    COPY static void *inline_##K(gcm_arena *a)                                  \
    {                                                                           \
        PAD(K);                                                                 \
        void *prev = NULL;                                                      \
        for (int k = 0; k < N; k++) {                                           \
            void **p = gcm_arena_alloc(a, sizes[k]);                            \
            p[0] = prev;                                                        \
            prev = p;                                                           \
        }                                                                       \
        return prev;                                                            \
    }

/* The inline path with its state in locals.  The layout of the arena's hot
 * prefix is the library's ABI (gcmalloc/arena.h); this benchmark reads it
 * to show what the layout costs, as no program should. */
#define REGISTER_LOOP(K)                                                        \
    COPY static void *register_##K(gcm_arena *a)                                \
    {                                                                           \
        PAD(K);                                                                 \
        struct gcm_arena_hot_ *h = (struct gcm_arena_hot_ *)(void *)a;          \
        uintptr_t cur = h->cur, limit = h->limit;                               \
        size_t big = h->big;                                                    \
        uint64_t requested = h->requested;                                      \
        void *prev = NULL;                                                      \
        for (int k = 0; k < N; k++) {                                           \
            size_t n = sizes[k], sz = (n + 15) & ~(size_t)15;                   \
            void **p;                                                           \
            if (__builtin_expect(sz - 1 < limit - cur && sz <= big, 1)) {       \
                p = (void **)cur;                                               \
                cur += sz;                                                      \
                requested += n;                                                 \
            } else {                                                            \
                h->cur = cur;                                                   \
                h->requested = requested;                                       \
                p = gcm_arena_alloc_slow_(a, n);                                \
                cur = h->cur;                                                   \
                limit = h->limit;                                               \
                big = h->big;                                                   \
                requested = h->requested;                                       \
            }                                                                   \
            p[0] = prev;                                                        \
            prev = p;                                                           \
        }                                                                       \
        h->cur = cur;                                                           \
        h->requested = requested;                                               \
        return prev;                                                            \
    }

#define STORES_LOOP(K)                                                          \
    COPY static void *stores_##K(char *base)                                    \
    {                                                                           \
        PAD(K);                                                                 \
        uintptr_t cur = (uintptr_t)base;                                        \
        void *prev = NULL;                                                      \
        for (int k = 0; k < N; k++) {                                           \
            void **p = (void **)cur;                                            \
            cur += (sizes[k] + 15) & ~(size_t)15;                               \
            p[0] = prev;                                                        \
            prev = p;                                                           \
        }                                                                       \
        return prev;                                                            \
    }

#define PADS(X) X(0) X(8) X(16) X(24) X(32) X(40) X(48) X(56)
PADS(INLINE_LOOP)
PADS(REGISTER_LOOP)
PADS(STORES_LOOP)

static void run_arena(bench_b *b, void *(*loop)(gcm_arena *))
{
    for (int64_t i = 0; i < b->n; i++) {
        bench_sink(loop(arena));
        gcm_arena_reset(arena);
    }
    bench_count_alloc(b, (uint64_t)N * (uint64_t)b->n, total_bytes * (uint64_t)b->n);
}

static void run_stores(bench_b *b, void *(*loop)(char *))
{
    for (int64_t i = 0; i < b->n; i++)
        bench_sink(loop(buffer));
    bench_count_alloc(b, (uint64_t)N * (uint64_t)b->n, total_bytes * (uint64_t)b->n);
}

#define WRAPPERS(K)                                                             \
    static void b_inline_##K(bench_b *b) { run_arena(b, inline_##K); }          \
    static void b_register_##K(bench_b *b) { run_arena(b, register_##K); }      \
    static void b_stores_##K(bench_b *b) { run_stores(b, stores_##K); }
PADS(WRAPPERS)

int main(int argc, char **argv)
{
    gcm_init();
    make_sizes();
    arena = gcm_arena_new(&(gcm_arena_options){.name = "place"});
    /* Room for the request laid out as the arena lays it out (16-byte
     * rounding), on a 64 KiB boundary like an arena chunk. */
    buffer = aligned_alloc(65536, 256 * 1024);
    if (arena == NULL || buffer == NULL) {
        fprintf(stderr, "bench_arena_place: out of memory\n");
        return 1;
    }
    static const bench_def defs[] = {
#define ROWS(K)                                                                 \
    {"Inline/pad" #K, b_inline_##K}, {"Register/pad" #K, b_register_##K},       \
    {"Stores/pad" #K, b_stores_##K},
        PADS(ROWS)
        {NULL, NULL},
    };
    int rc = bench_main(argc, argv, defs);
    /* Each family's fastest and slowest copy, and the families against the
     * floor at their best. */
    const char *families[] = {"Inline", "Register", "Stores"};
    const char *pads[] = {"0", "8", "16", "24", "32", "40", "48", "56"};
    double best[3] = {0}, worst[3] = {0};
    for (int f = 0; f < 3; f++) {
        for (int k = 0; k < 8; k++) {
            char name[64];
            snprintf(name, sizeof name, "%s/pad%s", families[f], pads[k]);
            double v = bench_result_ns(name);
            if (v <= 0)
                continue;
            if (best[f] == 0 || v < best[f])
                best[f] = v;
            if (v > worst[f])
                worst[f] = v;
        }
        if (best[f] > 0)
            printf("%-8s fastest %.0f ns, slowest %.0f ns per request: slowest/fastest = %.3f\n",
                   families[f], best[f], worst[f], worst[f] / best[f]);
    }
    if (best[2] > 0) {
        for (int f = 0; f < 2; f++)
            if (best[f] > 0)
                printf("%-8s fastest / Stores fastest = %.3f\n", families[f],
                       best[f] / best[2]);
    }
    free(buffer);
    gcm_arena_free(arena);
    return rc;
}
