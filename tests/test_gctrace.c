/*
 * test_gctrace.c — the gctrace line, character for character as Go prints
 * it, and the line a real program writes with GCMALLOC_GCTRACE.
 */
#define _GNU_SOURCE
#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "gcmalloc.h"
#include "internal.h"

static void ms_is(uint64_t ns, const char *want)
{
    char buf[32];
    gcm__fmt_ns_as_ms(buf, sizeof buf, ns);
    if (strcmp(buf, want) != 0)
        fail_msg("fmtNSAsMS(%llu) = %s, want %s", (unsigned long long)ns, buf, want);
}

/* The cases of Go's fmtNSAsMS documentation and its boundaries. */
static void test_fmt_ns_as_ms(void **state)
{
    (void)state;
    ms_is(0, "0");
    ms_is(999, "0");           /* under a microsecond */
    ms_is(1000, "0.001");
    ms_is(12000, "0.012");     /* 12 µs */
    ms_is(99999, "0.099");
    ms_is(123000, "0.12");     /* 123 µs */
    ms_is(1234000, "1.2");     /* 1.234 ms */
    ms_is(9999999, "9.9");
    ms_is(10000000, "10");     /* whole ms from 10 ms */
    ms_is(12300000, "12");     /* 12.3 ms */
    ms_is(1234567890, "1234");
}

static void test_line_format(void **state)
{
    (void)state;
    gcm__cycle c = {
        .n = 7, .start_ns = 1234567890, .clock_a_ns = 21000,
        .clock_b_ns = 380000, .clock_c_ns = 85000, .stw_a_ns = 21000,
        .stw_c_ns = 85000, .pause_ns = 486000, .heap0 = 3u << 20,
        .heap1 = (4u << 20) + 5, .heap2 = 1023 * 1024, .goal = 4u << 20,
        .globals = 3u << 20, .procs = 2, .markers = 1, .cpu_fraction = 0.157,
    };
    char line[512];
    size_t n = gcm__gctrace_format(&c, line, sizeof line);
    assert_int_equal(n, strlen(line));
    assert_string_equal(line,
        "gc 7 @1.234s 15%: 0.021+0.38+0.085 ms clock, "
        "0.042+0/0.38/0.38+0.17 ms cpu, 3->4->0 MB, 4 MB goal, "
        "0 MB stacks, 3 MB globals, 2 P\n");
    c.forced = true;
    c.markers = 2;
    c.start_ns = 5;
    c.cpu_fraction = 0;
    gcm__gctrace_format(&c, line, sizeof line);
    assert_string_equal(line,
        "gc 7 @0.000s 0%: 0.021+0.38+0.085 ms clock, "
        "0.042+0/0.76/0+0.17 ms cpu, 3->4->0 MB, 4 MB goal, "
        "0 MB stacks, 3 MB globals, 2 P (forced)\n");
}

/* Go's own line shape, as a regex (what Go gctrace readers expect). */
static const char *go_line =
    "^gc [0-9]+ @[0-9]+\\.[0-9]{3}s [0-9]+%: "
    "[0-9.]+\\+[0-9.]+\\+[0-9.]+ ms clock, "
    "[0-9.]+\\+[0-9.]+/[0-9.]+/[0-9.]+\\+[0-9.]+ ms cpu, "
    "[0-9]+->[0-9]+->[0-9]+ MB, [0-9]+ MB goal, [0-9]+ MB stacks, "
    "[0-9]+ MB globals, [0-9]+ P( \\(forced\\))?$";

static void test_real_program_lines(void **state)
{
    (void)state;
    char path[] = "/tmp/gcm-gctrace-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        setenv("GCMALLOC_GCTRACE", path, 1);
        gcm__options_reload();
        gcm__gctrace_init();
        void **keep = gcm_malloc(4096 * sizeof(void *));
        for (int i = 0; i < 2000000; i++)
            keep[i % 4096] = gcm_malloc(48);
        gcm_gc();
        _exit(0);
    }
    int st;
    waitpid(pid, &st, 0);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    regex_t re;
    assert_int_equal(regcomp(&re, go_line, REG_EXTENDED | REG_NOSUB), 0);
    char line[512];
    int lines = 0, forced = 0;
    while (fgets(line, sizeof line, f) != NULL) {
        line[strcspn(line, "\n")] = '\0';
        if (regexec(&re, line, 0, NULL, 0) != 0)
            fail_msg("not Go's gctrace format: %s", line);
        lines++;
        forced += strstr(line, "(forced)") != NULL;
    }
    regfree(&re);
    fclose(f);
    unlink(path);
    assert_true(lines >= 5); /* 96 MB of churn, 4 MiB goal */
    assert_int_equal(forced, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fmt_ns_as_ms),
        cmocka_unit_test(test_line_format),
        cmocka_unit_test(test_real_program_lines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
