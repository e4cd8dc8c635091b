/*
 * trace_stats.c — from cycles to the numbers a reader wants: pauses, the
 * live heap and its trend, how the pacer met its goals.
 *
 * Which phases are the pause.  A gctrace line does not say who wrote it,
 * and the same three clock figures A+B+C mean different things:
 *
 *   Go        A  stop-the-world sweep termination    pause = A + C
 *             B  concurrent mark (the program runs)
 *             C  stop-the-world mark termination
 *
 *   gcmalloc  A  cycle start to mark start: lazy-sweep catch-up with the
 *                program running, then the world stops
 *             B  marking, with the world stopped      pause = stopped(A)
 *             C  mark end to cycle end: the world restarts early, then
 *                reclaim set-up                           + B + stopped(C)
 *
 * gcmalloc's CPU figures (src/gctrace.c) are built from the same split: a
 * stopped-world interval costs every one of the P processors, the rest of
 * A and C costs the collecting thread alone, so a = stopped(A)·P +
 * (A − stopped(A)) and stopped(A) = (a − A) / (P − 1); likewise for C.  And
 * since marking occupies every processor (marker threads plus idle ones),
 * its background + idle CPU is B × P with no mutator assists.  Go's never
 * is in practice: its mark runs beside the program, with dedicated workers
 * on a quarter of the Ps.  So:
 *
 *   --stw=auto      every line carries gcmalloc's signature (assist 0,
 *                   background + idle = B × P within printing precision)
 *                   → the gcmalloc rule; otherwise the Go rule.
 *   --stw=go        A + C
 *   --stw=gcmalloc  stopped(A) + B + stopped(C); with P = 1 the split
 *                   cannot be read, and A + B + C is used
 *   --stw=all       A + B + C, an upper bound for any producer
 *
 * The figures are printed with two significant digits, so a derived pause
 * carries that precision (about 10%), never more.
 *
 * The live heap trend is a least-squares line through (time, H2); the
 * verdict rules are in gct_summarize and docs/gcmalloc-trace.md.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "trace.h"

const char *gct_stw_name(gct_stw rule)
{
    switch (rule) {
    case GCT_STW_AUTO: return "auto";
    case GCT_STW_GO: return "go";
    case GCT_STW_GCMALLOC: return "gcmalloc";
    case GCT_STW_ALL: return "all";
    }
    return "?";
}

int gct_stw_parse(const char *text, gct_stw *out)
{
    static const gct_stw all[] = {GCT_STW_AUTO, GCT_STW_GO, GCT_STW_GCMALLOC,
                                  GCT_STW_ALL};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        if (strcmp(text, gct_stw_name(all[i])) == 0) {
            *out = all[i];
            return 0;
        }
    }
    return -1;
}

/* The largest error of a figure printed by Go's fmtNSAsMS: it keeps two
 * significant digits (truncating, so up to 10% low), whole ms from 10 ms,
 * and prints 0 below a microsecond. */
static double print_slack(double v) { return 0.11 * v + 0.0011; }

bool gct_gcmalloc_shaped(const gct_cycle *c)
{
    if (c->nphases != 3 || c->procs == 0 || c->cpu_assist_ms != 0)
        return false;
    double P = (double)c->procs;
    double want = gct_clock_b(c) * P;
    double got = c->cpu_bg_ms + c->cpu_idle_ms;
    double big = want > got ? want : got;
    /* B's own truncation is multiplied by P; bg and idle each add theirs. */
    return fabs(want - got) <= print_slack(big) + 0.0011 * P + 0.0022;
}

/* The stopped part of a phase of wall time `wall` whose CPU figure is
 * `cpu`, for gcmalloc's lines (see the top of this file). */
static double stopped_part(double wall, double cpu, uint64_t procs)
{
    if (procs < 2)
        return wall;
    double s = (cpu - wall) / (double)(procs - 1);
    return s < 0 ? 0 : s > wall ? wall : s;
}

double gct_pause_ms(const gct_cycle *c, gct_stw rule)
{
    double sum = 0;
    switch (rule) {
    case GCT_STW_GO:
        for (int i = 0; i < c->nphases; i += 2)
            sum += c->clock_ms[i];
        return sum;
    case GCT_STW_GCMALLOC:
        return stopped_part(gct_clock_a(c), c->cpu_first_ms, c->procs) +
               gct_clock_b(c) +
               stopped_part(gct_clock_c(c), c->cpu_last_ms, c->procs);
    case GCT_STW_AUTO:
    case GCT_STW_ALL:
        break;
    }
    for (int i = 0; i < c->nphases; i++)
        sum += c->clock_ms[i];
    return sum;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Nearest rank: the value at 1-based rank ceil(pct/100 · n). */
static double rank(const double *sorted, size_t n, unsigned pct)
{
    size_t r = (size_t)((pct * (unsigned long long)n + 99) / 100);
    return sorted[r > 0 ? r - 1 : 0];
}

void gct_dist_of(double *v, size_t n, gct_dist *d)
{
    memset(d, 0, sizeof *d);
    d->n = n;
    if (n == 0)
        return;
    qsort(v, n, sizeof *v, cmp_double);
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += v[i];
    d->min = v[0];
    d->max = v[n - 1];
    d->mean = sum / (double)n;
    d->p50 = rank(v, n, 50);
    d->p90 = rank(v, n, 90);
    d->p99 = rank(v, n, 99);
}

void gct_fit_line(const double *x, const double *y, size_t n, gct_fit *f)
{
    memset(f, 0, sizeof *f);
    f->n = n;
    if (n == 0)
        return;
    double mx = 0, my = 0;
    for (size_t i = 0; i < n; i++) {
        mx += x[i];
        my += y[i];
    }
    mx /= (double)n;
    my /= (double)n;
    double sxx = 0, sxy = 0, syy = 0;
    for (size_t i = 0; i < n; i++) {
        double dx = x[i] - mx, dy = y[i] - my;
        sxx += dx * dx;
        sxy += dx * dy;
        syy += dy * dy;
    }
    f->intercept = my;
    if (sxx > 0) {
        f->slope = sxy / sxx;
        f->intercept = my - f->slope * mx;
        if (syy > 0)
            f->r2 = sxy * sxy / (sxx * syy);
    }
}

const char *gct_verdict_text(gct_verdict v)
{
    switch (v) {
    case GCT_VERDICT_TOO_FEW: return "too few cycles to judge the live heap's trend";
    case GCT_VERDICT_STABLE: return "live heap is stable";
    case GCT_VERDICT_LEAK: return "live heap grows steadily: possible leak";
    case GCT_VERDICT_LEVELLED:
        return "live heap grew, then levelled off (warm-up, not a steady leak)";
    case GCT_VERDICT_UNEVEN: return "live heap moves a lot, but with no steady trend";
    case GCT_VERDICT_SHRINKS: return "live heap shrinks steadily";
    }
    return "?";
}

/*
 * The verdict, in order:
 *   fewer than GCT_TREND_MIN_CYCLES cycles, or no time between the first
 *   and the last                                          → too few
 *   |growth over the run| < GCT_TREND_MIN_MB MiB, or < GCT_TREND_MIN_REL
 *   of the mean live heap                                 → stable
 *   growth > 0, but the second half of the run (by time, ≥ 3 cycles)
 *   grows at less than GCT_TREND_LATE_SHARE of the whole run's rate
 *                                                         → levelled off
 *   (checked before the fit's quality: a warm-up ramp then a plateau is a
 *   poor fit for one line, yet plainly not a leak)
 *   the line explains less than GCT_TREND_MIN_R2 of the variance → uneven
 *   growth < 0                                            → shrinks
 *   otherwise                                             → possible leak
 */
static gct_verdict judge(const gct_summary *s)
{
    if (s->cycles < GCT_TREND_MIN_CYCLES || !(s->span_s > 0))
        return GCT_VERDICT_TOO_FEW;
    double mean = s->live.mean > 1 ? s->live.mean : 1;
    if (fabs(s->growth_mb) < GCT_TREND_MIN_MB ||
        fabs(s->growth_mb) < GCT_TREND_MIN_REL * mean)
        return GCT_VERDICT_STABLE;
    if (s->growth_mb > 0 && s->trend_late.n >= 3 &&
        s->trend_late.slope < GCT_TREND_LATE_SHARE * s->trend.slope)
        return GCT_VERDICT_LEVELLED;
    if (s->trend.r2 < GCT_TREND_MIN_R2)
        return GCT_VERDICT_UNEVEN;
    if (s->growth_mb < 0)
        return GCT_VERDICT_SHRINKS;
    return GCT_VERDICT_LEAK;
}

int gct_summarize(const gct_cycle *c, size_t n, gct_stw rule, gct_summary *s)
{
    memset(s, 0, sizeof *s);
    s->cycles = n;
    if (n == 0) {
        s->rule = rule == GCT_STW_AUTO ? GCT_STW_GO : rule;
        return 0;
    }
    double *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
    if (a == NULL || b == NULL) {
        free(a);
        free(b);
        return ENOMEM;
    }

    s->first_n = c[0].n;
    s->last_n = c[n - 1].n;
    s->t_first = c[0].t_s;
    s->t_last = c[n - 1].t_s;
    s->span_s = s->t_last - s->t_first;
    s->cpu_pct = c[n - 1].cpu_pct;
    s->procs_min = s->procs_max = c[0].procs;
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && c[i].n > c[i - 1].n + 1)
            s->missing += c[i].n - c[i - 1].n - 1;
        if (c[i].procs < s->procs_min)
            s->procs_min = c[i].procs;
        if (c[i].procs > s->procs_max)
            s->procs_max = c[i].procs;
        if (c[i].forced) {
            if (s->forced < GCT_KEEP_LINES)
                s->forced_n[s->forced] = c[i].n;
            s->forced++;
        }
        s->gcmalloc_shaped += gct_gcmalloc_shaped(&c[i]);
    }

    s->rule = rule;
    if (rule == GCT_STW_AUTO) {
        s->rule_detected = true;
        s->rule = s->gcmalloc_shaped == n ? GCT_STW_GCMALLOC : GCT_STW_GO;
    }
    double longest = -1;
    for (size_t i = 0; i < n; i++) {
        a[i] = gct_pause_ms(&c[i], s->rule);
        s->pause_total_ms += a[i];
        if (a[i] > longest) {
            longest = a[i];
            s->pause_max_n = c[i].n;
        }
    }
    gct_dist_of(a, n, &s->pause);

    /* Live heap and its trend: x in minutes since the first cycle. */
    for (size_t i = 0; i < n; i++) {
        a[i] = (c[i].t_s - s->t_first) / 60.0;
        b[i] = (double)c[i].heap2_mb;
    }
    gct_fit_line(a, b, n, &s->trend);
    s->growth_mb = s->trend.slope * s->span_s / 60.0;
    double mid = s->t_first + s->span_s / 2;
    size_t late = 0;
    while (late < n && c[late].t_s < mid)
        late++;
    gct_fit_line(a + late, b + late, n - late, &s->trend_late);
    gct_dist_of(b, n, &s->live); /* sorts b: after the fits */

    /* Goals: cycles the pacer started (forced ones start whenever the
     * program asks) and that have a goal (GOGC=off prints none). */
    size_t g = 0;
    for (size_t i = 0; i < n; i++) {
        if (c[i].forced || c[i].goal_mb == 0)
            continue;
        a[g] = (double)c[i].heap0_mb / (double)c[i].goal_mb;
        b[g] = (double)c[i].heap1_mb / (double)c[i].goal_mb;
        s->over_goal += c[i].heap0_mb > c[i].goal_mb || c[i].heap1_mb > c[i].goal_mb;
        g++;
    }
    gct_dist_of(a, g, &s->start_ratio);
    gct_dist_of(b, g, &s->end_ratio);

    s->verdict = judge(s);
    free(a);
    free(b);
    return 0;
}
