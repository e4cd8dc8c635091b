/*
 * latency.h — a log-linear histogram of request latencies.
 *
 * Storing every latency of a few hundred thousand requests would cost the
 * server's memory figures megabytes of their own; a histogram with 16
 * buckets per power of two costs 8 KiB per worker and reads percentiles
 * within 1/16 (6%), which is all a p99 needs.  Recording is an add to a
 * bucket found with one count-leading-zeros.
 */
#ifndef GCM_DEMO_LATENCY_H
#define GCM_DEMO_LATENCY_H

#include <stdint.h>

#define LAT_SUB 16               /* buckets per power of two */
#define LAT_BUCKETS (64 * LAT_SUB)

struct latency {
    uint64_t count[LAT_BUCKETS];
    uint64_t n, sum_ns, max_ns;
};

static inline int lat_bucket(uint64_t ns)
{
    if (ns < LAT_SUB)
        return (int)ns;
    int e = 63 - __builtin_clzll(ns);          /* ns in [2^e, 2^(e+1)) */
    int sub = (int)((ns >> (e - 4)) & (LAT_SUB - 1));
    return (e - 3) * LAT_SUB + sub;
}

static inline void lat_record(struct latency *l, uint64_t ns)
{
    l->count[lat_bucket(ns)]++;
    l->n++;
    l->sum_ns += ns;
    if (ns > l->max_ns)
        l->max_ns = ns;
}

/* Adds b's counts to a. */
void lat_merge(struct latency *a, const struct latency *b);
/* The latency at quantile q (0 < q <= 1): the upper bound of the bucket
 * holding it, in ns; 0 for an empty histogram. */
uint64_t lat_quantile(const struct latency *l, double q);

#endif
