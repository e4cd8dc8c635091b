/*
 * strategies.c — runs every strategy family (the files of bench/strategies/) through
 * the harness, in one process and one run, so that each bad/good pair is
 * measured side by side on the same machine state: compare the pairs as
 * ratios (printed at the end), not as absolute nanoseconds.
 *
 *   ./bench_strategies [-bench REGEX] [-benchtime 1s|1000x] [-count N]
 *                      [-memprofile FILE] [-memprofilerate N]
 *
 * See docs/performance.md ("Strategies") for a full run and what each
 * family shows.
 */
#define _GNU_SOURCE
#include <string.h>

#include "strat.h"

void strat_arena_release(strat_allocs *c, gcm_arena *a, int reset)
{
    struct gcm_arena_stats st;
    gcm_arena_stats(a, &st);
    size_t kept_chunks = reset ? 1 : 0, kept_bytes = reset ? st.chunk_size : 0;
    if (st.chunks > kept_chunks) {
        c->n += st.chunks - kept_chunks;
        c->bytes += st.chunk_bytes > kept_bytes ? st.chunk_bytes - kept_bytes : 0;
    }
    if (reset)
        gcm_arena_reset(a);
    else
        gcm_arena_free(a);
}

void strat_pool_misses(strat_allocs *c, gcm_pool *pool, const struct gcm_pool_stats *before)
{
    struct gcm_pool_stats now;
    gcm_pool_stats(pool, &now);
    uint64_t m = now.misses - before->misses;
    c->n += m;
    c->bytes += m * now.object_size;
}

/* "Bad/X" against each "Good/Y" of the same family, as ratios of ns/op. */
static void print_ratios(const bench_def *all)
{
    for (const bench_def *bad = all; bad->name != NULL; bad++) {
        const char *slash = strchr(bad->name, '/');
        if (slash == NULL || strncmp(slash + 1, "Bad", 3) != 0)
            continue;
        size_t fam = (size_t)(slash - bad->name);
        for (const bench_def *good = all; good->name != NULL; good++)
            if (strncmp(good->name, bad->name, fam) == 0 && good->name[fam] == '/' &&
                strncmp(good->name + fam + 1, "Good", 4) == 0)
                bench_print_ratio(good->name, bad->name);
    }
}

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
static const int sanitized = 1;
#else
static const int sanitized = 0;
#endif

int main(int argc, char **argv)
{
    gcm_init();
    /* The rows named "malloc" must be glibc's: a library that exports
     * malloc (Debian's libmimalloc.so.2 does) linked before libc would
     * replace it without a word. */
    const char *origin = bench_malloc_origin();
    if (strstr(origin, "/libc.so") == NULL) {
        fprintf(stderr, "bench_strategies: malloc comes from %s, not glibc's libc.so.6; "
                        "the malloc rows would measure the wrong allocator\n", origin);
        /* A sanitizer's malloc is there by design, and nobody reads its
         * timings: such builds run the rows for their checks. */
        if (!sanitized)
            return 1;
    }
    if (strat_per_request_init() != 0 || strat_msg_buffers_init() != 0) {
        perror("bench_strategies: pools");
        return 1;
    }
    strat_hash_map_init();
    strat_gc_tuning_init();

    const bench_def *families[] = {
        strat_string_build, strat_slice_grow, strat_hash_map,  strat_per_request,
        strat_msg_buffers,  strat_boxing,     strat_retention, strat_batching,
        strat_gc_tuning,
    };
    static bench_def all[128];
    size_t n = 0;
    for (size_t f = 0; f < sizeof families / sizeof families[0]; f++)
        for (const bench_def *d = families[f]; d->name != NULL; d++)
            if (n + 1 < sizeof all / sizeof all[0])
                all[n++] = *d;
    all[n] = (bench_def){NULL, NULL};

    int rc = bench_main(argc, argv, all);
    if (rc == 0) {
        strat_msg_buffers_summary();
        print_ratios(all);
    }
    return rc;
}
