/*
 * latency.c — percentiles of the histogram in latency.h.
 */
#include "latency.h"

void lat_merge(struct latency *a, const struct latency *b)
{
    for (int i = 0; i < LAT_BUCKETS; i++)
        a->count[i] += b->count[i];
    a->n += b->n;
    a->sum_ns += b->sum_ns;
    if (b->max_ns > a->max_ns)
        a->max_ns = b->max_ns;
}

/* The largest value bucket k holds (the inverse of lat_bucket). */
static uint64_t bucket_upper(int k)
{
    if (k < LAT_SUB)
        return (uint64_t)k;
    int e = k / LAT_SUB + 3, sub = k % LAT_SUB;
    uint64_t lower = (uint64_t)(LAT_SUB + sub) << (e - 4);
    return lower + ((uint64_t)1 << (e - 4)) - 1;
}

uint64_t lat_quantile(const struct latency *l, double q)
{
    if (l->n == 0)
        return 0;
    /* The rank of the q-quantile, 1-based, rounded up. */
    uint64_t rank = (uint64_t)(q * (double)l->n);
    if ((double)rank < q * (double)l->n)
        rank++;
    if (rank < 1)
        rank = 1;
    uint64_t seen = 0;
    for (int k = 0; k < LAT_BUCKETS; k++) {
        seen += l->count[k];
        if (seen >= rank) {
            uint64_t up = bucket_upper(k);
            return up < l->max_ns ? up : l->max_ns;
        }
    }
    return l->max_ns;
}
