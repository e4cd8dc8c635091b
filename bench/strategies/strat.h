/*
 * strat.h — what the strategy benchmarks share.
 *
 * Each file in bench/strategies/ is one family of the allocation patterns
 * the Go memory-profiling guides teach, as bad/good pairs whose names say
 * which (BenchmarkStringBuild/BadReallocExact vs /GoodGeometric), and
 * exports its rows as a NULL-terminated bench_def array; strategies.c runs
 * them all through the harness (harness.h).
 *
 * Counting.  B/op and allocs/op must mean the same thing in every row, or
 * the pairs compare nothing.  Here an allocation is a request that reaches
 * an allocator, and its bytes are the size asked for:
 *
 *   - glibc malloc, calloc, realloc: every call, each realloc counting its
 *     new size (as Go counts each growth of a slice or string: the
 *     allocator may extend a block in place, but the program asked for the
 *     size all the same) — counted here with strat_malloc/strat_realloc,
 *     because gcmalloc does not see glibc;
 *   - the collected heap: counted by the harness from MemStats;
 *   - arenas: each chunk an arena takes, at the chunk's size (a bump
 *     inside a chunk is not an allocation, as a hit in a pool is not);
 *   - pools and buffer pools: each miss (a new object made), at the
 *     object's size or the buffer's class size.
 *
 * glibc's malloc is the one these rows mean by "malloc"; strategies.c
 * checks with dladdr that malloc resolves to libc.so.6 in this process
 * (a library such as Debian's libmimalloc.so.2 exports malloc too) and
 * refuses to run otherwise.
 */
#ifndef GCM_BENCH_STRAT_H
#define GCM_BENCH_STRAT_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <gcmalloc.h>

#include "harness.h"

/* What one run asked its allocators for. */
typedef struct strat_allocs {
    uint64_t n, bytes;
} strat_allocs;

/* Out of memory in a benchmark is not a result: stop. */
static inline void *strat_check(void *p)
{
    if (p == NULL) {
        perror("bench_strategies");
        exit(1);
    }
    return p;
}

static inline void *strat_malloc(strat_allocs *c, size_t n)
{
    c->n++;
    c->bytes += n;
    return strat_check(malloc(n));
}

static inline void *strat_calloc(strat_allocs *c, size_t count, size_t size)
{
    c->n++;
    c->bytes += count * size;
    return strat_check(calloc(count, size));
}

static inline void *strat_realloc(strat_allocs *c, void *p, size_t n)
{
    c->n++;
    c->bytes += n;
    return strat_check(realloc(p, n));
}

/* Hands the run's counts to the harness (they replace MemStats's). */
static inline void strat_report(bench_b *b, const strat_allocs *c)
{
    bench_count_alloc(b, c->n, c->bytes);
}

/* Counts the chunks arena `a` holds beyond the `kept` bytes a reset keeps
 * (0 when the arena is about to be freed), then resets it (reset != 0) or
 * frees it. */
void strat_arena_release(strat_allocs *c, gcm_arena *a, int reset);

/* The misses of `pool` since `before` was taken, at the object size. */
void strat_pool_misses(strat_allocs *c, gcm_pool *pool, const struct gcm_pool_stats *before);

/* A small, fast, deterministic generator (xorshift64*): every variant of a
 * family sees the same sequence. */
static inline uint64_t strat_rand(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545f4914f6cdd1dull;
}

/* The families (one file each). */
extern const bench_def strat_string_build[];
extern const bench_def strat_slice_grow[];
extern const bench_def strat_hash_map[];
extern const bench_def strat_per_request[];
extern const bench_def strat_msg_buffers[];
extern const bench_def strat_boxing[];
extern const bench_def strat_retention[];
extern const bench_def strat_batching[];
extern const bench_def strat_gc_tuning[];

/* Set-up a family needs before bench_main (pools, limits); 0 or errno. */
void strat_hash_map_init(void);
int strat_per_request_init(void);
int strat_msg_buffers_init(void);
void strat_gc_tuning_init(void);
/* Lines printed after the results (ratios, per-class hit rates). */
void strat_msg_buffers_summary(void);

#endif
