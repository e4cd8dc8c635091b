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

#include <pthread.h>
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
    GCM_OPT_GOGC,
    GCM_OPT_MEMLIMIT,
    GCM_OPT_GCTRACE,
    GCM_OPT_MARKERS,
    GCM_OPT_DEBUG,
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

/* Debug checks (misuse detection in arenas, pools, the GC heap): on in a
 * GCMALLOC_DEBUG=ON build, or at run time with GCMALLOC_DEBUG=1. */
static inline bool gcm__debug_on(void)
{
    return gcm__config_debug || gcm__opt_bool(GCM_OPT_DEBUG);
}

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
/* Copies a user-given output path, replacing %p with the process id (so
 * several processes can share one setting). */
GCM_HIDDEN void gcm__expand_path(const char *in, char *out, size_t cap);
/* Opens a path for appending output ("stderr" → 2); -1 on failure. */
GCM_HIDDEN int gcm__open_output(const char *path, bool append);

/* ------------------------------------------------------------------------
 * Pacer (src/pacer.c): pure arithmetic, no collector calls.
 * ---------------------------------------------------------------------- */
typedef struct gcm__pacer_input {
    int64_t gogc;      /* GOGC percent; negative = off                      */
    int64_t memlimit;  /* soft limit in bytes; negative or INT64_MAX = none */
    uint64_t live;     /* heap marked live by the last cycle                */
    uint64_t overhead; /* memory counted against the limit that is not heap
                          in use: non-GC memory plus heap fragmentation     */
    uint64_t held;     /* all memory counted against the limit right now    */
} gcm__pacer_input;

typedef struct gcm__pacer_goal {
    uint64_t goal;       /* collect when the heap reaches this; 0 = never  */
    uint64_t gogc_goal;  /* the GOGC goal alone; 0 when GOGC is off         */
    uint64_t limit_goal; /* the memory-limit goal alone; 0 without a limit  */
    bool limit_binds;    /* the limit goal is the lower one                 */
} gcm__pacer_goal;

typedef struct gcm__limiter {
    int procs;
    int64_t cap_ns, fill_ns, last_ns;
    int64_t last_gc_ns;   /* duration of the last collection               */
    uint64_t overflow_ns; /* GC time beyond the bucket: how hard it pushed */
    bool enabled;         /* the limit may not force collections now        */
} gcm__limiter;

GCM_HIDDEN void gcm__pacer_compute(const gcm__pacer_input *in,
                                   gcm__pacer_goal *out);
GCM_HIDDEN bool gcm__pacer_should_collect(const gcm__pacer_goal *g,
                                          uint64_t heap, const gcm__limiter *l);
GCM_HIDDEN void gcm__limiter_init(gcm__limiter *l, int procs, int64_t now_ns);
/* Accounts the time since the last update, of which gc_ns was spent in
 * stop-the-world collection. */
GCM_HIDDEN void gcm__limiter_update(gcm__limiter *l, int64_t now_ns,
                                    int64_t gc_ns);

/* ------------------------------------------------------------------------
 * The collected heap (src/gc.c).
 * ---------------------------------------------------------------------- */
typedef struct gcm__tls gcm__tls; /* per-thread state, defined below */

/* One finished collection, as gctrace, MemStats and the cycle hooks see it.
 * Times are nanoseconds; heap figures bytes. */
typedef struct gcm__cycle {
    uint64_t n;              /* 1-based cycle number                        */
    bool forced;             /* gcm_gc()                                    */
    bool foreign;            /* started by bdwgc itself, not by our pacer   */
    int64_t start_ns;        /* since library start                         */
    int64_t clock_a_ns;      /* cycle start -> mark start                   */
    int64_t clock_b_ns;      /* mark (world stopped)                        */
    int64_t clock_c_ns;      /* mark end -> cycle end                       */
    int64_t stw_a_ns;        /* part of A with the world stopped            */
    int64_t stw_c_ns;        /* part of C with the world stopped            */
    int64_t pause_ns;        /* world stopped, in all                       */
    int64_t gc_cpu_ns;       /* CPU time the cycle took from the program    */
    uint64_t heap0;          /* heap when the cycle started                 */
    uint64_t heap1;          /* heap when marking ended                     */
    uint64_t heap2;          /* heap marked live                            */
    uint64_t live_objects;   /* objects marked live                         */
    uint64_t goal;           /* the goal this cycle was run against         */
    uint64_t next_goal;      /* the goal for the next cycle (0 = none)      */
    uint64_t globals;        /* writable data segments scanned as roots     */
    int procs;               /* processors available to the program        */
    int markers;             /* threads that marked                         */
    double cpu_fraction;     /* cumulative GC CPU share since start         */
    int64_t end_unix_ns;     /* when it ended, wall clock                   */
} gcm__cycle;

GCM_HIDDEN void gcm__gc_init(void);
GCM_HIDDEN bool gcm__gc_ready(void);
/* Slow path of the allocation check: folds t->gc_pending into the global
 * count and collects if the heap reached its goal. */
GCM_HIDDEN void gcm__gc_flush(gcm__tls *t);
/* Adds n bytes of heap allocated outside the collected heap (arenas' chunks
 * in use) to the pacer's heap figure; negative to remove.  Checks the goal
 * like an allocation when adding. */
GCM_HIDDEN void gcm__gc_extra_heap(int64_t n);
/* Adds n bytes to the non-collected memory gcmalloc holds (counted against
 * the memory limit and in MemStats.nongc_sys); negative to remove. */
GCM_HIDDEN void gcm__gc_nongc(int64_t n);

/* "GC cycle finished" hooks: run after each cycle on the collecting thread,
 * outside the collector's lock, in registration order.  A hook may
 * allocate; a collection it triggers is deferred, and gcm_gc() from a hook
 * returns EDEADLK.  At most 16. */
typedef void (*gcm__cycle_hook)(const gcm__cycle *c, void *arg);
GCM_HIDDEN void gcm__gc_on_cycle(gcm__cycle_hook fn, void *arg);

/* Hooks that run INSIDE the collector's lock at reclaim start (marks are
 * final, nothing reclaimed yet) or end, with the world running.  They may
 * read mark bits (GC_is_marked) and set them (GC_set_mark_bit, reclaim
 * start only); they must not allocate, call bdwgc functions that take its
 * lock, or wait for any lock a thread may hold while allocating. */
typedef enum { GCM_GC_RECLAIM_START, GCM_GC_RECLAIM_END } gcm__gc_phase;
GCM_HIDDEN void gcm__gc_on_locked(gcm__gc_phase phase, void (*fn)(void));

/* Root providers: called while the collector marks with the world stopped.
 * They call gcm__gc_push_range for memory the collector should scan (scan
 * arenas' chunks, pools' caches).  They must not allocate, lock, or follow
 * data another thread may be half-way through changing. */
GCM_HIDDEN void gcm__gc_add_roots(void (*push)(void));
GCM_HIDDEN void gcm__gc_push_range(const void *lo, const void *hi);

/* Monotonic nanoseconds, and nanoseconds since the library started. */
GCM_HIDDEN int64_t gcm__now_ns(void);
GCM_HIDDEN int64_t gcm__since_start_ns(void);

/* gctrace (src/gctrace.c) */
GCM_HIDDEN void gcm__gctrace_init(void);
/* Formats c as Go's gctrace line (with the newline); returns its length. */
GCM_HIDDEN size_t gcm__gctrace_format(const gcm__cycle *c, char *buf,
                                      size_t cap);
/* Go's fmtNSAsMS: whole ms from 10 ms up, else two significant digits with
 * at most three decimals. */
GCM_HIDDEN size_t gcm__fmt_ns_as_ms(char *buf, size_t cap, uint64_t ns);

/* Cumulative collected-heap counters summed over all threads. */
typedef struct gcm__counts {
    uint64_t mallocs, frees, alloc_bytes, free_bytes;
} gcm__counts;
GCM_HIDDEN void gcm__counts_read(gcm__counts *c);

/* The collector's state as gcm_read_memstats needs it. */
typedef struct gcm__gc_state {
    uint64_t next_goal, marked, live_objects, nongc, extra;
    int64_t gogc, memlimit;
    bool limiter_active;
    gcm__counts at_cycle;
} gcm__gc_state;
GCM_HIDDEN void gcm__gc_snapshot(gcm__gc_state *s);

/* stats (src/stats.c): what gc.c publishes for gcm_read_memstats. */
GCM_HIDDEN void gcm__stats_record_cycle(const gcm__cycle *c);

/* ------------------------------------------------------------------------
 * Per-thread state (src/thread.c).
 *
 * One block of thread-local state for the whole library, so the allocation
 * path reaches everything it needs through one initial-exec TLS access.
 * Each module owns its fields.  Fields other threads read (counters summed
 * by gcm_read_memstats) are written by their owner with relaxed atomic
 * stores, which compile to plain moves.
 * ---------------------------------------------------------------------- */
enum {
    GCM_T_LINKED = 1,        /* in the registry of live threads            */
    GCM_T_GC_REGISTERED = 2, /* the collector scans this thread's stack    */
    GCM_T_GC_OURS = 4,       /* ... because we registered it: unregister  */
};

struct gcm__tls {
    /* gc.c: collected-heap accounting */
    int64_t gc_pending;        /* net bytes not yet folded into the pacer  */
    int64_t gc_flush_at;       /* fold when gc_pending reaches this        */
    uint64_t gc_mallocs;       /* cumulative objects allocated             */
    uint64_t gc_frees;         /* cumulative objects freed explicitly      */
    uint64_t gc_alloc_bytes;   /* cumulative bytes allocated               */
    uint64_t gc_free_bytes;    /* cumulative bytes freed explicitly        */
    /* thread.c */
    uint8_t flags;             /* GCM_T_*                                  */
    uint8_t in_hooks;          /* running GC-cycle hooks: no nested cycle  */
    uint8_t internal;          /* a thread of gcmalloc's own               */
    struct gcm__tls *next, *prev;
};

GCM_HIDDEN extern GCM_TLS gcm__tls gcm__tls_self;

/* Links the calling thread into the registry (once) so its counters are
 * summed and its exit is noticed. */
GCM_HIDDEN void gcm__thread_attach(gcm__tls *t);
/* Registers the calling thread with the collector if it is not yet. */
GCM_HIDDEN void gcm__thread_gc_register(gcm__tls *t);
/* Sum over live threads (plus threads that have exited) of the uint64_t
 * field at offset `off` in gcm__tls. */
GCM_HIDDEN uint64_t gcm__thread_sum(size_t off);
/* Number of threads in the registry. */
GCM_HIDDEN int gcm__thread_count(void);
/* Runs fn(t) for each live thread's state, under the registry lock.  fn
 * must not allocate or call back into the registry. */
GCM_HIDDEN void gcm__thread_foreach(void (*fn)(gcm__tls *t, void *arg),
                                    void *arg);
/* Registers fn to run on the exiting thread when it leaves (before its
 * counters are folded).  For modules' per-thread caches.  At most 8. */
GCM_HIDDEN void gcm__thread_on_exit(void (*fn)(gcm__tls *t));
/* Starts a thread of gcmalloc's own (finalizers, dumps, HTTP): registered
 * with the collector, marked internal so its allocations are not profiled.
 * Returns 0 or an errno value. */
GCM_HIDDEN int gcm__thread_spawn(pthread_t *th, void *(*fn)(void *), void *arg);
GCM_HIDDEN void gcm__thread_init(void);

/* Relaxed atomic helpers for counters. */
#define GCM_LOAD(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define GCM_STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define GCM_ADD(p, v) __atomic_fetch_add((p), (v), __ATOMIC_RELAXED)
/* Owner-only increment of a counter others may read. */
#define GCM_BUMP(p, v) GCM_STORE((p), GCM_LOAD(p) + (v))

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
