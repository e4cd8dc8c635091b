/*
 * trace_fuzz_check.c — see trace_fuzz_check.h.  Plain C11 plus POSIX
 * fmemopen/open_memstream, so the same file builds with the project's
 * compiler (the deterministic test) and with clang -fsanitize=fuzzer.
 */
#define _POSIX_C_SOURCE 200809L
#include "trace_fuzz_check.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trace.h"

static size_t count_of(const char *s, size_t n, char ch)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += s[i] == ch;
    return k;
}

static int has(const char *s, size_t n, const char *needle)
{
    size_t k = strlen(needle);
    for (size_t i = 0; k <= n && i + k <= n; i++)
        if (s[i] == needle[0] && memcmp(s + i, needle, k) == 0)
            return 1;
    return 0;
}

/* Every byte the report prints is ASCII text or the "²" of r². */
static int report_is_clean(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char b = (unsigned char)s[i];
        if (b == 0xc2 && i + 1 < n && (unsigned char)s[i + 1] == 0xb2) {
            i++;
            continue;
        }
        if ((b < 0x20 && b != '\n') || b >= 0x7f)
            return 0;
    }
    return 1;
}

static int dist_ok(const gct_dist *d)
{
    if (d->n == 0)
        return 1;
    double v[] = {d->min, d->mean, d->p50, d->p90, d->p99, d->max};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        if (!isfinite(v[i]))
            return 0;
    double slack = 1e-9 * fabs(d->max);
    return d->min <= d->p50 && d->p50 <= d->p90 && d->p90 <= d->p99 &&
           d->p99 <= d->max && d->mean >= d->min - slack && d->mean <= d->max + slack;
}

static int cycle_ok(const gct_cycle *c, unsigned runs)
{
    if (c->nphases != 3 && c->nphases != 5)
        return 0;
    if (c->run < 1 || c->run > runs || c->line == 0)
        return 0;
    double v[] = {c->t_s, c->cpu_first_ms, c->cpu_assist_ms, c->cpu_bg_ms,
                  c->cpu_idle_ms, c->cpu_last_ms};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        if (!isfinite(v[i]) || v[i] < 0)
            return 0;
    for (int i = 0; i < c->nphases; i++)
        if (!isfinite(c->clock_ms[i]) || c->clock_ms[i] < 0)
            return 0;
    return 1;
}

/* Writes through fn into memory; returns the bytes (caller frees). */
typedef int (*writer)(FILE *f, const void *arg);

static char *capture(writer fn, const void *arg, size_t *len, int *rc)
{
    char *buf = NULL;
    FILE *f = open_memstream(&buf, len);
    if (f == NULL)
        return NULL;
    *rc = fn(f, arg);
    fclose(f);
    return buf;
}

struct job {
    const gct_log *log;
    const gct_cycle *c;
    size_t n;
    unsigned run;
    const gct_summary *s;
};

static int w_report(FILE *f, const void *arg)
{
    const struct job *j = arg;
    gct_report(f, "fuzz", j->log, j->run, j->s);
    return 0;
}

static int w_csv(FILE *f, const void *arg)
{
    const struct job *j = arg;
    return gct_write_csv(f, j->c, j->n, j->s->rule);
}

static int w_svg(FILE *f, const void *arg)
{
    const struct job *j = arg;
    return gct_write_svg(f, j->c, j->n, j->s, "fuzz <&> \"title\" \x01\xff");
}

static const char *check_run(const gct_log *log, unsigned run)
{
    static const gct_stw rules[] = {GCT_STW_AUTO, GCT_STW_GO, GCT_STW_GCMALLOC,
                                    GCT_STW_ALL};
    size_t first, n;
    gct_log_run(log, run, &first, &n);
    /* NULL + 0 is undefined behaviour in C: no cycles, no pointer. */
    const gct_cycle *c = n ? log->cycles + first : NULL;
    if (run >= 1 && run <= log->runs && n == 0)
        return "a run without cycles";
    for (size_t r = 0; r < sizeof rules / sizeof rules[0]; r++) {
        gct_summary s;
        if (gct_summarize(c, n, rules[r], &s) != 0)
            return "summarize failed";
        if (s.rule == GCT_STW_AUTO)
            return "rule left at auto";
        if (!dist_ok(&s.pause) || !dist_ok(&s.live) || !dist_ok(&s.start_ratio) ||
            !dist_ok(&s.end_ratio))
            return "a distribution is out of order or not finite";
        if (n > 0 && (!isfinite(s.trend.slope) || !isfinite(s.growth_mb) ||
                      !(s.trend.r2 >= -1e-9 && s.trend.r2 <= 1 + 1e-9)))
            return "the trend is not finite or r2 is out of [0, 1]";
        if (s.verdict < GCT_VERDICT_TOO_FEW || s.verdict > GCT_VERDICT_SHRINKS)
            return "no verdict";
        /* Outputs differ between rules only in pause figures: writing
         * them once per run keeps the fuzzer fast enough to explore. */
        if (r > 0 || run > 4)
            continue;

        struct job j = {log, c, n, run, &s};
        size_t len;
        int rc = 0;
        char *out = capture(w_report, &j, &len, &rc);
        if (out == NULL)
            return "open_memstream failed";
        int clean = report_is_clean(out, len);
        free(out);
        if (!clean)
            return "the report holds bytes that are not text";

        out = capture(w_csv, &j, &len, &rc);
        if (out == NULL)
            return "open_memstream failed";
        int csv_ok = rc == 0 && count_of(out, len, '\n') == n + 1 &&
                     !has(out, len, "nan") && !has(out, len, "inf");
        free(out);
        if (!csv_ok)
            return "CSV: wrong row count, or nan/inf";

        out = capture(w_svg, &j, &len, &rc);
        if (out == NULL)
            return "open_memstream failed";
        int svg_ok = rc == 0 && len > 12 && memcmp(out, "<?xml", 5) == 0 &&
                     memcmp(out + len - 7, "</svg>\n", 7) == 0 &&
                     count_of(out, len, '<') == count_of(out, len, '>') &&
                     !has(out, len, "nan") && !has(out, len, "inf") &&
                     !has(out, len, "\x01") && !has(out, len, "\xff");
        free(out);
        if (!svg_ok)
            return "SVG: not well formed, or nan/inf, or raw title bytes";
    }
    return NULL;
}

const char *gct_fuzz_check(const uint8_t *data, size_t size)
{
    gct_log log;
    gct_log_init(&log);
    /* fmemopen of zero bytes is not portable; an empty FILE is tmpfile. */
    FILE *f = size ? fmemopen((void *)data, size, "rb") : tmpfile();
    if (f == NULL)
        return "fmemopen failed";
    int err = gct_log_read(&log, f);
    fclose(f);
    const char *why = NULL;
    uint64_t lines = count_of((const char *)data, size, '\n') +
                     (size > 0 && data[size - 1] != '\n');
    if (err != 0)
        why = "read error";
    else if (log.lines != lines)
        why = "line count differs from the newlines in the input";
    else if (!log.out_of_memory && log.n + log.malformed + log.foreign != log.lines)
        why = "cycles + malformed + other != lines";
    else if ((log.n == 0) != (log.runs == 0))
        why = "runs without cycles, or cycles without runs";
    for (size_t i = 0; why == NULL && i < log.n; i++) {
        if (!cycle_ok(&log.cycles[i], log.runs))
            why = "a parsed cycle has a bad field";
        else if (i > 0 && log.cycles[i].line <= log.cycles[i - 1].line)
            why = "cycles out of line order";
    }
    for (unsigned r = 1; why == NULL && r <= log.runs; r++)
        why = check_run(&log, r);
    if (why == NULL && log.runs == 0)
        why = check_run(&log, 0);
    gct_log_free(&log);
    return why;
}
