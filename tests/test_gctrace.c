/*
 * test_gctrace.c — the gctrace line, character for character as Go prints
 * it, the line a real program writes with GCMALLOC_GCTRACE, and where a
 * forked child's lines go.
 */
#define _GNU_SOURCE
#include <dirent.h>
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
#include "tmp_dir.h"

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

/* --- fork: whose file a child's lines go to --------------------------------- */

/* Collections in each process of the fork scenario: distinct counts, so
 * that a file holding another process's lines has the wrong number. */
enum { BEFORE_FORK = 2, IN_CHILD = 5, AFTER_FORK = 1 };

static void collect(int n)
{
    for (int i = 0; i < n; i++)
        gcm_gc();
}

/* Descriptors of this process open on path. */
static int fds_on(const char *path)
{
    char want[512], link[512], got[512];
    if (realpath(path, want) == NULL)
        return 0;
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL)
        return 0;
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        snprintf(link, sizeof link, "/proc/self/fd/%s", e->d_name);
        ssize_t len = readlink(link, got, sizeof got - 1);
        if (len > 0) {
            got[len] = '\0';
            n += strcmp(got, want) == 0;
        }
    }
    closedir(d);
    return n;
}

/* The child of the traced process: collects and exits.  When the path
 * names the pid, the parent's file must no longer be open here (exit 3). */
static void child_main(const char *parent_file, bool own_file)
{
    if (own_file && fds_on(parent_file) != 0)
        _exit(3);
    collect(IN_CHILD);
    _exit(0);
}

/* A traced process (a subprocess of the test, so that the tracing set up
 * here ends with it): GCMALLOC_GCTRACE=dir/pattern, BEFORE_FORK forced
 * collections, a child that runs IN_CHILD of them and exits, then
 * AFTER_FORK more.  Returns its pid; its child's pid is put in *child. */
static pid_t run_traced(const char *dir, const char *pattern, pid_t *child)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        char path[512], mine[512];
        snprintf(path, sizeof path, "%s/%s", dir, pattern);
        setenv("GCMALLOC_GCTRACE", path, 1);
        gcm__options_reload();
        gcm__gctrace_init();
        gcm__expand_path(path, mine, sizeof mine);
        collect(BEFORE_FORK);
        pid_t c = fork();
        if (c < 0)
            _exit(1);
        if (c == 0)
            child_main(mine, strstr(pattern, "%p") != NULL);
        int st;
        if (waitpid(c, &st, 0) != c || !WIFEXITED(st))
            _exit(1);
        if (WEXITSTATUS(st) != 0)
            _exit(WEXITSTATUS(st));
        collect(AFTER_FORK);
        _exit(write(fds[1], &c, sizeof c) == sizeof c ? 0 : 1);
    }
    close(fds[1]);
    int st;
    waitpid(pid, &st, 0);
    assert_true(WIFEXITED(st));
    if (WEXITSTATUS(st) == 3)
        fail_msg("the child still had its parent's gctrace file open");
    assert_int_equal(WEXITSTATUS(st), 0);
    assert_int_equal(read(fds[0], child, sizeof *child), (ssize_t)sizeof *child);
    close(fds[0]);
    return pid;
}

/* Reads a gctrace file: every line in Go's format; the cycle numbers of
 * the forced ones (the scenario's) into n[], their count returned. */
static int read_forced(const char *path, uint64_t *n, int cap)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        fail_msg("no gctrace file %s", path);
    regex_t re;
    assert_int_equal(regcomp(&re, go_line, REG_EXTENDED | REG_NOSUB), 0);
    char line[512];
    int forced = 0;
    while (fgets(line, sizeof line, f) != NULL) {
        line[strcspn(line, "\n")] = '\0';
        if (regexec(&re, line, 0, NULL, 0) != 0)
            fail_msg("%s: not Go's gctrace format: %s", path, line);
        if (strstr(line, "(forced)") != NULL && forced < cap)
            n[forced++] = strtoull(line + 3, NULL, 10);
    }
    regfree(&re);
    fclose(f);
    return forced;
}

/* With %p a forked child traces to its own file, named with its pid, and
 * nothing of it reaches the parent's.  A child's cycle numbers continue
 * its parent's (it inherits the count), so the parent's file must count
 * only its own cycles, in order. */
static void test_fork_child_own_file(void **state)
{
    (void)state;
    char dir[] = "/tmp/gcm-gctrace-fork-XXXXXX";
    assert_non_null(mkdtemp(dir));
    pid_t child;
    pid_t parent = run_traced(dir, "gc.%p.log", &child);
    char path[512];
    uint64_t pn[16], cn[16];
    snprintf(path, sizeof path, "%s/gc.%d.log", dir, (int)parent);
    int np = read_forced(path, pn, 16);
    assert_int_equal(np, BEFORE_FORK + AFTER_FORK);
    snprintf(path, sizeof path, "%s/gc.%d.log", dir, (int)child);
    int nc = read_forced(path, cn, 16);
    assert_int_equal(nc, IN_CHILD);
    for (int i = 1; i < np; i++)
        assert_true(pn[i] > pn[i - 1]);
    for (int i = 1; i < nc; i++)
        assert_true(cn[i] > cn[i - 1]);
    assert_true(cn[0] > pn[BEFORE_FORK - 1]); /* the child's own cycles */
    remove_tmp_dir(dir);
}

/* Without %p the child appends to the same file, as before: one file,
 * every process's cycles. */
static void test_fork_child_same_file(void **state)
{
    (void)state;
    char dir[] = "/tmp/gcm-gctrace-fork-XXXXXX";
    assert_non_null(mkdtemp(dir));
    pid_t child;
    (void)run_traced(dir, "gc.log", &child);
    char path[512];
    uint64_t n[16];
    snprintf(path, sizeof path, "%s/gc.log", dir);
    assert_int_equal(read_forced(path, n, 16), BEFORE_FORK + IN_CHILD + AFTER_FORK);
    snprintf(path, sizeof path, "%s/gc.%d.log", dir, (int)child);
    assert_int_equal(access(path, F_OK), -1);
    remove_tmp_dir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fmt_ns_as_ms),
        cmocka_unit_test(test_line_format),
        cmocka_unit_test(test_real_program_lines),
        cmocka_unit_test(test_fork_child_own_file),
        cmocka_unit_test(test_fork_child_same_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
