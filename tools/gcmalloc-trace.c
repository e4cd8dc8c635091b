/*
 * gcmalloc-trace — summarizes a gctrace log, gcmalloc's (GCMALLOC_GCTRACE)
 * or a Go program's (GODEBUG=gctrace=1): cycles and wall span, GC CPU,
 * stop-the-world pauses, the live heap's trend with a plain verdict, how
 * the pacer met its goals, forced cycles; optionally a chart (--svg) and
 * the parsed cycles (--csv).  docs/gcmalloc-trace.md is the manual.
 *
 * This file is only the command line: reading, analysis and output live in
 * trace_read.c, trace_parse.c, trace_stats.c, trace_report.c, trace_csv.c
 * and trace_svg.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trace.h"

#ifndef GCM_VERSION
#define GCM_VERSION "dev"
#endif

static const char usage[] =
    "usage: gcmalloc-trace [options] [FILE]\n"
    "Summarizes a gctrace log (GCMALLOC_GCTRACE or GODEBUG=gctrace=1) read\n"
    "from FILE, or from standard input when FILE is absent or '-'.\n"
    "\n"
    "  --svg FILE     draw the heap and the pauses over time as SVG\n"
    "  --csv FILE     write the parsed cycles as CSV; '-' writes them to\n"
    "                 standard output instead of the summary\n"
    "  --stw RULE     which clock phases are the stop-the-world pause:\n"
    "                 auto (default), go (A+C), gcmalloc (stopped part of\n"
    "                 A + B + stopped part of C), all (A+B+C)\n"
    "  --run N        analyse run N of a log holding several (default: last)\n"
    "  --title TEXT   the chart's title (default: the input's name)\n"
    "  -h, --help     this text\n"
    "  --version      print the version\n"
    "\n"
    "Exit status: 0 with at least one cycle, 1 when the input holds no\n"
    "gctrace line, 2 on a usage or I/O error.\n";

static int fail(const char *what, const char *arg, int err)
{
    fprintf(stderr, "gcmalloc-trace: %s %s: %s\n", what, arg, strerror(err));
    return 2;
}

/* "--opt VALUE" or "--opt=VALUE"; advances *i past what it used. */
static const char *opt_value(int argc, char **argv, int *i, const char *name)
{
    size_t n = strlen(name);
    const char *a = argv[*i];
    if (strncmp(a, name, n) != 0)
        return NULL;
    if (a[n] == '=')
        return a + n + 1;
    if (a[n] == '\0' && *i + 1 < argc)
        return argv[++*i];
    return NULL;
}

static bool is_opt(const char *a, const char *name)
{
    size_t n = strlen(name);
    return strncmp(a, name, n) == 0 && (a[n] == '\0' || a[n] == '=');
}

static int write_file(const char *path, int (*write)(FILE *, void *), void *arg)
{
    bool std = strcmp(path, "-") == 0;
    FILE *f = std ? stdout : fopen(path, "w");
    if (f == NULL)
        return fail("cannot create", path, errno);
    int rc = write(f, arg);
    if (std ? fflush(f) != 0 : fclose(f) != 0)
        rc = -1;
    if (rc != 0)
        return fail("cannot write", path, errno ? errno : EIO);
    return 0;
}

struct out_args {
    const gct_cycle *c;
    size_t n;
    const gct_summary *s;
    const char *title;
};

static int put_csv(FILE *f, void *arg)
{
    const struct out_args *a = arg;
    return gct_write_csv(f, a->c, a->n, a->s->rule);
}

static int put_svg(FILE *f, void *arg)
{
    const struct out_args *a = arg;
    return gct_write_svg(f, a->c, a->n, a->s, a->title);
}

int main(int argc, char **argv)
{
    const char *svg = NULL, *csv = NULL, *title = NULL, *input = NULL;
    gct_stw rule = GCT_STW_AUTO;
    long run = 0; /* 0: the last */
    const char *bad_arg = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = bad_arg = argv[i], *v;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(usage, stdout);
            return 0;
        } else if (strcmp(a, "--version") == 0) {
            printf("gcmalloc-trace %s\n", GCM_VERSION);
            return 0;
        } else if (is_opt(a, "--svg")) {
            if ((svg = opt_value(argc, argv, &i, "--svg")) == NULL)
                goto bad;
        } else if (is_opt(a, "--csv")) {
            if ((csv = opt_value(argc, argv, &i, "--csv")) == NULL)
                goto bad;
        } else if (is_opt(a, "--title")) {
            if ((title = opt_value(argc, argv, &i, "--title")) == NULL)
                goto bad;
        } else if (is_opt(a, "--stw")) {
            if ((v = opt_value(argc, argv, &i, "--stw")) == NULL ||
                gct_stw_parse(v, &rule) != 0) {
                fprintf(stderr, "gcmalloc-trace: --stw takes auto, go, gcmalloc or all\n");
                return 2;
            }
        } else if (is_opt(a, "--run")) {
            char *end;
            if ((v = opt_value(argc, argv, &i, "--run")) == NULL)
                goto bad;
            errno = 0;
            run = strtol(v, &end, 10);
            if (errno != 0 || *end != '\0' || end == v || run < 1) {
                fprintf(stderr, "gcmalloc-trace: --run takes a run number from 1\n");
                return 2;
            }
        } else if (a[0] == '-' && a[1] != '\0') {
            goto bad;
        } else if (input == NULL) {
            input = a;
        } else {
            goto bad;
        }
    }

    if (input == NULL)
        input = "-";
    FILE *in = strcmp(input, "-") == 0 ? stdin : fopen(input, "rb");
    if (in == NULL)
        return fail("cannot open", input, errno);
    gct_log log;
    gct_log_init(&log);
    int err = gct_log_read(&log, in);
    if (in != stdin)
        fclose(in);
    if (err != 0) {
        gct_log_free(&log);
        return fail("cannot read", input, err);
    }
    if (run > 0 && (unsigned long)run > log.runs) {
        fprintf(stderr, "gcmalloc-trace: --run %ld: the input holds %u run%s\n", run,
                log.runs, log.runs == 1 ? "" : "s");
        gct_log_free(&log);
        return 2;
    }
    unsigned which = run > 0 ? (unsigned)run : log.runs;
    size_t first = 0, count = 0;
    gct_log_run(&log, which, &first, &count);
    /* NULL + 0 is undefined behaviour in C: no cycles, no pointer. */
    const gct_cycle *cycles = count ? log.cycles + first : NULL;
    gct_summary s;
    if (gct_summarize(cycles, count, rule, &s) != 0) {
        gct_log_free(&log);
        return fail("cannot analyse", input, ENOMEM);
    }
    const char *name = strcmp(input, "-") == 0 ? "(stdin)" : input;
    /* The chart's default title is the file's name without its directory:
     * the full path is in the summary already. */
    const char *base = strrchr(name, '/');
    struct out_args oa = {cycles, count, &s, title ? title : base ? base + 1 : name};
    int rc = 0;
    if (csv == NULL || strcmp(csv, "-") != 0)
        gct_report(stdout, name, &log, which, &s);
    if (csv != NULL)
        rc = write_file(csv, put_csv, &oa);
    if (svg != NULL && rc == 0)
        rc = write_file(svg, put_svg, &oa);
    if (rc == 0 && fflush(stdout) != 0)
        rc = fail("cannot write", "standard output", errno);
    gct_log_free(&log);
    return rc != 0 ? rc : count > 0 ? 0 : 1;

bad:
    fprintf(stderr, "gcmalloc-trace: bad argument '%s'\n%s", bad_arg ? bad_arg : "", usage);
    return 2;
}
