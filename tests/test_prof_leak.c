/*
 * test_prof_leak.c — src/prof_leak.c: leak suspects.  Synthetic snapshots
 * check the streak rules (growth in K consecutive snapshots, by more than
 * the minimum in all; any pause restarts; reported once); a child process
 * run with GCMALLOC_PROFILE_LEAK checks the whole path: GC cycles as
 * snapshots, the report from the profiler's thread on the diagnostics sink,
 * with the leaking function's name.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
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

#include "cxx_site.h"
#include "env_option.h"

static uintptr_t pcs[GCM_PROF_MAX_DEPTH];
static int npcs;

/* Plays an exported allocation function: the stack starts at its caller. */
__attribute__((noinline)) void capture_entry(void)
{
    npcs = gcm__stack_capture(pcs, GCM_PROF_MAX_DEPTH, __builtin_return_address(0));
    __asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) void leak_site_a(void)
{
    capture_entry();
    __asm__ volatile("" ::: "memory");
}

static gcm__bucket *site(uintptr_t seed)
{
    uintptr_t p[3] = {0x700000 + seed * 64, 0x700008 + seed * 64, 0x700010};
    return gcm__bucket_intern(p, 3, GCM_PROF_MALLOC, "leaktest");
}

/* One snapshot at rate 1 with the given in-use bytes per bucket. */
static int observe(gcm__bucket **b, const uint64_t *inuse, int n, int64_t now)
{
    gcm__prof_rec recs[8];
    for (int i = 0; i < n; i++)
        recs[i] = (gcm__prof_rec){b[i], {inuse[i] / 8 + 1, inuse[i] + 1000, 1, 1000}};
    gcm__prof_snap s = {recs, (size_t)n, 1, 0};
    return gcm__leak_observe(&s, now);
}

static char *report_text(void)
{
    FILE *f = tmpfile();
    assert_non_null(f);
    assert_int_equal(gcm__leak_report(fileno(f)), 0);
    long len = lseek(fileno(f), 0, SEEK_END);
    char *t = calloc(1, (size_t)len + 1);
    assert_int_equal(pread(fileno(f), t, (size_t)len, 0), len);
    fclose(f);
    return t;
}

static int count_of(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(hay, needle); p != NULL; p = strstr(p + 1, needle))
        n++;
    return n;
}

static void test_streaks(void **state)
{
    (void)state;
    gcm__leak_init(3, 1000);
    leak_site_a();
    gcm__bucket *b[3];
    b[0] = gcm__bucket_intern(pcs, npcs, GCM_PROF_MALLOC, "leaktest"); /* grows steadily */
    b[1] = site(1);  /* grows, pauses, grows again */
    b[2] = site(2);  /* grows, but by little */
    static const uint64_t series[][3] = {
        {1000, 1000, 10}, {2000, 2000, 20}, {3000, 1500, 30},
        {4000, 2500, 40}, {5000, 3500, 50}, {6000, 4500, 60},
    };
    /* The expected suspects after each snapshot. */
    static const int found[] = {0, 0, 1, 0, 0, 1};
    for (int i = 0; i < 6; i++) {
        int n = observe(b, series[i], 3, (int64_t)(i + 1) * 1000000000);
        if (n != found[i])
            fail_msg("snapshot %d: %d new suspects, expected %d", i + 1, n, found[i]);
    }
    assert_int_equal(b[0]->leak_state, 1);
    assert_int_equal(b[1]->leak_state, 1);
    assert_int_equal(b[2]->leak_state, 0);
    char *t = report_text();
    assert_int_equal(count_of(t, "gcmalloc: leak suspect: "), 2);
    /* The first: from nothing to 3000 bytes in 3 snapshots, over 2 s (the
     * streak began at the first snapshot), with its stack symbolized. */
    assert_non_null(strstr(t, "grew in 3 consecutive snapshots, by 2.93kB (0B -> 2.93kB) over 2.000s "
                              "[kind=malloc name=leaktest]"));
    assert_non_null(strstr(t, " leak_site_a "));
    assert_non_null(strstr(t, "test_prof_leak.c:"));
    assert_non_null(strstr(t, " test_streaks "));
    /* The second restarted at 1500 bytes (snapshot 3). */
    assert_non_null(strstr(t, "by 2.93kB (1.46kB -> 4.39kB) over 3.000s"));
    free(t);
    /* Reported once: more growth, no new report. */
    static const uint64_t more[3] = {9000, 9000, 70};
    assert_int_equal(observe(b, more, 3, 7000000000), 0);
    t = report_text();
    assert_string_equal(t, "");
    free(t);
}

/* A C++ function reads in a leak suspect's stack as in profiles and the
 * other reports (pp::Cache::put), not by its symbol. */
static void test_cxx_name(void **state)
{
    (void)state;
    set_env_option("GCMALLOC_PROFILE_SYMBOLS", "functions", false);
    gcm__leak_init(3, 1000);
    gcm__bucket *b = cxx_site_bucket();
    static const uint64_t series[3] = {1000, 2000, 3000};
    int found = 0;
    for (int i = 0; i < 3; i++)
        found += observe(&b, &series[i], 1, (int64_t)(i + 1) * 1000000000);
    assert_int_equal(found, 1);
    char *t = report_text();
    assert_non_null(strstr(t, " " CXX_SITE_NAME "\n"));
    assert_null(strstr(t, CXX_SITE_SYMBOL));
    free(t);
    set_env_option("GCMALLOC_PROFILE_SYMBOLS", NULL, false);
}

static void test_disabled_and_errors(void **state)
{
    (void)state;
    gcm__leak_init(0, 0);
    gcm__bucket *b[1] = {site(3)};
    for (int i = 1; i <= 10; i++) {
        uint64_t v = (uint64_t)i * 1000000;
        assert_int_equal(observe(b, &v, 1, i), 0);
    }
    assert_int_equal(b[0]->leak_state, 0);
    assert_int_equal(gcm__leak_observe(NULL, 0), 0);
    assert_int_equal(gcm__leak_report(-1), EBADF);
}

/* --- the whole path, in a child process ------------------------------------------ */

static void *volatile leaked_head;

__attribute__((noinline)) static void leaky_function(void)
{
    for (int i = 0; i < 64; i++) {
        void **p = gcm_malloc(1023);
        if (p == NULL)
            exit(3);
        *p = leaked_head;
        leaked_head = p;
    }
}

__attribute__((noinline)) static void churning_function(void)
{
    for (int i = 0; i < 256; i++) {
        void *p = gcm_malloc(1023);
        __asm__ volatile("" : : "r"(p) : "memory");
    }
}

static int child_leak(const char *log)
{
    /* Each round leaks 64 KiB and churns 256 KiB; each gcm_gc() is a
     * snapshot.  The report comes from the profiler's thread. */
    for (int round = 0; round < 40; round++) {
        leaky_function();
        churning_function();
        gcm_gc();
        usleep(20000);
        FILE *f = fopen(log, "r");
        if (f != NULL) {
            char buf[8192];
            size_t n = fread(buf, 1, sizeof buf - 1, f);
            buf[n] = '\0';
            fclose(f);
            if (strstr(buf, "leak suspect") != NULL && round >= 12)
                return 0;
        }
    }
    return 0;
}

static void test_child_process_reports_the_leak(void **state)
{
    (void)state;
    char dir[] = "/tmp/gcm-leak-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char log[512], env_log[600];
    snprintf(log, sizeof log, "%s/log.txt", dir);
    snprintf(env_log, sizeof env_log, "GCMALLOC_LOG=%s", log);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char *argv[] = {"test_prof_leak", "child-leak", log, NULL};
        char *envp[] = {env_log, "GCMALLOC_PROFILE_LEAK=4",
                        "GCMALLOC_PROFILE_LEAK_MIN=128KiB",
                        "GCMALLOC_PROFILE_RATE=4096", NULL};
        execve("/proc/self/exe", argv, envp);
        _exit(127);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    FILE *f = fopen(log, "r");
    assert_non_null(f);
    static char buf[65536];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    /* Exactly one suspect: the leaking function, not the churning one. */
    if (count_of(buf, "leak suspect") != 1 || strstr(buf, " leaky_function ") == NULL)
        fail_msg("log:\n%s", buf);
    assert_null(strstr(buf, "churning_function"));
    assert_non_null(strstr(buf, "consecutive snapshots"));
    assert_non_null(strstr(buf, "[kind=gc]"));
    unlink(log);
    rmdir(dir);
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "child-leak") == 0)
        return child_leak(argv[2]);
    gcm_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_streaks),
        cmocka_unit_test(test_cxx_name),
        cmocka_unit_test(test_disabled_and_errors),
        cmocka_unit_test(test_child_process_reports_the_leak),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
