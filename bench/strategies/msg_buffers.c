/*
 * msg_buffers.c — a buffer per message.
 *
 * A server reads each message into a buffer, handles it and lets the buffer
 * go.  The guides' advice is a sync.Pool of buffers instead of
 * make([]byte, n) per message; gcmalloc's buffer pools (gcm_buf_get/put)
 * are that pool, in size classes.  Each op is one message of 64 B to 16 KiB
 * (log-uniform: as many below 1 KiB as above; a fixed sequence of 1,024
 * sizes that every variant sees in the same order), written in full into
 * the buffer (as a read would), checksummed, released:
 *
 *   BadNewBuffer   malloc(size) and free per message
 *   GoodBufPool    gcm_buf_get(size) and gcm_buf_put: after warm-up every
 *                  get is a hit; the run's hit rate is the hit-% metric,
 *                  and the per-class figures are printed after the results
 */
#include <string.h>

#include "strat.h"

#define NSIZES 1024
#define MAXMSG 16384

static size_t sizes[NSIZES];
static unsigned char payload[MAXMSG];

/* The distinct size classes the sequence uses, for gcm_buf_stats. */
static size_t classes[64];
static int nclasses;

int strat_msg_buffers_init(void)
{
    uint64_t s = 0xa4093822299f31d0ull;
    for (int i = 0; i < NSIZES; i++) {
        /* 2^6 .. 2^14, uniform in the exponent. */
        double e = 6.0 + 8.0 * (double)(strat_rand(&s) >> 11) / 9007199254740992.0;
        size_t n = (size_t)1 << (int)e;
        n += (size_t)((double)n * (e - (int)e));
        sizes[i] = n > MAXMSG ? MAXMSG : n;
        size_t cls = gcm_buf_size_class(sizes[i]);
        int k = 0;
        while (k < nclasses && classes[k] != cls)
            k++;
        if (k == nclasses && nclasses < 64)
            classes[nclasses++] = cls;
    }
    for (int i = 1; i < nclasses; i++) /* ascending, for the summary */
        for (int k = i; k > 0 && classes[k - 1] > classes[k]; k--) {
            size_t t = classes[k];
            classes[k] = classes[k - 1];
            classes[k - 1] = t;
        }
    for (int i = 0; i < MAXMSG; i++)
        payload[i] = (unsigned char)(i * 131 + 7);
    return 0;
}

static uint64_t handle(const unsigned char *m, size_t n)
{
    /* A cheap look at the message: its ends and a stride through it. */
    uint64_t h = n;
    for (size_t i = 0; i < n; i += 64)
        h = h * 31 + m[i];
    return h + m[n - 1];
}

static void bad_new_buffer(bench_b *b)
{
    strat_allocs c = {0};
    uint64_t total = 0;
    for (int64_t it = 0; it < b->n; it++) {
        size_t n = sizes[it & (NSIZES - 1)];
        unsigned char *m = strat_malloc(&c, n);
        memcpy(m, payload, n);
        total += handle(m, n);
        free(m);
    }
    bench_sink(&total);
    strat_report(b, &c);
}

static void class_totals(uint64_t *gets, uint64_t *misses, uint64_t *miss_bytes)
{
    *gets = *misses = *miss_bytes = 0;
    for (int k = 0; k < nclasses; k++) {
        struct gcm_pool_stats st;
        if (gcm_buf_stats(classes[k], &st) == 0) {
            *gets += st.gets;
            *misses += st.misses;
            *miss_bytes += st.misses * st.object_size;
        }
    }
}

static void good_buf_pool(bench_b *b)
{
    uint64_t g0, m0, y0, g1, m1, y1;
    class_totals(&g0, &m0, &y0);
    uint64_t total = 0;
    for (int64_t it = 0; it < b->n; it++) {
        size_t n = sizes[it & (NSIZES - 1)];
        unsigned char *m = strat_check(gcm_buf_get(n));
        memcpy(m, payload, n);
        total += handle(m, n);
        gcm_buf_put(m);
    }
    class_totals(&g1, &m1, &y1);
    bench_sink(&total);
    bench_count_alloc(b, m1 - m0, y1 - y0);
    if (g1 > g0)
        bench_report_metric(b, 100.0 * (double)((g1 - g0) - (m1 - m0)) / (double)(g1 - g0),
                            "hit-%");
}

void strat_msg_buffers_summary(void)
{
    if (bench_result_ns("MsgBuffers/GoodBufPool") <= 0)
        return;
    /* One line: the classes together, and the one that hit least (the
     * rarest sizes, whose first get in each run is a miss). */
    uint64_t gets = 0, misses = 0;
    struct gcm_pool_stats worst = {0};
    int used = 0;
    for (int k = 0; k < nclasses; k++) {
        struct gcm_pool_stats st;
        if (gcm_buf_stats(classes[k], &st) != 0 || st.gets == 0)
            continue;
        used++;
        gets += st.gets;
        misses += st.misses;
        if (worst.name == NULL || st.hit_rate < worst.hit_rate)
            worst = st;
    }
    if (used > 0)
        printf("# MsgBuffers/GoodBufPool, all runs: %d buffer classes, %llu gets, %llu misses, "
               "hit %.3f%% (lowest: %s, %.3f%% of %llu gets)\n",
               used, (unsigned long long)gets, (unsigned long long)misses,
               100.0 * (double)(gets - misses) / (double)gets, worst.name,
               100 * worst.hit_rate, (unsigned long long)worst.gets);
}

const bench_def strat_msg_buffers[] = {
    {"MsgBuffers/BadNewBuffer", bad_new_buffer},
    {"MsgBuffers/GoodBufPool", good_buf_pool},
    {NULL, NULL},
};
