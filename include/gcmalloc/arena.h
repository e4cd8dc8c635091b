/*
 * gcmalloc/arena.h — request-scoped arenas.
 *
 * Why arenas.  Most of what a service allocates while it handles a request
 * dies when the request ends.  Freeing each object one by one costs time on
 * every free and invites leaks and double frees; collecting them costs a
 * mark of the live heap.  An arena makes the lifetime explicit: create one
 * when the request starts, allocate everything the request needs from it
 * with a pointer bump, and release it all at once when the request ends —
 * memory and cleanups (close a file, unlock, return a pool object)
 * together.  This is Apache's APR pool, Samba's talloc pool, nginx's
 * request pool and Go's arena experiment.  See docs/arenas.md for when to
 * use one and when not to.
 *
 * Threads.  An arena is not thread-safe: it is used by one thread at a
 * time (APR's rule for its pools).  It may move between threads — created
 * on one, handed to a worker, freed on a third — as long as the hand-over
 * synchronizes (a mutex, a queue).  Different arenas on different threads
 * never contend: each thread keeps its own cache of free chunks.
 *
 * Scan and noscan.  A `scan` arena (the default) may hold pointers into the
 * collected heap: the collector scans the arena's allocated memory, so a
 * gcm_malloc'd object referenced only from the arena stays alive until the
 * arena is reset, rewound past it or freed.  A `noscan` arena holds plain
 * data only (strings, numbers, pointers into non-collected memory): the
 * collector ignores it, which makes marking cheaper, and a collected object
 * referenced only from it may be reclaimed.
 *
 * Memory.  Arenas carve allocations out of chunks (64 KiB by default,
 * GCMALLOC_ARENA_CHUNK) obtained from mimalloc, never from malloc.  An
 * allocation larger than a quarter of the chunk size gets a chunk of its
 * own.  Allocated memory is not zeroed (gcm_arena_calloc zeroes).  Nothing
 * is freed one object at a time: memory comes back on gcm_arena_reset,
 * gcm_arena_rewind and gcm_arena_free.
 *
 * Errors.  Allocation calls return NULL with errno = ENOMEM when memory is
 * short or a size overflows, EINVAL for a bad argument (a NULL arena, an
 * alignment that is not a power of two).  Control calls return 0 or an
 * errno value.  Nothing aborts.
 */
#ifndef GCMALLOC_ARENA_H
#define GCMALLOC_ARENA_H

#include <stdarg.h>

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* An arena.  Opaque; create with gcm_arena_new, release with gcm_arena_free. */
typedef struct gcm_arena gcm_arena;

/* Options for gcm_arena_new.  A zeroed struct (or NULL) means defaults. */
typedef struct gcm_arena_options {
    /* Bytes per chunk, header included; rounded up to a power of two from
     * 4 KiB to 64 MiB.  0 = GCMALLOC_ARENA_CHUNK (default 64 KiB).  Larger
     * chunks mean fewer trips to the chunk cache and room for larger
     * allocations inline; each live arena holds at least one chunk. */
    size_t chunk_size;
    /* A name for statistics and diagnostics ("arena" if NULL); copied, up to
     * 31 bytes. */
    const char *name;
    /* Nonzero: the arena holds no pointers into the collected heap and is
     * not scanned by the collector.  0 (the default): scanned. */
    int noscan;
} gcm_arena_options;

/* A savepoint taken by gcm_arena_mark.  Its contents are private; copy it
 * freely, pass it only to gcm_arena_rewind of the same arena. */
struct gcm_arena_mark {
    uint64_t opaque_[10];
};

/* What an arena holds, for tests and monitoring (talloc's
 * talloc_total_size, with the chunks and the waste shown). */
struct gcm_arena_stats {
    const char *name;    /* the arena's name (valid while the arena is)     */
    size_t requested;    /* bytes asked for by the allocations it holds      */
    size_t used;         /* bytes of chunk space they occupy: requested, plus
                            rounding to 16 bytes, alignment padding and the
                            cleanups' records                                */
    size_t available;    /* bytes left in the current chunk                 */
    size_t wasted;       /* tail bytes left unused in chunks the arena moved
                            past (and slack of dedicated chunks)             */
    size_t chunks;       /* chunks it holds, dedicated ones included        */
    size_t chunk_bytes;  /* their size, headers included                     */
    size_t chunk_size;   /* the size of its regular chunks                   */
    size_t cleanups;     /* cleanups registered and not yet run              */
    int scan;            /* 1 if the collector scans it                      */
};

/* Creates an arena.  opts == NULL means defaults.  Returns NULL with errno
 * = EINVAL when opts->chunk_size exceeds 64 MiB, ENOMEM when memory is
 * short. */
GCM_API GCM_ATTR_WARN_UNUSED gcm_arena *gcm_arena_new(const gcm_arena_options *opts);

/* Runs the arena's cleanups (newest first), then releases all its memory
 * and the arena itself.  gcm_arena_free(NULL) does nothing. */
GCM_API void gcm_arena_free(gcm_arena *a);

/* Runs the cleanups (newest first) and releases every allocation, keeping
 * the arena and its first chunk for reuse: the next request on a reset
 * arena does not touch the chunk cache at all.  Returns 0, EINVAL for a
 * NULL arena, EBUSY from inside one of the arena's own cleanups. */
GCM_API int gcm_arena_reset(gcm_arena *a);

/* n bytes aligned to max_align_t (16 bytes), not zeroed.  n == 0 returns a
 * unique pointer.  NULL with errno = ENOMEM when n is too large.  Inline
 * (see the end of this header); this is the same call out of line. */
GCM_API GCM_ATTR_MALLOC GCM_ATTR_ALLOC_SIZE(2) void *gcm_arena_alloc(gcm_arena *a,
                                                                     size_t n);

/* n bytes aligned to `align`, a power of two (EINVAL otherwise). */
GCM_API GCM_ATTR_MALLOC GCM_ATTR_ALLOC_SIZE(2) void *
gcm_arena_alloc_aligned(gcm_arena *a, size_t n, size_t align);

/* count × size zeroed bytes; ENOMEM when the product overflows. */
GCM_API GCM_ATTR_MALLOC GCM_ATTR_ALLOC_SIZE2(2, 3) void *
gcm_arena_calloc(gcm_arena *a, size_t count, size_t size);

/* A copy of s in the arena (EINVAL if s is NULL). */
GCM_API GCM_ATTR_MALLOC char *gcm_arena_strdup(gcm_arena *a, const char *s);

/* A copy of at most n bytes of s, always NUL-terminated. */
GCM_API GCM_ATTR_MALLOC char *gcm_arena_strndup(gcm_arena *a, const char *s,
                                                size_t n);

/* printf into the arena: the formatted string, NUL-terminated.  Formats
 * straight into the current chunk when it fits (one pass). */
GCM_API GCM_ATTR_MALLOC GCM_ATTR_FORMAT(2, 3) char *
gcm_arena_sprintf(gcm_arena *a, const char *fmt, ...);
GCM_API GCM_ATTR_MALLOC GCM_ATTR_FORMAT(2, 0) char *
gcm_arena_vsprintf(gcm_arena *a, const char *fmt, va_list ap);

/* Resizes p, an allocation of old_size bytes from this arena.  The most
 * recent allocation (since the last mark) grows or shrinks in place when
 * its chunk has room; anything else is copied to a new allocation (the old
 * bytes stay in the arena until it is reset).  p == NULL allocates.
 * Returns NULL with errno set on failure, leaving p intact. */
GCM_API GCM_ATTR_ALLOC_SIZE(4) void *gcm_arena_realloc(gcm_arena *a, void *p,
                                                       size_t old_size,
                                                       size_t new_size);

/* Takes a savepoint: gcm_arena_rewind(a, m) later undoes every allocation
 * and runs every cleanup registered after it.  Savepoints nest: rewinding
 * to one invalidates those taken after it.  Returns 0 or EINVAL. */
GCM_API int gcm_arena_mark(gcm_arena *a, struct gcm_arena_mark *m);

/* Returns the arena to the savepoint m: runs the cleanups registered since
 * (newest first) and releases the memory allocated since.  Returns 0;
 * EINVAL when m belongs to another arena or was invalidated (by a rewind to
 * an earlier savepoint, or a reset) — the arena is left untouched, and in
 * debug mode (GCMALLOC_DEBUG) a message says what and where; EBUSY from
 * inside one of the arena's own cleanups. */
GCM_API int gcm_arena_rewind(gcm_arena *a, const struct gcm_arena_mark *m);

/* Registers fn(arg) to run when the arena is reset or freed, or rewound to
 * a savepoint taken before this call.  Cleanups run newest first, on the
 * thread that resets, rewinds or frees.  A cleanup may allocate from the
 * arena and register more cleanups (they run in the same pass) but must
 * not reset, rewind or free it.  The record lives in the arena.  Returns 0,
 * EINVAL (NULL arena or fn), ENOMEM; in debug mode EEXIST, with a message,
 * when the same fn and arg are already registered. */
GCM_API int gcm_arena_add_cleanup(gcm_arena *a, void (*fn)(void *arg),
                                  void *arg);

/* Fills *st.  Returns 0, or EINVAL when a or st is NULL.  Walks the arena's
 * chunks: cheap, but not for the allocation path. */
GCM_API int gcm_arena_stats(const gcm_arena *a, struct gcm_arena_stats *st);

/* --- the inline fast path ---------------------------------------------------
 *
 * gcm_arena_alloc(a, n) is a pointer bump done inline in the caller, as
 * stdio's getc_unlocked reads its buffer inline: a loop of allocations then
 * costs a few instructions each instead of a call each (measured in
 * docs/performance.md).  The arena stays opaque; the inline code reads and
 * writes only this prefix of it.  Its layout is part of the library's ABI
 * (changing it changes the soname), not of its API: use the functions
 * above, never these fields.  The library lowers `limit` below the end of
 * the chunk whenever it wants every allocation to reach it (an
 * AddressSanitizer build does, to unpoison each one).  Define
 * GCMALLOC_NO_INLINE before including gcmalloc.h to call the library
 * instead. */
struct gcm_arena_hot_ {
    uintptr_t cur;      /* next free byte, 16-aligned                    */
    uintptr_t limit;    /* the inline path bumps no further than this    */
    size_t big;         /* larger requests go to the library             */
    uint64_t requested; /* bytes asked for by the allocations it holds  */
};

/* Everything the inline path does not do.  Private: call gcm_arena_alloc. */
GCM_API GCM_ATTR_MALLOC GCM_ATTR_ALLOC_SIZE(2) void *
gcm_arena_alloc_slow_(gcm_arena *a, size_t n);
/* Stands in for a NULL arena on the inline path: its limit sends every
 * request to the library, which returns EINVAL.  Choosing between it and
 * the arena is loop-invariant, so a loop of allocations tests for NULL
 * once, not on every allocation.  Private. */
GCM_API extern const struct gcm_arena_hot_ gcm_arena_nil_;

#if defined(__GNUC__)
#define GCM_ARENA_LIKELY_(x) __builtin_expect(!!(x), 1)
#else
#define GCM_ARENA_LIKELY_(x) (x)
#endif

GCM_ATTR_ALLOC_SIZE(2) static inline void *gcm_arena_alloc_inline_(gcm_arena *a,
                                                                  size_t n)
{
    struct gcm_arena_hot_ *h =
        a != NULL ? (struct gcm_arena_hot_ *)(void *)a
                  : (struct gcm_arena_hot_ *)(void *)&gcm_arena_nil_;
    uintptr_t p = h->cur;
    size_t sz = (n + 15) & ~(size_t)15;
    /* sz - 1 wraps for n == 0 and for n within 15 of SIZE_MAX: both fail
     * the first test and go to the library, as do a full chunk, a large
     * size and the nil arena (the stores below never reach it). */
    if (GCM_ARENA_LIKELY_(sz - 1 < h->limit - p && sz <= h->big)) {
        h->cur = p + sz;
        h->requested += n;
        return (void *)p;
    }
    return gcm_arena_alloc_slow_(a, n);
}

#if !defined(GCMALLOC_NO_INLINE)
#define gcm_arena_alloc(a, n) gcm_arena_alloc_inline_((a), (n))
#endif

#ifdef __cplusplus
}
#endif

#endif /* GCMALLOC_ARENA_H */
