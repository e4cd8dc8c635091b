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
    GCM_OPT_GC_SIGNALS,
    GCM_OPT_DEBUG,
    GCM_OPT_PROFILE_RATE,
    GCM_OPT_PROFILE,
    GCM_OPT_PROFILE_SYMBOLS,
    GCM_OPT_PROFILE_SIGNAL,
    GCM_OPT_PROFILE_INTERVAL,
    GCM_OPT_PROFILE_REPORT,
    GCM_OPT_PROFILE_LEAK,
    GCM_OPT_PROFILE_LEAK_MIN,
    GCM_OPT_ARENA_CHUNK,
    GCM_OPT_ARENA_POISON,
    GCM_OPT_MODE,
    GCM_OPT_LEAKS,
    GCM_OPT_UNTRACKED_LIBS,
    GCM_OPT_POINTER_ALIGN,
    GCM_OPT_POOLSTATS,
    GCM_OPT_PPROF_ADDR,
    GCM_OPT_PPROF_ALLOW_REMOTE,
    GCM_OPT__COUNT
} gcm__opt_id;

typedef enum gcm__opt_type {
    GCM_OT_BOOL,     /* 0/1/true/false/on/off                         */
    GCM_OT_INT,      /* decimal integer in [min, max]                 */
    GCM_OT_SIZE,     /* bytes with B/KiB/MiB/GiB/TiB or KB/MB/GB/TB   */
    GCM_OT_DURATION, /* ms/s/m/h; stored in nanoseconds               */
    GCM_OT_ENUM,     /* one of a listed set of words; stored as index */
    GCM_OT_PATH,     /* a file path                                   */
    GCM_OT_OUTPUT,   /* 0/off = none, 1/on/stderr = stderr, else path */
    GCM_OT_ADDR,     /* host:port to listen on; stored as the port      */
    GCM_OT_SIGNALS,  /* two distinct signals; GCM_SIGNALS_PACK(a, b)    */
    GCM_OT_NAMES     /* comma-separated file names; text kept, value
                        GCM_OUTPUT_PATH                                 */
} gcm__opt_type;

/* A GCM_OT_NAMES option holds at most this many names of at most
 * GCM_NAME_MAX - 1 bytes each. */
#define GCM_NAMES_MAX 8
#define GCM_NAME_MAX 64
/* The i-th name of a GCM_OT_NAMES value (its text), copied into out;
 * false past the last one. */
GCM_HIDDEN bool gcm__opt_name_at(const char *text, int i, char out[GCM_NAME_MAX]);

typedef enum gcm__opt_source {
    GCM_SRC_DEFAULT,
    GCM_SRC_ENV,
    GCM_SRC_API,
    GCM_SRC_INVALID /* the environment had a bad value; default used */
} gcm__opt_source;

/* Values of GCM_OT_OUTPUT options. */
enum { GCM_OUTPUT_NONE = 0, GCM_OUTPUT_STDERR = 1, GCM_OUTPUT_PATH = 2 };

/* Values of GCM_OT_SIGNALS options: the first signal and the second. */
#define GCM_SIGNALS_PACK(a, b) ((int64_t)(a) << 8 | (int64_t)(b))
#define GCM_SIGNALS_FIRST(v) ((int)((v) >> 8))
#define GCM_SIGNALS_SECOND(v) ((int)((v) & 0xff))

/* Special integer a numeric option takes when set to its "off" word. */
#define GCM_OPT_OFF INT64_MIN

GCM_HIDDEN void gcm__options_init(void);
GCM_HIDDEN int64_t gcm__opt_int(gcm__opt_id id);
GCM_HIDDEN bool gcm__opt_bool(gcm__opt_id id);
/* Text of a PATH/OUTPUT/ADDR/NAMES option ("" when unset); stable storage. */
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
/* A listening address (GCM_OT_ADDR): "host:port" where host is an IPv4
 * literal, an IPv6 literal in brackets, "localhost", or nothing (":6060":
 * loopback, or every interface where the caller allows remote access);
 * port 0-65535, 0 = any free port.  Host names are not resolved: a
 * resolver may allocate, block on the network, or run before libc is up. */
typedef struct gcm__addr {
    int family;       /* AF_INET or AF_INET6                          */
    uint8_t ip[16];   /* network byte order; the first 4 for AF_INET  */
    uint16_t port;
    bool wildcard;    /* the host was left out; ip is 127.0.0.1       */
} gcm__addr;
GCM_HIDDEN int gcm__parse_addr(const char *text, gcm__addr *out,
                               const char **why);
/* A signal as GCM_OT_SIGNALS writes it: "SIGPWR", "SIGRTMIN+6". */
GCM_HIDDEN void gcm__signal_name(int sig, char *buf, size_t cap);
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
/* The preload library keeps its own duplicate of the stderr the process
 * started with (at a high descriptor): an unmodified program may close
 * fd 2 before it exits (coreutils' close_stdout does), and gcmalloc's exit
 * reports would be lost.  A program that links gcmalloc keeps fd 2, so
 * that messages follow its own redirections. */
GCM_HIDDEN void gcm__diag_keep_stderr(void);
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
/* Lets other threads use the collector (and starts its marker threads);
 * called before a thread is registered or created, and before a cycle. */
GCM_HIDDEN void gcm__gc_allow_threads(void);
GCM_HIDDEN bool gcm__gc_starting_markers(void); /* on this thread, now */
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

/* gc_scan.c: where the collector looks for pointers inside collected
 * objects (GCMALLOC_POINTER_ALIGN).  gcm__scan_init runs once, after
 * GC_init and before any other thread allocates. */
GCM_HIDDEN void gcm__scan_init(void);
/* A cleared, collectable object of n bytes that may hold pointers, of
 * bdwgc's NORMAL kind or of ours; NULL when out of memory (the caller
 * sets errno). */
GCM_HIDDEN void *gcm__scan_malloc(size_t n);
/* bdwgc's kind number of the objects gcm__scan_malloc makes. */
GCM_HIDDEN int gcm__scan_kind(void);

/* gc_stacks.c: threads on stacks of their own (coroutines).  After a
 * thread registers with the collector: records its handle and cold end. */
GCM_HIDDEN void gcm__stacks_registered(gcm__tls *t);
/* After it unregisters. */
GCM_HIDDEN void gcm__stacks_unregistered(gcm__tls *t);
/* When a stop begins (GC_EVENT_PRE_STOP_WORLD), in the collecting thread. */
GCM_HIDDEN void gcm__stacks_stop_begin(void);
/* In each stopped thread's suspend-signal handler, before bdwgc's: notes
 * where the thread runs.  Async-signal-safe. */
GCM_HIDDEN void gcm__stacks_stopped(void);
/* World stopped, before bdwgc pushes the thread stacks: moves the cold end
 * of each thread found on another stack to that stack's end, and pushes
 * the stacks such threads left. */
GCM_HIDDEN void gcm__stacks_settle(void);

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

/* The preload library's malloc family in its collected modes (gc,
 * leakcheck).  gcm__gc_alloc aligns to `align` (a power of two; 16 and
 * below need nothing extra), returning a pointer inside the object when it
 * had to; the others accept such pointers. */
enum {
    GCM_GCA_ATOMIC = 1,        /* holds no pointers: never scanned        */
    GCM_GCA_UNCOLLECTABLE = 2, /* scanned but never collected: freed only
                                  explicitly (the C library's own objects) */
    GCM_GCA_GROW = 4,          /* for a realloc that grows in a small step:
                                  gcm__realloc_room(n) more than n; the
                                  profile still records n                  */
};
/* realloc's two rules, for mimalloc's blocks and the collector's alike.
 * A resize stays where it is when the block has room for n and would not
 * be left more than half empty (mimalloc's rule and bdwgc's).  An object
 * that must move to grow by less than a quarter of its old size gets
 * gcm__realloc_room(n) more, so that a buffer grown in small steps moves
 * O(log n) times rather than at every step (tcmalloc's realloc does the
 * same). */
static inline bool gcm__realloc_in_place(size_t n, size_t room)
{
    return n <= room && n >= room / 2;
}
static inline bool gcm__realloc_small_step(size_t n, size_t old)
{
    return n > old && n - old < old / 4;
}
static inline size_t gcm__realloc_room(size_t n) { return n / 4; }
/* The collector's object behind an allocation, for a caller that keeps it
 * in a header of its own (leakcheck) to free it without asking bdwgc. */
typedef struct gcm__gc_obj {
    void *base; /* the object's start                                 */
    size_t fp;  /* its size as bdwgc rounds it; 0 when not known      */
} gcm__gc_obj;
GCM_HIDDEN void *gcm__gc_alloc(size_t n, size_t align, size_t head,
                               unsigned flags, const void *caller,
                               gcm__gc_obj *obj);

GCM_HIDDEN bool gcm__gc_owns(const void *p);
GCM_HIDDEN size_t gcm__gc_usable(const void *p);
GCM_HIDDEN void gcm__gc_free_any(void *p);
/* Frees p, of the object obj (from gcm__gc_alloc with flags 0 or
 * GCM_GCA_GROW: collectable and scanned), with no look-up of bdwgc's
 * headers when obj->fp is known. */
GCM_HIDDEN void gcm__gc_free_obj(void *p, const gcm__gc_obj *obj);
GCM_HIDDEN void *gcm__gc_realloc_any(void *p, size_t n, const void *caller);
/* The per-thread caches of freed blocks behind gcm__gc_free_*: bytes on
 * the calling thread's lists, the budget all threads have reserved, the
 * cap on it (which follows the pacer's room before the next cycle), what
 * a thread that drops more than it reuses may keep, and what any may. */
typedef struct gcm__fcache_state {
    uint64_t thread_bytes;
    int64_t reserved, cap, solo, thread_max;
} gcm__fcache_state;
GCM_HIDDEN void gcm__gc_fcache_read(gcm__fcache_state *s);
/* In the collector's stop-signal handler (signals.c), on the stopped
 * thread: hands the free-block cache of a thread that has stopped freeing
 * to the collecting thread.  Async-signal-safe. */
GCM_HIDDEN void gcm__gc_fcache_stopped(void);
/* When set before start-up, the collector is initialized on first use
 * instead (the preload library's fast mode never needs it). */
GCM_HIDDEN extern bool gcm__gc_lazy;

/* Monotonic nanoseconds, and nanoseconds since the library started. */
GCM_HIDDEN int64_t gcm__now_ns(void);
GCM_HIDDEN int64_t gcm__since_start_ns(void);
/* Marks the library's start (idempotent). */
GCM_HIDDEN void gcm__clock_start(void);

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
 * Arenas (src/arena.c) and the chunks they are made of (src/chunk.c).
 * ---------------------------------------------------------------------- */

/* A chunk: one block from mimalloc, GCM_CHUNK_HDR-aligned, this header
 * first and the data after it.  Regular chunks are powers of two from
 * 2^GCM_CHUNK_MIN_SHIFT to 2^GCM_CHUNK_MAX_SHIFT bytes and are cached when
 * free; a "big" chunk is sized for one large allocation and goes straight
 * back to mimalloc. */
#define GCM_CHUNK_HDR 64
#define GCM_CHUNK_MIN_SHIFT 12 /* 4 KiB  */
#define GCM_CHUNK_MAX_SHIFT 26 /* 64 MiB */
#define GCM_CHUNK_CLASSES (GCM_CHUNK_MAX_SHIFT - GCM_CHUNK_MIN_SHIFT + 1)
#define GCM_CHUNK_BIG 0xff     /* cls of a big chunk                      */
#define GCM_CHUNK_TCACHE 8     /* free chunks a thread keeps for itself   */

/* Who holds a chunk (chunk.c uses it to find chunks stranded in the caches
 * of threads that do not exist in a forked child). */
enum { GCM_CHUNK_AT_ARENA, GCM_CHUNK_AT_TCACHE, GCM_CHUNK_AT_SHARED };

typedef struct gcm__chunk gcm__chunk;
struct gcm__chunk {
    /* The registry of chunks (chunk.c), walked by the arena root provider
     * while the world is stopped: only all_next is followed. */
    gcm__chunk *all_next, *all_prev;
    gcm__chunk *next;      /* the holder's list: an arena's, or a cache's   */
    gcm_arena *scan_owner; /* the scan arena holding it, else NULL          */
    char *top;             /* end of the used part, once the arena has
                              moved on from it (for a big chunk: at once)   */
    size_t size;           /* bytes, header included                        */
    uint8_t cls;           /* size class, or GCM_CHUNK_BIG                  */
    uint8_t registered;    /* linked in the registry                        */
    uint8_t where;         /* GCM_CHUNK_AT_*                                */
};

static inline char *gcm__chunk_data(gcm__chunk *c)
{
    return (char *)c + GCM_CHUNK_HDR;
}
static inline char *gcm__chunk_end(gcm__chunk *c) { return (char *)c + c->size; }

/* Registers the cycle hook, the thread-exit hook and the fork handlers. */
GCM_HIDDEN void gcm__chunk_init(void);
/* A regular chunk of class cls (size 1 << (cls + GCM_CHUNK_MIN_SHIFT)):
 * from this thread's cache, the shared cache, or mimalloc.  NULL with
 * errno = ENOMEM. */
GCM_HIDDEN gcm__chunk *gcm__chunk_get(unsigned cls);
/* A big chunk of `size` bytes (header included), in the registry when
 * `registered` (the collector may have to scan it). */
GCM_HIDDEN gcm__chunk *gcm__chunk_get_big(size_t size, bool registered);
/* Gives a chunk back: regular ones to the caches, big ones to mimalloc.
 * Its scan_owner must already be NULL. */
GCM_HIDDEN void gcm__chunk_put(gcm__chunk *c);
/* The newest chunk of the registry (acquire); follow all_next. */
GCM_HIDDEN gcm__chunk *gcm__chunk_registry(void);
/* Trims the caches as at the end of a GC cycle (the cycle hook calls it;
 * threaded tests under TSan call it directly instead of collecting). */
GCM_HIDDEN void gcm__chunk_trim(void);
/* Bytes of chunk memory held from mimalloc (in arenas and cached), and of
 * free chunks in the shared cache. */
GCM_HIDDEN uint64_t gcm__chunk_held(void);
GCM_HIDDEN uint64_t gcm__chunk_shared_bytes(void);

/* arena.c: start-up (root provider, chunk cache), and the MemStats fields
 * for arenas. */
GCM_HIDDEN void gcm__arena_init(void);
GCM_HIDDEN void gcm__arena_memstats(struct gcm_memstats *ms);

/* AddressSanitizer: memory an arena has not handed out, or has taken back,
 * is poisoned, so a use after reset is reported.  No-ops otherwise. */
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
static inline void gcm__asan_poison(const void *p, size_t n)
{
    ASAN_POISON_MEMORY_REGION(p, n);
}
static inline void gcm__asan_unpoison(const void *p, size_t n)
{
    ASAN_UNPOISON_MEMORY_REGION(p, n);
}
#else
static inline void gcm__asan_poison(const void *p, size_t n)
{
    (void)p;
    (void)n;
}
static inline void gcm__asan_unpoison(const void *p, size_t n)
{
    (void)p;
    (void)n;
}
#endif

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
    GCM_T_STARTED = 8,       /* started by our pthread_create trampoline   */
    GCM_T_GC_REGISTERING = 16, /* finding its stack to register it       */
    GCM_T_EXITED = 32,         /* past its exit destructor: never again
                                  registered with the collector            */
    /* Either of the last two: the preloaded malloc serves the thread from
     * mimalloc, whose blocks the collector neither scans nor reclaims. */
    GCM_T_GC_UNSCANNED = GCM_T_GC_REGISTERING | GCM_T_EXITED,
};

struct gcm__tls {
    /* gc.c: collected-heap accounting */
    int64_t gc_pending;        /* net bytes not yet folded into the pacer  */
    int64_t gc_flush_at;       /* fold when gc_pending reaches this        */
    uint64_t gc_mallocs;       /* cumulative objects allocated             */
    uint64_t gc_frees;         /* cumulative objects freed explicitly      */
    uint64_t gc_alloc_bytes;   /* cumulative bytes allocated               */
    uint64_t gc_free_bytes;    /* cumulative bytes freed explicitly        */
    struct gcm__fcache *gc_fcache; /* freed blocks kept for reuse (preload) */
    void **scan_lists;         /* gc_scan.c: per-size lists of fresh objects
                                  of our kind (an uncollectable block)     */
    /* prof.c: allocation sampling (gcm__prof_tick) */
    int64_t prof_countdown;    /* bytes until the next sample; <= 0: slow  */
    uint64_t prof_budget;      /* preload.c, fast mode: the malloc family's
                                  countdown (see there); 0 = slow path     */
    uint64_t prof_rng;         /* random state; 0 = not seeded yet         */
    uint32_t prof_gen;         /* rate generation the countdown belongs to */
    uint8_t prof_busy;         /* inside the profiler: do not sample       */
    uintptr_t prof_stack_lo;   /* prof_stack.c (frame-pointer walk): this  */
    uintptr_t prof_stack_hi;   /* thread's stack mapping; 0 = not known    */
    /* arena.c: counters summed by gcm_read_memstats */
    uint64_t arena_created;    /* arenas created                           */
    uint64_t arena_freed;      /* arenas freed                             */
    uint64_t arena_chunk_in;   /* bytes of chunks handed to arenas         */
    uint64_t arena_chunk_out;  /* bytes of chunks taken back from arenas   */
    int64_t arena_heap_pending; /* chunk bytes in/out not yet told to the
                                   collector (gcm__gc_extra_heap); owner only */
    /* chunk.c: this thread's free chunks.  The owner takes and fills slots
     * with atomic exchanges and stores; the GC-cycle trimmer may take the
     * chunks the thread has not needed for two cycles. */
    struct gcm__chunk *chunk_cache[GCM_CHUNK_TCACHE];
    uint8_t chunk_cache_cls[GCM_CHUNK_TCACHE]; /* owner only */
    uint8_t chunk_cache_low;   /* fewest chunks cached since the last trim */
    uint8_t chunk_cache_low_prev; /* the same, for the cycle before (trimmer) */
    /* pool.c: the pool this thread used last and its local there (so the
     * hit path needs no lookup; cleared by gcm_pool_destroy), the thread's
     * slot in every pool's per-thread caches (slot + 1; 0 = none yet), and
     * the flag the GC-cycle rotation waits on while the thread touches its
     * private slots (see pool.c's essay). */
    gcm_pool *pool_last;
    struct plocal *pool_last_local;
    uint32_t pool_slot;
    uint8_t pool_busy;
    /* gc_stacks.c: where the collector scans this thread's stack (written
     * by the thread when registered and when stopped, by the collecting
     * thread while it is stopped) */
    void *gc_handle;           /* bdwgc's handle; NULL = not registered    */
    uintptr_t gc_base;         /* the cold end registered                  */
    uintptr_t gc_bottom;       /* the cold end bdwgc scans up to now       */
    uintptr_t gc_home_lo;      /* low end of the memory holding the stack
                                  registered; 0 = not looked up            */
    uintptr_t gc_away_hi;      /* end of the stack it ran on at the last
                                  stop, when not its own; 0 = at home      */
    struct gcm__tls *gc_settle_next;
    uint32_t gc_stop_epoch;    /* the stop it was last noted in            */
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
/* Makes the calling thread's static TLS a root when it is the main thread
 * (other threads' TLS is scanned with their stacks).  Once, after GC_init. */
GCM_HIDDEN void gcm__thread_main_tls_root(void);
/* thread_join.c: keeps a collected object that a thread returns (or passes
 * to pthread_exit) alive until the thread is joined or detached.  Called by
 * the trampoline with the start routine's value. */
GCM_HIDDEN void gcm__thread_exit_value(void *value);

/* codemap.c: the executable segment of the loaded object that contains
 * `sym` (both 0 when it cannot be found).  Looked up once; compared per
 * call without the loader's lock. */
GCM_HIDDEN void gcm__code_range(const void *sym, uintptr_t *lo, uintptr_t *hi);
/* The path of the loaded object that contains addr ("" for the executable,
 * NULL for none); walks the loader's list, so callers cache it. */
GCM_HIDDEN const char *gcm__object_name(const void *addr);
/* The mapping that holds p, from /proc/self/maps (no malloc, no lock of
 * ours; a system call per 4 KiB of the map).  *grows: the main thread's
 * "[stack]".  false when no mapping holds p. */
GCM_HIDDEN bool gcm__mapping_of(uintptr_t p, uintptr_t *lo, uintptr_t *hi, bool *grows);
/* The main executable's path as /proc/self/exe names it ("" when it
 * cannot be read); the loader's name for it is "". */
GCM_HIDDEN void gcm__exe_path(char *buf, size_t cap);
/* The definition of `name` after ours (dlsym RTLD_NEXT), cached in *slot. */
GCM_HIDDEN void *gcm__next_symbol(void **slot, const char *name);

/* signals.c: before GC_init, sets the two signals bdwgc stops and
 * restarts threads with (GCMALLOC_GC_SIGNALS), and names a disposition of
 * the program's that GC_init is about to replace. */
GCM_HIDDEN void gcm__signals_choose(void);
/* signals.c: from the collector's start, the program's signal masks never
 * block the signals bdwgc stops threads with, and the program cannot take
 * those signals over.  Called by gcm__gc_init once GC_init has installed
 * bdwgc's handlers. */
GCM_HIDDEN void gcm__signals_init(void);
/* Unblocks the two signals in the calling thread's mask, with the C
 * library's call; done by every registration with the collector. */
GCM_HIDDEN void gcm__signals_unblock_self(void);

/* sort.c: qsort's contract (ascending by cmp, not stable) without
 * glibc's malloc'd merge buffer: safe inside the allocator. */
GCM_HIDDEN void gcm__sort(void *base, size_t n, size_t size,
                          int (*cmp)(const void *, const void *));

/* Relaxed atomic helpers for counters. */
#define GCM_LOAD(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define GCM_STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define GCM_ADD(p, v) __atomic_fetch_add((p), (v), __ATOMIC_RELAXED)
/* Owner-only increment of a counter others may read. */
#define GCM_BUMP(p, v) GCM_STORE((p), GCM_LOAD(p) + (v))

/* ------------------------------------------------------------------------
 * The allocation profiler (src/prof*.c, src/pprof.c): what every
 * allocation path calls.  See the essay at the top of src/prof.c.
 *
 * After a successful allocation of an object occupying `bytes`:
 *
 *     if (gcm__prof_tick(t, bytes))
 *         gcm__prof_record_alloc(p, bytes, GCM_PROF_POOL, name,
 *                                GCM_PROF_CALLER());
 *
 * (GCM_PROF_CALLER() evaluated in the exported gcm_* function itself, so
 * gcmalloc's own frames are left out of the recorded stack), and before an
 * object that may have been sampled is released or handed back to its
 * allocator:
 *
 *     gcm__prof_free(p);     (an inline filter: no lookup when unsampled)
 *
 * Arenas release their objects all at once: they keep their sampled
 * allocations in a gcm__prof_list and release the list.  GC-heap objects
 * the collector reclaims are found by the profiler itself at each cycle.
 * None of these calls allocates with malloc or takes a lock the collector
 * holds; nested calls from inside the profiler are not sampled.
 * ---------------------------------------------------------------------- */
typedef enum gcm__prof_kind {
    GCM_PROF_GC,     /* the collected heap (gcm_malloc and friends)        */
    GCM_PROF_ARENA,  /* arena allocations; name = the arena's name         */
    GCM_PROF_POOL,   /* objects a pool creates on a miss; name = its name  */
    GCM_PROF_BUF,    /* buffers of a buffer pool; name = its name          */
    GCM_PROF_MALLOC, /* the preload library's malloc family                */
    GCM_PROF__KINDS
} gcm__prof_kind;
/* Or'ed into the kind given to gcm__prof_record_alloc: the object lives on
 * the collected heap (a pool that holds pointers, the preload library's gc
 * modes), so a collection may find it dead without anyone freeing it.  Its
 * figures are then published as of the last cycle, like the GC heap's.
 * Implied for GCM_PROF_GC. */
#define GCM_PROF_COLLECTED 0x80

/* Deepest stack recorded; deeper stacks keep their innermost frames. */
#define GCM_PROF_MAX_DEPTH 64
/* The return address into the program from the exported entry point. */
#define GCM_PROF_CALLER() __builtin_return_address(0)

/* Slow path of gcm__prof_tick (the countdown reached zero): decides whether
 * this allocation is sampled and draws the next countdown. */
GCM_HIDDEN bool gcm__prof_sample_slow(gcm__tls *t, size_t bytes);

/* The sampling check: a subtract and a branch.  True when the allocation
 * of `bytes` is to be recorded (a Poisson process over allocated bytes
 * with mean GCMALLOC_PROFILE_RATE, as Go's MemProfileRate). */
static inline bool gcm__prof_tick(gcm__tls *t, size_t bytes)
{
    int64_t c = GCM_LOAD(&t->prof_countdown) - (int64_t)bytes;
    GCM_STORE(&t->prof_countdown, c);
    return GCM_UNLIKELY(c <= 0) && gcm__prof_sample_slow(t, bytes);
}

/* Records a sampled allocation: captures the stack (frames from `caller`
 * outwards), interns it, remembers p so its release is recorded.  `name`
 * labels arenas and pools (copied; NULL for none).  `kind` may carry
 * GCM_PROF_COLLECTED; p may point inside its collected object. */
GCM_HIDDEN void gcm__prof_record_alloc(void *p, size_t bytes, unsigned kind,
                                       const char *name, const void *caller);

/* Which addresses may have been sampled: a counting filter indexed by
 * address bits, non-zero where a sampled object lives (as jemalloc marks
 * sampled objects in its metadata; we have no metadata of our own). */
#define GCM_PROF_FILTER_BITS 16
GCM_HIDDEN extern uint32_t gcm__prof_filter[1u << GCM_PROF_FILTER_BITS];
static inline size_t gcm__prof_filter_slot(const void *p)
{
    uintptr_t a = (uintptr_t)p >> 4;
    return (size_t)((a ^ (a >> GCM_PROF_FILTER_BITS)) &
                    ((1u << GCM_PROF_FILTER_BITS) - 1));
}
static inline bool gcm__prof_maybe_sampled(const void *p)
{
    return GCM_LOAD(&gcm__prof_filter[gcm__prof_filter_slot(p)]) != 0;
}
/* Records the release of p if it was sampled (a table lookup). */
GCM_HIDDEN void gcm__prof_record_free(void *p);
static inline void gcm__prof_free(void *p)
{
    if (GCM_UNLIKELY(gcm__prof_maybe_sampled(p)))
        gcm__prof_record_free(p);
}

/* For realloc: take p's record out (true if p was sampled), then either
 * put it back (the object lives on where it was) or account its release. */
typedef struct gcm__prof_obj {
    struct gcm__bucket *bucket;
    size_t bytes;
} gcm__prof_obj;
GCM_HIDDEN bool gcm__prof_detach(void *p, gcm__prof_obj *o);
GCM_HIDDEN void gcm__prof_reattach(void *p, const gcm__prof_obj *o);
GCM_HIDDEN void gcm__prof_release(const gcm__prof_obj *o);

/* Sampled allocations released together (an arena's).  Zero-initialized
 * is empty.  Not thread-safe: the owner serializes calls. */
typedef struct gcm__prof_list {
    struct gcm__prof_lchunk *head; /* newest chunk first */
    size_t n;                      /* entries recorded    */
} gcm__prof_list;
GCM_HIDDEN void gcm__prof_record_alloc_list(gcm__prof_list *l, size_t bytes,
                                            gcm__prof_kind kind,
                                            const char *name,
                                            const void *caller);
/* A savepoint of the list: entries recorded so far. */
static inline size_t gcm__prof_list_mark(const gcm__prof_list *l)
{
    return l->n;
}
/* Records the release of every entry recorded after mark `keep` (0: all,
 * as on reset or free) and forgets them. */
GCM_HIDDEN void gcm__prof_list_release(gcm__prof_list *l, size_t keep);

/* Start-up (init.c): reads the options, hooks into the collector, arranges
 * the exit, signal and interval dumps. */
GCM_HIDDEN void gcm__prof_init(void);

/* --- profiler internals, shared between src/prof*.c and src/pprof.c ------ */

/* Build choice of stack unwinder (CMake GCMALLOC_UNWIND). */
#ifdef GCM_UNWIND_LIBUNWIND
static const bool gcm__config_libunwind = true;
#else
static const bool gcm__config_libunwind = false;
#endif

/* prof.c: the current sampling rate (bytes; 0 = off, 1 = everything). */
GCM_HIDDEN int64_t gcm__prof_rate(void);
/* For an allocator whose fast path cannot reach the thread state (arenas:
 * it is inlined in the program) and that keeps a countdown of its own: the
 * next countdown in bytes, drawn for the calling thread at the current
 * rate, or 0 when nothing is to be sampled (off, internal thread, inside
 * the profiler).  *gen receives the rate generation it belongs to; when
 * gcm__prof_generation() differs, draw again. */
GCM_HIDDEN int64_t gcm__prof_countdown(uint32_t *gen);
GCM_HIDDEN extern uint32_t gcm__prof_gen; /* bumped at every rate change */
static inline uint32_t gcm__prof_generation(void)
{
    return __atomic_load_n(&gcm__prof_gen, __ATOMIC_ACQUIRE);
}
/* One draw of the countdown: exponential with mean `rate`, at least 1
 * (Go's fastexprand); rng is the thread's xorshift state. */
GCM_HIDDEN int64_t gcm__prof_draw(uint64_t *rng, int64_t rate);
/* Go's scaleHeapSample: the unbiased estimate of what `count` sampled
 * objects totalling `bytes` stand for at `rate`. */
GCM_HIDDEN void gcm__prof_unbias(uint64_t count, uint64_t bytes, int64_t rate,
                                 uint64_t *ucount, uint64_t *ubytes);
/* Internal memory for the profiler (mimalloc; never malloc). */
GCM_HIDDEN void *gcm__prof_alloc(size_t n);
GCM_HIDDEN void *gcm__prof_realloc(void *p, size_t n);
GCM_HIDDEN void gcm__prof_dealloc(void *p);
/* Grows the array *p of *cap elements of `elem` bytes to hold at least
 * `need`, doubling from 64.  false when memory is short or the size would
 * overflow; *p and *cap are then unchanged. */
GCM_HIDDEN bool gcm__prof_grow(void **p, size_t *cap, size_t need, size_t elem);

/* prof_index.c: the profile writers' hash indexes (open addressing, at
 * most half full, memory from gcm__prof_alloc). */
typedef struct gcm__u64map {
    uint64_t *k, *v;
    size_t cap, n;
} gcm__u64map;
/* true when key (non-zero) is present; its value in *val. */
GCM_HIDDEN bool gcm__u64map_get(const gcm__u64map *m, uint64_t key, uint64_t *val);
/* Adds key (non-zero, not present) with val; false when memory is short. */
GCM_HIDDEN bool gcm__u64map_put(gcm__u64map *m, uint64_t key, uint64_t val);
GCM_HIDDEN void gcm__u64map_free(gcm__u64map *m);
/* The hash of entry i of the caller's array (its low bits pick the slot). */
typedef uint64_t (*gcm__index_hash)(const void *ctx, size_t i);
/* Makes room in *tab (*cap slots, each an entry number + 1, 0 = empty) for
 * one more entry after entries 0..n-1, rebuilding at twice the capacity
 * (min_cap the first time, a power of two) with hash.  The caller probes
 * from hash & (*cap - 1) and compares entries itself.  false when memory
 * is short; *tab and *cap are then unchanged. */
GCM_HIDDEN bool gcm__index_reserve(uint32_t **tab, size_t *cap, size_t n,
                                   size_t min_cap, gcm__index_hash hash,
                                   const void *ctx);
/* Memory that lives as long as the process (buckets, names): carved from
 * mapped chunks, counted as non-GC memory. */
GCM_HIDDEN void *gcm__prof_perm_alloc(size_t n);

/* prof_stack.c: captures return addresses, innermost first, starting at
 * the frame that returns to `caller` (when found; otherwise after the
 * profiler's own frames).  Returns the depth (0 if none). */
GCM_HIDDEN int gcm__stack_capture(uintptr_t *pcs, int max, const void *caller);
/* Runs fn(arg) where a capture runs libunwind, behind the fork gate: a
 * fork waits for it to return; false, fn not run, while a fork is under
 * way.  For the tests. */
GCM_HIDDEN bool gcm__stack_gated(void (*fn)(void *), void *arg);
/* Captures that walked the frame pointers instead of entering libunwind
 * because a fork was under way; cumulative (a forked child starts from its
 * parent's count).  Always 0 in a GCMALLOC_UNWIND=fp build, where every
 * capture walks them.  For the tests. */
GCM_HIDDEN uint64_t gcm__stack_fork_fallbacks(void);
GCM_HIDDEN const char *gcm__stack_method(void);
/* An address in the unwinder library's code (libunwind), or NULL in a
 * frame-pointer build: the preload library tells its mappings apart. */
GCM_HIDDEN const void *gcm__unwinder_code(void);
/* Bytes of stack left below the caller on its thread (the mapping that
 * holds its stack, from /proc/self/maps, cached per thread); 0 when not
 * known.  For work whose stack use grows with its input (the demangler). */
GCM_HIDDEN size_t gcm__stack_room(void);

/* prof_bucket.c: one bucket per (stack, kind, name). */
typedef struct gcm__prof_counts {
    uint64_t allocs, alloc_bytes, frees, free_bytes;
} gcm__prof_counts;
/* A bucket's four profile values at `rate`, unbiased as Go's are:
 * alloc_objects, alloc_space, inuse_objects, inuse_space (in use clamped
 * at 0: a published free can precede its allocation's publication by a
 * cycle). */
enum { GCM_V_ALLOC_N, GCM_V_ALLOC_B, GCM_V_INUSE_N, GCM_V_INUSE_B };
GCM_HIDDEN void gcm__prof_values(const gcm__prof_counts *c, int64_t rate,
                                 uint64_t v[4]);

typedef struct gcm__bucket {
    struct gcm__bucket *next;  /* hash chain                            */
    struct gcm__bucket *all;   /* every bucket, newest first            */
    uint64_t hash;
    uint32_t id;               /* 1-based, in order of creation         */
    uint16_t depth;
    uint8_t kind;              /* gcm__prof_kind                        */
    uint8_t collected;         /* on the collected heap (GC, COLLECTED) */
    const char *name;          /* interned label, or NULL               */
    /* Published counts.  Collected objects: as of the last completed
     * cycle; others: exact.  Each under its table's lock. */
    gcm__prof_counts active;
    /* Collected objects: events since the last cycle, by cycle parity. */
    gcm__prof_counts pend[2];
    /* prof_leak.c's per-site history (under its lock). */
    uint64_t leak_last;        /* in-use bytes at the last snapshot     */
    uint64_t leak_from;        /* in-use bytes when the streak began    */
    int64_t leak_since_ns;     /* when the streak began                 */
    int64_t leak_until_ns;     /* when it was found a suspect           */
    uint32_t leak_streak;      /* consecutive snapshots that grew       */
    uint8_t leak_state;        /* 0 watching, 1 to report, 2 reported   */
    uintptr_t pcs[];           /* return addresses, innermost first     */
} gcm__bucket;

/* The bucket for this stack, kind (with GCM_PROF_COLLECTED) and name,
 * created on first use; NULL when out of memory or for a bad kind. */
GCM_HIDDEN gcm__bucket *gcm__bucket_intern(const uintptr_t *pcs, int depth,
                                           unsigned kind, const char *name);
/* Newest bucket (follow ->all for the rest); acquire-ordered. */
GCM_HIDDEN gcm__bucket *gcm__bucket_list(void);
GCM_HIDDEN size_t gcm__bucket_count(void);
GCM_HIDDEN const char *gcm__prof_kind_name(gcm__prof_kind k);
/* fork(): phase 0 takes the module's locks (prepare), 1 releases them
 * (parent), 2 makes them anew (child).  Registered by gcm__prof_init in
 * lock order. */
GCM_HIDDEN void gcm__bucket_fork(int phase);
GCM_HIDDEN void gcm__sampled_fork(int phase);
GCM_HIDDEN void gcm__leak_fork(int phase);

/* prof_sampled.c: the sampled objects, and publication as of a cycle. */
/* Hooks into the collector (reclaim start/end); called by gcm__prof_init. */
GCM_HIDDEN void gcm__sampled_init(void);
/* Accounts an allocation in b and remembers p (false: out of memory). */
GCM_HIDDEN bool gcm__sampled_add(void *p, size_t bytes, gcm__bucket *b);
/* Accounts events for an object no table holds (arena lists). */
GCM_HIDDEN void gcm__sampled_count(gcm__bucket *b, size_t bytes, bool alloc);
/* Objects currently remembered (both tables). */
GCM_HIDDEN size_t gcm__sampled_live(void);
/* Rebuilds of the two tables so far (tests check they stay amortized). */
GCM_HIDDEN uint64_t gcm__sampled_rebuilds(void);
/* Cycles whose GC-heap counts have been published. */
GCM_HIDDEN uint64_t gcm__sampled_cycles(void);

/* A consistent copy of every bucket's published counts. */
typedef struct gcm__prof_rec {
    gcm__bucket *b;
    gcm__prof_counts c;
} gcm__prof_rec;
typedef struct gcm__prof_snap {
    gcm__prof_rec *recs;
    size_t n;
    int64_t rate;       /* the sampling rate when taken */
    int64_t time_ns;    /* wall clock when taken        */
} gcm__prof_snap;
/* Fills s (0) or returns ENOMEM; release with gcm__prof_snap_free. */
GCM_HIDDEN int gcm__prof_snap_take(gcm__prof_snap *s);
GCM_HIDDEN void gcm__prof_snap_free(gcm__prof_snap *s);

/* prof_symbol.c: in-process symbolization and the map of loaded objects.
 * The modes are GCMALLOC_PROFILE_SYMBOLS's words, in the table's order. */
typedef enum gcm__sym_mode {
    GCM_SYM_AUTO,      /* lines after a second of run time, functions before */
    GCM_SYM_LINES,     /* DWARF: function, file, line, inlined frames      */
    GCM_SYM_FUNCTIONS, /* symbol tables: function names only               */
    GCM_SYM_NONE,      /* addresses only                                   */
} gcm__sym_mode;
/* The mode of a profile for `option` (a GCMALLOC_PROFILE_SYMBOLS value)
 * in a process that has run ran_ns, writes a series of profiles or not,
 * and has the DWARF read already or not: never GCM_SYM_AUTO.  Pure; for
 * the tests. */
GCM_HIDDEN gcm__sym_mode gcm__sym_mode_pick(int64_t option, int64_t ran_ns,
                                            bool in_series, bool dwarf_loaded);
/* Says the process writes profiles as it runs (interval and signal dumps,
 * the endpoint), to be compared with one another: auto is lines from the
 * first. */
GCM_HIDDEN void gcm__sym_series(void);
/* How long this process has run, for auto: since the library started, or
 * since the fork that made it. */
GCM_HIDDEN int64_t gcm__sym_ran_ns(void);
/* The mode a profile written now uses (the option, auto decided). */
GCM_HIDDEN gcm__sym_mode gcm__sym_mode_now(void);
/* The mode of text reports and the symbol endpoint, which nothing can
 * symbolize later: auto is lines, none is functions. */
GCM_HIDDEN gcm__sym_mode gcm__sym_mode_text(void);
/* true once libbacktrace has been asked anything (and so has read the
 * DWARF of every loaded object): the tests' witness that the cheaper
 * modes never do. */
GCM_HIDDEN bool gcm__sym_dwarf_loaded(void);
typedef struct gcm__sym_frame {
    const char *function; /* NULL when unknown */
    const char *file;     /* NULL when unknown */
    int line;             /* 0 when unknown    */
} gcm__sym_frame;
/* Resolves the instruction at pc as `mode` allows (a mode picked already,
 * never GCM_SYM_AUTO: every address of one profile or report is named the
 * same way): up to max frames, an inlined callee before its caller (only
 * lines knows files, lines and inlined frames; none knows nothing).  Returns the count (0: nothing
 * known).  Strings live as long as the process.  Thread-safe. */
GCM_HIDDEN int gcm__sym_resolve(gcm__sym_mode mode, uintptr_t pc,
                                gcm__sym_frame *out, int max);
/* The longest mangled name gcm__demangle reads, and the stack it wants
 * free for a name of len characters (its parse: up to ~110 bytes a
 * character, measured, plus its frames and the caller's margin). */
#define GCM_DEMANGLE_MAX 1024
#define GCM_DEMANGLE_STACK(len) ((size_t)16384 + (size_t)128 * (len))
/* A C++ (Itanium ABI) mangled name as pprof shows it by default: qualified,
 * without parameters or template arguments (app::Cache::put).  Writes it
 * to buf (cap bytes, NUL included) and returns its length; 0 when name is
 * not a mangled name, is longer than GCM_DEMANGLE_MAX, would need more of
 * this thread's stack than is left, or does not fit.
 * Allocates nothing (prof_demangle.c). */
GCM_HIDDEN size_t gcm__demangle(const char *name, char *buf, size_t cap);
/* name demangled into buf as gcm__demangle does, or name itself when it
 * does not demangle: for text reports, which name functions as profiles
 * do. */
GCM_HIDDEN const char *gcm__demangled(const char *name, char *buf, size_t cap);
/* How many of a stack's innermost return addresses are in gcmalloc's
 * public headers' inline code, compiled as functions of their own (an -O0
 * program's gcm_arena_alloc): part of the call into gcmalloc, left out of
 * profiles.  Symbolizes them as `mode` allows (none: 0); for writers, not
 * for the allocation path. */
GCM_HIDDEN int gcm__sym_api_frames(gcm__sym_mode mode, const uintptr_t *pcs,
                                   int depth);
/* fork(): the module's locks (leaves: nothing is taken under them but
 * mimalloc's and the dynamic loader's). */
GCM_HIDDEN void gcm__sym_fork(int phase);
struct dl_phdr_info;
/* The hex GNU build-id of a loaded object ("" if none), from its notes in
 * memory. */
GCM_HIDDEN void gcm__phdr_build_id(const struct dl_phdr_info *info, char *out,
                                   size_t cap);

/* prof_symtab.c: function names from ELF symbol tables (the object's
 * .symtab, its debug file's, found by build-id or .gnu_debuglink, or its
 * .dynsym), read per object on first use; no DWARF. */
typedef struct gcm__symtab_hit {
    const char *name;  /* lives as long as the process */
    bool local;        /* a static (STB_LOCAL) function */
} gcm__symtab_hit;
/* The function symbol containing pc, if any.  Thread-safe. */
GCM_HIDDEN bool gcm__symtab_lookup(uintptr_t pc, gcm__symtab_hit *out);
/* ELF files opened so far (objects and debug files): for the tests. */
GCM_HIDDEN unsigned gcm__symtab_files_read(void);
GCM_HIDDEN void gcm__symtab_fork(int phase);

typedef struct gcm__mapping {
    uintptr_t start, limit, offset; /* executable segment, page-aligned */
    char path[512];
    char build_id[68];              /* hex GNU build-id, "" if none     */
} gcm__mapping;
/* The executable segments of every loaded object, main executable first.
 * Returns how many (*out from gcm__prof_alloc), or -1 when out of memory. */
GCM_HIDDEN int gcm__mappings_read(gcm__mapping **out);

/* pprof.c: writes s as a gzipped profile.proto to fd (0 or an errno
 * value).  allocs = the "allocs" view (default sample type alloc_space). */
GCM_HIDDEN int gcm__pprof_write(int fd, const gcm__prof_snap *s, bool allocs);
/* The same with an optional base taken earlier: with one, a delta profile
 * (Go's ?seconds=N): each sample's values are s's minus base's (in-use ones
 * may be negative), unchanged samples are dropped, and duration_nanos is
 * s->time_ns - base->time_ns.  base NULL: exactly gcm__pprof_write. */
GCM_HIDDEN int gcm__pprof_write_delta(int fd, const gcm__prof_snap *s,
                                      const gcm__prof_snap *base, bool allocs);
/* Text size as pprof prints it ("1.50MB"). */
GCM_HIDDEN size_t gcm__fmt_bytes(char *buf, size_t cap, uint64_t v);

/* prof_report.c: a text top-n by in-use and allocated space (pprof -top). */
GCM_HIDDEN int gcm__prof_report(int fd, const gcm__prof_snap *s, int top);

/* prof_leak.c: leak suspects across snapshots. */
GCM_HIDDEN void gcm__leak_init(int64_t snapshots, int64_t min_growth);
/* Feeds a snapshot; returns how many sites became suspects. */
GCM_HIDDEN int gcm__leak_observe(const gcm__prof_snap *s, int64_t now_ns);
/* Prints the suspects not yet reported (symbolized) to fd. */
GCM_HIDDEN int gcm__leak_report(int fd);

/* prof_dump.c: dumps at exit, on a signal, at an interval. */
GCM_HIDDEN void gcm__prof_dump_init(void);
/* Writes the profile the options ask for to path (0 or errno value). */
GCM_HIDDEN int gcm__prof_write_path(const char *path, bool allocs);
/* Asks the profiler's thread to report leak suspects. */
GCM_HIDDEN void gcm__prof_dump_wake(void);

/* pprof_http.c: the live /debug/pprof HTTP endpoint.  Start-up (init.c)
 * reads GCMALLOC_PPROF_ADDR; the server itself starts from a constructor,
 * when threads are safe to make. */
GCM_HIDDEN void gcm__pprof_http_init(void);
/* fork(): the child closes the endpoint's sockets (it has no server
 * thread); no locks are involved. */
GCM_HIDDEN void gcm__pprof_http_fork(int phase);

/* ------------------------------------------------------------------------
 * The preload library (src/preload*.c; only in libgcmalloc-preload.so).
 * ---------------------------------------------------------------------- */
/* Fills the preload fields of MemStats; set by the preload library at
 * start-up, NULL in the plain library. */
struct gcm_memstats;
GCM_HIDDEN extern void (*gcm__memstats_preload)(struct gcm_memstats *ms);
/* Set by the preload library (preload_maps.c): the range of a mapping the
 * program made that holds p; false when none does.  gc_stacks.c asks it
 * whether a thread runs on a stack of the program's own. */
GCM_HIDDEN extern bool (*gcm__program_region)(uintptr_t p, uintptr_t *lo, uintptr_t *hi);
/* GCMALLOC_MODE values. */
enum { GCM_MODE_FAST, GCM_MODE_LEAKCHECK, GCM_MODE_GC };
/* preload_maps.c: the program's own anonymous mappings, scanned as roots in
 * the collected modes. */
GCM_HIDDEN void gcm__maps_init(void);
GCM_HIDDEN size_t gcm__maps_count(void);
/* preload_tsd.c: pthread_setspecific values shadowed in scanned memory in
 * the collected modes (glibc keeps them where the collector cannot see). */
GCM_HIDDEN void gcm__tsd_init(void);
/* preload_leak.c: leakcheck mode's tracking.  Every leakcheck object has
 * a GCM_LC_HEADER-byte header in front of the pointer malloc returns. */
#define GCM_LC_HEADER 16
GCM_HIDDEN void gcm__lc_init(void);
/* Fills p's header (obj: the collected object, from gcm__gc_alloc) and,
 * if tracked, enters it in the tracking array. */
GCM_HIDDEN void gcm__lc_track(void *p, const gcm__gc_obj *obj, size_t size,
                              bool tracked);
/* Takes p out of the array.  RELEASED: p was tracked (the program's) and
 * obj says what to free; UNTRACKED: p was never tracked (free it as any
 * collected object); INVALID: p's header names no slot holding p, so p was
 * freed already or never came from malloc (free must leave it alone). */
typedef enum { GCM_LC_RELEASED, GCM_LC_UNTRACKED, GCM_LC_INVALID } gcm__lc_state;
GCM_HIDDEN gcm__lc_state gcm__lc_release(void *p, gcm__gc_obj *obj);
GCM_HIDDEN void *gcm__lc_base(void *p);
GCM_HIDDEN size_t gcm__lc_size(void *p);
/* realloc in place: p's size as asked becomes n. */
GCM_HIDDEN void gcm__lc_resize(void *p, size_t n);
GCM_HIDDEN void gcm__lc_totals(uint64_t *objects, uint64_t *bytes);
/* An object a cycle found unreachable: where, and the bytes asked for. */
typedef struct gcm__leaked {
    void *p;
    size_t size;
} gcm__leaked;
/* preload_report.c: reports what a cycle found unreachable (n objects,
 * `bytes` in all), by allocation site, and keeps the totals for the
 * GCMALLOC_LEAKS profile and the exit report. */
GCM_HIDDEN void gcm__lc_report_found(uint64_t cycle, const gcm__leaked *objs,
                                     size_t n, uint64_t bytes);
GCM_HIDDEN void gcm__lc_report_exit(void);

/* ------------------------------------------------------------------------
 * Spin locks (src/lock.c) for critical sections of a few instructions.
 *
 * Not pthread mutexes: a thread waiting for one must stay able to take the
 * collector's stop-the-world signal, and under ThreadSanitizer a thread
 * blocked in pthread_mutex_lock cannot (TSan defers the signal until the
 * call returns, llvm-project#83561), so a waiter here spins, yields, and
 * then sleeps in nanosleep, where TSan delivers signals at once.
 * ---------------------------------------------------------------------- */
typedef struct gcm__lock {
    int v;
} gcm__lock;
#define GCM_LOCK_INIT {0}
GCM_HIDDEN void gcm__lock_wait(gcm__lock *l);
static inline void gcm__lock_acquire(gcm__lock *l)
{
    if (GCM_UNLIKELY(__atomic_exchange_n(&l->v, 1, __ATOMIC_ACQUIRE)))
        gcm__lock_wait(l);
}
static inline bool gcm__lock_try(gcm__lock *l)
{
    return !__atomic_load_n(&l->v, __ATOMIC_RELAXED) &&
           !__atomic_exchange_n(&l->v, 1, __ATOMIC_ACQUIRE);
}
static inline void gcm__lock_release(gcm__lock *l)
{
    __atomic_store_n(&l->v, 0, __ATOMIC_RELEASE);
}
/* One step of a spin-wait: pause, then yield, then sleep (up to 1 ms) as
 * *round grows.  Start with round = 0. */
GCM_HIDDEN void gcm__backoff(unsigned *round);

/* mimalloc is not built with ThreadSanitizer, so TSan cannot see that a
 * block freed on one thread is handed out again on another only after the
 * free, and reports the new owner's first writes as racing with the old
 * owner's last accesses.  Callers of mi_free / mi_*alloc call these around
 * them to supply that edge (one sync object for every block, as mimalloc
 * may reuse any part of a block for any later one).  No-ops without TSan. */
#if defined(__SANITIZE_THREAD__)
#include <sanitizer/tsan_interface.h>
GCM_HIDDEN extern int gcm__tsan_heap;
static inline void gcm__tsan_freeing(void) { __tsan_release(&gcm__tsan_heap); }
static inline void gcm__tsan_allocated(void) { __tsan_acquire(&gcm__tsan_heap); }
#else
static inline void gcm__tsan_freeing(void) {}
static inline void gcm__tsan_allocated(void) {}
#endif

/* ------------------------------------------------------------------------
 * Pointer sets (src/ptrset.c): a locked hash map from pointers to sizes,
 * for knowing for certain which pointers we handed out.  Zero-initialized
 * is empty.
 * ---------------------------------------------------------------------- */
typedef struct gcm__ptrset_entry {
    uintptr_t key; /* 0 = empty */
    size_t val;
} gcm__ptrset_entry;
typedef struct gcm__ptrset {
    gcm__lock mu;
    size_t cap, n;
    gcm__ptrset_entry *e;
} gcm__ptrset;
/* Adds or replaces p; false when out of memory (or p is NULL). */
GCM_HIDDEN bool gcm__ptrset_add(gcm__ptrset *s, const void *p, size_t val);
/* Whether p is in the set (and its value). */
GCM_HIDDEN bool gcm__ptrset_get(gcm__ptrset *s, const void *p, size_t *val);
/* Removes p; false if it was not there. */
GCM_HIDDEN bool gcm__ptrset_take(gcm__ptrset *s, const void *p, size_t *val);
GCM_HIDDEN size_t gcm__ptrset_count(gcm__ptrset *s);
/* Frees the table (the set is empty and usable again). */
GCM_HIDDEN void gcm__ptrset_destroy(gcm__ptrset *s);

/* ------------------------------------------------------------------------
 * Pools (src/pool.c), their size classes (src/sizeclass.c, table generated
 * into src/sizeclasses.h) and buffers (src/buf.c, memory in src/bufmem.c).
 * ---------------------------------------------------------------------- */
#define GCM_SC_MAX 32768 /* largest buffer class (checked against the table) */
#define GCM_SC_COUNT 104 /* classes, numbered 1..GCM_SC_COUNT; 0 = none    */
#define GCM_SC_SMALL_MAX 1024 /* the lookup: by byte up to here,         */
#define GCM_SC_LARGE_STEP 128 /* by 128 bytes above (sizeclass.c)        */

/* The generated lookup tables (sizeclasses.h, through sizeclass.c). */
GCM_HIDDEN extern const uint8_t gcm__sc_small[GCM_SC_SMALL_MAX + 1];
GCM_HIDDEN extern const uint8_t gcm__sc_large[GCM_SC_MAX / GCM_SC_LARGE_STEP + 1];

/* The class serving n bytes (0 when n is above GCM_SC_MAX); 0 bytes are
 * served as 1.  Inline: it is on every gcm_buf_get. */
static inline unsigned gcm__size_class(size_t n)
{
    if (n <= GCM_SC_SMALL_MAX)
        return gcm__sc_small[n == 0 ? 1 : n];
    if (n <= GCM_SC_MAX)
        return gcm__sc_large[(n + GCM_SC_LARGE_STEP - 1) / GCM_SC_LARGE_STEP];
    return 0;
}
/* Bytes of class c; bytes of a chunk of class c and buffers in it (0 for a
 * class that does not exist). */
GCM_HIDDEN size_t gcm__class_bytes(unsigned c);
GCM_HIDDEN size_t gcm__class_chunk_bytes(unsigned c);
GCM_HIDDEN uint32_t gcm__class_objects(unsigned c);

/* Where a pool's objects come from.  Typed pools use the collected heap or
 * mimalloc; buffer pools the class chunks of bufmem.c. */
typedef struct gcm__pool_backend {
    /* Storage for a new object, zeroed; NULL with errno set. */
    void *(*alloc)(gcm_pool *p, void *arg);
    /* Takes back a released object's storage. */
    void (*release)(gcm_pool *p, void *obj, void *arg);
    void *arg;
} gcm__pool_backend;
/* A pool on a backend of the library's own (no debug header: the backend's
 * owner checks misuse itself). */
GCM_HIDDEN gcm_pool *gcm__pool_new_backend(const gcm_pool_options *o,
                                           const gcm__pool_backend *be);
/* gcm_pool_get and gcm_pool_put under hidden names, so calls from inside
 * the shared library bind locally (no PLT). */
GCM_HIDDEN void *gcm__pool_get(gcm_pool *p);
/* gcm_pool_get for another entry point (gcm_buf_get): `caller` is its
 * caller's return address (GCM_PROF_CALLER()), where a miss's profile
 * stack starts and misuse is reported. */
GCM_HIDDEN void *gcm__pool_get_for(gcm_pool *p, const void *caller);
GCM_HIDDEN void gcm__pool_put(gcm_pool *p, void *x);
/* The MemStats fields of pools (all pools, live and destroyed). */
GCM_HIDDEN void gcm__pool_memstats(struct gcm_memstats *ms);
/* Runs the pools' GC-cycle rotation as a finished cycle would (the cycle
 * hook calls it; threaded tests under TSan may call it directly). */
GCM_HIDDEN void gcm__pool_rotate(void);
/* Prints one line per pool that was used (GCMALLOC_POOLSTATS). */
GCM_HIDDEN void gcm__pool_print_stats(void);

/* bufmem.c: class chunks.  A buffer's chunk is found from its address. */
typedef struct gcm__bchunk gcm__bchunk;
/* A free buffer of class c (contents undefined); NULL with errno. */
GCM_HIDDEN void *gcm__bufmem_alloc(unsigned c);
GCM_HIDDEN void gcm__bufmem_release(void *buf);
/* The map from 64 KiB units to chunks (bufmem.c's essay): an entry packs
 * the chunk's descriptor (bits 0..47), its class (48..55) and the unit's
 * index in the chunk (56..60); and per-class constants.  Inline because
 * every gcm_buf_put asks. */
#define GCM_BUFMAP_UNIT_SHIFT 16
#define GCM_BUFMAP_LEAF_BITS 16
#define GCM_BUFMAP_TOP_BITS 15
#define GCM_BUFMAP_DIV_SHIFT 44
#define GCM_BUFMAP_PTR_MASK (((uintptr_t)1 << 48) - 1)
GCM_HIDDEN extern uintptr_t *gcm__bufmap_top[(size_t)1 << GCM_BUFMAP_TOP_BITS];
GCM_HIDDEN extern uint32_t gcm__bufclass_size[GCM_SC_COUNT + 1];
GCM_HIDDEN extern uint32_t gcm__bufclass_objs[GCM_SC_COUNT + 1];
GCM_HIDDEN extern uint64_t gcm__bufclass_mul[GCM_SC_COUNT + 1];

/* The class of the chunk holding p, or 0 when p is in none; *start is set
 * to the start of the buffer p points into (NULL in a chunk's tail). */
static inline unsigned gcm__bufmem_class_of(const void *p, void **start)
{
    uintptr_t a = (uintptr_t)p, e = 0;
    if (GCM_LIKELY((a >> (GCM_BUFMAP_UNIT_SHIFT + GCM_BUFMAP_LEAF_BITS +
                          GCM_BUFMAP_TOP_BITS)) == 0)) {
        uintptr_t *leaf = __atomic_load_n(
            &gcm__bufmap_top[a >> (GCM_BUFMAP_UNIT_SHIFT + GCM_BUFMAP_LEAF_BITS)],
            __ATOMIC_ACQUIRE);
        if (leaf != NULL)
            e = __atomic_load_n(&leaf[(a >> GCM_BUFMAP_UNIT_SHIFT) &
                                      ((1u << GCM_BUFMAP_LEAF_BITS) - 1)],
                                __ATOMIC_ACQUIRE);
    }
    if (e == 0) {
        *start = NULL;
        return 0;
    }
    /* From the entry alone: the chunk's base, then the buffer's index
     * (a multiply and a shift: see bufmem.c's DIV_SHIFT). */
    unsigned cls = (unsigned)(e >> 48) & 0xff;
    uintptr_t base = (a & ~(((uintptr_t)1 << GCM_BUFMAP_UNIT_SHIFT) - 1)) -
                     (((e >> 56) & 0x1f) << GCM_BUFMAP_UNIT_SHIFT);
    uint32_t i = (uint32_t)(((a - base) * gcm__bufclass_mul[cls]) >>
                            GCM_BUFMAP_DIV_SHIFT);
    *start = i < gcm__bufclass_objs[cls]
                 ? (void *)(base + (uintptr_t)i * gcm__bufclass_size[cls])
                 : NULL;
    return cls;
}
/* Debug mode: flips the "cached" mark of buffer b (its start) to `cached`
 * and returns the mark it had. */
GCM_HIDDEN bool gcm__bufmem_mark(void *b, bool cached);
/* Bytes of chunk memory mapped. */
GCM_HIDDEN uint64_t gcm__bufmem_bytes(void);
/* The index of the buffer at byte `off` of a chunk of class cls, as
 * computed on every put (a multiply and a shift; exposed for the tests). */
GCM_HIDDEN uint32_t gcm__bufmem_index(unsigned cls, size_t off);

/* ------------------------------------------------------------------------
 * fork(): init.c holds every module's locks across it, in one order.
 * Each module's handler takes its locks on PREPARE, releases them on
 * PARENT, and makes them usable again on CHILD (where only the forking
 * thread exists).  See the order and its reasons in init.c.
 * ---------------------------------------------------------------------- */
enum { GCM_FORK_PREPARE, GCM_FORK_PARENT, GCM_FORK_CHILD };
/* The whole handler of a module whose state across fork is one mutex:
 * lock on PREPARE, unlock on PARENT, made anew on CHILD (a mutex the
 * forking thread locked is not safe to unlock in the child). */
GCM_HIDDEN void gcm__fork_mutex(pthread_mutex_t *mu, int phase);
/* The same for a module with several: locked in the order given (the
 * order the module takes them in), unlocked in the reverse. */
GCM_HIDDEN void gcm__fork_mutexes(pthread_mutex_t *const *mus, int n, int phase);
GCM_HIDDEN void gcm__gc_fork_outer(int phase);  /* the cycle lock        */
GCM_HIDDEN void gcm__gc_fork_inner(int phase);  /* bdwgc's own           */
/* No lock of its own (its descriptor is used under the cycle lock): on
 * CHILD, when GCMALLOC_GCTRACE's path has %p, closes the inherited
 * descriptor; the child's first trace line opens its own file. */
GCM_HIDDEN void gcm__gctrace_fork(int phase);
GCM_HIDDEN void gcm__chunk_fork(int phase);
GCM_HIDDEN void gcm__pool_fork_outer(int phase); /* the rotation's lock */
GCM_HIDDEN void gcm__pool_fork_inner(int phase); /* registry and locals */
GCM_HIDDEN void gcm__buf_fork(int phase);
GCM_HIDDEN void gcm__bufmem_fork(int phase);
GCM_HIDDEN void gcm__thread_join_fork(int phase);
GCM_HIDDEN void gcm__prof_fork(int phase);
GCM_HIDDEN void gcm__prof_dump_fork(int phase);
/* Waits until no capture is inside libunwind (prof_stack.c). */
GCM_HIDDEN void gcm__stack_fork(int phase);
GCM_HIDDEN void gcm__stats_fork(int phase);
GCM_HIDDEN void gcm__thread_fork(int phase);
/* The preload library's tables (NULL in the plain library). */
GCM_HIDDEN extern void (*gcm__preload_fork)(int phase);
GCM_HIDDEN void gcm__lc_fork(int phase);
GCM_HIDDEN void gcm__lc_report_fork(int phase);
GCM_HIDDEN void gcm__maps_fork(int phase);

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
