/*
 * test_diag.c — the diagnostics sink and its allocation-free formatter.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "internal.h"

static char buf[512];

#define CHECK(expect, ...)                                                      \
    do {                                                                        \
        size_t n_ = gcm__fmt(buf, sizeof buf, __VA_ARGS__);                     \
        assert_string_equal(buf, expect);                                       \
        assert_int_equal(n_, strlen(expect));                                   \
    } while (0)

static void test_conversions(void **state)
{
    (void)state;
    CHECK("plain", "plain");
    CHECK("a=hello", "a=%s", "hello");
    CHECK("hel", "%.3s", "hello");
    CHECK("he", "%.*s", 2, "hello");
    const char *volatile null_str = NULL;
    CHECK("(null)", "%s", null_str);
    CHECK("[   ab]", "[%5s]", "ab");
    CHECK("[ab   ]", "[%-5s]", "ab");
    CHECK("[  ab]", "[%*s]", 4, "ab");
    CHECK("x", "%c", 'x');
    CHECK("0 -1 42", "%d %d %i", 0, -1, 42);
    CHECK("-2147483648", "%d", INT_MIN);
    CHECK("-9223372036854775808", "%lld", (long long)INT64_MIN);
    CHECK("18446744073709551615", "%zu", SIZE_MAX);
    CHECK("18446744073709551615", "%llu", ULLONG_MAX);
    CHECK("-5", "%zd", (ssize_t)-5);
    CHECK("ff 0 deadbeef", "%x %x %lx", 255u, 0u, 0xdeadbeefUL);
    CHECK("0x1000", "%p", (void *)0x1000);
    CHECK("[00042]", "[%05d]", 42);
    CHECK("[-0042]", "[%05d]", -42);
    CHECK("[   42]", "[%5u]", 42u);
    CHECK("[42   ]", "[%-5lu]", 42UL);
    CHECK("007", "%03llu", 7ULL);
    CHECK("100%", "%d%%", 100);
    const char *unknown = "%q"; /* not a literal: the compiler would object */
    CHECK("%q", unknown, 0);
    CHECK("-7", "%jd", (intmax_t)-7);
}

static void test_truncation(void **state)
{
    (void)state;
    char small[6];
    size_t n = gcm__fmt(small, sizeof small, "%s-%d", "abcdef", 12345);
    assert_int_equal(n, 12); /* the length it would have had */
    assert_string_equal(small, "abcde");
    n = gcm__fmt(small, 1, "xyz");
    assert_int_equal(n, 3);
    assert_string_equal(small, "");
    assert_int_equal(gcm__fmt(NULL, 0, "%d", 123), 3);
}

static int capture(char *out, size_t cap, void (*fn)(void))
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    int saved = dup(2);
    dup2(p[1], 2);
    close(p[1]);
    fn();
    dup2(saved, 2);
    close(saved);
    ssize_t n = read(p[0], out, cap - 1);
    close(p[0]);
    out[n > 0 ? n : 0] = '\0';
    return (int)n;
}

static void say_hello(void) { gcm__diag("hello %s %d", "world", 7); }

static void say_long(void)
{
    char big[4000];
    memset(big, 'z', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    gcm__diag("%s", big);
}

/* The function whose address a misuse report should name. */
void gcm_test_caller_marker(void);
void gcm_test_caller_marker(void) {}

static void say_misuse(void)
{
    gcm__diag_misuse((const void *)((uintptr_t)&gcm_test_caller_marker),
                     "double put of %p", (void *)0x1234);
}

static void test_sink(void **state)
{
    (void)state;
    char out[8192];
    capture(out, sizeof out, say_hello);
    assert_string_equal(out, "gcmalloc: hello world 7\n");

    /* A too-long message is cut, marked, and still one line. */
    int n = capture(out, sizeof out, say_long);
    assert_true(n > 100 && n <= 1024);
    assert_non_null(strstr(out, "zzz...\n"));
    assert_int_equal(strchr(out, '\n') - out, n - 1);

    capture(out, sizeof out, say_misuse);
    assert_non_null(strstr(out, "gcmalloc: misuse: double put of 0x1234 (at "));
    if (strstr(out, "gcm_test_caller_marker+0x0") == NULL)
        fail_msg("misuse report does not name the caller: %s", out);
}

static void test_errno_preserved(void **state)
{
    (void)state;
    char out[256];
    errno = 1234;
    capture(out, sizeof out, say_hello);
    assert_int_equal(errno, 1234);
}

static void test_strerror(void **state)
{
    (void)state;
    assert_string_equal(gcm__strerror(ENOENT), "No such file or directory");
    assert_string_equal(gcm__strerror(987654), "unknown error");
}

static void test_open_output(void **state)
{
    (void)state;
    assert_int_equal(gcm__open_output("stderr", true), 2);
    assert_int_equal(gcm__open_output("stdout", true), 1);
    assert_int_equal(gcm__open_output("", true), -1);
    assert_int_equal(gcm__open_output("/nonexistent-dir/x", true), -1);
    char path[] = "/tmp/gcm-diag-XXXXXX";
    int tfd = mkstemp(path);
    assert_true(tfd >= 0);
    close(tfd);
    int fd = gcm__open_output(path, true);
    assert_true(fd > 2);
    assert_int_equal(gcm__write_all(fd, "abc\n", 4), 0);
    close(fd);
    FILE *f = fopen(path, "r");
    char line[16] = {0};
    assert_non_null(fgets(line, sizeof line, f));
    fclose(f);
    unlink(path);
    assert_string_equal(line, "abc\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conversions),  cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_sink),         cmocka_unit_test(test_errno_preserved),
        cmocka_unit_test(test_strerror),     cmocka_unit_test(test_open_output),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
