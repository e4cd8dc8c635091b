/*
 * preload_report.c — leakcheck's reports: by allocation site, in text after
 * each collection that found something, in total at exit, and as a pprof
 * profile (GCMALLOC_LEAKS).
 *
 * Where an object was allocated is known when the profiler sampled it:
 * always at GCMALLOC_PROFILE_RATE=1, where every count and byte figure here
 * is exact, and for about one allocation per rate bytes otherwise, where
 * the per-site figures are Go-style unbiased estimates and the objects
 * whose stacks were not sampled are counted apart.  Totals (objects and
 * the bytes the program asked for) are always exact: every object is in
 * leakcheck's table.
 *
 * Runs from a GC cycle hook or at exit, outside the collector's lock; its
 * own memory comes from mimalloc.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mimalloc.h>

#include "internal.h"

typedef struct site {
    gcm__bucket *b;     /* NULL: objects whose stack was not sampled */
    uint64_t objects;   /* leaked objects seen (sampled ones when b) */
    uint64_t bytes;     /* bytes the program asked for               */
    uint64_t sampled_bytes; /* bytes as the profiler counted them    */
} site;

typedef struct sites {
    site *v;
    size_t n, cap;
} sites;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static sites run;                 /* everything found during the run */
static uint64_t run_objects, run_bytes;

static site *site_for(sites *s, gcm__bucket *b)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->v[i].b == b)
            return &s->v[i];
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 32;
        site *v = mi_realloc(s->v, cap * sizeof *v);
        if (v == NULL)
            return NULL;
        s->v = v;
        s->cap = cap;
    }
    site *x = &s->v[s->n++];
    memset(x, 0, sizeof *x);
    x->b = b;
    return x;
}

static void add_to(sites *s, gcm__bucket *b, uint64_t bytes, uint64_t sbytes)
{
    site *x = site_for(s, b);
    if (x == NULL)
        return;
    x->objects++;
    x->bytes += bytes;
    x->sampled_bytes += sbytes;
}

static int by_bytes(const void *a, const void *b)
{
    const site *x = a, *y = b;
    if (x->b == NULL || y->b == NULL)
        return (x->b == NULL) - (y->b == NULL); /* unsampled last */
    return x->bytes < y->bytes ? 1 : x->bytes > y->bytes ? -1 : 0;
}

static void print_stack(const gcm__bucket *b)
{
    gcm__sym_mode mode = gcm__sym_mode_text();
    for (int i = 0; i < b->depth && i < 16; i++) {
        gcm__sym_frame f[8];
        int n = gcm__sym_resolve(mode, b->pcs[i] - 1, f, 8);
        if (n == 0) {
            gcm__diag("        %p", (void *)b->pcs[i]);
            continue;
        }
        for (int k = 0; k < n; k++) {
            char tmp[512];
            const char *fn = gcm__demangled(f[k].function, tmp, sizeof tmp);
            if (f[k].file != NULL)
                gcm__diag("        %s %s:%d%s", fn ? fn : "?", f[k].file, f[k].line,
                          k + 1 < n ? " (inlined)" : "");
            else
                gcm__diag("        %s", fn ? fn : "?");
        }
    }
}

static void print_sites(sites *s, size_t max)
{
    gcm__sort(s->v, s->n, sizeof *s->v, by_bytes); /* qsort may call malloc */
    int64_t rate = gcm__prof_rate();
    size_t shown = 0;
    for (size_t i = 0; i < s->n; i++) {
        site *x = &s->v[i];
        char bytes[64], h[32];
        gcm__fmt_bytes(h, sizeof h, x->bytes);
        gcm__fmt(bytes, sizeof bytes, "%llu bytes (%s)", (unsigned long long)x->bytes, h);
        if (x->b == NULL) {
            gcm__diag("    %llu object(s), %s, whose allocation was not sampled "
                      "(GCMALLOC_PROFILE_RATE=1 records every stack)",
                      (unsigned long long)x->objects, bytes);
            continue;
        }
        if (shown++ == max) {
            gcm__diag("    ... and %zu more site(s)", s->n - i);
            break;
        }
        if (rate <= 1) {
            gcm__diag("    %llu object(s), %s, allocated at:",
                      (unsigned long long)x->objects, bytes);
        } else {
            uint64_t uc, ub;
            gcm__prof_unbias(x->objects, x->sampled_bytes, rate, &uc, &ub);
            char est[32];
            gcm__fmt_bytes(est, sizeof est, ub);
            gcm__diag("    %llu sampled object(s), %s (about %llu objects, %s "
                      "in all), allocated at:", (unsigned long long)x->objects,
                      bytes, (unsigned long long)uc, est);
        }
        print_stack(x->b);
    }
}

void gcm__lc_report_found(uint64_t cycle, const gcm__leaked *objs, size_t n,
                          uint64_t bytes)
{
    /* Sites first, outside `mu`: it stays a leaf lock (fork takes it in an
     * order that must not depend on the profiler's). */
    sites now = {0};
    for (size_t i = 0; i < n; i++) {
        gcm__prof_obj o;
        gcm__bucket *b = NULL;
        size_t sbytes = 0;
        if (gcm__prof_detach(objs[i].p, &o)) {
            b = o.bucket;
            sbytes = o.bytes;
            gcm__prof_reattach(objs[i].p, &o);
        }
        add_to(&now, b, objs[i].size, sbytes);
    }
    pthread_mutex_lock(&mu);
    for (size_t i = 0; i < now.n; i++) {
        site *x = site_for(&run, now.v[i].b);
        if (x != NULL) {
            x->objects += now.v[i].objects;
            x->bytes += now.v[i].bytes;
            x->sampled_bytes += now.v[i].sampled_bytes;
        }
    }
    run_objects += n;
    run_bytes += bytes;
    pthread_mutex_unlock(&mu);
    char total[64], h[32];
    gcm__fmt_bytes(h, sizeof h, bytes);
    gcm__fmt(total, sizeof total, "%llu bytes (%s)", (unsigned long long)bytes, h);
    gcm__diag("leakcheck: GC cycle %llu found %zu object(s), %s, unreachable "
              "and never freed:", (unsigned long long)cycle, n, total);
    print_sites(&now, 10);
    mi_free(now.v);
}

/* The GCMALLOC_LEAKS profile: one sample per site, with the leaked
 * objects as both allocated and in use (they are never freed). */
static int write_profile(const sites *all, const char *path)
{
    gcm__prof_snap snap = {0};
    snap.recs = mi_calloc(all->n ? all->n : 1, sizeof *snap.recs);
    if (snap.recs == NULL)
        return ENOMEM;
    for (size_t i = 0; i < all->n; i++) {
        if (all->v[i].b == NULL)
            continue;
        gcm__prof_rec *r = &snap.recs[snap.n++];
        r->b = all->v[i].b;
        r->c.allocs = all->v[i].objects;
        r->c.alloc_bytes = all->v[i].bytes; /* what the program asked for */
    }
    snap.rate = gcm__prof_rate();
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    snap.time_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    int fd = gcm__open_output(path, false);
    int rc = fd < 0 ? errno : gcm__pprof_write(fd, &snap, false);
    if (fd > 2)
        close(fd);
    mi_free(snap.recs);
    return rc;
}

void gcm__lc_report_exit(void)
{
    /* A last collection: at exit the stacks no longer hold what main's
     * frames held, so every lost object is found. */
    gcm_gc();
    /* A copy to print and write from, outside `mu`. */
    pthread_mutex_lock(&mu);
    sites all = {0};
    uint64_t objects = run_objects, bytes = run_bytes;
    all.v = mi_malloc((run.n ? run.n : 1) * sizeof *all.v);
    if (all.v != NULL) {
        memcpy(all.v, run.v, run.n * sizeof *all.v);
        all.n = all.cap = run.n;
    }
    pthread_mutex_unlock(&mu);
    char total[64], h[32];
    gcm__fmt_bytes(h, sizeof h, bytes);
    gcm__fmt(total, sizeof total, "%llu bytes (%s)", (unsigned long long)bytes, h);
    /* Silence when nothing leaked, as LeakSanitizer does: leakcheck is run
     * on whole process trees (a build, a shell loop), and one line per
     * clean process buries the one report that matters.  GCMALLOC_VERBOSE
     * asks for the confirmation. */
    bool verbose = gcm__opt_bool(GCM_OPT_VERBOSE);
    if (objects == 0) {
        if (verbose)
            gcm__diag("leakcheck: no leaks: every object that became unreachable "
                      "had been freed");
    } else {
        gcm__diag("leakcheck: at exit, %llu object(s), %s in all, became "
                  "unreachable without being freed; by site:",
                  (unsigned long long)objects, total);
        print_sites(&all, 20);
    }
    if (gcm__opt_int(GCM_OPT_LEAKS) == GCM_OUTPUT_PATH) {
        char path[4096];
        gcm__expand_path(gcm__opt_str(GCM_OPT_LEAKS), path, sizeof path);
        int rc = write_profile(&all, path);
        if (rc != 0)
            gcm__diag("GCMALLOC_LEAKS=\"%s\": cannot write the leak profile (%s)",
                      path, gcm__strerror(rc));
        else if (objects != 0 || verbose)
            gcm__diag("leakcheck: leak profile written to %s (go tool pprof "
                      "-sample_index=inuse_space %s)", path, path);
    }
    mi_free(all.v);
}

/* fork(): `mu` is a leaf lock; the child must not inherit it held. */
void gcm__lc_report_fork(int phase)
{
    gcm__fork_mutex(&mu, phase);
}
