/*
 * test_signals_dlopen.c — a program that handles one of the collector's
 * signals and then loads gcmalloc (dlopen, as a plugin host would).
 *
 * GC_init installs the collector's handlers over whatever the program had
 * (src/signals.c, gcm__signals_choose); the program must be told which
 * signal it lost, in one line, and collections must then work.  This
 * program does not link gcmalloc: it loads the shared library by path.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

static void on_rt(int sig)
{
    (void)sig;
}

static size_t count_lines(const char *s)
{
    size_t n = 0;
    for (; *s != '\0'; s++)
        n += *s == '\n';
    return n;
}

static void test_handler_replaced_is_named(void **state)
{
    (void)state;
    struct sigaction sa = {.sa_handler = on_rt}, cur;
    sigemptyset(&sa.sa_mask);
    assert_int_equal(sigaction(SIGRTMIN + 6, &sa, NULL), 0);

    /* Everything gcmalloc says while it starts, from fd 2. */
    int p[2];
    assert_int_equal(pipe2(p, O_NONBLOCK), 0);
    int saved = dup(2);
    dup2(p[1], 2);
    void *lib = dlopen(GCM_LIB_PATH, RTLD_NOW | RTLD_GLOBAL);
    int (*gc)(void) = lib != NULL ? (int (*)(void))dlsym(lib, "gcm_gc") : NULL;
    int rc = gc != NULL ? gc() : -1;
    dup2(saved, 2);
    close(saved);
    close(p[1]);
    static char out[8192];
    ssize_t n = read(p[0], out, sizeof out - 1);
    out[n > 0 ? n : 0] = '\0';
    close(p[0]);
    if (lib == NULL)
        fail_msg("dlopen %s: %s", GCM_LIB_PATH, dlerror());
    assert_non_null(gc);
    assert_int_equal(rc, 0);

    if (count_lines(out) != 1 ||
        strstr(out, "the program's disposition of SIGRTMIN+6 is replaced by the "
                    "collector's handler") == NULL)
        fail_msg("expected one line naming SIGRTMIN+6, got:\n%s", out);
    /* The collector's handler is in place, and the program's cannot come
     * back: the collector's signals are refused from now on. */
    assert_int_equal(sigaction(SIGRTMIN + 6, NULL, &cur), 0);
    assert_true(cur.sa_handler != on_rt);
    assert_int_equal(gc(), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_handler_replaced_is_named),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
