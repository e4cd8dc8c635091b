/*
 * gcmalloc/pool.h — sync.Pool-style pools of objects and of byte buffers.
 *
 * A pool is a cache of free objects that any thread may take (Get) and give
 * back (Put), so a hot path that needs a temporary object reuses one instead
 * of allocating.  As Go's sync.Pool, it is a cache, not a free list you own:
 *
 *   - the collector empties it gradually: at each GC cycle the objects a
 *     pool holds become its "victim" cache, and the victims of the cycle
 *     before are released.  A pool nobody uses is empty after two cycles;
 *     a busy pool barely notices, because Get still finds last cycle's
 *     objects in the victim cache;
 *   - an object taken from a pool may be one that another thread put back.
 *     Its contents are whatever was left in it (after the reset function),
 *     never zeroed for you;
 *   - Get never fails for lack of cached objects: on a miss it makes a new
 *     one (zeroed, then passed to the `new_fn` constructor).
 *
 * Use a pool for objects that are expensive to make and taken and returned
 * often by many threads: request buffers, parser states, scratch space.  Do
 * not use one as the only owner of objects you need to keep (the collector
 * will drop them), or for objects held for a long time (a pool saves nothing
 * there; allocate them).  docs/pools.md says more.
 *
 * Objects of a pool whose options say `holds_pointers` come from the
 * collected heap: they may point to other collected objects, the collector
 * scans them while they are cached and while you hold them, and one you
 * drop without putting back is simply collected.  Objects of other pools are
 * not scanned: put them back (or destroy the pool) or they leak.
 *
 * All functions are thread-safe, except that a pool must not be used once
 * gcm_pool_destroy has started on it.  With GCMALLOC_DEBUG=1 (or a debug
 * build) gcm_pool_put reports a pointer that did not come from the pool, an
 * object put back twice, and a put after destroy, and then ignores the call.
 */
#ifndef GCMALLOC_POOL_H
#define GCMALLOC_POOL_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gcm_pool gcm_pool;

typedef struct gcm_pool_options {
    /* Shown in statistics (GCMALLOC_POOLSTATS=1) and profiles; copied (at
     * most 47 bytes are kept).  NULL means "pool". */
    const char *name;
    /* Object size in bytes; must be at least 1. */
    size_t size;
    /* Alignment of objects: a power of two up to 4096; 0 means 16. */
    size_t align;
    /* Non-zero when objects hold pointers to collected objects: they are
     * then allocated on the collected heap and scanned (see above). */
    int holds_pointers;
    /* Optional constructor, run on each new (zeroed) object a miss makes,
     * as Go's Pool.New: returns 0, or an errno value to make gcm_pool_get
     * fail with it.  Runs on the thread calling gcm_pool_get. */
    int (*new_fn)(void *obj, void *arg);
    /* Optional, run by gcm_pool_put on the object before it is cached: clear
     * what the next user must not see. */
    void (*reset_fn)(void *obj, void *arg);
    /* Optional, run when the pool releases a cached object (the second GC
     * cycle after it was put back, or gcm_pool_destroy), before its memory
     * goes: release what the object owns.  It runs on the thread that
     * finished the GC cycle, with no lock of the pool held; it must not
     * block for long. */
    void (*drop_fn)(void *obj, void *arg);
    /* Passed to new_fn, reset_fn and drop_fn. */
    void *arg;
} gcm_pool_options;

/* A new pool, or NULL with errno = EINVAL (size 0, bad alignment, NULL
 * options) or ENOMEM. */
GCM_API gcm_pool *gcm_pool_new(const gcm_pool_options *opts);

/* An object from the pool: a cached one if there is any, else a new one.
 * NULL with errno = EINVAL (pool NULL), ENOMEM, or new_fn's error. */
GCM_API void *gcm_pool_get(gcm_pool *pool);

/* Gives obj back to the pool (obj NULL: nothing happens).  The object must
 * have come from gcm_pool_get on this pool, and the caller must not use it
 * afterwards. */
GCM_API void gcm_pool_put(gcm_pool *pool, void *obj);

/* Releases every cached object (calling drop_fn) and the pool itself.
 * Objects still out are not released: those of a pool that holds pointers
 * are collected once unreachable; others leak.  Returns 0, or EINVAL for
 * NULL (or, in debug mode, a pool already destroyed). */
GCM_API int gcm_pool_destroy(gcm_pool *pool);

/* What a pool has done since it was made.  Hits are Gets served from a
 * cache, by where the object was found: this thread's private slot, this
 * thread's shared list, another thread's list (stolen), or a victim cache. */
struct gcm_pool_stats {
    const char *name;      /* the pool's name (valid while it lives)      */
    size_t object_size;    /* bytes per object                            */
    uint64_t gets;         /* gcm_pool_get calls = hits + misses           */
    uint64_t puts;         /* objects put back                             */
    uint64_t hits_private;
    uint64_t hits_shared;
    uint64_t hits_stolen;
    uint64_t hits_victim;
    uint64_t misses;       /* new objects made (new_fn calls)              */
    uint64_t dropped;      /* cached objects released by GC cycles         */
    uint64_t cycles;       /* GC cycles that rotated this pool             */
    uint64_t cached;       /* objects in the primary caches now            */
    uint64_t victims;      /* objects in the victim caches now             */
    double hit_rate;       /* (gets - misses) / gets; 0 before any get     */
};

/* Fills *st.  Cheap (sums per-thread counters); counts taken while other
 * threads work are each exact but not one snapshot.  0, or EINVAL. */
GCM_API int gcm_pool_stats(gcm_pool *pool, struct gcm_pool_stats *st);

/* --- buffer pools ------------------------------------------------------------
 * Byte buffers in size classes (eight per doubling, so at most 12.5% of a
 * buffer is more than was asked for), one pool per class, shared by the
 * whole process.  docs/pools.md has the table.  Buffers are not scanned by
 * the collector: do not keep the only pointer to a collected object in one.
 */

/* A buffer of at least `size` bytes (0 is taken as 1), from the pool of
 * its size class.  Sizes above the largest class (32 KiB) are allocated
 * directly and freed by gcm_buf_put.  Buffers of classes of 128 bytes and
 * up are 16-byte aligned; smaller ones are aligned to the largest power of
 * two dividing their class size.  NULL with errno = ENOMEM. */
GCM_API void *gcm_buf_get(size_t size);

/* The bytes usable in buf (its class size; at least what was asked for);
 * 0 for NULL. */
GCM_API size_t gcm_buf_cap(const void *buf);

/* Gives buf back (NULL: nothing happens). */
GCM_API void gcm_buf_put(void *buf);

/* The capacity gcm_buf_get(size) would return, like malloc_good_size(). */
GCM_API size_t gcm_buf_size_class(size_t size);

/* Statistics of the pool serving buffers of `size` bytes (its name is
 * "buf-<class size>").  EINVAL when size is above the largest class. */
GCM_API int gcm_buf_stats(size_t size, struct gcm_pool_stats *st);

#ifdef __cplusplus
}
#endif

#endif /* GCMALLOC_POOL_H */
