/*
 * prof_sites.c — a program with known allocation sites, for checking heap
 * profiles with the real reader (tests/prof_pprof.sh runs it under
 * `go tool pprof`).
 *
 *   churn_small   allocates N small objects (64 bytes each) and drops them
 *   churn_big     allocates objects of 256 bytes: 3x churn_small's bytes
 *                 in 3/4 of its objects
 *   leak_nodes    allocates 1 KiB nodes and keeps every one (a "leak"),
 *                 through an inlined helper (make_node)
 *
 * Each phase does all three, collects, and writes OUTDIR/heapP.pb.gz and
 * OUTDIR/allocsP.pb.gz.  Between phases only the leak grows.  The sizes
 * are bdwgc's size classes exactly (a request of n−1 bytes occupies n), so
 * the expected figures are exact.  SCALE divides the counts (rate-1 runs
 * record every allocation's stack and need fewer).
 *
 *   prof_sites OUTDIR SCALE PHASES
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gcmalloc.h>

#define SMALL 64
#define BIG 256
#define NODE 1024

static long n_small = 2000000, n_big = 1500000, n_leak = 65536;

/* The leaked nodes stay reachable from here.  A node is a 1023-byte
 * request (bdwgc adds one byte, for pointers just past the end). */
struct node {
    struct node *next;
};
static struct node *leaked;

static volatile unsigned long sink;

__attribute__((noinline)) static void churn_small(void)
{
    for (long i = 0; i < n_small; i++) {
        char *p = gcm_malloc(SMALL - 1);
        if (p == NULL)
            exit(3);
        p[0] = (char)i;
        sink += (unsigned long)p[0];
    }
}

__attribute__((noinline)) static void churn_big(void)
{
    for (long i = 0; i < n_big; i++) {
        char *p = gcm_malloc(BIG - 1);
        if (p == NULL)
            exit(3);
        p[0] = (char)i;
        sink += (unsigned long)p[0];
    }
}

static inline __attribute__((always_inline)) struct node *make_node(void)
{
    struct node *n = gcm_malloc(NODE - 1);
    if (n == NULL)
        exit(3);
    return n;
}

__attribute__((noinline)) static void leak_nodes(void)
{
    for (long i = 0; i < n_leak; i++) {
        struct node *n = make_node();
        n->next = leaked;
        leaked = n;
    }
}

static void write_profiles(const char *dir, int phase)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/heap%d.pb.gz", dir, phase);
    int rc = gcm_profile_write(path);
    if (rc != 0) {
        fprintf(stderr, "gcm_profile_write(%s): %s\n", path, strerror(rc));
        exit(2);
    }
    snprintf(path, sizeof path, "%s/allocs%d.pb.gz", dir, phase);
    rc = gcm_profile_write_view(path, GCM_PROFILE_ALLOCS);
    if (rc != 0) {
        fprintf(stderr, "gcm_profile_write_view(%s): %s\n", path, strerror(rc));
        exit(2);
    }
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s OUTDIR SCALE PHASES\n", argv[0]);
        return 2;
    }
    long scale = atol(argv[2]);
    int phases = atoi(argv[3]);
    if (scale < 1 || phases < 1) {
        fprintf(stderr, "bad SCALE or PHASES\n");
        return 2;
    }
    n_small /= scale;
    n_big /= scale;
    n_leak /= scale;
    for (int p = 1; p <= phases; p++) {
        churn_small();
        churn_big();
        leak_nodes();
        gcm_gc();
        write_profiles(argv[1], p);
    }
    return 0;
}
