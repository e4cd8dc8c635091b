/*
 * server.c — main() of each demo server (demo-malloc, demo-gc, demo-arena,
 * demo-pool): runs the simulation on worker threads, times every request,
 * and prints one machine-readable line for the driver (demo/main.c):
 *
 *   demo-result strategy=gc threads=2 requests=400000 seconds=1.234 ...
 *
 *   demo-<strategy> [--requests N | --seconds S] [--threads T]
 *
 * --requests N: N requests in all, split between the workers (the measured
 * runs: every strategy does exactly the same work).  --seconds S: as many
 * as fit in S seconds (the leak-check run, whose length matters more than
 * its count).  Each worker handles its own request stream, so the work is
 * deterministic and the response checksum is the same for every strategy.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "sim.h"

static struct worker *workers[DEMO_MAX_WORKERS]; /* global: reachable to a collector */
static pthread_barrier_t start;
static int64_t deadline_ns;

static int64_t cpu_ns(void)
{
    /* The whole process: workers, the collector's marker threads, the
     * profiler's thread. */
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ((int64_t)ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000 +
           ((int64_t)ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

struct job {
    struct worker *w;
    uint64_t requests; /* 0: until the deadline */
    int err;
};

static void *work(void *arg)
{
    struct job *j = arg;
    struct worker *w = j->w;
    j->err = demo_strategy_worker_init(w);
    pthread_barrier_wait(&start);
    if (j->err != 0)
        return NULL;
    for (uint64_t n = 0; j->requests == 0 || n < j->requests; n++) {
        if (j->requests == 0 && (n & 255) == 0 && now_ns() >= deadline_ns)
            break;
        size_t len;
        const char *text = demo_next_request(w, &len);
        int64_t t0 = now_ns();
        int rc = demo_handle_request(w, n, text, len);
        lat_record(&w->lat, (uint64_t)(now_ns() - t0));
        if (rc != 0) {
            j->err = ENOMEM;
            break;
        }
    }
    demo_strategy_worker_done(w);
    return NULL;
}

static void usage(const char *argv0)
{
    fprintf(stderr, "usage: %s [--requests N | --seconds S] [--threads T]\n", argv0);
    exit(2);
}

int main(int argc, char **argv)
{
    uint64_t requests = 100000;
    double seconds = 0;
    int threads = 2;
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && strcmp(argv[i], "--requests") == 0)
            requests = strtoull(argv[++i], NULL, 10);
        else if (i + 1 < argc && strcmp(argv[i], "--seconds") == 0)
            seconds = strtod(argv[++i], NULL);
        else if (i + 1 < argc && strcmp(argv[i], "--threads") == 0)
            threads = atoi(argv[++i]);
        else
            usage(argv[0]);
    }
    if (threads < 1 || threads > DEMO_MAX_WORKERS || (seconds <= 0 && requests == 0))
        usage(argv[0]);

    int err = demo_strategy_init();
    if (err != 0) {
        fprintf(stderr, "demo-%s: set-up failed: %s\n", demo_strategy_name, strerror(err));
        return 1;
    }
    struct job jobs[DEMO_MAX_WORKERS];
    for (int i = 0; i < threads; i++) {
        workers[i] = calloc(1, sizeof *workers[i]);
        if (workers[i] == NULL)
            return 1;
        workers[i]->id = i;
        workers[i]->rng = 0x2545f4914f6cdd1dull ^ ((uint64_t)(i + 1) << 32);
        if (demo_make_templates(workers[i]) != 0) {
            fprintf(stderr, "demo-%s: out of memory\n", demo_strategy_name);
            return 1;
        }
        /* The first workers take one more when the count does not divide. */
        uint64_t share = seconds > 0 ? 0
                                     : requests / (uint64_t)threads +
                                           ((uint64_t)i < requests % (uint64_t)threads);
        jobs[i] = (struct job){.w = workers[i], .requests = share};
    }

    struct demo_counts c0, c1;
    demo_strategy_counts(&c0);
    pthread_barrier_init(&start, NULL, (unsigned)threads + 1);
    pthread_t th[DEMO_MAX_WORKERS];
    for (int i = 0; i < threads; i++)
        if (pthread_create(&th[i], NULL, work, &jobs[i]) != 0) {
            fprintf(stderr, "demo-%s: cannot start a worker\n", demo_strategy_name);
            return 1;
        }
    /* Written before the barrier, read by the workers after it. */
    deadline_ns = now_ns() + (int64_t)(seconds * 1e9);
    int64_t cpu0 = cpu_ns();
    pthread_barrier_wait(&start);
    int64_t t0 = now_ns();
    for (int i = 0; i < threads; i++)
        pthread_join(th[i], NULL);
    int64_t t1 = now_ns();
    int64_t cpu1 = cpu_ns();
    demo_strategy_counts(&c1);

    struct latency all = {{0}, 0, 0, 0};
    uint64_t done = 0, checksum = 0, hits = 0, misses = 0;
    for (int i = 0; i < threads; i++) {
        if (jobs[i].err != 0) {
            fprintf(stderr, "demo-%s: worker %d: %s\n", demo_strategy_name, i,
                    strerror(jobs[i].err));
            return 1;
        }
        lat_merge(&all, &workers[i]->lat);
        done += workers[i]->requests;
        checksum += workers[i]->checksum;
        hits += workers[i]->session_hits;
        misses += workers[i]->session_misses;
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("demo-result strategy=%s threads=%d requests=%llu seconds=%.6f cpu_seconds=%.6f "
           "mean_ns=%llu p50_ns=%llu p99_ns=%llu p999_ns=%llu max_ns=%llu rss_kb=%ld allocs=%llu "
           "gc_cycles=%llu gc_cpu=%.6f gc_pause_ns=%llu session_hits=%llu "
           "session_misses=%llu checksum=%016llx\n",
           demo_strategy_name, threads, (unsigned long long)done, (double)(t1 - t0) / 1e9,
           (double)(cpu1 - cpu0) / 1e9,
           (unsigned long long)(all.n > 0 ? all.sum_ns / all.n : 0),
           (unsigned long long)lat_quantile(&all, 0.50),
           (unsigned long long)lat_quantile(&all, 0.99),
           (unsigned long long)lat_quantile(&all, 0.999), (unsigned long long)all.max_ns,
           ru.ru_maxrss, (unsigned long long)(c1.allocs - c0.allocs),
           (unsigned long long)(c1.gc_cycles - c0.gc_cycles), c1.gc_cpu,
           (unsigned long long)(c1.gc_pause_ns - c0.gc_pause_ns), (unsigned long long)hits,
           (unsigned long long)misses, (unsigned long long)checksum);
    fflush(stdout);
    return 0;
}
