/*
 * cxx_site.h — an allocation site named as a C++ compiler names one, for
 * the tests of C++ names in profiles and reports.  The asm label is the
 * function's symbol, so the symbol table (functions mode) gives the mangled
 * name, which demangles to CXX_SITE_NAME.  Include after "internal.h" and
 * cmocka.h.
 */
#ifndef GCM_TESTS_CXX_SITE_H
#define GCM_TESTS_CXX_SITE_H

#include <string.h>

#define CXX_SITE_SYMBOL "_ZN2pp5Cache3putEiRKSt6vectorIiSaIiEE"
#define CXX_SITE_NAME "pp::Cache::put"

static uintptr_t cxx_site_pcs[GCM_PROF_MAX_DEPTH];
static int cxx_site_depth;

void cxx_site(void) __asm__(CXX_SITE_SYMBOL);
__attribute__((noinline)) void cxx_site(void)
{
    cxx_site_depth = gcm__stack_capture(cxx_site_pcs, GCM_PROF_MAX_DEPTH, NULL);
    __asm__ volatile("" ::: "memory");
}

/* The caller's stack through cxx_site, cut at it (the capture's own
 * frames left out), as a malloc bucket.  Inlined even at -O0, so that the
 * frame above cxx_site is the test's own. */
static inline __attribute__((always_inline)) gcm__bucket *cxx_site_bucket(void)
{
    cxx_site();
    int skip = 0;
    gcm__sym_frame f[4];
    while (skip < cxx_site_depth &&
           !(gcm__sym_resolve(GCM_SYM_FUNCTIONS, cxx_site_pcs[skip] - 1, f, 4) == 1 &&
             strcmp(f[0].function, CXX_SITE_SYMBOL) == 0))
        skip++;
    assert_true(skip < cxx_site_depth);
    return gcm__bucket_intern(cxx_site_pcs + skip, cxx_site_depth - skip, GCM_PROF_MALLOC,
                              NULL);
}

#endif
