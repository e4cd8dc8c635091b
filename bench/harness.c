/*
 * harness.c — see harness.h.  Mirrors Go's testing.B: run once with n=1,
 * then predict the n that fills the time budget (growing at most 100× per
 * step and rounding to a "nice" number), as launch/runN in testing/benchmark.go.
 *
 * The GC figures of a run come from the collector's "cycle finished" hook
 * (an internal interface: MemStats publishes the GC CPU share only as a
 * fraction since start, which cannot be split into per-run windows).  The
 * hook adds each cycle's CPU time, pause and heap to counters that the
 * timer reads when it starts and stops, exactly as it reads MemStats.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <dlfcn.h>
#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <gcmalloc.h>

#include "internal.h" /* gcm__gc_on_cycle: per-cycle CPU time, pause, heap */

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* --- the collector's cycles ------------------------------------------------ */

static struct {
    uint64_t cycles, cpu_ns, stw_ns; /* cumulative, every cycle            */
    uint64_t peak_heap, max_pause;   /* since the timer last started       */
    int procs;                       /* CPUs the collector counted with    */
} GC;

static void on_cycle(const gcm__cycle *c, void *arg)
{
    (void)arg;
    __atomic_add_fetch(&GC.cycles, 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&GC.cpu_ns, (uint64_t)c->gc_cpu_ns, __ATOMIC_RELAXED);
    __atomic_add_fetch(&GC.stw_ns, (uint64_t)c->pause_ns, __ATOMIC_RELAXED);
    __atomic_store_n(&GC.procs, c->procs, __ATOMIC_RELAXED);
    uint64_t h = c->heap0, m = __atomic_load_n(&GC.peak_heap, __ATOMIC_RELAXED);
    while (h > m && !__atomic_compare_exchange_n(&GC.peak_heap, &m, h, true,
                                                 __ATOMIC_RELAXED, __ATOMIC_RELAXED))
        ;
    uint64_t p = (uint64_t)c->pause_ns;
    m = __atomic_load_n(&GC.max_pause, __ATOMIC_RELAXED);
    while (p > m && !__atomic_compare_exchange_n(&GC.max_pause, &m, p, true,
                                                 __ATOMIC_RELAXED, __ATOMIC_RELAXED))
        ;
}

/* A timed window starts: the cycles' maxima start over. */
static void gc_window_reset(void)
{
    __atomic_store_n(&GC.peak_heap, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&GC.max_pause, 0, __ATOMIC_RELAXED);
}

static uint64_t max_u64(uint64_t a, uint64_t b) { return a > b ? a : b; }

/* The heap as the pacer counts it. */
static uint64_t heap_of(const struct gcm_memstats *ms)
{
    return ms->heap_alloc + ms->arena_inuse;
}

/* A timed window ends: its maxima, and the heap now, go into b. */
static void gc_window_fold(bench_b *b, uint64_t heap_now)
{
    b->gc_peak_heap = max_u64(b->gc_peak_heap,
                              max_u64(heap_now, __atomic_load_n(&GC.peak_heap,
                                                                __ATOMIC_RELAXED)));
    b->gc_max_pause = max_u64(b->gc_max_pause,
                              __atomic_load_n(&GC.max_pause, __ATOMIC_RELAXED));
}

uint64_t bench_gc_peak_heap(bench_b *b)
{
    if (!b->timer_on)
        return b->gc_peak_heap;
    struct gcm_memstats ms;
    gcm_read_memstats(&ms);
    uint64_t window = max_u64(heap_of(&ms), __atomic_load_n(&GC.peak_heap, __ATOMIC_RELAXED));
    return max_u64(b->gc_peak_heap, window);
}

/* --- timer ------------------------------------------------------------------ */

/* Returns the heap now. */
static uint64_t read_counts(uint64_t *allocs, uint64_t *bytes, uint64_t *gcs, uint64_t *cpu,
                            uint64_t *stw)
{
    struct gcm_memstats ms;
    gcm_read_memstats(&ms);
    *allocs = ms.mallocs;
    *bytes = ms.total_alloc;
    *gcs = __atomic_load_n(&GC.cycles, __ATOMIC_RELAXED);
    *cpu = __atomic_load_n(&GC.cpu_ns, __ATOMIC_RELAXED);
    *stw = __atomic_load_n(&GC.stw_ns, __ATOMIC_RELAXED);
    return heap_of(&ms);
}

static void read_start(bench_b *b)
{
    read_counts(&b->allocs0, &b->bytes0, &b->gcs0, &b->gc_cpu0, &b->gc_stw0);
    gc_window_reset();
}

void bench_start_timer(bench_b *b)
{
    if (b->timer_on)
        return;
    read_start(b);
    b->start_ns = now_ns();
    b->timer_on = true;
}

void bench_stop_timer(bench_b *b)
{
    if (!b->timer_on)
        return;
    b->elapsed_ns += now_ns() - b->start_ns;
    uint64_t a, y, g, c, w;
    uint64_t heap = read_counts(&a, &y, &g, &c, &w);
    gc_window_fold(b, heap);
    b->allocs += a - b->allocs0;
    b->bytes += y - b->bytes0;
    b->gcs += g - b->gcs0;
    b->gc_cpu_ns += c - b->gc_cpu0;
    b->gc_stw_ns += w - b->gc_stw0;
    b->timer_on = false;
}

static void clear_counts(bench_b *b)
{
    b->elapsed_ns = 0;
    b->allocs = b->bytes = 0;
    b->gcs = b->gc_cpu_ns = b->gc_stw_ns = 0;
    b->gc_peak_heap = b->gc_max_pause = 0;
    b->user_allocs = b->user_bytes = 0;
    b->user_counted = false;
    b->nmetrics = 0;
}

void bench_reset_timer(bench_b *b)
{
    if (b->timer_on) {
        read_start(b);
        b->start_ns = now_ns();
    }
    clear_counts(b);
}

void bench_count_alloc(bench_b *b, uint64_t n, uint64_t bytes)
{
    b->user_counted = true;
    b->user_allocs += n;
    b->user_bytes += bytes;
}

void bench_report_metric(bench_b *b, double value, const char *unit)
{
    for (int i = 0; i < b->nmetrics; i++) {
        if (strcmp(b->metrics[i].unit, unit) == 0) {
            b->metrics[i].v = value;
            return;
        }
    }
    if (b->nmetrics < 8) {
        b->metrics[b->nmetrics].v = value;
        snprintf(b->metrics[b->nmetrics].unit, sizeof b->metrics[0].unit, "%s", unit);
        b->nmetrics++;
    }
}

struct par {
    void (*body)(void *, int64_t);
    void *arg;
    int64_t iters;
    pthread_barrier_t *bar;
};

static void *par_main(void *p)
{
    struct par *w = p;
    pthread_barrier_wait(w->bar);
    w->body(w->arg, w->iters);
    return NULL;
}

void bench_run_parallel(bench_b *b, void (*body)(void *, int64_t), void *arg)
{
    int P = b->procs > 0 ? b->procs : 1;
    pthread_t th[64];
    struct par w[64];
    pthread_barrier_t bar;
    if (P > 64)
        P = 64;
    pthread_barrier_init(&bar, NULL, (unsigned)P + 1);
    for (int i = 0; i < P; i++) {
        w[i] = (struct par){body, arg, b->n / P + (i < b->n % P ? 1 : 0), &bar};
        pthread_create(&th[i], NULL, par_main, &w[i]);
    }
    bench_reset_timer(b);
    pthread_barrier_wait(&bar);
    for (int i = 0; i < P; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&bar);
}

static void run_n(bench_b *b, bench_fn fn, int64_t n)
{
    b->n = n;
    clear_counts(b);
    b->timer_on = false;
    bench_start_timer(b);
    fn(b);
    bench_stop_timer(b);
}

static struct {
    char name[128];
    int64_t max_n;
} limits[16];
static int nlimits;

void bench_limit_n(const char *name, int64_t max_n)
{
    if (nlimits < 16 && max_n > 0) {
        snprintf(limits[nlimits].name, sizeof limits[0].name, "%s", name);
        limits[nlimits++].max_n = max_n;
    }
}

static int64_t limit_of(const char *name)
{
    for (int i = 0; i < nlimits; i++)
        if (strcmp(limits[i].name, name) == 0)
            return limits[i].max_n;
    return 1000000000;
}

/* Go's roundUp: the smallest 1, 2, 3, 5 × 10^k not below n. */
static int64_t round_up(int64_t n)
{
    int64_t base = 1;
    while (base * 10 <= n)
        base *= 10;
    if (n <= base)
        return base;
    if (n <= 2 * base)
        return 2 * base;
    if (n <= 3 * base)
        return 3 * base;
    if (n <= 5 * base)
        return 5 * base;
    return 10 * base;
}

static bool parse_benchtime(const char *s, int64_t *ns, int64_t *iters)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || v <= 0)
        return false;
    *ns = 0;
    *iters = 0;
    if (strcmp(end, "x") == 0)
        *iters = (int64_t)v;
    else if (strcmp(end, "s") == 0)
        *ns = (int64_t)(v * 1e9);
    else if (strcmp(end, "ms") == 0)
        *ns = (int64_t)(v * 1e6);
    else
        return false;
    return true;
}

const char *bench_malloc_origin(void)
{
    /* The definition the dynamic linker binds every reference to: the
     * first in the global lookup order (a non-PIE program's &malloc could
     * be its own PLT slot instead). */
    void *m = dlsym(RTLD_DEFAULT, "malloc");
    Dl_info info;
    if (m == NULL || dladdr(m, &info) == 0 || info.dli_fname == NULL)
        return "unknown";
    return info.dli_fname;
}

static void print_header(void)
{
    printf("goos: linux\ngoarch: amd64\npkg: gcmalloc/bench\n");
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[512];
    while (f != NULL && fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, "model name", 10) == 0) {
            char *v = strchr(line, ':');
            if (v != NULL) {
                v += 2;
                v[strcspn(v, "\n")] = '\0';
                printf("cpu: %s\n", v);
            }
            break;
        }
    }
    if (f != NULL)
        fclose(f);
    printf("malloc: %s\n", bench_malloc_origin());
    fflush(stdout);
}

static struct {
    char name[128];
    double ns;
} results[256];
static int nresults;

static void remember(const char *name, double ns)
{
    for (int i = 0; i < nresults; i++) {
        if (strcmp(results[i].name, name) == 0) {
            results[i].ns = ns;
            return;
        }
    }
    if (nresults < 256) {
        snprintf(results[nresults].name, sizeof results[0].name, "%s", name);
        results[nresults++].ns = ns;
    }
}

double bench_result_ns(const char *name)
{
    for (int i = 0; i < nresults; i++)
        if (strcmp(results[i].name, name) == 0)
            return results[i].ns;
    return 0;
}

void bench_print_ratio(const char *a, const char *b)
{
    double x = bench_result_ns(a), y = bench_result_ns(b);
    if (x > 0 && y > 0)
        printf("ratio %s / %s = %.3f\n", a, b, x / y);
}

static void print_line(const char *name, int procs, const bench_b *b)
{
    double ns = b->n > 0 ? (double)b->elapsed_ns / (double)b->n : 0;
    remember(name, ns);
    uint64_t allocs = b->user_counted ? b->user_allocs : b->allocs;
    uint64_t bytes = b->user_counted ? b->user_bytes : b->bytes;
    char full[256];
    snprintf(full, sizeof full, "Benchmark%s-%d", name, procs);
    printf("%-40s %10lld", full, (long long)b->n);
    if (ns >= 100)
        printf(" %12.0f ns/op", ns);
    else if (ns >= 10)
        printf(" %12.1f ns/op", ns);
    else
        printf(" %12.2f ns/op", ns);
    printf(" %8llu B/op %8llu allocs/op",
           (unsigned long long)(b->n ? bytes / (uint64_t)b->n : 0),
           (unsigned long long)(b->n ? allocs / (uint64_t)b->n : 0));
    for (int i = 0; i < b->nmetrics; i++)
        printf(" %12.4g %s", b->metrics[i].v, b->metrics[i].unit);
    /* The collector's share, where the run used the collected heap. */
    bool gc_used = b->allocs > 0 || b->gcs > 0;
    if (gc_used) {
        int cpus = __atomic_load_n(&GC.procs, __ATOMIC_RELAXED);
        if (cpus < 1)
            cpus = (int)sysconf(_SC_NPROCESSORS_ONLN);
        double frac = b->elapsed_ns > 0
                          ? (double)b->gc_cpu_ns / ((double)b->elapsed_ns * cpus) : 0;
        printf(" %12.4g gcs/op %12.4g gc-cpu-%%",
               b->n > 0 ? (double)b->gcs / (double)b->n : 0, 100 * frac);
        printf("\n#   gc: %llu cycles, GC CPU %.1f%%, stopped %.1f ms (max %.2f ms), "
               "peak heap %.1f MiB",
               (unsigned long long)b->gcs, 100 * frac, (double)b->gc_stw_ns / 1e6,
               (double)b->gc_max_pause / 1e6, (double)b->gc_peak_heap / (1 << 20));
    }
    printf("\n");
    fflush(stdout);
}

int bench_main(int argc, char **argv, const bench_def *defs)
{
    const char *pattern = ".";
    const char *memprofile = NULL;
    int64_t memprofilerate = -1;
    int64_t budget_ns = 1000000000, fixed_iters = 0;
    int count = 1;
    int procs = (int)sysconf(_SC_NPROCESSORS_ONLN);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (a[0] == '-' && a[1] == '-')
            a++;
        if ((strcmp(a, "-bench") == 0 || strcmp(a, "-run") == 0) && v) {
            pattern = v;
            i++;
        } else if (strcmp(a, "-benchtime") == 0 && v) {
            if (!parse_benchtime(v, &budget_ns, &fixed_iters)) {
                fprintf(stderr, "bad -benchtime %s (use 1s, 500ms or 1000x)\n", v);
                return 2;
            }
            i++;
        } else if (strcmp(a, "-count") == 0 && v) {
            count = atoi(v);
            i++;
        } else if (strcmp(a, "-cpu") == 0 && v) {
            procs = atoi(v);
            i++;
        } else if (strcmp(a, "-memprofile") == 0 && v) {
            memprofile = v;
            i++;
        } else if (strcmp(a, "-memprofilerate") == 0 && v) {
            char *end;
            memprofilerate = strtoll(v, &end, 10);
            if (*end != '\0' || memprofilerate < 0) {
                fprintf(stderr, "bad -memprofilerate %s (bytes; 1 = every allocation)\n", v);
                return 2;
            }
            i++;
        } else if (strcmp(a, "-benchmem") == 0) {
            /* B/op and allocs/op are always reported. */
        } else {
            fprintf(stderr, "usage: %s [-bench REGEX] [-benchtime 1s|1000x] "
                            "[-count N] [-cpu N] [-memprofile FILE] "
                            "[-memprofilerate N]\n", argv[0]);
            return 2;
        }
    }
    if (count < 1 || procs < 1) {
        fprintf(stderr, "-count and -cpu must be positive\n");
        return 2;
    }
    regex_t re;
    if (regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB) != 0) {
        fprintf(stderr, "bad -bench pattern %s\n", pattern);
        return 2;
    }
    /* As go test: the rate is set before anything is measured. */
    if (memprofilerate >= 0)
        gcm_profile_set_rate(memprofilerate);
    gcm__gc_on_cycle(on_cycle, NULL);
    print_header();
    for (const bench_def *d = defs; d->name != NULL; d++) {
        if (regexec(&re, d->name, 0, NULL, 0) != 0)
            continue;
        int64_t cap = limit_of(d->name);
        for (int c = 0; c < count; c++) {
            bench_b b = {.procs = procs};
            if (fixed_iters > 0) {
                run_n(&b, d->fn, fixed_iters < cap ? fixed_iters : cap);
            } else {
                int64_t n = 1;
                run_n(&b, d->fn, n);
                while (b.elapsed_ns < budget_ns && n < cap) {
                    int64_t prev = n;
                    int64_t per = b.elapsed_ns / n;
                    if (per <= 0)
                        per = 1;
                    n = budget_ns * 6 / 5 / per; /* aim 20% over, as Go */
                    if (n > prev * 100)
                        n = prev * 100;
                    if (n <= prev)
                        n = prev + 1;
                    n = round_up(n);
                    if (n > cap)
                        n = cap;
                    run_n(&b, d->fn, n);
                }
            }
            print_line(d->name, procs, &b);
        }
    }
    regfree(&re);
    if (memprofile != NULL) {
        /* go test -memprofile: a collection, so that in-use is what is
         * still reachable, then the "allocs" profile (opens on
         * alloc_space; -sample_index=inuse_space for the other view). */
        gcm_gc();
        int err = gcm_profile_write_view(memprofile, GCM_PROFILE_ALLOCS);
        if (err != 0) {
            fprintf(stderr, "-memprofile %s: %s\n", memprofile, strerror(err));
            return 1;
        }
    }
    return 0;
}
