/*
 * gcmalloc/common.h — definitions every gcmalloc header shares.
 *
 * Included by the umbrella header <gcmalloc.h>; include that instead.
 */
#ifndef GCMALLOC_COMMON_H
#define GCMALLOC_COMMON_H

#include <stddef.h>
#include <stdint.h>

#define GCMALLOC_VERSION_MAJOR 0
#define GCMALLOC_VERSION_MINOR 1
#define GCMALLOC_VERSION_PATCH 0
#define GCMALLOC_VERSION_STRING "0.1.0"

#if defined(__GNUC__)
#define GCM_API __attribute__((visibility("default")))
#define GCM_ATTR_MALLOC __attribute__((malloc))
#define GCM_ATTR_ALLOC_SIZE(n) __attribute__((alloc_size(n)))
#define GCM_ATTR_ALLOC_SIZE2(n, m) __attribute__((alloc_size(n, m)))
#define GCM_ATTR_FORMAT(f, a) __attribute__((format(printf, f, a)))
#define GCM_ATTR_WARN_UNUSED __attribute__((warn_unused_result))
#else
#define GCM_API
#define GCM_ATTR_MALLOC
#define GCM_ATTR_ALLOC_SIZE(n)
#define GCM_ATTR_ALLOC_SIZE2(n, m)
#define GCM_ATTR_FORMAT(f, a)
#define GCM_ATTR_WARN_UNUSED
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* The library's version, "MAJOR.MINOR.PATCH". */
GCM_API const char *gcm_version(void);

/* Initializes gcmalloc: reads the GCMALLOC_* environment and starts what
 * the options ask for.  Calling it is optional (every entry point
 * initializes on first use) and idempotent; it is thread-safe.  Returns 0.
 * Call it early in main() to have option warnings and the
 * GCMALLOC_VERBOSE listing printed at a predictable moment. */
GCM_API int gcm_init(void);

/* Prints every GCMALLOC_* option with its effective value, where that value
 * came from (default, environment, api) and what it does, to the
 * diagnostics sink (stderr, or the file GCMALLOC_LOG names).  This is what
 * GCMALLOC_VERBOSE=1 prints at start-up. */
GCM_API void gcm_options_print(void);

#ifdef __cplusplus
}
#endif

#endif /* GCMALLOC_COMMON_H */
