/*
 * internal.h — the one header for names shared between gcmalloc's source
 * files.
 *
 * Everything here is `gcm__*` and carries hidden visibility: a preloaded
 * library shares one symbol namespace with its host, so nothing but the
 * public `gcm_*` API may leak out of libgcmalloc.so.  Public declarations
 * live in include/gcmalloc.h and include/gcmalloc/ (one header per module); this header is never
 * installed.
 *
 * Rules every file follows (see docs/architecture.md):
 *   - internal memory never comes from malloc (use gcm__imem_*), so the
 *     preload shim and the profiler cannot re-enter themselves;
 *   - diagnostics go through gcm__diag*, which never allocates;
 *   - only src/options.c reads the environment.
 */
#ifndef GCM_INTERNAL_H
#define GCM_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gcmalloc.h"

#define GCM_HIDDEN __attribute__((visibility("hidden")))
#define GCM_LIKELY(x) __builtin_expect(!!(x), 1)
#define GCM_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define GCM_NOINLINE __attribute__((noinline))
#define GCM_COLD __attribute__((cold, noinline))
#define GCM_PRINTF(f, a) __attribute__((format(printf, f, a)))
/* Thread-locals use the initial-exec model: no __tls_get_addr call (which
 * may allocate) on the allocation path, even when preloaded. */
#define GCM_TLS _Thread_local __attribute__((tls_model("initial-exec")))
#define GCM_CACHELINE 64
#define GCM_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Build features as constants, so code says `if (gcm__config_debug)`
 * rather than #if (jemalloc's habit): both branches always compile. */
#ifdef GCM_DEBUG
static const bool gcm__config_debug = true;
#else
static const bool gcm__config_debug = false;
#endif
#if defined(__SANITIZE_ADDRESS__)
static const bool gcm__config_asan = true;
#else
static const bool gcm__config_asan = false;
#endif

/* ------------------------------------------------------------------------
 * Options (src/options.c): the one table of GCMALLOC_* variables.
 * ---------------------------------------------------------------------- */

/* One row per environment variable.  The order here is the order of the
 * table in options.c and of the verbose listing; gcm__options_check()
 * (run by the tests) verifies the two agree. */
typedef enum gcm__opt_id {
    GCM_OPT_VERBOSE,
    GCM_OPT_LOG,
    GCM_OPT__COUNT
} gcm__opt_id;

typedef enum gcm__opt_type {
    GCM_OT_BOOL,     /* 0/1/true/false/on/off                         */
    GCM_OT_INT,      /* decimal integer in [min, max]                 */
    GCM_OT_SIZE,     /* bytes with B/KiB/MiB/GiB/TiB or KB/MB/GB/TB   */
    GCM_OT_DURATION, /* ms/s/m/h; stored in nanoseconds               */
    GCM_OT_ENUM,     /* one of a listed set of words; stored as index */
    GCM_OT_PATH,     /* a file path                                   */
    GCM_OT_OUTPUT    /* 0/off = none, 1/on/stderr = stderr, else path */
} gcm__opt_type;

typedef enum gcm__opt_source {
    GCM_SRC_DEFAULT,
    GCM_SRC_ENV,
    GCM_SRC_API,
    GCM_SRC_INVALID /* the environment had a bad value; default used */
} gcm__opt_source;

/* Values of GCM_OT_OUTPUT options. */
enum { GCM_OUTPUT_NONE = 0, GCM_OUTPUT_STDERR = 1, GCM_OUTPUT_PATH = 2 };

/* Special integer a numeric option takes when set to its "off" word. */
#define GCM_OPT_OFF INT64_MIN

GCM_HIDDEN void gcm__options_init(void);
GCM_HIDDEN int64_t gcm__opt_int(gcm__opt_id id);
GCM_HIDDEN bool gcm__opt_bool(gcm__opt_id id);
/* Path of a PATH/OUTPUT option ("" when unset); stable storage. */
GCM_HIDDEN const char *gcm__opt_str(gcm__opt_id id);
GCM_HIDDEN gcm__opt_source gcm__opt_source_of(gcm__opt_id id);
/* Sets a value from the API (source "api"); returns the previous value. */
GCM_HIDDEN int64_t gcm__opt_set_int(gcm__opt_id id, int64_t v);

/* Parser entry points, exposed for the tests.  Each returns 0 and stores
 * the value, or returns -1 and points *why at a static explanation. */
typedef struct gcm__opt_def {
    const char *name;
    gcm__opt_type type;
    const char *def;          /* default, as a user would write it       */
    int64_t min, max;         /* INT, SIZE, DURATION (ns): allowed range */
    const char *off_word;     /* numeric options: word meaning "off"     */
    const char *const *words; /* ENUM: allowed words, NULL-terminated    */
    const char *doc;
} gcm__opt_def;
GCM_HIDDEN const gcm__opt_def *gcm__opt_def_of(gcm__opt_id id);
GCM_HIDDEN const gcm__opt_def *gcm__opt_find(const char *name);
GCM_HIDDEN const char *gcm__opt_type_name(const gcm__opt_def *d);
GCM_HIDDEN int gcm__opt_parse(const gcm__opt_def *d, const char *text,
                              int64_t *out, const char **why);
GCM_HIDDEN int gcm__parse_size(const char *text, int64_t *out,
                               const char **why);
GCM_HIDDEN int gcm__parse_duration_ns(const char *text, int64_t *out,
                                      const char **why);
/* Reads one environment variable without calling malloc (environ, or
 * /proc/self/environ before libc has set environ up).  NULL if unset. */
GCM_HIDDEN const char *gcm__getenv(const char *name);
/* Prints every option's effective value and its source to the sink. */
GCM_HIDDEN void gcm__options_print(void);
/* Re-reads the environment (tests only: the environment normally is read
 * once, at start-up). */
GCM_HIDDEN void gcm__options_reload(void);

/* ------------------------------------------------------------------------
 * Diagnostics (src/diag.c): one sink, never allocates.
 * ---------------------------------------------------------------------- */

/* A small printf: %s %.*s %c %d %i %u %x %p %% with l/ll/z/j length,
 * width, '-' and '0' flags.  No floating point: callers format fixed
 * point with integers (Go's gctrace does the same).  Returns the length
 * that would have been written; the output is always NUL-terminated. */
GCM_HIDDEN size_t gcm__vfmt(char *buf, size_t cap, const char *fmt,
                            va_list ap);
GCM_HIDDEN size_t gcm__fmt(char *buf, size_t cap, const char *fmt, ...)
    GCM_PRINTF(3, 4);
/* "gcmalloc: <message>\n" to the sink, one write(2). */
GCM_HIDDEN void gcm__diag(const char *fmt, ...) GCM_PRINTF(1, 2);
/* A message reporting misuse: what, and where (the caller's address,
 * symbolized when possible). */
GCM_HIDDEN void gcm__diag_misuse(const void *where, const char *fmt, ...)
    GCM_PRINTF(2, 3);
/* Writes all of buf to fd, retrying on EINTR and short writes. */
GCM_HIDDEN int gcm__write_all(int fd, const char *buf, size_t len);
/* Description of an errno value; never allocates. */
GCM_HIDDEN const char *gcm__strerror(int e);
/* File descriptor of the sink (2 unless GCMALLOC_LOG names a file). */
GCM_HIDDEN int gcm__diag_fd(void);
/* Opens the sink named by GCMALLOC_LOG; called once by the options init. */
GCM_HIDDEN void gcm__diag_open(void);
/* Opens a path for appending output ("stderr" → 2); -1 on failure. */
GCM_HIDDEN int gcm__open_output(const char *path, bool append);

/* ------------------------------------------------------------------------
 * Library start-up (src/init.c).
 * ---------------------------------------------------------------------- */
GCM_HIDDEN void gcm__init_slow(void);
GCM_HIDDEN extern int gcm__init_state; /* 0 = not yet, 1 = running, 2 = done */
static inline void gcm__ensure_init(void)
{
    if (GCM_UNLIKELY(__atomic_load_n(&gcm__init_state, __ATOMIC_ACQUIRE) != 2))
        gcm__init_slow();
}

#endif /* GCM_INTERNAL_H */
