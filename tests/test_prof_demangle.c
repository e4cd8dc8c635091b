/*
 * test_prof_demangle.c — src/prof_demangle.c: C++ names in pprof's default
 * form (no parameters, no template arguments), names left mangled when
 * they are not valid, too long or do not fit, and a parse that would not
 * fit in the thread's stack refused rather than run.  (How the names land
 * in a profile, `name` and `system_name`, is test_pprof's.)
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "gcmalloc.h"
#include "internal.h"

/* gcm__demangle against what pprof's default demangler (Go's
 * github.com/ianlancetaylor/demangle, NoParams and NoTemplateParams)
 * makes of the same symbols. */
static void test_demangle(void **state)
{
    (void)state;
    static const char *const rows[][2] = {
        {"_ZN3app5Cache3putEiRKNSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEEE",
         "app::Cache::put"},
        {"_ZNSt6vectorIiSaIiEE17_M_realloc_insertIJRKiEEEvN9__gnu_cxx17__normal_"
         "iteratorIPiS1_EEDpOT_", "std::vector::_M_realloc_insert"},
        {"_ZStlsISt11char_traitsIcEERSt13basic_ostreamIcT_ES5_PKc", "std::operator<<"},
        {"_ZNKSt4lessIiEclERKiS2_", "std::less::operator()"},
        {"_ZltRK1AS1_", "operator<"},
        {"_ZNK1AptEv", "A::operator->"},
        {"_ZssRK1AS1_", "operator<=>"},
        {"_ZN1ArSEi", "A::operator>>="},
        {"_ZN1AgtEi", "A::operator>"},
        {"_ZN1AltIiEEbT_", "A::operator<"},
        {"_Znwm", "operator new"},
        {"_ZN3app5CacheC2Ev", "app::Cache::Cache"},
        {"_ZN3app5CacheD0Ev", "app::Cache::~Cache"},
        {"_ZN3app4makeIdEEPSt6vectorIT_SaIS2_EEi", "app::make"},
        {"_ZN12_GLOBAL__N_13fooEv", "(anonymous namespace)::foo"},
        {"_ZZ4mainENKUlvE_clEv", "main::{lambda()#1}::operator()"},
    };
    char buf[256];
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        assert_int_equal(gcm__demangle(rows[i][0], buf, sizeof buf), strlen(rows[i][1]));
        assert_string_equal(buf, rows[i][1]);
    }
    /* Not mangled, not valid, too long, or not fitting: left alone. */
    assert_int_equal(gcm__demangle("main", buf, sizeof buf), 0);
    assert_int_equal(gcm__demangle("_Zfoo", buf, sizeof buf), 0);
    assert_int_equal(gcm__demangle(NULL, buf, sizeof buf), 0);
    assert_int_equal(gcm__demangle("_ZN3app5Cache3putEv", buf, 8), 0);
    char long_name[GCM_DEMANGLE_MAX + 16] = "_ZN";
    size_t n = 3;
    while (n + 11 < sizeof long_name - 2) {
        memcpy(long_name + n, "9abcdefghi", 10);
        n += 10;
    }
    memcpy(long_name + n, "Ev", 3);
    assert_int_equal(gcm__demangle(long_name, buf, sizeof buf), 0);
}

/* The demangler's parse is sized by the name, on the stack (~75-110 bytes
 * a character).  A name whose parse does not fit in what is left of the
 * thread's stack stays mangled instead of overrunning it: a 48 KiB thread
 * and a 969-character name (a parse of ~70 KB).  Without the check this
 * thread dies of SIGSEGV. */
typedef struct small_stack {
    const char *name;
    size_t got;
} small_stack;

static void *demangle_on_small_stack(void *arg)
{
    small_stack *s = arg;
    char buf[2048];
    s->got = gcm__demangle(s->name, buf, sizeof buf);
    return NULL;
}

static void test_demangle_small_stack(void **state)
{
    (void)state;
    /* A nested name of 160 components: ns000::ns001::...::ns159::put. */
    char name[GCM_DEMANGLE_MAX + 1] = "_ZN";
    size_t n = 3;
    for (int i = 0; i < 160; i++)
        n += (size_t)snprintf(name + n, sizeof name - n, "5ns%03d", i);
    memcpy(name + n, "3putEv", 7);
    assert_true(strlen(name) <= GCM_DEMANGLE_MAX);

    char buf[2048];
    size_t whole = gcm__demangle(name, buf, sizeof buf);
    assert_int_equal(whole, 160 * 7 + 3); /* "ns000::" x 160, "put" */
    assert_memory_equal(buf, "ns000::ns001::", 14);

    small_stack s = {.name = name, .got = 1};
    pthread_attr_t attr;
    pthread_t th;
    assert_int_equal(pthread_attr_init(&attr), 0);
    assert_int_equal(pthread_attr_setstacksize(&attr, 48 * 1024), 0);
    assert_int_equal(pthread_create(&th, &attr, demangle_on_small_stack, &s), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    pthread_attr_destroy(&attr);
    assert_int_equal(s.got, 0);
}

int main(void)
{
    gcm_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_demangle),
        cmocka_unit_test(test_demangle_small_stack),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
