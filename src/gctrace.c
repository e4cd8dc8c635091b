/*
 * gctrace.c — one line per collection, in Go's GODEBUG=gctrace=1 format.
 *
 * Go users read these lines by eye and with tools; printing exactly Go's
 * format (field order, separators, number formatting) lets both work on a C
 * program unchanged.  docs/gctrace.md explains each field and what it means
 * for bdwgc's stop-the-world marking.  The line:
 *
 *   gc N @T.tttS U%: A+B+C ms clock, a+b/c/d+e ms cpu,
 *       H0->H1->H2 MB, G MB goal, S MB stacks, X MB globals, P P [(forced)]
 *
 * Times in ms use Go's fmtNSAsMS rules; MB figures are truncated (>> 20), as
 * Go prints them.  The line is written with one write(2), from a GC cycle
 * hook, outside the collector's lock.
 *
 * fork() without exec (nginx workers, PostgreSQL backends): the child
 * inherits the descriptor.  When the path names the pid (%p) the child
 * would otherwise write into its parent's file, where its lines cannot be
 * told from the parent's (its cycle count continues the parent's), so the
 * fork's child handler closes the inherited descriptor and the child's
 * first line opens its own file.  Lazily: a child that execs, or never
 * collects, leaves no empty file behind.  Without %p the child keeps
 * appending to the same file, as the O_APPEND descriptor does for any
 * number of processes.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

/* Written only under the cycle lock the hook runs under, or before the
 * hook is registered: at start-up, on a child's first line, and in a
 * fork's child handler (init.c calls it while it still holds that lock,
 * and the forking thread is then the only thread).  -1 once the hook is
 * registered: a forked child whose file is not open yet. */
static int trace_fd = -1;
static bool trace_owned;       /* trace_fd is a file opened here        */
static char trace_path[4096];  /* as given (%p unexpanded); "stderr" */

/* Go's itoaDiv: val / 10^dec with exactly dec decimals. */
static size_t itoa_div(char *buf, size_t cap, uint64_t val, int dec)
{
    char tmp[32];
    int i = (int)sizeof tmp;
    int idec = i - dec;
    while (val >= 10 || i >= idec) {
        tmp[--i] = (char)('0' + val % 10);
        if (i == idec)
            tmp[--i] = '.';
        val /= 10;
    }
    tmp[--i] = (char)('0' + val);
    return gcm__fmt(buf, cap, "%.*s", (int)(sizeof tmp - (size_t)i), tmp + i);
}

size_t gcm__fmt_ns_as_ms(char *buf, size_t cap, uint64_t ns)
{
    if (ns >= 10000000)
        return itoa_div(buf, cap, ns / 1000000, 0);
    uint64_t x = ns / 1000;
    if (x == 0)
        return gcm__fmt(buf, cap, "0");
    int dec = 3;
    while (x >= 100) {
        x /= 10;
        dec--;
    }
    return itoa_div(buf, cap, x, dec);
}

static uint64_t nonneg(int64_t v) { return v > 0 ? (uint64_t)v : 0; }

size_t gcm__gctrace_format(const gcm__cycle *c, char *buf, size_t cap)
{
    char at[32], a[16], b[16], cc[16], ca[16], cb[16], cm[16], cd[16], ce[16];
    uint64_t P = (uint64_t)(c->procs > 0 ? c->procs : 1);
    uint64_t M = (uint64_t)(c->markers > 0 ? c->markers : 1);
    uint64_t A = nonneg(c->clock_a_ns), B = nonneg(c->clock_b_ns),
             C = nonneg(c->clock_c_ns);
    uint64_t sa = nonneg(c->stw_a_ns), sc = nonneg(c->stw_c_ns);
    if (sa > A)
        sa = A;
    if (sc > C)
        sc = C;
    itoa_div(at, sizeof at, nonneg(c->start_ns) / 1000000, 3);
    gcm__fmt_ns_as_ms(a, sizeof a, A);
    gcm__fmt_ns_as_ms(b, sizeof b, B);
    gcm__fmt_ns_as_ms(cc, sizeof cc, C);
    /* CPU: stopped-world parts cost every processor; the rest of A and C
     * is the collecting thread alone.  Marking: the marker threads work,
     * the other processors sit idle (Go's "idle" column). */
    gcm__fmt_ns_as_ms(ca, sizeof ca, sa * P + (A - sa));
    gcm__fmt_ns_as_ms(cb, sizeof cb, 0);
    gcm__fmt_ns_as_ms(cm, sizeof cm, B * (M < P ? M : P));
    gcm__fmt_ns_as_ms(cd, sizeof cd, M < P ? B * (P - M) : 0);
    gcm__fmt_ns_as_ms(ce, sizeof ce, sc * P + (C - sc));
    int util = (int)(c->cpu_fraction * 100);
    return gcm__fmt(buf, cap,
                    "gc %llu @%ss %d%%: %s+%s+%s ms clock, %s+%s/%s/%s+%s ms cpu, "
                    "%llu->%llu->%llu MB, %llu MB goal, %llu MB stacks, "
                    "%llu MB globals, %d P%s\n",
                    (unsigned long long)c->n, at, util, a, b, cc, ca, cb, cm, cd,
                    ce, (unsigned long long)(c->heap0 >> 20),
                    (unsigned long long)(c->heap1 >> 20),
                    (unsigned long long)(c->heap2 >> 20),
                    (unsigned long long)(c->goal >> 20), 0ULL,
                    (unsigned long long)(c->globals >> 20), c->procs,
                    c->forced ? " (forced)" : "");
}

/* The descriptor lines go to, opened first if it is not (%p expanded
 * with the calling process's pid); stderr if the path cannot be opened.
 * Never allocates: it runs inside a collection's hooks. */
static int open_trace(void)
{
    int fd = __atomic_load_n(&trace_fd, __ATOMIC_ACQUIRE);
    if (fd >= 0)
        return fd;
    char path[sizeof trace_path];
    gcm__expand_path(trace_path, path, sizeof path);
    /* "stdout" and "stderr" name the process's own descriptors: not ours
     * to close. */
    bool named_std = strcmp(path, "stdout") == 0 || strcmp(path, "stderr") == 0;
    fd = gcm__open_output(path, true);
    trace_owned = fd >= 0 && !named_std;
    if (fd < 0) {
        gcm__diag("GCMALLOC_GCTRACE=\"%s\": cannot open (%s); using stderr",
                  path, gcm__strerror(errno));
        fd = 2;
    }
    __atomic_store_n(&trace_fd, fd, __ATOMIC_RELEASE);
    return fd;
}

static void print_line(const gcm__cycle *c, void *arg)
{
    (void)arg;
    char line[512];
    size_t n = gcm__gctrace_format(c, line, sizeof line);
    if (n >= sizeof line)
        n = sizeof line - 1;
    (void)gcm__write_all(open_trace(), line, n);
}

void gcm__gctrace_fork(int phase)
{
    if (phase != GCM_FORK_CHILD || strstr(trace_path, "%p") == NULL)
        return;
    int inherited = __atomic_exchange_n(&trace_fd, -1, __ATOMIC_ACQ_REL);
    if (inherited >= 0 && trace_owned)
        close(inherited);
}

void gcm__gctrace_init(void)
{
    int64_t mode = gcm__opt_int(GCM_OPT_GCTRACE);
    if (mode == GCM_OUTPUT_NONE)
        return;
    const char *given = mode == GCM_OUTPUT_STDERR ? "stderr"
                                                  : gcm__opt_str(GCM_OPT_GCTRACE);
    gcm__fmt(trace_path, sizeof trace_path, "%s", given);
    /* The process's own file now, so that a bad path is reported at
     * start-up rather than at the first collection. */
    (void)open_trace();
    gcm__gc_on_cycle(print_line, NULL);
}
