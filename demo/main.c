/*
 * main.c — gcmalloc-demo, the driver `make demo` runs.
 *
 * It runs the same request-handling simulation (sim.h) under four memory
 * strategies, each in a fresh process so that peak RSS and GC figures are
 * the strategy's own:
 *
 *   malloc   glibc malloc/free (the server does not link gcmalloc)
 *   gc       the collected heap, nothing freed by hand (Go's way)
 *   arena    an arena per worker, reset per request; sessions collected
 *   pool     typed pools and buffer pools for everything
 *
 * with gctrace and a heap profile per gcmalloc strategy, then runs the
 * malloc server twice more under the preload library
 * (LD_PRELOAD=libgcmalloc-preload.so), which makes glibc's malloc visible
 * to gcmalloc: once profiled, with the profiler's leak suspects on (and its
 * heap profiles are malloc's), once under the leak check
 * (GCMALLOC_MODE=leakcheck), to find the leak planted in that build
 * (strategy_malloc.c).  It prints the side-by-side table, what the leak
 * check and the profiler said, and the commands that open every profile
 * and gctrace log.
 *
 *   gcmalloc-demo [--requests N] [--threads T] [--leak-seconds S]
 *                 [--leak-requests N] [--out DIR] [--bin DIR] [--preload LIB]
 *                 [--trace-tool PATH]
 *
 * --requests: per strategy (default 1,000,000); --leak-seconds: how long
 * the profiled malloc run lasts (default 2.5: its leak suspects need a
 * second of growth); --leak-requests: for the leak-check run (default
 * 40,000: every allocation's stack is recorded there, so it is ~10x slower
 * per request); --out: where profiles and logs go (default ./demo-out).
 *
 * Exit status 0 when every run completed, the four strategies produced the
 * same responses (a checksum over every response), and the leak was found;
 * 1 otherwise; 2 for bad arguments.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#ifndef GCM_DEMO_PRELOAD
#define GCM_DEMO_PRELOAD "libgcmalloc-preload.so"
#endif
#ifndef GCM_DEMO_TRACE_TOOL
#define GCM_DEMO_TRACE_TOOL "gcmalloc-trace"
#endif

#define NSTRAT 4
static const char *const strategies[NSTRAT] = {"malloc", "gc", "arena", "pool"};
static const char *const described[NSTRAT] = {
    "glibc malloc/free, each object freed by its owner (no gcmalloc in the process)",
    "collected heap (gcm_malloc), nothing freed by hand; GOGC=100",
    "per-worker arena reset after each request; sessions on the collected heap",
    "typed pools (gcm_pool) and buffer pools (gcm_buf), everything put back",
};

struct result {
    int ok;
    unsigned long long requests, mean, p50, p99, p999, max, rss_kb, allocs, gc_cycles, pause_ns;
    unsigned long long hits, misses;
    double seconds, cpu_seconds, gc_cpu;
    char checksum[32];
};

static struct {
    unsigned long long requests;
    int threads;
    double leak_seconds;
    unsigned long long leak_requests;
    char out[PATH_MAX];
    char bin[PATH_MAX];
    const char *preload, *trace_tool;
} opt = {1000000, 2, 2.5, 40000, "demo-out", "", GCM_DEMO_PRELOAD, GCM_DEMO_TRACE_TOOL};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void path_in(char *dst, size_t cap, const char *dir, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void path_in(char *dst, size_t cap, const char *dir, const char *fmt, ...)
{
    int n = snprintf(dst, cap, "%s/", dir);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dst + n, cap - (size_t)n, fmt, ap);
    va_end(ap);
}

/* --- running a server ------------------------------------------------------------ */

/* The environment for a child: ours, less anything that would change what
 * the run measures or where its files go, plus `extra` (NULL-terminated). */
static char **child_env(char *const *extra)
{
    static const char *const drop[] = {
        "LD_PRELOAD=", "GCMALLOC_GCTRACE=", "GCMALLOC_PROFILE", "GCMALLOC_LOG=",
        "GCMALLOC_MODE=", "GCMALLOC_LEAKS=", "GCMALLOC_GOGC=", "GCMALLOC_MEMLIMIT=",
    };
    size_t n = 0, k = 0;
    while (environ[n] != NULL)
        n++;
    while (extra[k] != NULL)
        k++;
    char **env = calloc(n + k + 1, sizeof *env);
    if (env == NULL)
        return NULL;
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        int keep = 1;
        for (size_t d = 0; d < sizeof drop / sizeof drop[0]; d++)
            if (strncmp(environ[i], drop[d], strlen(drop[d])) == 0)
                keep = 0;
        if (keep)
            env[m++] = environ[i];
    }
    for (size_t i = 0; i < k; i++)
        env[m++] = extra[i];
    env[m] = NULL;
    return env;
}

/* Runs bin with args, stdout to out_path and stderr to err_path; returns
 * the exit status, or -1 when it could not be started or was killed. */
static int run(const char *bin, char *const *argv, char *const *extra_env, const char *out_path,
               const char *err_path)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&fa, 2, err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    char **env = child_env(extra_env);
    pid_t pid;
    int rc = env != NULL ? posix_spawn(&pid, bin, &fa, NULL, argv, env) : ENOMEM;
    posix_spawn_file_actions_destroy(&fa);
    free(env);
    if (rc != 0) {
        fprintf(stderr, "gcmalloc-demo: cannot run %s: %s\n", bin, strerror(rc));
        return -1;
    }
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void show_file(const char *path, int max_lines)
{
    FILE *f = fopen(path, "r");
    char line[1024];
    for (int i = 0; f != NULL && i < max_lines && fgets(line, sizeof line, f) != NULL; i++)
        fprintf(stderr, "    %s", line);
    if (f != NULL)
        fclose(f);
}

static int parse_result(const char *path, struct result *r)
{
    FILE *f = fopen(path, "r");
    char line[2048];
    int found = 0;
    while (f != NULL && fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, "demo-result ", 12) != 0)
            continue;
        found = sscanf(strstr(line, "requests="),
                       "requests=%llu seconds=%lf cpu_seconds=%lf mean_ns=%llu p50_ns=%llu p99_ns=%llu p999_ns=%llu "
                       "max_ns=%llu rss_kb=%llu allocs=%llu gc_cycles=%llu gc_cpu=%lf "
                       "gc_pause_ns=%llu session_hits=%llu session_misses=%llu "
                       "checksum=%31s",
                       &r->requests, &r->seconds, &r->cpu_seconds, &r->mean, &r->p50, &r->p99, &r->p999, &r->max,
                       &r->rss_kb, &r->allocs, &r->gc_cycles, &r->gc_cpu, &r->pause_ns,
                       &r->hits, &r->misses, r->checksum) == 16;
    }
    if (f != NULL)
        fclose(f);
    r->ok = found;
    return found ? 0 : -1;
}

static int run_strategy(int s, struct result *r)
{
    char bin[PATH_MAX + 32], out[PATH_MAX + 64], err[PATH_MAX + 64];
    char trace[PATH_MAX + 64], prof[PATH_MAX + 64];
    char requests[32], threads[16];
    path_in(bin, sizeof bin, opt.bin, "demo-%s", strategies[s]);
    path_in(out, sizeof out, opt.out, "%s.out", strategies[s]);
    path_in(err, sizeof err, opt.out, "%s.err", strategies[s]);
    snprintf(requests, sizeof requests, "%llu", opt.requests);
    snprintf(threads, sizeof threads, "%d", opt.threads);
    char *argv[] = {bin, "--requests", requests, "--threads", threads, NULL};
    char e_trace[PATH_MAX + 96], e_prof[PATH_MAX + 96];
    char *env[3] = {NULL, NULL, NULL};
    if (s != 0) { /* the malloc server has no gcmalloc to trace or profile */
        path_in(trace, sizeof trace, opt.out, "gctrace-%s.log", strategies[s]);
        path_in(prof, sizeof prof, opt.out, "heap-%s.pb.gz", strategies[s]);
        snprintf(e_trace, sizeof e_trace, "GCMALLOC_GCTRACE=%s", trace);
        snprintf(e_prof, sizeof e_prof, "GCMALLOC_PROFILE=%s", prof);
        env[0] = e_trace;
        env[1] = e_prof;
    }
    printf("  running %-6s ...", strategies[s]);
    fflush(stdout);
    double t0 = now_s();
    int rc = run(bin, argv, env, out, err);
    printf(" %.1f s\n", now_s() - t0);
    fflush(stdout);
    if (rc != 0 || parse_result(out, r) != 0) {
        fprintf(stderr, "gcmalloc-demo: %s failed (exit %d); its stderr:\n", bin, rc);
        show_file(err, 20);
        return -1;
    }
    return 0;
}

/* --- finding the leak ------------------------------------------------------------- */

struct leak_findings {
    char exit_report[4096];    /* the leak check's "at exit" summary and site   */
    char suspect[4096];        /* the profiler's first leak suspect             */
    struct result check, prof; /* the two runs                                  */
    int dumps;                 /* numbered profiles the profiled run wrote      */
};

/* Appends lines of `f` from the one containing `start` on, at most `max`
 * lines, stopping early at a line containing `stop` (after the first). */
static void grab(FILE *f, const char *start, const char *stop, int max, char *dst, size_t cap)
{
    char line[1024];
    int taking = 0, n = 0;
    size_t len = strlen(dst);
    rewind(f);
    while (fgets(line, sizeof line, f) != NULL && n < max) {
        if (!taking && strstr(line, start) == NULL)
            continue;
        if (taking && stop != NULL && strstr(line, stop) != NULL)
            break;
        taking = 1;
        n++;
        const char *text = strncmp(line, "gcmalloc: ", 10) == 0 ? line + 10 : line;
        int w = snprintf(dst + len, cap - len, "    %s", text);
        if (w < 0 || (size_t)w >= cap - len)
            break;
        len += (size_t)w;
    }
}

/* Runs demo-malloc under the preload library with `env` (LD_PRELOAD is
 * added), its diagnostics to <out>/<name>.log; grabs from that log the
 * lines from `start` (up to `stop`) into dst. */
static int run_preloaded(const char *name, char *const *args, char **env, const char *start,
                         const char *stop, int max, char *dst, size_t cap, struct result *r)
{
    char bin[PATH_MAX + 32], out[PATH_MAX + 64], err[PATH_MAX + 64], log[PATH_MAX + 64];
    char threads[16], v_pre[PATH_MAX + 32], v_log[PATH_MAX + 96];
    path_in(bin, sizeof bin, opt.bin, "demo-malloc");
    path_in(out, sizeof out, opt.out, "%s.out", name);
    path_in(err, sizeof err, opt.out, "%s.err", name);
    path_in(log, sizeof log, opt.out, "%s.log", name);
    snprintf(threads, sizeof threads, "%d", opt.threads);
    char *argv[] = {bin, args[0], args[1], "--threads", threads, NULL};
    snprintf(v_pre, sizeof v_pre, "LD_PRELOAD=%s", opt.preload);
    snprintf(v_log, sizeof v_log, "GCMALLOC_LOG=%s", log);
    char *full[16];
    int n = 0;
    full[n++] = v_pre;
    full[n++] = v_log;
    for (int i = 0; env[i] != NULL && n < 15; i++)
        full[n++] = env[i];
    full[n] = NULL;
    printf("  running malloc, %s ...", name);
    fflush(stdout);
    double t0 = now_s();
    int rc = run(bin, argv, full, out, err);
    printf(" %.1f s\n", now_s() - t0);
    fflush(stdout);
    if (rc != 0 || parse_result(out, r) != 0) {
        fprintf(stderr, "gcmalloc-demo: the %s run failed (exit %d); its stderr and log:\n", name,
                rc);
        show_file(err, 20);
        show_file(log, 20);
        return -1;
    }
    FILE *f = fopen(log, "r");
    if (f == NULL)
        return -1;
    grab(f, start, stop, max, dst, cap);
    fclose(f);
    return dst[0] != '\0' ? 0 : -1;
}

/* The malloc build twice under the preload library: once with the
 * profiler's leak suspects, once under the leak check. */
static int find_leak(struct leak_findings *lf)
{
    char seconds[32], requests[32], prof[PATH_MAX + 96], leaks[PATH_MAX + 96];
    char trace[PATH_MAX + 96];
    snprintf(seconds, sizeof seconds, "%g", opt.leak_seconds);
    snprintf(requests, sizeof requests, "%llu", opt.leak_requests);
    path_in(prof, sizeof prof, opt.out, "heap-malloc.pb.gz");
    path_in(leaks, sizeof leaks, opt.out, "leaks-malloc.pb.gz");
    path_in(trace, sizeof trace, opt.out, "gctrace-malloc-leakcheck.log");
    char v_prof[PATH_MAX + 128], v_leaks[PATH_MAX + 128], v_trace[PATH_MAX + 128];
    snprintf(v_prof, sizeof v_prof, "GCMALLOC_PROFILE=%s", prof);
    snprintf(v_leaks, sizeof v_leaks, "GCMALLOC_LEAKS=%s", leaks);
    snprintf(v_trace, sizeof v_trace, "GCMALLOC_GCTRACE=%s", trace);

    /* The profiler, in the preload library's fast mode (mimalloc: frees
     * are immediate, so every snapshot sees in-use bytes as they are).  A
     * snapshot every 100 ms, which also writes heap-malloc.pb.gz.N for
     * `pprof -base`; a suspect is a site that grew in 10 snapshots in a
     * row, 1 s: longer than the session cache takes to fill, which is
     * growth too, but stops.  One sample per 16 KiB allocated (not Go's
     * 512 KiB): enough samples at the leaking site that no 100 ms passes
     * without one, even on a slow machine. */
    char *prof_args[] = {"--seconds", seconds};
    char *prof_env[] = {"GCMALLOC_MODE=fast", "GCMALLOC_PROFILE_RATE=16KiB",
                        "GCMALLOC_PROFILE_INTERVAL=100ms", "GCMALLOC_PROFILE_LEAK=10", v_prof,
                        NULL};
    int rc1 = run_preloaded("profiled", prof_args, prof_env, "leak suspect:", "gcmalloc: ", 8,
                            lf->suspect, sizeof lf->suspect, &lf->prof);
    for (lf->dumps = 0;; lf->dumps++) {
        char p[PATH_MAX + 128];
        snprintf(p, sizeof p, "%s.%d", prof, lf->dumps + 1);
        if (access(p, R_OK) != 0)
            break;
    }

    /* The leak check: every allocation on the collector's heap, and what
     * no pointer reaches any more, never freed, reported by site.  Every
     * allocation sampled (rate 1), so the figures per site are exact. */
    char *check_args[] = {"--requests", requests};
    char *check_env[] = {"GCMALLOC_MODE=leakcheck", "GCMALLOC_PROFILE_RATE=1", v_leaks, v_trace,
                         NULL};
    int rc2 = run_preloaded("leakcheck", check_args, check_env, "leakcheck: at exit",
                            "leakcheck: leak profile", 10, lf->exit_report,
                            sizeof lf->exit_report, &lf->check);
    return rc1 == 0 && rc2 == 0 ? 0 : -1;
}

/* --- the report ------------------------------------------------------------------------- */

static void print_table(const struct result *r)
{
    printf("%-8s %8s %7s %7s %7s %8s %7s %9s %6s %6s %6s\n", "strategy", "req/s",
           "CPU us", "p50 us", "p99 us", "p99.9 us", "max ms", "peak RSS", "allocs", "GCs",
           "GC CPU");
    for (int s = 0; s < NSTRAT; s++) {
        double rps = (double)r[s].requests / r[s].seconds;
        char gc_cpu[16];
        if (r[s].gc_cycles > 0)
            snprintf(gc_cpu, sizeof gc_cpu, "%.1f%%", 100 * r[s].gc_cpu);
        else
            snprintf(gc_cpu, sizeof gc_cpu, "-");
        printf("%-8s %8.0f %7.2f %7.1f %7.1f %8.1f %7.1f %5.1f MiB %6.2f %6llu %6s\n",
               strategies[s], rps, r[s].cpu_seconds * 1e6 / (double)r[s].requests,
               (double)r[s].p50 / 1e3, (double)r[s].p99 / 1e3,
               (double)r[s].p999 / 1e3, (double)r[s].max / 1e6, (double)r[s].rss_kb / 1024,
               (double)r[s].allocs / (double)r[s].requests, r[s].gc_cycles, gc_cpu);
    }
}

static void usage(int rc)
{
    fprintf(rc == 0 ? stdout : stderr,
            "usage: gcmalloc-demo [--requests N] [--threads T] [--leak-seconds S]\n"
            "                     [--leak-requests N] [--out DIR] [--bin DIR]\n"
            "                     [--preload LIB] [--trace-tool PATH]\n"
            "  --requests N       requests per strategy (default 1000000)\n"
            "  --threads T        worker threads, 1-8 (default 2)\n"
            "  --leak-seconds S   the profiled malloc run, at least 1.2 (default 2.5)\n"
            "  --leak-requests N  the leak-check run (default 40000)\n"
            "  --out DIR          profiles and logs (default ./demo-out)\n"
            "  --bin DIR          where demo-malloc, demo-gc... are (default: beside this)\n"
            "  --preload LIB      libgcmalloc-preload.so (default: the build's)\n"
            "  --trace-tool PATH  gcmalloc-trace, for the printed commands\n");
    exit(rc);
}

static int file_exists(const char *dir, const char *name)
{
    char p[PATH_MAX + 64];
    path_in(p, sizeof p, dir, "%s", name);
    return access(p, R_OK) == 0;
}

int main(int argc, char **argv)
{
    const char *out = "demo-out";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)
            usage(0);
        if (v == NULL)
            usage(2);
        if (strcmp(a, "--requests") == 0)
            opt.requests = strtoull(v, NULL, 10);
        else if (strcmp(a, "--threads") == 0)
            opt.threads = atoi(v);
        else if (strcmp(a, "--leak-seconds") == 0)
            opt.leak_seconds = strtod(v, NULL);
        else if (strcmp(a, "--leak-requests") == 0)
            opt.leak_requests = strtoull(v, NULL, 10);
        else if (strcmp(a, "--out") == 0)
            out = v;
        else if (strcmp(a, "--bin") == 0)
            snprintf(opt.bin, sizeof opt.bin, "%s", v);
        else if (strcmp(a, "--preload") == 0)
            opt.preload = v;
        else if (strcmp(a, "--trace-tool") == 0)
            opt.trace_tool = v;
        else
            usage(2);
        i++;
    }
    if (opt.requests < 1000 || opt.threads < 1 || opt.threads > 8 || opt.leak_requests < 1000 ||
        opt.leak_seconds < 1.2)
        usage(2);
    /* The servers live next to this program unless --bin says otherwise. */
    if (opt.bin[0] == '\0') {
        char self[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
        if (n <= 0) {
            perror("gcmalloc-demo: /proc/self/exe");
            return 1;
        }
        self[n] = '\0';
        char *slash = strrchr(self, '/');
        *slash = '\0';
        snprintf(opt.bin, sizeof opt.bin, "%s", self);
    }
    if (mkdir(out, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "gcmalloc-demo: cannot create %s: %s\n", out, strerror(errno));
        return 1;
    }
    if (realpath(out, opt.out) == NULL) {
        perror("gcmalloc-demo: --out");
        return 1;
    }
    /* Files of an earlier run would be mistaken for this one's. */
    static const char *const stale[] = {
        "heap-malloc.pb.gz", "heap-gc.pb.gz",    "heap-arena.pb.gz",
        "heap-pool.pb.gz",   "leaks-malloc.pb.gz", "gctrace-gc.log",
        "gctrace-arena.log", "gctrace-pool.log", "gctrace-malloc-leakcheck.log",
        "leakcheck.log",     "profiled.log",
    };
    for (size_t i = 0; i < sizeof stale / sizeof stale[0]; i++) {
        char p[PATH_MAX + 64];
        path_in(p, sizeof p, opt.out, "%s", stale[i]);
        unlink(p);
    }
    for (int i = 1;; i++) { /* heap-malloc.pb.gz.N */
        char p[PATH_MAX + 64];
        path_in(p, sizeof p, opt.out, "heap-malloc.pb.gz.%d", i);
        if (unlink(p) != 0)
            break;
    }

    double t0 = now_s();
    printf("gcmalloc demo: one request-handling server, four memory strategies\n\n");
    printf("Each request: receive ~1 KB (GET or POST, 5-14 headers, 0-6 query parameters),\n"
           "parse it, look up the session cache (4,096 sessions per worker, LRU; 90%% of\n"
           "requests from 3,000 hot sessions), build a ~1.5 KB JSON response, send it.\n"
           "%llu requests per strategy on %d worker threads, each strategy in its own process.\n\n",
           opt.requests, opt.threads);
    fflush(stdout);

    struct result r[NSTRAT] = {{0}};
    int failed = 0;
    for (int s = 0; s < NSTRAT; s++)
        if (run_strategy(s, &r[s]) != 0)
            failed = 1;
    static struct leak_findings lf;
    int leak_found = find_leak(&lf) == 0;
    if (failed)
        return 1;

    printf("\n");
    print_table(r);
    printf("\n");
    for (int s = 0; s < NSTRAT; s++)
        printf("  %-6s  %s\n", strategies[s], described[s]);
    int same = 1;
    for (int s = 1; s < NSTRAT; s++)
        same &= strcmp(r[s].checksum, r[0].checksum) == 0;
    printf("\n  req/s: requests / wall time.  CPU us: CPU time per request, all threads (the\n"
           "  collector's included); less disturbed than req/s by other work on the machine.\n"
           "  p50/p99/p99.9/max: latency of one request, receive to release (percentiles\n"
           "  from a histogram, within 6%%).  allocs: per request, calls that reached an\n"
           "  allocator (malloc, the collected heap, a pool miss, an arena chunk beyond the\n"
           "  one a reset keeps); a pool hit or an arena bump is not one.  GC CPU: the\n"
           "  collector's share of all CPUs' time.  The malloc row's RSS includes its leak.\n");
    printf("  Responses: %s (checksum %s); session cache hit rate %.1f%%.\n",
           same ? "identical in all four runs" : "DIFFERENT between runs", r[0].checksum,
           100.0 * (double)r[0].hits / (double)(r[0].hits + r[0].misses));

    printf("\nThe leak (planted in the malloc build: demo_strategy_session_drop() in\n"
           "demo/strategy_malloc.c frees an evicted session but not its 512-byte activity log,\n"
           "allocated in session_new(), demo/session.c)\n\n");
    if (leak_found) {
        printf("  The profiler's leak suspects (LD_PRELOAD=libgcmalloc-preload.so\n"
               "  GCMALLOC_PROFILE_LEAK=10 GCMALLOC_PROFILE_INTERVAL=100ms, %llu requests in\n"
               "  %.1f s), while the server ran:\n%s\n",
               lf.prof.requests, lf.prof.seconds, lf.suspect);
        printf("  The leak check (LD_PRELOAD=libgcmalloc-preload.so GCMALLOC_MODE=leakcheck,\n"
               "  %llu requests in %.1f s), at exit:\n%s\n",
               lf.check.requests, lf.check.seconds, lf.exit_report);
    } else {
        printf("  NOT FOUND by %s; see %s/profiled.log and %s/leakcheck.log\n\n",
               lf.suspect[0] == '\0' && lf.exit_report[0] == '\0' ? "either tool"
               : lf.suspect[0] == '\0' ? "the profiler" : "the leak check",
               opt.out, opt.out);
    }

    printf("Profiles (go tool pprof; it needs a writable $HOME):\n");
    for (int s = 0; s < NSTRAT; s++) {
        char f[64];
        snprintf(f, sizeof f, "heap-%s.pb.gz", strategies[s]);
        if (!file_exists(opt.out, f)) {
            printf("  %-6s  (no profile written)\n", strategies[s]);
            continue;
        }
        printf("  %-6s  go tool pprof -top -sample_index=alloc_space %s/%s\n", strategies[s],
               opt.out, f);
        printf("          go tool pprof -top -sample_index=inuse_space %s/%s\n", opt.out, f);
        if (s == 0) {
            if (lf.dumps >= 2)
                printf("          go tool pprof -top -base %s/%s.1 %s/%s.%d   # what grew\n",
                       opt.out, f, opt.out, f, lf.dumps);
            printf("          go tool pprof -top %s/leaks-malloc.pb.gz   "
                   "# the leaked objects\n", opt.out);
            printf("          (malloc's profiles come from the preloaded runs: the profiler\n"
                   "           sees glibc's malloc only under the preload library)\n");
        }
    }
    printf("  any of them as a flame graph: go tool pprof -http=:8080 <file>\n");

    printf("\ngctrace logs (gcmalloc-trace summarizes one: GC CPU, pauses, live-heap trend):\n");
    static const char *const logs[] = {"gctrace-gc.log", "gctrace-arena.log",
                                       "gctrace-pool.log", "gctrace-malloc-leakcheck.log"};
    for (size_t i = 0; i < sizeof logs / sizeof logs[0]; i++) {
        char p[PATH_MAX + 64];
        path_in(p, sizeof p, opt.out, "%s", logs[i]);
        struct stat st;
        if (stat(p, &st) == 0 && st.st_size > 0)
            printf("  %s %s\n", opt.trace_tool, p);
        else
            printf("  (%s: no collection ran)\n", logs[i]);
    }
    printf("  (the malloc build runs no collector; the last log is its leak-check run's)\n");
    printf("\nAll files are in %s.  Finished in %.1f s.\n", opt.out, now_s() - t0);
    return same && leak_found ? 0 : 1;
}
