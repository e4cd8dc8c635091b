/*
 * trace_churn.c — a small gcmalloc program whose gctrace log the analyzer
 * tests read.  It churns the collected heap at a fixed rate for a fixed
 * wall time, so the log has many cycles spread over time, and in "leak"
 * mode it also keeps a fixed number of bytes per tick reachable forever, so
 * the live heap grows linearly with time — the shape the analyzer's leak
 * verdict must recognize.  Every forced_ms it calls gcm_gc(), which gives
 * " (forced)" lines.
 *
 *   trace_churn steady|leak DURATION_MS [FORCED_MS]
 *   GCMALLOC_GCTRACE=log.txt trace_churn leak 2000 500
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <gcmalloc.h>

#include "test_rng.h"

enum {
    TICK_MS = 10,
    RING = 8192,                  /* steady live set: RING objects ...      */
    CHURN_PER_TICK = 2 << 20,     /* bytes allocated and dropped per tick   */
    LEAK_PER_TICK = 96 << 10,     /* bytes kept forever per tick ("leak")   */
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A leaked block: a list node, so everything stays reachable from one
 * global root however long the list gets. */
struct leak {
    struct leak *next;
    char payload[];
};
static struct leak *leaked;

int main(int argc, char **argv)
{
    if (argc < 3 || (strcmp(argv[1], "steady") != 0 && strcmp(argv[1], "leak") != 0)) {
        fprintf(stderr, "usage: trace_churn steady|leak DURATION_MS [FORCED_MS]\n");
        return 2;
    }
    int leak = strcmp(argv[1], "leak") == 0;
    int64_t duration = atoll(argv[2]);
    int64_t forced_every = argc > 3 ? atoll(argv[3]) : 0;
    if (gcm_init() != 0)
        return 1;

    /* The ring lives in the collected heap: it is the steady live set
     * (RING pointers to objects of 16..1024 bytes, about 4 MiB). */
    void **ring = gcm_malloc(RING * sizeof *ring);
    if (ring == NULL)
        return 1;
    test_rng rng = test_rng_seeded(88172645463325252ull);
    int64_t start = now_ms(), next_forced = start + forced_every;
    for (int64_t tick = 0;; tick++) {
        int64_t t = now_ms();
        if (t - start >= duration)
            break;
        for (size_t bytes = 0; bytes < CHURN_PER_TICK;) {
            uint64_t r = test_rng_next(&rng);
            size_t n = 16 + (size_t)(r % 1009);
            void *p = gcm_malloc(n);
            if (p == NULL)
                return 1;
            ring[(r >> 20) % RING] = p;
            bytes += n;
        }
        if (leak) {
            for (size_t kept = 0; kept < LEAK_PER_TICK; kept += 4096) {
                struct leak *l = gcm_malloc(sizeof *l + 4096 - sizeof *l);
                if (l == NULL)
                    return 1;
                l->next = leaked;
                leaked = l;
            }
        }
        if (forced_every > 0 && t >= next_forced) {
            gcm_gc();
            next_forced += forced_every;
        }
        /* Sleep out the rest of the tick: allocation is paced by time, so
         * the log's time axis means something and the machine stays free. */
        int64_t left = start + (tick + 1) * TICK_MS - now_ms();
        if (left > 0) {
            struct timespec ts = {0, (long)left * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    printf("trace_churn %s: done\n", argv[1]);
    return 0;
}
