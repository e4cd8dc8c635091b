/*
 * trace_csv.c — the parsed cycles as CSV, one row per cycle after a header
 * row, for spreadsheets, pandas, or checking the summary by other means.
 *
 * Columns are the line's fields in its own units (s, %, ms, MB = MiB)
 * under the names docs/gcmalloc-trace.md lists; clock_b_ms sums the
 * middle phases of a five-phase (Go 1.5/1.6) line.  stacks_mb and
 * globals_mb are empty when the line has no such field.  pause_ms is the
 * pause under the stop-the-world rule in use.  Numbers are written with
 * the "C" locale's decimal point (the tool never calls setlocale).
 */
#include <inttypes.h>

#include "trace.h"

static void opt_mb(FILE *out, int64_t v)
{
    if (v >= 0)
        fprintf(out, ",%" PRId64, v);
    else
        fputs(",", out);
}

int gct_write_csv(FILE *out, const gct_cycle *c, size_t n, gct_stw rule)
{
    fputs("line,run,gc,t_s,gc_cpu_pct,clock_a_ms,clock_b_ms,clock_c_ms,"
          "cpu_a_ms,cpu_assist_ms,cpu_background_ms,cpu_idle_ms,cpu_c_ms,"
          "heap0_mb,heap1_mb,heap2_mb,goal_mb,stacks_mb,globals_mb,procs,"
          "forced,pause_ms\n", out);
    for (size_t i = 0; i < n; i++) {
        const gct_cycle *g = &c[i];
        fprintf(out, "%" PRIu64 ",%u,%" PRIu64 ",%.3f,%" PRIu64 ",%.10g,%.10g,%.10g,",
                g->line, g->run, g->n, g->t_s, g->cpu_pct, gct_clock_a(g),
                gct_clock_b(g), gct_clock_c(g));
        fprintf(out, "%.10g,%.10g,%.10g,%.10g,%.10g,", g->cpu_first_ms, g->cpu_assist_ms,
                g->cpu_bg_ms, g->cpu_idle_ms, g->cpu_last_ms);
        fprintf(out, "%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64, g->heap0_mb,
                g->heap1_mb, g->heap2_mb, g->goal_mb);
        opt_mb(out, g->stacks_mb);
        opt_mb(out, g->globals_mb);
        fprintf(out, ",%" PRIu64 ",%d,%.10g\n", g->procs, g->forced ? 1 : 0,
                gct_pause_ms(g, rule));
    }
    return ferror(out) ? -1 : 0;
}
