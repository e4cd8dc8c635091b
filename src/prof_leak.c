/*
 * prof_leak.c — leak suspects: sites whose in-use bytes keep growing.
 *
 * The way one finds a leak in a Go service is to take heap profiles a
 * while apart and diff them (`pprof -base`): a site whose in-use space only
 * ever grows is the suspect.  This does the comparison continuously.  Each
 * snapshot — every GC cycle, and every interval dump — gives each site's
 * in-use bytes (the profile's unbiased estimate).  A site whose figure grew
 * in GCMALLOC_PROFILE_LEAK consecutive snapshots, by more than
 * GCMALLOC_PROFILE_LEAK_MIN over that streak, is reported once, with its
 * stack (symbolized), the growth and the time span, on the diagnostics
 * sink.  Any snapshot without growth restarts the streak, so a cache that
 * fills up and stops, or a workload that breathes, is not reported.
 *
 * Snapshots at cycles are taken in a "GC cycle finished" hook; the report
 * itself (symbolization may read debug information the first time) is
 * printed by the profiler's thread, not by the program thread that
 * happened to run the collection.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>

#include "internal.h"

static struct {
    pthread_mutex_t mu;
    bool on;
    int64_t k, min_growth;
    int64_t last_ns;   /* time of the previous snapshot */
    uint64_t snapshots;
} L = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void on_cycle(const gcm__cycle *c, void *arg)
{
    (void)c;
    (void)arg;
    gcm__prof_snap s;
    if (gcm__prof_snap_take(&s) != 0)
        return;
    int n = gcm__leak_observe(&s, gcm__now_ns());
    gcm__prof_snap_free(&s);
    if (n > 0)
        gcm__prof_dump_wake();
}

void gcm__leak_init(int64_t snapshots, int64_t min_growth)
{
    pthread_mutex_lock(&L.mu);
    bool was = L.on;
    L.k = snapshots;
    L.min_growth = min_growth > 0 ? min_growth : 0;
    L.on = snapshots >= 2;
    pthread_mutex_unlock(&L.mu);
    if (L.on && !was)
        gcm__gc_on_cycle(on_cycle, NULL);
}

int gcm__leak_observe(const gcm__prof_snap *s, int64_t now_ns)
{
    if (s == NULL)
        return 0;
    int found = 0;
    pthread_mutex_lock(&L.mu);
    if (!L.on) {
        pthread_mutex_unlock(&L.mu);
        return 0;
    }
    int64_t prev = L.last_ns != 0 ? L.last_ns : now_ns;
    for (size_t i = 0; i < s->n; i++) {
        gcm__bucket *b = s->recs[i].b;
        const gcm__prof_counts *c = &s->recs[i].c;
        uint64_t v[4];
        gcm__prof_values(c, s->rate, v);
        uint64_t ub = v[GCM_V_INUSE_B];
        if (b->leak_state == 0) {
            if (ub > b->leak_last) {
                if (b->leak_streak == 0) {
                    b->leak_from = b->leak_last;
                    b->leak_since_ns = prev;
                }
                b->leak_streak++;
            } else {
                b->leak_streak = 0;
            }
            if (b->leak_streak >= (uint64_t)L.k &&
                ub - b->leak_from > (uint64_t)L.min_growth) {
                b->leak_state = 1;
                b->leak_until_ns = now_ns;
                found++;
            }
            b->leak_last = ub;
        }
    }
    L.last_ns = now_ns;
    L.snapshots++;
    pthread_mutex_unlock(&L.mu);
    return found;
}

static size_t fmt_secs(char *out, size_t cap, int64_t ns)
{
    if (ns < 0)
        ns = 0;
    int64_t ms = ns / 1000000;
    return gcm__fmt(out, cap, "%lld.%03llds", (long long)(ms / 1000),
                    (long long)(ms % 1000));
}

#define REPORT_CAP (32 * 1024)
#define MAX_INLINE 16

static size_t append(char *buf, size_t len, const char *fmt, ...)
    GCM_PRINTF(3, 4);
static size_t append(char *buf, size_t len, const char *fmt, ...)
{
    if (len >= REPORT_CAP - 1)
        return len;
    va_list ap;
    va_start(ap, fmt);
    size_t n = gcm__vfmt(buf + len, REPORT_CAP - len, fmt, ap);
    va_end(ap);
    len += n;
    return len < REPORT_CAP ? len : REPORT_CAP - 1;
}

static int report_one(int fd, char *buf, const gcm__bucket *b)
{
    char from[32], to[32], grew[32], span[32];
    gcm__fmt_bytes(from, sizeof from, b->leak_from);
    gcm__fmt_bytes(to, sizeof to, b->leak_last);
    gcm__fmt_bytes(grew, sizeof grew, b->leak_last - b->leak_from);
    fmt_secs(span, sizeof span, b->leak_until_ns - b->leak_since_ns);
    size_t len = gcm__fmt(buf, REPORT_CAP,
                          "gcmalloc: leak suspect: in-use bytes at this allocation "
                          "site grew in %u consecutive snapshots, by %s (%s -> %s) "
                          "over %s [kind=%s%s%s]\n",
                          (unsigned)b->leak_streak, grew, from, to, span,
                          gcm__prof_kind_name(b->kind),
                          b->name != NULL ? " name=" : "",
                          b->name != NULL ? b->name : "");
    gcm__sym_mode mode = gcm__sym_mode_text();
    for (int d = gcm__sym_api_frames(mode, b->pcs, b->depth); d < b->depth; d++) {
        gcm__sym_frame fr[MAX_INLINE];
        int n = gcm__sym_resolve(mode, b->pcs[d] - 1, fr, MAX_INLINE);
        if (n == 0) {
            len = append(buf, len, "    #%-2d %p\n", d, (void *)b->pcs[d]);
            continue;
        }
        for (int i = 0; i < n; i++) {
            char tmp[GCM_DEMANGLE_MAX];
            const char *fn = fr[i].function != NULL
                                 ? gcm__demangled(fr[i].function, tmp, sizeof tmp)
                                 : "??";
            if (fr[i].file != NULL)
                len = append(buf, len, "    #%-2d %p %s %s:%d%s\n", d,
                             (void *)b->pcs[d], fn, fr[i].file, fr[i].line,
                             i + 1 < n ? " (inlined)" : "");
            else
                len = append(buf, len, "    #%-2d %p %s\n", d, (void *)b->pcs[d], fn);
        }
    }
    return gcm__write_all(fd, buf, len) == 0 ? 0 : errno;
}

int gcm__leak_report(int fd)
{
    if (fd < 0)
        return EBADF;
    char *buf = NULL;
    int rc = 0;
    pthread_mutex_lock(&L.mu);
    for (gcm__bucket *b = gcm__bucket_list(); b != NULL; b = b->all) {
        if (b->leak_state != 1)
            continue;
        if (buf == NULL && (buf = gcm__prof_alloc(REPORT_CAP)) == NULL) {
            rc = ENOMEM;
            break;
        }
        b->leak_state = 2;
        int r = report_one(fd, buf, b);
        if (rc == 0)
            rc = r;
    }
    pthread_mutex_unlock(&L.mu);
    gcm__prof_dealloc(buf);
    return rc;
}

void gcm__leak_fork(int phase)
{
    gcm__fork_mutex(&L.mu, phase);
}
