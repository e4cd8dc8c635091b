/*
 * test_prof_report.c — src/prof_report.c: the text top-N report (pprof
 * -top -lines layout): rows ranked by flat, flat and cum figures and
 * percentages, both tables, the row limit, unresolved frames, errors,
 * C++ names.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "gcmalloc.h"
#include "internal.h"
#include "env_option.h"
#include "cxx_site.h"

static uintptr_t pa[GCM_PROF_MAX_DEPTH], pb[GCM_PROF_MAX_DEPTH];
static int na, nb;

static int cut_at(uintptr_t *pcs, int n, const char *fn)
{
    for (int i = 0; i < n; i++) {
        gcm__sym_frame f[16];
        int k = gcm__sym_resolve(GCM_SYM_LINES, pcs[i] - 1, f, 16);
        if (k > 0 && f[k - 1].function != NULL && strcmp(f[k - 1].function, fn) == 0)
            return i;
    }
    fail_msg("%s not on the stack", fn);
    return 0;
}

__attribute__((noinline)) void rep_site_a(void)
{
    na = gcm__stack_capture(pa, GCM_PROF_MAX_DEPTH, NULL);
    __asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) void rep_site_b(void)
{
    nb = gcm__stack_capture(pb, GCM_PROF_MAX_DEPTH, NULL);
    __asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) void rep_caller(void)
{
    rep_site_a();
    rep_site_b();
    __asm__ volatile("" ::: "memory");
}

static gcm__prof_rec recs[3];
static gcm__prof_snap snap;

/* Runs the report into a temporary file and returns its text. */
static char *report(const gcm__prof_snap *s, int top)
{
    FILE *f = tmpfile();
    assert_non_null(f);
    assert_int_equal(gcm__prof_report(fileno(f), s, top), 0);
    long len = lseek(fileno(f), 0, SEEK_END);
    char *text = calloc(1, (size_t)len + 1);
    assert_int_equal(pread(fileno(f), text, (size_t)len, 0), len);
    fclose(f);
    return text;
}

/* The row of table `which` (0 in use, 1 allocated) whose name starts with
 * name: its flat and cum columns. */
static bool row(const char *text, int which, const char *name, char *flat,
                char *cum, int *rank)
{
    const char *t = strstr(text, which == 0 ? "\nIn use" : "\nAllocated");
    assert_non_null(t);
    const char *end = which == 0 ? strstr(t, "\nAllocated") : NULL;
    const char *hdr = strstr(t, "cum%\n");
    assert_non_null(hdr);
    const char *line = hdr + 5;
    *rank = 0;
    while (*line != '\0' && (end == NULL || line < end)) {
        char a[32], b[32], c[32], d[32], e[32], n[256];
        if (sscanf(line, "%31s %31s %31s %31s %31s %255s", a, b, c, d, e, n) != 6)
            break;
        (*rank)++;
        if (strcmp(n, name) == 0) {
            strcpy(flat, a);
            strcpy(cum, d);
            return true;
        }
        line = strchr(line, '\n');
        if (line == NULL)
            break;
        line++;
    }
    return false;
}

static void test_tables(void **state)
{
    (void)state;
    char *t = report(&snap, 10);
    assert_true(strncmp(t, "gcmalloc allocation profile of pid ", 35) == 0);
    assert_non_null(strstr(t, ": 3 sites, 111 samples (every allocation recorded; stacks by "));
    char flat[32], cum[32];
    int rank;
    /* In use: rep_site_b 3MB, rep_site_a 512kB, the unresolved 1kB. */
    assert_non_null(strstr(t, "of 3.50MB total"));
    assert_true(row(t, 0, "rep_site_b", flat, cum, &rank));
    assert_string_equal(flat, "3MB");
    assert_int_equal(rank, 1);
    assert_true(row(t, 0, "rep_site_a", flat, cum, &rank));
    assert_string_equal(flat, "512kB");
    assert_int_equal(rank, 2);
    assert_true(row(t, 0, "0x10", flat, cum, &rank) || row(t, 0, "0x11", flat, cum, &rank));
    assert_string_equal(flat, "1kB");
    /* Rows are source lines: rep_caller's two calls are two rows, and
     * main's one call holds both sites (3.5 MiB; not the unresolved one). */
    assert_true(row(t, 0, "rep_caller", flat, cum, &rank));
    assert_string_equal(flat, "0B");
    assert_true(strcmp(cum, "3MB") == 0 || strcmp(cum, "512kB") == 0);
    assert_true(row(t, 0, "main", flat, cum, &rank));
    assert_string_equal(flat, "0B");
    assert_string_equal(cum, "3.50MB");
    /* Allocated: rep_site_b 3MB, rep_site_a 1MB. */
    assert_true(row(t, 1, "rep_site_b", flat, cum, &rank));
    assert_string_equal(flat, "3MB");
    assert_int_equal(rank, 1);
    assert_true(row(t, 1, "rep_site_a", flat, cum, &rank));
    assert_string_equal(flat, "1MB");
    assert_int_equal(rank, 2);
    /* Percentages: 3MB of 3.50MB (3671040 bytes) is 85.69%. */
    assert_non_null(strstr(t, "3MB 85.69% 85.69%"));
    /* Files and lines are shown. */
    assert_non_null(strstr(t, "rep_site_b "));
    assert_non_null(strstr(t, "test_prof_report.c:"));
    free(t);
}

static void test_top_limit(void **state)
{
    (void)state;
    char *t = report(&snap, 1);
    char flat[32], cum[32];
    int rank;
    assert_true(row(t, 0, "rep_site_b", flat, cum, &rank));
    assert_false(row(t, 0, "rep_site_a", flat, cum, &rank));
    assert_non_null(strstr(t, "Showing top 1 sites"));
    free(t);
}

static void test_errors_and_empty(void **state)
{
    (void)state;
    assert_int_equal(gcm__prof_report(-1, &snap, 10), EBADF);
    assert_int_equal(gcm__prof_report(1, NULL, 10), EINVAL);
    gcm__prof_snap empty = {NULL, 0, 524288, 0};
    char *t = report(&empty, 10);
    assert_non_null(strstr(t, "0 sites"));
    assert_non_null(strstr(t, "of 0B total"));
    free(t);
    int p[2];
    assert_int_equal(pipe(p), 0);
    close(p[1]);
    assert_int_equal(gcm__prof_report(p[1], &snap, 10), EBADF);
    close(p[0]);
}

/* A C++ function reads as in the profile and in pprof's report
 * (pp::Cache::put), not by its symbol. */
static void test_cxx_name(void **state)
{
    (void)state;
    set_env_option("GCMALLOC_PROFILE_SYMBOLS", "functions", false);
    gcm__bucket *b = cxx_site_bucket();
    gcm__prof_rec r = {b, {1, 4096, 1, 4096}};
    gcm__prof_snap one = {&r, 1, 1, 0};
    char *t = report(&one, 10);
    char flat[32], cum[32];
    int rank;
    assert_true(row(t, 1, CXX_SITE_NAME, flat, cum, &rank));
    assert_string_equal(flat, "4kB");
    assert_null(strstr(t, CXX_SITE_SYMBOL));
    free(t);
    set_env_option("GCMALLOC_PROFILE_SYMBOLS", NULL, false);
}

int main(void)
{
    gcm_init();
    rep_caller();
    int ca = cut_at(pa, na, "rep_site_a"), cb = cut_at(pb, nb, "rep_site_b");
    gcm__bucket *a = gcm__bucket_intern(pa + ca, na - ca, GCM_PROF_GC, NULL);
    gcm__bucket *b = gcm__bucket_intern(pb + cb, nb - cb, GCM_PROF_MALLOC, NULL);
    uintptr_t nowhere[1] = {0x11};
    gcm__bucket *c = gcm__bucket_intern(nowhere, 1, GCM_PROF_MALLOC, NULL);
    recs[0] = (gcm__prof_rec){a, {100, 1048576, 50, 524288}};
    recs[1] = (gcm__prof_rec){b, {10, 3145728, 0, 0}};
    recs[2] = (gcm__prof_rec){c, {1, 1024, 0, 0}};
    snap = (gcm__prof_snap){recs, 3, 1, 0};
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tables),
        cmocka_unit_test(test_top_limit),
        cmocka_unit_test(test_errors_and_empty),
        cmocka_unit_test(test_cxx_name),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
