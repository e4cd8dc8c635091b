/*
 * test_prof_symbol.c — src/prof_symbol.c: in-process symbolization (names,
 * files, lines, inlined frames innermost first, the symbol-table fallback)
 * and the map of loaded objects (main executable first, build-ids).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include <cmocka.h>

#include "gcmalloc.h"
#include "internal.h"

static uintptr_t here_ret;

__attribute__((noinline)) static void record_return(void)
{
    here_ret = (uintptr_t)__builtin_return_address(0);
    __asm__ volatile("" ::: "memory");
}

static int line_of_call; /* the source line of the call below */

__attribute__((noinline)) void known_function(void)
{
    line_of_call = __LINE__ + 1;
    record_return();
    __asm__ volatile("" ::: "memory");
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

static void test_function_file_line(void **state)
{
    (void)state;
    known_function();
    gcm__sym_frame f[8];
    int n = gcm__sym_resolve(GCM_SYM_LINES, here_ret - 1, f, 8);
    assert_int_equal(n, 1);
    assert_string_equal(f[0].function, "known_function");
    assert_non_null(f[0].file);
    assert_true(ends_with(f[0].file, "test_prof_symbol.c"));
    assert_int_equal(f[0].line, line_of_call);
}

static int inline_line;

static inline __attribute__((always_inline)) void inlined_callee(void)
{
    inline_line = __LINE__ + 1;
    record_return();
    __asm__ volatile("" ::: "memory");
}

static int outer_line;

__attribute__((noinline)) void inline_host(void)
{
    outer_line = __LINE__ + 1;
    inlined_callee();
    __asm__ volatile("" ::: "memory");
}

static void test_inlined_frames_innermost_first(void **state)
{
    (void)state;
    inline_host();
    gcm__sym_frame f[8];
    int n = gcm__sym_resolve(GCM_SYM_LINES, here_ret - 1, f, 8);
    assert_int_equal(n, 2);
    assert_string_equal(f[0].function, "inlined_callee");
    assert_int_equal(f[0].line, inline_line);
    assert_string_equal(f[1].function, "inline_host");
    assert_int_equal(f[1].line, outer_line); /* the call site */
    /* Asking for fewer frames gives the innermost. */
    n = gcm__sym_resolve(GCM_SYM_LINES, here_ret - 1, f, 1);
    assert_int_equal(n, 1);
    assert_string_equal(f[0].function, "inlined_callee");
}

static void test_shared_library_function(void **state)
{
    (void)state;
    /* zlib's exported functions have names in its dynamic symbol table even
     * without debug information. */
    uintptr_t a = (uintptr_t)&crc32 + 4;
    gcm__sym_frame f[8];
    int n = gcm__sym_resolve(GCM_SYM_LINES, a, f, 8);
    assert_true(n >= 1);
    assert_non_null(f[n - 1].function);
    assert_true(strstr(f[n - 1].function, "crc32") != NULL);
}

static void test_nothing_known(void **state)
{
    (void)state;
    gcm__sym_frame f[4];
    assert_int_equal(gcm__sym_resolve(GCM_SYM_LINES, 0x10, f, 4), 0);
    assert_int_equal(gcm__sym_resolve(GCM_SYM_LINES, (uintptr_t)&here_ret, NULL, 4), 0);
    assert_int_equal(gcm__sym_resolve(GCM_SYM_LINES, (uintptr_t)&here_ret, f, 0), 0);
}

static void *resolve_in_thread(void *arg)
{
    (void)arg;
    gcm__sym_frame f[8];
    for (int i = 0; i < 2000; i++) {
        int n = gcm__sym_resolve(GCM_SYM_LINES, here_ret - 1, f, 8);
        if (n != 2 || strcmp(f[1].function, "inline_host") != 0)
            return (void *)1;
    }
    return NULL;
}

static void test_concurrent(void **state)
{
    (void)state;
    inline_host();
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, resolve_in_thread, NULL), 0);
    for (int i = 0; i < 4; i++) {
        void *r;
        pthread_join(th[i], &r);
        assert_null(r);
    }
}

static void test_mappings(void **state)
{
    (void)state;
    gcm__mapping *m = NULL;
    int n = gcm__mappings_read(&m);
    assert_true(n >= 3);
    assert_non_null(m);
    char exe[512];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    assert_true(len > 0);
    exe[len] = '\0';
    /* The main executable first, with its build-id (gcc links one in). */
    assert_string_equal(m[0].path, exe);
    assert_int_equal(strlen(m[0].build_id), 40);
    assert_true(strspn(m[0].build_id, "0123456789abcdef") == 40);
    uintptr_t self = (uintptr_t)&test_mappings, z = (uintptr_t)&crc32;
    bool self_found = false, z_found = false;
    for (int i = 0; i < n; i++) {
        assert_true(m[i].start < m[i].limit);
        assert_int_equal(m[i].start % 4096, 0);
        assert_int_equal(m[i].limit % 4096, 0);
        assert_true(m[i].path[0] != '\0');
        if (self >= m[i].start && self < m[i].limit) {
            self_found = true;
            assert_string_equal(m[i].path, exe);
        }
        if (z >= m[i].start && z < m[i].limit) {
            z_found = true;
            assert_non_null(strstr(m[i].path, "libz"));
            /* start/offset map the address back into the file (libz's
             * text segment has equal file offset and address). */
            Dl_info di;
            assert_true(dladdr((void *)z, &di) != 0);
            assert_int_equal(z - m[i].start + m[i].offset,
                             z - (uintptr_t)di.dli_fbase);
        }
    }
    assert_true(self_found);
    assert_true(z_found);
    gcm__prof_dealloc(m);
    assert_int_equal(gcm__mappings_read(NULL), -1);
}

int main(void)
{
    gcm_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_function_file_line),
        cmocka_unit_test(test_inlined_frames_innermost_first),
        cmocka_unit_test(test_shared_library_function),
        cmocka_unit_test(test_nothing_known),
        cmocka_unit_test(test_concurrent),
        cmocka_unit_test(test_mappings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
