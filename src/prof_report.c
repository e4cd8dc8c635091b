/*
 * prof_report.c — a text report of a snapshot, for users without Go.
 *
 * Two tables in the layout of `go tool pprof -top -lines`: the top sites by
 * in-use space and by allocated space.  A site is a source line (function,
 * file, line; an inlined callee is a site of its own).  As in pprof,
 * "flat" is what was allocated with the site as the innermost frame —
 * where the allocation call is — and "cum" what was allocated with the site
 * anywhere on the stack (counted once per stack), so a wrapper such as
 * xmalloc shows a large flat figure and its callers large cum figures.
 * Figures are the profile's unbiased estimates, in pprof's units.
 *
 * Only integer arithmetic is formatted (the diagnostics formatter has no
 * floating point); no qsort (glibc's may call malloc): the top rows are
 * picked by repeated selection, which for ten rows is cheap.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

#define MAX_INLINE 16

typedef struct node {
    const char *function, *file;
    int line;
    uintptr_t pc;        /* for unresolved frames: the address */
    uint64_t flat[2], cum[2];
    size_t stamp;        /* last sample that counted it in cum (+1) */
} node;

typedef struct report {
    node *nodes;
    size_t nnodes, capnodes;
    gcm__u64map pcs;     /* pc -> its nodes: idx[first..] << 32 | count */
    uint32_t *idx;
    size_t nidx, capidx;
    uint32_t *nht;       /* node indices + 1, open addressing */
    size_t capnht;
    gcm__sym_mode mode;  /* one for the whole report */
    bool oom;
} report;

static bool same(const char *a, const char *b)
{
    return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static uint64_t hash_str(uint64_t h, const char *s)
{
    for (; s != NULL && *s != '\0'; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001B3ULL;
    return h * 0x100000001B3ULL;
}

static uint64_t node_hash(const char *function, const char *file, int line,
                          uintptr_t pc)
{
    if (function == NULL)
        return (uint64_t)pc * 0x9E3779B97F4A7C15ULL;
    uint64_t h = hash_str(0xCBF29CE484222325ULL, function);
    h = hash_str(h, file);
    return (h ^ (uint64_t)(unsigned)line) * 0x9E3779B97F4A7C15ULL;
}

static uint64_t node_hash_at(const void *ctx, size_t i)
{
    const node *n = &((const report *)ctx)->nodes[i];
    return node_hash(n->function, n->file, n->line, n->pc) >> 20;
}

/* The node of a frame (or, unresolved, of the address). */
static uint32_t node_of(report *R, const gcm__sym_frame *f, uintptr_t pc)
{
    const char *fn = f != NULL ? f->function : NULL;
    const char *file = f != NULL ? f->file : NULL;
    int ln = f != NULL ? f->line : 0;
    if (!gcm__index_reserve(&R->nht, &R->capnht, R->nnodes, 256, node_hash_at, R)) {
        R->oom = true;
        return UINT32_MAX;
    }
    size_t j = (size_t)(node_hash(fn, file, ln, pc) >> 20) & (R->capnht - 1);
    for (; R->nht[j] != 0; j = (j + 1) & (R->capnht - 1)) {
        node *n = &R->nodes[R->nht[j] - 1];
        if (fn != NULL ? (n->function != NULL && n->line == ln &&
                          same(n->function, fn) && same(n->file, file))
                       : (n->function == NULL && n->pc == pc))
            return R->nht[j] - 1;
    }
    if (!gcm__prof_grow((void **)&R->nodes, &R->capnodes, R->nnodes + 1, sizeof *R->nodes)) {
        R->oom = true;
        return UINT32_MAX;
    }
    node *n = &R->nodes[R->nnodes];
    memset(n, 0, sizeof *n);
    if (f != NULL) {
        n->function = f->function;
        n->file = f->file;
        n->line = f->line;
    }
    n->pc = pc;
    R->nht[j] = (uint32_t)R->nnodes + 1;
    return (uint32_t)R->nnodes++;
}

/* The nodes of return address pc, innermost first, symbolized once:
 * R->idx[*first .. *first + count).  Returns count, 0 when out of memory. */
static uint32_t nodes_of_pc(report *R, uintptr_t pc, uint32_t *first)
{
    uint64_t v;
    if (gcm__u64map_get(&R->pcs, (uint64_t)pc, &v)) {
        *first = (uint32_t)(v >> 32);
        return (uint32_t)v;
    }
    gcm__sym_frame fr[MAX_INLINE];
    int n = gcm__sym_resolve(R->mode, pc - 1, fr, MAX_INLINE);
    int want = n > 0 ? n : 1;
    if (!gcm__prof_grow((void **)&R->idx, &R->capidx, R->nidx + (size_t)want, sizeof *R->idx)) {
        R->oom = true;
        return 0;
    }
    *first = (uint32_t)R->nidx;
    for (int i = 0; i < want; i++) {
        uint32_t k = node_of(R, n > 0 && fr[i].function != NULL ? &fr[i] : NULL, pc);
        if (k == UINT32_MAX)
            return 0;
        R->idx[R->nidx++] = k;
    }
    if (!gcm__u64map_put(&R->pcs, (uint64_t)pc, (uint64_t)*first << 32 | (uint32_t)want)) {
        R->oom = true;
        return 0;
    }
    return (uint32_t)want;
}

static void pct(char *out, size_t cap, uint64_t v, uint64_t total)
{
    uint64_t h = total ? (uint64_t)(((__uint128_t)v * 10000 + total / 2) / total) : 0;
    gcm__fmt(out, cap, "%llu.%02llu%%", (unsigned long long)(h / 100),
             (unsigned long long)(h % 100));
}

static void node_name(const node *n, char *out, size_t cap)
{
    char tmp[512];
    const char *fn = gcm__demangled(n->function, tmp, sizeof tmp);
    if (fn == NULL)
        gcm__fmt(out, cap, "%p", (void *)n->pc);
    else if (n->file != NULL && n->line > 0)
        gcm__fmt(out, cap, "%s %s:%d", fn, n->file, n->line);
    else
        gcm__fmt(out, cap, "%s", fn);
}

static int table(int fd, report *R, int w, int top, const char *title,
                 uint64_t total)
{
    char line[1024], a[32], b[32], c[32], d[32], e[32], name[768];
    char tot[32];
    gcm__fmt_bytes(tot, sizeof tot, total);
    size_t shown = 0;
    uint64_t shown_bytes = 0;
    /* Pick the top rows by repeated selection; mark with stamp = -1. */
    uint32_t rows[64];
    if (top > 64)
        top = 64;
    for (int r = 0; r < top; r++) {
        size_t best = SIZE_MAX;
        for (size_t i = 0; i < R->nnodes; i++) {
            node *n = &R->nodes[i];
            if (n->stamp == SIZE_MAX || (n->flat[w] == 0 && n->cum[w] == 0))
                continue;
            if (best == SIZE_MAX || n->flat[w] > R->nodes[best].flat[w] ||
                (n->flat[w] == R->nodes[best].flat[w] &&
                 n->cum[w] > R->nodes[best].cum[w]))
                best = i;
        }
        if (best == SIZE_MAX)
            break;
        R->nodes[best].stamp = SIZE_MAX;
        rows[shown++] = (uint32_t)best;
        shown_bytes += R->nodes[best].flat[w];
    }
    char sb[32], sp[32];
    gcm__fmt_bytes(sb, sizeof sb, shown_bytes);
    pct(sp, sizeof sp, shown_bytes, total);
    size_t len = gcm__fmt(line, sizeof line,
                          "%s\nShowing top %zu sites accounting for %s, %s of %s total\n"
                          "      flat  flat%%   sum%%        cum   cum%%\n",
                          title, shown, sb, sp, tot);
    if (gcm__write_all(fd, line, len < sizeof line ? len : sizeof line - 1) != 0)
        return errno;
    uint64_t sum = 0;
    for (size_t r = 0; r < shown; r++) {
        node *n = &R->nodes[rows[r]];
        sum += n->flat[w];
        gcm__fmt_bytes(a, sizeof a, n->flat[w]);
        pct(b, sizeof b, n->flat[w], total);
        pct(c, sizeof c, sum, total);
        gcm__fmt_bytes(d, sizeof d, n->cum[w]);
        pct(e, sizeof e, n->cum[w], total);
        node_name(n, name, sizeof name);
        len = gcm__fmt(line, sizeof line, "%10s %6s %6s %10s %6s  %s\n", a, b,
                       c, d, e, name);
        if (len >= sizeof line) {
            line[sizeof line - 2] = '\n';
            len = sizeof line - 1;
        }
        if (gcm__write_all(fd, line, len) != 0)
            return errno;
    }
    for (size_t r = 0; r < shown; r++)
        R->nodes[rows[r]].stamp = 0;
    return 0;
}

int gcm__prof_report(int fd, const gcm__prof_snap *s, int top)
{
    if (s == NULL)
        return EINVAL;
    if (fd < 0)
        return EBADF;
    if (top <= 0)
        top = 10;
    report R;
    memset(&R, 0, sizeof R);
    R.mode = gcm__sym_mode_text();
    uint64_t total[2] = {0, 0};
    size_t samples = 0;
    for (size_t i = 0; i < s->n && !R.oom; i++) {
        const gcm__prof_rec *r = &s->recs[i];
        const gcm__bucket *b = r->b;
        uint64_t all[4];
        gcm__prof_values(&r->c, s->rate, all);
        uint64_t v[2] = {all[GCM_V_INUSE_B], all[GCM_V_ALLOC_B]};
        samples += r->c.allocs;
        total[0] += v[0];
        total[1] += v[1];
        int skip = gcm__sym_api_frames(R.mode, b->pcs, b->depth);
        for (int d = skip; d < b->depth && !R.oom; d++) {
            uint32_t first, count = nodes_of_pc(&R, b->pcs[d], &first);
            for (uint32_t k = 0; k < count; k++) {
                node *n = &R.nodes[R.idx[first + k]];
                if (d == skip && k == 0) {
                    n->flat[0] += v[0];
                    n->flat[1] += v[1];
                }
                if (n->stamp != i + 1) {
                    n->stamp = i + 1;
                    n->cum[0] += v[0];
                    n->cum[1] += v[1];
                }
            }
        }
    }
    int rc = R.oom ? ENOMEM : 0;
    if (rc == 0) {
        for (size_t i = 0; i < R.nnodes; i++)
            R.nodes[i].stamp = 0;
        char line[512], rate[32], how[64];
        gcm__fmt_bytes(rate, sizeof rate, (uint64_t)(s->rate > 0 ? s->rate : 0));
        if (s->rate == 1)
            gcm__fmt(how, sizeof how, "every allocation recorded");
        else if (s->rate <= 0)
            gcm__fmt(how, sizeof how, "sampling is off");
        else
            gcm__fmt(how, sizeof how, "one sample per %s allocated", rate);
        size_t len = gcm__fmt(line, sizeof line,
                              "gcmalloc allocation profile of pid %d: %zu sites, "
                              "%zu samples (%s; stacks by %s)\n",
                              (int)getpid(), s->n, samples, how,
                              gcm__stack_method());
        if (gcm__write_all(fd, line, len < sizeof line ? len : sizeof line - 1) != 0)
            rc = errno;
    }
    if (rc == 0)
        rc = table(fd, &R, 0, top,
                   "In use (inuse_space; the GC heap as of its last collection):",
                   total[0]);
    if (rc == 0)
        rc = table(fd, &R, 1, top, "Allocated since start (alloc_space):",
                   total[1]);
    gcm__prof_dealloc(R.nodes);
    gcm__u64map_free(&R.pcs);
    gcm__prof_dealloc(R.idx);
    gcm__prof_dealloc(R.nht);
    return rc;
}
