/*
 * trace_report.c — the text summary gcmalloc-trace prints.
 *
 * One "label  value" line per finding, in the order a reader asks the
 * questions: what did I feed it, how long and how much GC, how long were
 * the pauses, is the live heap growing, did the pacer keep its goals.
 * docs/gcmalloc-trace.md explains every line.  Only numbers and fixed
 * words are printed — never bytes from the input — so a hostile log cannot
 * put control sequences on the terminal.
 */
#include <inttypes.h>
#include <math.h>

#include "trace.h"

/* Milliseconds with three significant digits, without exponents. */
static void put_ms(FILE *out, double v)
{
    const char *f = v >= 100 ? "%.0f" : v >= 10 ? "%.1f" : v >= 1 ? "%.2f" : "%.3f";
    fprintf(out, f, v);
    fputs(" ms", out);
}

static void put_lines(FILE *out, const char *what, uint64_t count, const uint64_t *at)
{
    if (count == 0)
        return;
    fprintf(out, "            %s lines: ", what);
    uint64_t shown = count < GCT_KEEP_LINES ? count : GCT_KEEP_LINES;
    for (uint64_t i = 0; i < shown; i++)
        fprintf(out, "%s%" PRIu64, i ? ", " : "", at[i]);
    if (count > shown)
        fprintf(out, ", ... (first %d shown)", GCT_KEEP_LINES);
    fputc('\n', out);
}

/* The input's name as given on the command line, printable ASCII only. */
static void put_name(FILE *out, const char *name)
{
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        fputc(*p >= 0x20 && *p < 0x7f ? *p : '?', out);
}

static void put_ratio(FILE *out, const char *name, const gct_dist *d)
{
    fprintf(out, "%s p50 %.2f  p90 %.2f  max %.2f", name, d->p50, d->p90, d->max);
}

void gct_report(FILE *out, const char *name, const gct_log *log, unsigned run,
                const gct_summary *s)
{
    fputs("gcmalloc-trace: ", out);
    put_name(out, name);
    fputc('\n', out);
    fprintf(out, "input       %" PRIu64 " lines: %zu gctrace cycles, %" PRIu64
                 " malformed, %" PRIu64 " other\n",
            log->lines, log->n, log->malformed, log->foreign);
    put_lines(out, "malformed", log->malformed, log->malformed_at);
    put_lines(out, "other", log->foreign, log->foreign_at);
    if (log->overlong)
        fprintf(out, "            %" PRIu64 " line%s longer than %d bytes, never taken"
                     " as a cycle\n", log->overlong, log->overlong == 1 ? "" : "s",
                GCT_LINE_MAX);
    if (log->out_of_memory)
        fprintf(out, "            out of memory: cycles after the %zu-th were dropped\n",
                log->n);
    if (log->runs > 1) {
        fprintf(out, "runs        %u (cycle numbers or times restart at line", log->runs);
        unsigned shown = log->runs - 1 < GCT_KEEP_LINES ? log->runs - 1 : GCT_KEEP_LINES;
        for (unsigned i = 0; i < shown; i++)
            fprintf(out, "%s %" PRIu64, i ? "," : "", log->run_start_line[i]);
        fprintf(out, "%s); this is run %u, --run N picks another\n",
                log->runs - 1 > shown ? ", ..." : "", run);
    }
    if (s->cycles == 0) {
        fprintf(out, "cycles      0: no gctrace lines found\n");
        return;
    }
    fprintf(out, "cycles      %zu (gc %" PRIu64 " .. gc %" PRIu64 ")", s->cycles,
            s->first_n, s->last_n);
    if (s->missing)
        fprintf(out, ", %" PRIu64 " missing from the log", s->missing);
    fputc('\n', out);
    fprintf(out, "wall span   %.3f s (@%.3f s .. @%.3f s)\n", s->span_s, s->t_first,
            s->t_last);
    fprintf(out, "GC CPU      %" PRIu64 "%% of available CPU since program start"
                 " (the last line's U%%)\n", s->cpu_pct);
    if (s->procs_min == s->procs_max)
        fprintf(out, "procs       %" PRIu64 " P\n", s->procs_min);
    else
        fprintf(out, "procs       %" PRIu64 "..%" PRIu64 " P\n", s->procs_min,
                s->procs_max);

    fputs("pauses      p50 ", out);
    put_ms(out, s->pause.p50);
    fputs("  p90 ", out);
    put_ms(out, s->pause.p90);
    fputs("  p99 ", out);
    put_ms(out, s->pause.p99);
    fputs("  max ", out);
    put_ms(out, s->pause.max);
    fprintf(out, " (gc %" PRIu64 ")  total ", s->pause_max_n);
    put_ms(out, s->pause_total_ms);
    fputc('\n', out);
    static const char *const rule_text[] = {
        [GCT_STW_AUTO] = "?",
        [GCT_STW_GO] = "go: A + C",
        [GCT_STW_GCMALLOC] = "gcmalloc: stopped(A) + B + stopped(C)",
        [GCT_STW_ALL] = "all: A + B + C",
    };
    fprintf(out, "            stop-the-world rule %s", rule_text[s->rule]);
    if (s->rule_detected)
        fprintf(out, " (auto: %zu of %zu lines match gcmalloc)\n", s->gcmalloc_shaped,
                s->cycles);
    else
        fputs(" (set by --stw)\n", out);

    fprintf(out, "live heap   min %.0f  mean %.1f  max %.0f MiB (H2, marked at each cycle)\n",
            s->live.min, s->live.mean, s->live.max);
    fprintf(out, "trend       %+.1f MiB/min: %+.1f MiB over the span, r\xc2\xb2 %.2f",
            s->trend.slope, s->growth_mb, s->trend.r2);
    if (s->trend_late.n >= 2)
        fprintf(out, "; second half %+.1f MiB/min", s->trend_late.slope);
    fputc('\n', out);
    fprintf(out, "verdict     %s\n", gct_verdict_text(s->verdict));

    if (s->start_ratio.n > 0) {
        fputs("goal        ", out);
        put_ratio(out, "H0/goal", &s->start_ratio);
        fputs("; ", out);
        put_ratio(out, "H1/goal", &s->end_ratio);
        fprintf(out, "\n            %zu of %zu pacer-started cycles over their goal\n",
                s->over_goal, s->start_ratio.n);
    } else {
        fputs("goal        no pacer-started cycle with a goal\n", out);
    }
    fprintf(out, "forced      %zu", s->forced);
    if (s->forced > 0) {
        fputs(" (", out);
        size_t shown = s->forced < GCT_KEEP_LINES ? s->forced : GCT_KEEP_LINES;
        for (size_t i = 0; i < shown; i++)
            fprintf(out, "%sgc %" PRIu64, i ? ", " : "", s->forced_n[i]);
        fputs(s->forced > shown ? ", ...)" : ")", out);
    }
    fputc('\n', out);
}
