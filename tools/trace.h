/*
 * trace.h — the gctrace analyzer's pieces, shared by the tool, its tests and
 * its fuzzers.
 *
 * Data flows one way:
 *
 *   bytes ──trace_read.c──▶ lines ──trace_parse.c──▶ gct_cycle[] (gct_log)
 *         ──trace_stats.c──▶ gct_summary ──trace_report.c──▶ text
 *                            gct_cycle[] ──trace_csv.c──▶ CSV
 *                            gct_cycle[] ──trace_svg.c──▶ SVG chart
 *
 * Nothing here knows who wrote a line: gcmalloc and Go print the same
 * format.  Where the meaning differs (which clock phases stop the world),
 * trace_stats.c decides from the numbers on the line and says how it
 * decided; see docs/gcmalloc-trace.md.
 *
 * Heap figures stay in the log's own unit, "MB", which both gcmalloc and Go
 * compute as bytes >> 20, i.e. whole MiB rounded down.
 */
#ifndef GCM_TOOLS_TRACE_H
#define GCM_TOOLS_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* --- one parsed line (trace_parse.c) --------------------------------------- */

/* Go 1.5 and 1.6 printed five clock phases (STW sweep termination,
 * concurrent scan, STW write-barrier install, concurrent mark, STW mark
 * termination); Go 1.7 and later, and gcmalloc, print three.  In both,
 * the phases at even indexes (0, 2, 4) are Go's stop-the-world ones. */
#define GCT_MAX_PHASES 5

typedef struct gct_cycle {
    uint64_t line;       /* 1-based line number in the input              */
    unsigned run;        /* 1-based: which run of the log (see gct_log)   */
    uint64_t n;          /* "gc N"                                        */
    double t_s;          /* "@T s": seconds since program start           */
    uint64_t cpu_pct;    /* "U%": GC CPU fraction since start, cumulative */
    int nphases;         /* 3 or 5                                        */
    double clock_ms[GCT_MAX_PHASES];
    /* CPU figures: first and last are the STW phases', the slash-separated
     * triple is mark assist / background / idle.  Go 1.5's extra scan and
     * write-barrier CPU figures are not kept. */
    double cpu_first_ms, cpu_assist_ms, cpu_bg_ms, cpu_idle_ms, cpu_last_ms;
    uint64_t heap0_mb;   /* H0: heap when the cycle started               */
    uint64_t heap1_mb;   /* H1: heap when marking ended                   */
    uint64_t heap2_mb;   /* H2: marked (live) heap                        */
    uint64_t goal_mb;    /* heap goal                                     */
    int64_t stacks_mb;   /* -1 when the line has no "MB stacks" (Go<1.18) */
    int64_t globals_mb;  /* -1 when absent                                */
    uint64_t procs;      /* "P P"                                         */
    bool forced;         /* " (forced)": runtime.GC() / gcm_gc()          */
} gct_cycle;

/* The three clock figures every format has: A (the first phase), B (the
 * phases between) and C (the last phase). */
double gct_clock_a(const gct_cycle *c);
double gct_clock_b(const gct_cycle *c);
double gct_clock_c(const gct_cycle *c);

typedef enum gct_line_kind {
    GCT_LINE_CYCLE,     /* a gctrace line, parsed into *out               */
    GCT_LINE_MALFORMED, /* looks like (part of) a gctrace line, but isn't */
    GCT_LINE_FOREIGN    /* anything else: program output, scvg lines ... */
} gct_line_kind;

/* Longest line looked at; the rest of a longer line is read and dropped
 * (a gctrace line is under 300 bytes, even behind a log-shipper prefix). */
#define GCT_LINE_MAX 4096

/* Classifies one line (without its newline; may hold any bytes, NUL
 * included).  The gctrace line may sit behind a prefix (a timestamp, a
 * container log tag): it is looked for at the start of the line and after
 * every byte that cannot be part of a word.  *out is written only for
 * GCT_LINE_CYCLE. */
gct_line_kind gct_parse_line(const char *s, size_t len, gct_cycle *out);

/* --- the whole input (trace_read.c) ------------------------------------------ */

/* How many line numbers of each kind of skipped line are kept. */
#define GCT_KEEP_LINES 8

/* A log may hold several runs: a program restarted with GCMALLOC_GCTRACE
 * appending to the same file, or several Go processes writing to one
 * stderr.  A new run starts where the cycle number or the time goes back. */
typedef struct gct_log {
    gct_cycle *cycles;
    size_t n, cap;
    uint64_t lines;                /* lines read                         */
    uint64_t malformed, foreign;   /* lines skipped, by kind             */
    uint64_t overlong;             /* lines longer than GCT_LINE_MAX     */
    uint64_t malformed_at[GCT_KEEP_LINES], foreign_at[GCT_KEEP_LINES];
    unsigned runs;
    uint64_t run_start_line[GCT_KEEP_LINES]; /* first line of runs 2.. */
    bool out_of_memory;            /* cycles after the first failure lost */
} gct_log;

void gct_log_init(gct_log *log);
void gct_log_free(gct_log *log);
/* Feeds one line (numbered log->lines + 1).  `truncated` says the line was
 * longer than what is passed; such a line is never taken as a cycle. */
void gct_log_add_line(gct_log *log, const char *s, size_t len, bool truncated);
/* Reads every line of `in`.  Returns 0, or an errno value on a read error
 * (what was read so far stays in the log). */
int gct_log_read(gct_log *log, FILE *in);
/* The cycles of run `run` (1-based): *first and *count. */
void gct_log_run(const gct_log *log, unsigned run, size_t *first, size_t *count);

/* --- analysis (trace_stats.c) --------------------------------------------------- */

/* Which clock phases count as the stop-the-world pause. */
typedef enum gct_stw {
    GCT_STW_AUTO,     /* gcmalloc if every line carries its signature, else go */
    GCT_STW_GO,       /* Go: A + C (sweep and mark termination; mark is concurrent) */
    GCT_STW_GCMALLOC, /* gcmalloc: stopped part of A + B + stopped part of C */
    GCT_STW_ALL       /* the whole cycle, A + B + C: an upper bound      */
} gct_stw;

const char *gct_stw_name(gct_stw rule);
/* Parses "auto", "go", "gcmalloc", "all"; -1 if none. */
int gct_stw_parse(const char *text, gct_stw *out);

/* True when the CPU figures of the line are the ones gcmalloc computes for
 * a collector that marks with the world stopped: no mutator assists, and
 * background + idle mark CPU equal to B × P within printing precision. */
bool gct_gcmalloc_shaped(const gct_cycle *c);

/* The pause of one cycle in ms, under `rule` (not AUTO). */
double gct_pause_ms(const gct_cycle *c, gct_stw rule);

typedef struct gct_dist {
    size_t n;
    double min, mean, p50, p90, p99, max;
} gct_dist;
/* Distribution of v[0..n) (sorted in place).  Percentiles by nearest rank:
 * pX is the smallest value with at least X% of the values at or below it. */
void gct_dist_of(double *v, size_t n, gct_dist *d);

typedef struct gct_fit {
    size_t n;
    double slope, intercept; /* y ≈ slope·x + intercept (least squares)  */
    double r2;               /* coefficient of determination, 0 when flat */
} gct_fit;
void gct_fit_line(const double *x, const double *y, size_t n, gct_fit *f);

typedef enum gct_verdict {
    GCT_VERDICT_TOO_FEW,   /* too few cycles, or no time between them */
    GCT_VERDICT_STABLE,
    GCT_VERDICT_LEAK,      /* grows steadily                          */
    GCT_VERDICT_LEVELLED,  /* grew, then stopped growing              */
    GCT_VERDICT_UNEVEN,    /* moved a lot, but not along a line       */
    GCT_VERDICT_SHRINKS
} gct_verdict;
const char *gct_verdict_text(gct_verdict v);

/* The verdict's thresholds (docs/gcmalloc-trace.md explains each). */
#define GCT_TREND_MIN_CYCLES 6
#define GCT_TREND_MIN_MB 2.0        /* two units of the log's MB rounding  */
#define GCT_TREND_MIN_REL 0.10      /* of the mean live heap               */
#define GCT_TREND_MIN_R2 0.5
#define GCT_TREND_LATE_SHARE 0.25   /* second half still grows this fast   */

typedef struct gct_summary {
    size_t cycles;
    uint64_t first_n, last_n;
    uint64_t missing;           /* cycle numbers skipped inside the run */
    double t_first, t_last, span_s;
    uint64_t cpu_pct;           /* the last line's U%                   */
    uint64_t procs_min, procs_max;

    gct_stw rule;               /* never AUTO here                      */
    bool rule_detected;         /* chosen by AUTO                       */
    size_t gcmalloc_shaped;     /* lines with gcmalloc's signature      */
    gct_dist pause;             /* ms                                   */
    double pause_total_ms;
    uint64_t pause_max_n;       /* cycle number of the longest pause    */

    gct_dist live;              /* H2, MiB                              */
    gct_fit trend;              /* H2 MiB over minutes, whole run       */
    gct_fit trend_late;         /* the same over the second half        */
    double growth_mb;           /* trend.slope × span                   */
    gct_verdict verdict;

    gct_dist start_ratio;       /* H0 / goal, cycles with a goal        */
    gct_dist end_ratio;         /* H1 / goal                            */
    size_t over_goal;           /* cycles with H1 or H0 above the goal  */

    size_t forced;
    uint64_t forced_n[GCT_KEEP_LINES];
} gct_summary;

/* Summarizes c[0..n), one run.  Returns 0 or ENOMEM. */
int gct_summarize(const gct_cycle *c, size_t n, gct_stw rule, gct_summary *s);

/* --- output ------------------------------------------------------------------ */

/* trace_report.c: the text summary.  `name` names the input. */
void gct_report(FILE *out, const char *name, const gct_log *log, unsigned run,
                const gct_summary *s);

/* trace_csv.c: one header row, then one row per cycle of c[0..n). */
int gct_write_csv(FILE *out, const gct_cycle *c, size_t n, gct_stw rule);

/* trace_svg.c: heap before/after/live/goal over time, pauses beneath.
 * `title` may hold any bytes; it is escaped. */
int gct_write_svg(FILE *out, const gct_cycle *c, size_t n,
                  const gct_summary *s, const char *title);

#endif
