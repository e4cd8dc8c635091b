/*
 * test_prof_dump.c — src/prof_dump.c: when profiles are written.  Each
 * scenario runs this program again as a child with its own GCMALLOC_*
 * environment (options are read once, at start-up): dumps on a signal, at
 * an interval, at exit with the text report, after fork(), and an exit
 * profile that cannot be written (reported, and the program still exits
 * normally).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include <cmocka.h>

#include "gcmalloc.h"
#include "internal.h"
#include "tmp_dir.h"

static char dir[64];

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static bool wait_for(const char *path, int ms)
{
    for (int i = 0; i < ms / 10; i++) {
        if (exists(path))
            return true;
        usleep(10000);
    }
    return exists(path);
}

/* A profile file: gzip that inflates to a protobuf starting with the
 * sample types (field 1, length-delimited). */
static void check_profile(const char *path)
{
    gzFile g = gzopen(path, "rb");
    if (g == NULL)
        fail_msg("cannot open %s", path);
    unsigned char buf[4096];
    int n = gzread(g, buf, sizeof buf);
    gzclose(g);
    if (n < 16 || buf[0] != 0x0a)
        fail_msg("%s: not a profile (%d bytes)", path, n);
}

static int count_files(const char *prefix)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    size_t len = strlen(prefix);
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        n += strncmp(e->d_name, prefix, len) == 0;
    closedir(d);
    return n;
}

/* Runs this program as `child <scenario>` with the given environment. */
static int run_child(const char *scenario, char *const env[])
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char *argv[] = {"test_prof_dump", "child", (char *)scenario, dir, NULL};
        execve("/proc/self/exe", argv, env);
        _exit(127);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    return WEXITSTATUS(st);
}

static char *envf(const char *fmt, const char *a)
{
    char *s = malloc(1024);
    snprintf(s, 1024, fmt, a);
    return s;
}

__attribute__((noinline)) static void report_site(void)
{
    for (int i = 0; i < 1000; i++) {
        void *p = gcm_malloc(200);
        __asm__ volatile("" : : "r"(p) : "memory");
    }
}

/* --- the child's scenarios ----------------------------------------------------- */

static int child(const char *scenario, const char *d)
{
    char path[512];
    report_site();
    if (strcmp(scenario, "signal") == 0) {
        for (int i = 1; i <= 2; i++) {
            raise(SIGUSR2);
            snprintf(path, sizeof path, "%s/sig.pb.gz.%d", d, i);
            if (!wait_for(path, 10000))
                return 10 + i;
        }
        return 0;
    }
    if (strcmp(scenario, "interval") == 0) {
        snprintf(path, sizeof path, "%s/iv.pb.gz.4", d);
        return wait_for(path, 10000) ? 0 : 20;
    }
    if (strcmp(scenario, "exit") == 0)
        return 0; /* profile and report are written at exit */
    if (strcmp(scenario, "fork") == 0 || strcmp(scenario, "fork-pid") == 0) {
        pid_t pid = fork();
        if (pid == 0) {
            report_site();
            exit(0); /* runs the exit handler in the grandchild */
        }
        int st;
        waitpid(pid, &st, 0);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            return 30;
        /* Without %p, the grandchild must not have written our file. */
        snprintf(path, sizeof path, "%s/nopid.pb.gz", d);
        if (strcmp(scenario, "fork") == 0 && exists(path))
            return 31;
        return 0;
    }
    return 99;
}

/* --- the tests -------------------------------------------------------------------- */

static void test_signal_dumps(void **state)
{
    (void)state;
    char *env[] = {envf("GCMALLOC_PROFILE=%s/sig.pb.gz", dir),
                   "GCMALLOC_PROFILE_SIGNAL=USR2", NULL};
    assert_int_equal(run_child("signal", env), 0);
    char p[512];
    for (int i = 1; i <= 2; i++) {
        snprintf(p, sizeof p, "%s/sig.pb.gz.%d", dir, i);
        check_profile(p);
    }
    snprintf(p, sizeof p, "%s/sig.pb.gz", dir);
    check_profile(p); /* and the exit profile */
    assert_int_equal(count_files("sig.pb.gz.tmp"), 0); /* renamed into place */
    free(env[0]);
}

static void test_interval_dumps(void **state)
{
    (void)state;
    char *env[] = {envf("GCMALLOC_PROFILE=%s/iv.pb.gz", dir),
                   "GCMALLOC_PROFILE_INTERVAL=100ms", NULL};
    assert_int_equal(run_child("interval", env), 0);
    /* Numbered from 1 without gaps. */
    int n = count_files("iv.pb.gz.");
    assert_true(n >= 4);
    char p[512];
    for (int i = 1; i <= 4; i++) {
        snprintf(p, sizeof p, "%s/iv.pb.gz.%d", dir, i);
        check_profile(p);
    }
    free(env[0]);
}

static void test_exit_profile_and_report(void **state)
{
    (void)state;
    char *env[] = {envf("GCMALLOC_PROFILE=%s/exit.%%p.pb.gz", dir),
                   envf("GCMALLOC_PROFILE_REPORT=%s/report.txt", dir),
                   "GCMALLOC_PROFILE_RATE=1", NULL};
    assert_int_equal(run_child("exit", env), 0);
    assert_int_equal(count_files("exit."), 1);
    char p[512];
    snprintf(p, sizeof p, "%s/report.txt", dir);
    FILE *f = fopen(p, "r");
    assert_non_null(f);
    static char text[65536];
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    fclose(f);
    assert_non_null(strstr(text, "every allocation recorded"));
    assert_non_null(strstr(text, "\nAllocated since start (alloc_space):"));
    /* 1000 objects of bdwgc's 208-byte class, all dropped. */
    assert_non_null(strstr(text, "203.12kB"));
    assert_non_null(strstr(text, " report_site "));
    free(env[0]);
    free(env[1]);
}

static void test_fork_child_does_not_clobber(void **state)
{
    (void)state;
    char *env[] = {envf("GCMALLOC_PROFILE=%s/nopid.pb.gz", dir), NULL};
    assert_int_equal(run_child("fork", env), 0);
    char p[512];
    snprintf(p, sizeof p, "%s/nopid.pb.gz", dir);
    check_profile(p); /* written by the child itself at its exit */
    free(env[0]);
    /* With %p, each process writes its own. */
    char *env2[] = {envf("GCMALLOC_PROFILE=%s/withpid.%%p.pb.gz", dir), NULL};
    assert_int_equal(run_child("fork-pid", env2), 0);
    assert_int_equal(count_files("withpid."), 2);
    free(env2[0]);
}

static void test_unwritable_exit_profile(void **state)
{
    (void)state;
    char *env[] = {"GCMALLOC_PROFILE=/nonexistent-dir/heap.pb.gz",
                   envf("GCMALLOC_LOG=%s/log.txt", dir), NULL};
    assert_int_equal(run_child("exit", env), 0);
    char p[512];
    snprintf(p, sizeof p, "%s/log.txt", dir);
    FILE *f = fopen(p, "r");
    assert_non_null(f);
    char text[4096];
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    fclose(f);
    assert_non_null(strstr(text, "gcmalloc: heap profile /nonexistent-dir/heap.pb.gz: "
                                 "No such file or directory"));
    free(env[1]);
}

static void test_write_path(void **state)
{
    (void)state;
    char p[512];
    snprintf(p, sizeof p, "%s/direct.pb.gz", dir);
    assert_int_equal(gcm__prof_write_path(p, false), 0);
    check_profile(p);
    assert_int_equal(count_files("direct.pb.gz.tmp"), 0);
    assert_int_equal(gcm__prof_write_path("/nonexistent-dir/x", false), ENOENT);
    assert_int_equal(gcm__prof_write_path(NULL, false), EINVAL);
    assert_int_equal(gcm__prof_write_path("", true), EINVAL);
}

static int cleanup(void **state)
{
    (void)state;
    remove_tmp_dir(dir);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "child") == 0)
        return child(argv[2], argv[3]);
    strcpy(dir, "/tmp/gcm-dump-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return 1;
    gcm_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_signal_dumps),
        cmocka_unit_test(test_interval_dumps),
        cmocka_unit_test(test_exit_profile_and_report),
        cmocka_unit_test(test_fork_child_does_not_clobber),
        cmocka_unit_test(test_unwritable_exit_profile),
        cmocka_unit_test(test_write_path),
    };
    return cmocka_run_group_tests(tests, NULL, cleanup);
}
