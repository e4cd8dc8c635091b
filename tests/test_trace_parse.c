/*
 * test_trace_parse.c — the gctrace analyzer's parser and line reader
 * (tools/trace_parse.c, tools/trace_read.c): every field of the line as Go
 * and gcmalloc print it, other Go versions' lines, prefixes, and every way
 * a line can be broken; then whole inputs, with exact line numbers for
 * what was skipped, and the committed real logs under tests/data/.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "trace.h"

#define DATA GCM_SOURCE_DIR "/tests/data/"

static const char go119[] =
    "gc 1 @0.000s 15%: 0.021+0.38+0.085 ms clock, 0.042+0.074/0.11/0+0.17 ms cpu, "
    "3->4->0 MB, 4 MB goal, 0 MB stacks, 0 MB globals, 2 P";

static gct_line_kind parse(const char *s, gct_cycle *c)
{
    return gct_parse_line(s, strlen(s), c);
}

static void near(double got, double want)
{
    if (fabs(got - want) > 1e-9)
        fail_msg("got %.12g, want %.12g", got, want);
}

static void test_go119_line(void **state)
{
    (void)state;
    gct_cycle c;
    assert_int_equal(parse(go119, &c), GCT_LINE_CYCLE);
    assert_int_equal(c.n, 1);
    near(c.t_s, 0);
    assert_int_equal(c.cpu_pct, 15);
    assert_int_equal(c.nphases, 3);
    near(gct_clock_a(&c), 0.021);
    near(gct_clock_b(&c), 0.38);
    near(gct_clock_c(&c), 0.085);
    near(c.cpu_first_ms, 0.042);
    near(c.cpu_assist_ms, 0.074);
    near(c.cpu_bg_ms, 0.11);
    near(c.cpu_idle_ms, 0);
    near(c.cpu_last_ms, 0.17);
    assert_int_equal(c.heap0_mb, 3);
    assert_int_equal(c.heap1_mb, 4);
    assert_int_equal(c.heap2_mb, 0);
    assert_int_equal(c.goal_mb, 4);
    assert_int_equal(c.stacks_mb, 0);
    assert_int_equal(c.globals_mb, 0);
    assert_int_equal(c.procs, 2);
    assert_false(c.forced);

    char forced[sizeof go119 + 16];
    snprintf(forced, sizeof forced, "%s (forced)", go119);
    assert_int_equal(parse(forced, &c), GCT_LINE_CYCLE);
    assert_true(c.forced);
    snprintf(forced, sizeof forced, "%s (forced) \r", go119);
    assert_int_equal(parse(forced, &c), GCT_LINE_CYCLE); /* CRLF, blanks */
    assert_true(c.forced);
}

/* Lines of other Go versions that the analyzer reads. */
static void test_other_go_versions(void **state)
{
    (void)state;
    gct_cycle c;
    /* Go 1.7..1.17: no stacks and globals. */
    assert_int_equal(parse("gc 12 @3.141s 2%: 0.011+1.2+0.045 ms clock, "
                           "0.044+0.34/1.1/2.1+0.18 ms cpu, 4->4->0 MB, 5 MB goal, 4 P",
                           &c),
                     GCT_LINE_CYCLE);
    assert_int_equal(c.n, 12);
    near(c.t_s, 3.141);
    assert_int_equal(c.stacks_mb, -1);
    assert_int_equal(c.globals_mb, -1);
    assert_int_equal(c.procs, 4);
    near(c.cpu_idle_ms, 2.1);
    /* Go 1.5/1.6: five clock phases, seven CPU figures. */
    assert_int_equal(parse("gc 7 @0.036s 1%: 0.062+0.033+0.16+1.1+0.21 ms clock, "
                           "0.062+0.033+0+0.17/0.95/0.070+0.21 ms cpu, 4->4->1 MB, "
                           "4 MB goal, 4 P (forced)", &c),
                     GCT_LINE_CYCLE);
    assert_int_equal(c.nphases, 5);
    near(gct_clock_a(&c), 0.062);
    near(gct_clock_b(&c), 0.033 + 0.16 + 1.1);
    near(gct_clock_c(&c), 0.21);
    near(c.cpu_assist_ms, 0.17);
    near(c.cpu_bg_ms, 0.95);
    near(c.cpu_idle_ms, 0.070);
    near(c.cpu_last_ms, 0.21);
    assert_true(c.forced);
    /* A later Go adding a field of the same shape: skipped, not rejected. */
    assert_int_equal(parse("gc 3 @1.000s 0%: 1+2+3 ms clock, 1+0/2/0+3 ms cpu, 5->6->2 MB, "
                           "8 MB goal, 1 MB stacks, 2 MB arenas, 3 MB globals, 8 P", &c),
                     GCT_LINE_CYCLE);
    assert_int_equal(c.stacks_mb, 1);
    assert_int_equal(c.globals_mb, 3);
    assert_int_equal(c.procs, 8);
}

/* A gctrace line behind a prefix is found; "gc" glued to a word is not a
 * start. */
static void test_prefixes(void **state)
{
    (void)state;
#define PREFIX(s) {s, sizeof s - 1}
    static const struct {
        const char *s;
        size_t n;
    } prefixes[] = {
        PREFIX("2024-05-01T10:00:00.123456789Z stderr F "),
        PREFIX("[pid 42] "),
        PREFIX("I0501 12:00:00.000001 "),
        PREFIX("myservice: "),
        PREFIX("\t"),
        PREFIX("\xff\xfe\x80 "),   /* invalid UTF-8 */
        PREFIX("\0\0\0\0"),       /* copytruncate leaves NULs behind */
    };
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
        char line[512];
        memcpy(line, prefixes[i].s, prefixes[i].n);
        memcpy(line + prefixes[i].n, go119, sizeof go119 - 1);
        gct_cycle c;
        if (gct_parse_line(line, prefixes[i].n + sizeof go119 - 1, &c) != GCT_LINE_CYCLE)
            fail_msg("prefix %zu not skipped", i);
        assert_int_equal(c.n, 1);
        assert_int_equal(c.goal_mb, 4);
    }
    char glued[512];
    snprintf(glued, sizeof glued, "xgc%s", go119 + 2); /* "xgc 1 @..." */
    gct_cycle c;
    assert_int_equal(parse(glued, &c), GCT_LINE_MALFORMED);
    /* The first "gc " that parses wins; an earlier broken one is skipped. */
    snprintf(glued, sizeof glued, "gc 9 @oops %s", go119);
    assert_int_equal(parse(glued, &c), GCT_LINE_CYCLE);
    assert_int_equal(c.n, 1);
}

struct bad_case {
    const char *line;
    gct_line_kind kind;
};

/* Every broken line is rejected: malformed when it shows gctrace grammar,
 * foreign otherwise. */
static void test_rejected_lines(void **state)
{
    (void)state;
    static const struct bad_case cases[] = {
        /* the two halves of a line split by another thread's output (real,
         * tests/data/gctrace-go1.19-leak.log lines 42 and 43) */
        {"gc 39 @1.501s 0%: 0.030+0.51+0.001 ms clock, 0.060+0/0.35/0.079+0.002 ms cpu, "
         "23trace_churn: tick 150", GCT_LINE_MALFORMED},
        {"->23->18 MB, 37 MB goal, 0 MB stacks, 0 MB globals, 2 P (forced)",
         GCT_LINE_MALFORMED},
        /* numbers */
        {"gc 1234567890123456 @0.000s 1%: 1+1+1 ms clock, 1+0/1/0+1 ms cpu, 1->1->1 MB, "
         "4 MB goal, 2 P", GCT_LINE_MALFORMED},                       /* 16 digits */
        {"gc 1 @0.0000000001s 1%: 1+1+1 ms clock, 1+0/1/0+1 ms cpu, 1->1->1 MB, "
         "4 MB goal, 2 P", GCT_LINE_MALFORMED},                       /* 10 decimals */
        {"gc 1 @0.s 1%: 1+1+1 ms clock, 1+0/1/0+1 ms cpu, 1->1->1 MB, 4 MB goal, 2 P",
         GCT_LINE_MALFORMED},
        {"gc 1 @.5s 1%: 1+1+1 ms clock, 1+0/1/0+1 ms cpu, 1->1->1 MB, 4 MB goal, 2 P",
         GCT_LINE_MALFORMED},
        {"gc 1 @0.5s 1%: -1+1+1 ms clock, 1+0/1/0+1 ms cpu, 1->1->1 MB, 4 MB goal, 2 P",
         GCT_LINE_MALFORMED},
        {"gc 1 @0.5s 1%: 1e3+1+1 ms clock, 1+0/1/0+1 ms cpu, 1->1->1 MB, 4 MB goal, 2 P",
         GCT_LINE_MALFORMED},
        {"gc 1 @0.5s 1%: 1+1+1 ms clock, 1+0/1/0+1 ms cpu, "
         "99999999999999999999999999999999->1->1 MB, 4 MB goal, 2 P", GCT_LINE_MALFORMED},
        /* shapes */
        {"gc 1 @0.5s 1%: 1+1 ms clock, 1+0/1/0+1 ms cpu, 1->1->1 MB, 4 MB goal, 2 P",
         GCT_LINE_MALFORMED},                                         /* 2 phases */
        {"gc 1 @0.5s 1%: 1+1+1+1 ms clock, 1+0/1/0+1 ms cpu, 1->1->1 MB, 4 MB goal, 2 P",
         GCT_LINE_MALFORMED},                                         /* 4 phases */
        {"gc 1 @0.5s 1%: 1+1+1 ms clock, 1+0+1+0+1 ms cpu, 1->1->1 MB, 4 MB goal, 2 P",
         GCT_LINE_MALFORMED},                                         /* no slashes */
        {"gc 1 @0.5s 1%: 1+1+1 ms clock, 1/0/1/0+1 ms cpu, 1->1->1 MB, 4 MB goal, 2 P",
         GCT_LINE_MALFORMED},
        {"gc 1 @0.5s 1%: 1+1+1 ms clock, 1+1+1+0/1/0+1 ms cpu, 1->1->1 MB, 4 MB goal, 2 P",
         GCT_LINE_MALFORMED},                          /* 5-phase CPU on 3 phases */
        {"gc 1 @0.5s 1%: 1+1+1 ms clock, 1+0/1/0+1 ms cpu, 1->1->1 MB, 2 P",
         GCT_LINE_MALFORMED},                                         /* no goal */
        {"gc 1 @0.5s 1%: 1+1+1 ms clock, 1+0/1/0+1 ms cpu, 1->1->1 MB, 4 MB goal",
         GCT_LINE_MALFORMED},                                         /* no P */
        {"gc 1 @0.5s 1%: 1+1+1 ms clock, 1+0/1/0+1 ms cpu, 1->1->1 MB, 4 MB goal, 2 P x",
         GCT_LINE_MALFORMED},                                         /* trailing */
        {"gc 1 @0.5s 1%: 1+1+1 ms clock, 1+0/1/0+1 ms cpu, 1->1->1 MB, 4 MB goal, 2 MB "
         ", 2 P", GCT_LINE_MALFORMED},                                /* empty word */
        {"gc 1 @0.5s 1%: 1+1+1 ms clock, 1+0/1/0+1 ms cpu, 1->1->1 MB, 4 MB goal, 2 P\0",
         GCT_LINE_CYCLE}, /* (strlen stops at the NUL: see test_nul_bytes) */
        {"gc 1 @0.5s", GCT_LINE_MALFORMED},
        /* foreign */
        {"", GCT_LINE_FOREIGN},
        {"gc", GCT_LINE_FOREIGN},
        {"trace_churn: tick 0", GCT_LINE_FOREIGN},
        {"scvg0: inuse: 3, idle: 0, sys: 3, released: 0, consumed: 3 (MB)", GCT_LINE_FOREIGN},
        {"scav 0 KiB work, 0 KiB total, 80% util", GCT_LINE_FOREIGN},
        {"GC forced", GCT_LINE_FOREIGN},
        {"gcc -O2 -c foo.c", GCT_LINE_FOREIGN},
        /* Go 1.4 and older printed another line altogether */
        {"gc1(1): 0+0+135+0 us, 0 -> 0 MB, 21 (21-0) objects, 2 goroutines", GCT_LINE_FOREIGN},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        gct_cycle c;
        gct_line_kind k = parse(cases[i].line, &c);
        if (k != cases[i].kind)
            fail_msg("case %zu \"%s\": kind %d, want %d", i, cases[i].line, k,
                     cases[i].kind);
    }
}

/* NUL bytes are bytes: the parser takes a length, not a C string. */
static void test_nul_bytes(void **state)
{
    (void)state;
    char line[256];
    size_t n = sizeof go119 - 1;
    memcpy(line, go119, n);
    gct_cycle c;
    assert_int_equal(gct_parse_line(line, n, &c), GCT_LINE_CYCLE);
    line[n] = '\0'; /* a NUL after the line is part of it */
    assert_int_equal(gct_parse_line(line, n + 1, &c), GCT_LINE_MALFORMED);
    line[5] = '\0'; /* "gc 1 @0\0000s" */
    assert_int_equal(gct_parse_line(line, n, &c), GCT_LINE_MALFORMED);
}

/* --- the reader ------------------------------------------------------------- */

static FILE *input_of(const char *data, size_t n)
{
    FILE *f = tmpfile();
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    rewind(f);
    return f;
}

static void read_all(gct_log *log, const char *data, size_t n)
{
    gct_log_init(log);
    FILE *f = input_of(data, n);
    assert_int_equal(gct_log_read(log, f), 0);
    fclose(f);
}

#define GCLINE(n, t) "gc " #n " @" #t "s 1%: 0.01+0.2+0.01 ms clock, " \
    "0.02+0/0.1/0.1+0.02 ms cpu, 4->4->2 MB, 4 MB goal, 0 MB stacks, 0 MB globals, 2 P"

static void test_line_numbers(void **state)
{
    (void)state;
    static const char data[] =
        "hello from the program\n"                 /* 1 foreign   */
        GCLINE(1, 0.010) "\n"                      /* 2           */
        "gc 2 @0.020s 1%: 0.01+0.2 ms clock\n"     /* 3 malformed */
        "\n"                                       /* 4 foreign   */
        GCLINE(3, 0.030) " (forced)\r\n"           /* 5           */
        "->4->2 MB, 4 MB goal, 2 P\n"              /* 6 malformed */
        GCLINE(4, 0.040);                          /* 7, no newline */
    gct_log log;
    read_all(&log, data, sizeof data - 1);
    assert_int_equal(log.lines, 7);
    assert_int_equal(log.n, 3);
    assert_int_equal(log.malformed, 2);
    assert_int_equal(log.malformed_at[0], 3);
    assert_int_equal(log.malformed_at[1], 6);
    assert_int_equal(log.foreign, 2);
    assert_int_equal(log.foreign_at[0], 1);
    assert_int_equal(log.foreign_at[1], 4);
    assert_int_equal(log.cycles[0].line, 2);
    assert_int_equal(log.cycles[1].line, 5);
    assert_true(log.cycles[1].forced);
    assert_int_equal(log.cycles[2].line, 7);
    assert_int_equal(log.cycles[2].n, 4);
    assert_int_equal(log.runs, 1);
    gct_log_free(&log);
}

/* Only the first GCT_KEEP_LINES line numbers are kept; the counts are
 * exact. */
static void test_many_skipped(void **state)
{
    (void)state;
    char data[4096];
    size_t n = 0;
    for (int i = 0; i < 20; i++)
        n += (size_t)snprintf(data + n, sizeof data - n, "%s\n",
                              i % 2 ? "program output" : "gc 5 @broken");
    gct_log log;
    read_all(&log, data, n);
    assert_int_equal(log.lines, 20);
    assert_int_equal(log.malformed, 10);
    assert_int_equal(log.foreign, 10);
    for (int i = 0; i < GCT_KEEP_LINES; i++) {
        assert_int_equal(log.malformed_at[i], 1 + 2 * i);
        assert_int_equal(log.foreign_at[i], 2 + 2 * i);
    }
    gct_log_free(&log);
}

/* A line longer than GCT_LINE_MAX is one line, never a cycle, and the
 * numbering after it is right. */
static void test_long_lines(void **state)
{
    (void)state;
    size_t pad = 3 * GCT_LINE_MAX;
    size_t cap = pad + 1024;
    char *data = malloc(cap);
    assert_non_null(data);
    size_t n = 0;
    /* 1: a valid line followed by megabytes of blanks */
    n += (size_t)snprintf(data + n, cap - n, "%s", GCLINE(1, 0.010));
    memset(data + n, ' ', pad);
    n += pad;
    data[n++] = '\n';
    /* 2: a valid line */
    n += (size_t)snprintf(data + n, cap - n, "%s\n", GCLINE(2, 0.020));
    gct_log log;
    read_all(&log, data, n);
    assert_int_equal(log.lines, 2);
    assert_int_equal(log.overlong, 1);
    assert_int_equal(log.malformed, 1);
    assert_int_equal(log.malformed_at[0], 1);
    assert_int_equal(log.n, 1);
    assert_int_equal(log.cycles[0].line, 2);
    gct_log_free(&log);
    free(data);

    /* A line exactly GCT_LINE_MAX bytes long is still whole. */
    data = malloc(GCT_LINE_MAX + 1);
    assert_non_null(data);
    memset(data, ' ', GCT_LINE_MAX);
    memcpy(data + GCT_LINE_MAX - (sizeof GCLINE(1, 0.010) - 1), GCLINE(1, 0.010),
           sizeof GCLINE(1, 0.010) - 1);
    data[GCT_LINE_MAX] = '\n';
    read_all(&log, data, GCT_LINE_MAX + 1);
    assert_int_equal(log.n, 1);
    assert_int_equal(log.overlong, 0);
    gct_log_free(&log);
    free(data);
}

static void test_runs(void **state)
{
    (void)state;
    static const char data[] =
        GCLINE(1, 0.010) "\n" GCLINE(2, 0.020) "\n" GCLINE(3, 0.030) "\n"
        GCLINE(1, 0.012) "\n" GCLINE(2, 0.025) "\n"   /* restart: line 4 */
        GCLINE(3, 0.001) "\n"                         /* time back: line 6 */
        GCLINE(5, 0.002) "\n";                        /* a gap, same run */
    gct_log log;
    read_all(&log, data, sizeof data - 1);
    assert_int_equal(log.runs, 3);
    assert_int_equal(log.run_start_line[0], 4);
    assert_int_equal(log.run_start_line[1], 6);
    size_t first, count;
    gct_log_run(&log, 1, &first, &count);
    assert_int_equal(first, 0);
    assert_int_equal(count, 3);
    gct_log_run(&log, 2, &first, &count);
    assert_int_equal(first, 3);
    assert_int_equal(count, 2);
    gct_log_run(&log, 3, &first, &count);
    assert_int_equal(first, 5);
    assert_int_equal(count, 2);
    gct_log_run(&log, 4, &first, &count);
    assert_int_equal(count, 0);
    gct_log_free(&log);

    read_all(&log, "", 0);
    assert_int_equal(log.lines, 0);
    assert_int_equal(log.runs, 0);
    gct_log_free(&log);
}

/* --- the committed real logs --------------------------------------------------- */

static void read_file(gct_log *log, const char *path)
{
    gct_log_init(log);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        fail_msg("cannot open %s", path);
    assert_int_equal(gct_log_read(log, f), 0);
    fclose(f);
}

/* A Go 1.19 program's stderr: its own output interleaved, and one gctrace
 * line (gc 39) split in two by it. */
static void test_go_fixture(void **state)
{
    (void)state;
    gct_log log;
    read_file(&log, DATA "gctrace-go1.19-leak.log");
    assert_int_equal(log.lines, 49);
    assert_int_equal(log.n, 44);
    assert_int_equal(log.malformed, 2);
    assert_int_equal(log.malformed_at[0], 42);
    assert_int_equal(log.malformed_at[1], 43);
    assert_int_equal(log.foreign, 3);
    assert_int_equal(log.foreign_at[0], 1);
    assert_int_equal(log.foreign_at[1], 22);
    assert_int_equal(log.foreign_at[2], 34);
    assert_int_equal(log.runs, 1);
    /* line 2: gc 1 @0.011s 0%: 0.036+0.51+0.003 ms clock, ... */
    const gct_cycle *c = &log.cycles[0];
    assert_int_equal(c->line, 2);
    assert_int_equal(c->n, 1);
    /* gc 38 is followed by gc 40: the split line's cycle is missing */
    for (size_t i = 1; i < log.n; i++) {
        uint64_t want = log.cycles[i - 1].n + (log.cycles[i - 1].n == 38 ? 2 : 1);
        assert_int_equal(log.cycles[i].n, want);
    }
    size_t forced = 0;
    for (size_t i = 0; i < log.n; i++)
        forced += log.cycles[i].forced;
    assert_int_equal(forced, 3); /* the fourth is on the split line */
    gct_log_free(&log);
}

static void test_gcmalloc_fixture(void **state)
{
    (void)state;
    gct_log log;
    read_file(&log, DATA "gctrace-gcmalloc-leak.log");
    assert_int_equal(log.lines, 43);
    assert_int_equal(log.n, 43);
    assert_int_equal(log.malformed + log.foreign, 0);
    for (size_t i = 0; i < log.n; i++) {
        assert_int_equal(log.cycles[i].n, i + 1);
        assert_int_equal(log.cycles[i].stacks_mb, 0); /* gcmalloc scans no Go stacks */
        assert_int_equal(log.cycles[i].procs, 2);
        /* the world is stopped from mark start to mark end: H1 = H0 */
        assert_int_equal(log.cycles[i].heap1_mb, log.cycles[i].heap0_mb);
    }
    gct_log_free(&log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_go119_line),
        cmocka_unit_test(test_other_go_versions),
        cmocka_unit_test(test_prefixes),
        cmocka_unit_test(test_rejected_lines),
        cmocka_unit_test(test_nul_bytes),
        cmocka_unit_test(test_line_numbers),
        cmocka_unit_test(test_many_skipped),
        cmocka_unit_test(test_long_lines),
        cmocka_unit_test(test_runs),
        cmocka_unit_test(test_go_fixture),
        cmocka_unit_test(test_gcmalloc_fixture),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
