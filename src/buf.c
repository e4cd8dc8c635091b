/*
 * buf.c — gcm_buf_*: byte buffers from one pool per size class.
 *
 * A request is rounded up to its size class (sizeclass.c; at most 12.5%
 * more than asked), and the class's pool (pool.c: per-thread caches, the
 * victim cache, rotation at each GC cycle) serves it; on a miss the pool
 * carves a new buffer from its class's chunks (bufmem.c).  gcm_buf_put
 * finds the class back from the address alone, through bufmem's map, so a
 * buffer carries no header and a 4 KiB request takes exactly 4 KiB.
 *
 * Requests above the largest class (32 KiB) are not pooled: like Go's large
 * objects, they are allocated directly (mimalloc) and freed by
 * gcm_buf_put; at that size the allocation costs little next to what the
 * caller does with the buffer.  They are kept in a set (ptrset.c), so
 * gcm_buf_put can refuse a pointer that is neither a class buffer nor one
 * of them -- notably one from malloc, which in a program linked with
 * mimalloc lives in the same heap -- and one put back twice.
 *
 * Misuse checks (debug mode, fixed for each class when its pool is made):
 * a pointer that is not the start of a buffer, and a buffer put back
 * twice, tracked by a "cached" bit per buffer in its chunk (set by put,
 * cleared by get), so buffers need no header either.  A pointer that is
 * not a buffer's start is refused in any mode: caching it would hand out
 * memory that is not a buffer.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>

#include <mimalloc.h>

#include "internal.h"

static gcm_pool *class_pool[GCM_SC_COUNT + 1];
/* Debug mode of each class, fixed when its pool is made (as a typed pool's
 * is), so the hit paths read a byte instead of calling the options. */
static bool class_debug[GCM_SC_COUNT + 1];
static gcm__lock make_mu = GCM_LOCK_INIT;

static void *class_alloc(gcm_pool *p, void *arg)
{
    (void)p;
    return gcm__bufmem_alloc((unsigned)(uintptr_t)arg);
}

static void class_release(gcm_pool *p, void *obj, void *arg)
{
    (void)p;
    (void)arg;
    gcm__bufmem_release(obj);
}

static GCM_NOINLINE gcm_pool *class_pool_make(unsigned c)
{
    gcm__lock_acquire(&make_mu);
    gcm_pool *p = class_pool[c];
    if (p == NULL) {
        char name[32];
        gcm__fmt(name, sizeof name, "buf-%zu", gcm__class_bytes(c));
        gcm_pool_options o = {.name = name, .size = gcm__class_bytes(c),
                              .align = 1};
        gcm__pool_backend be = {class_alloc, class_release,
                                (void *)(uintptr_t)c};
        p = gcm__pool_new_backend(&o, &be);
        if (p != NULL) {
            class_debug[c] = gcm__debug_on();
            __atomic_store_n(&class_pool[c], p, __ATOMIC_RELEASE);
        }
    }
    gcm__lock_release(&make_mu);
    return p;
}

static inline gcm_pool *pool_for(unsigned c)
{
    gcm_pool *p = __atomic_load_n(&class_pool[c], __ATOMIC_ACQUIRE);
    return GCM_LIKELY(p != NULL) ? p : class_pool_make(c);
}

/* Large buffers we handed out, with their capacity, striped by address so
 * threads putting back different buffers rarely meet on a lock. */
#define LARGE_STRIPES 16
static gcm__ptrset large[LARGE_STRIPES];

static inline gcm__ptrset *large_set(const void *b)
{
    uintptr_t a = (uintptr_t)b >> 12;
    return &large[(a ^ (a >> 4) ^ (a >> 8)) % LARGE_STRIPES];
}

/* fork(): make_mu is held while a class's pool is made (which takes the
 * pool registry's lock), so init.c takes it before the pools' inner locks;
 * the stripes are leaves (nothing is taken under them but mimalloc). */
void gcm__buf_fork(int phase)
{
    if (phase == GCM_FORK_PREPARE) {
        gcm__lock_acquire(&make_mu);
        for (int i = 0; i < LARGE_STRIPES; i++)
            gcm__lock_acquire(&large[i].mu);
    } else {
        for (int i = LARGE_STRIPES - 1; i >= 0; i--)
            gcm__lock_release(&large[i].mu);
        gcm__lock_release(&make_mu);
    }
}

static GCM_NOINLINE void *large_get(size_t n, const void *caller)
{
    if (n > (size_t)PTRDIFF_MAX) {
        errno = ENOMEM;
        return NULL;
    }
    void *b = mi_malloc(n);
    if (b == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    gcm__tsan_allocated();
    size_t cap = mi_usable_size(b);
    if (!gcm__ptrset_add(large_set(b), b, cap)) {
        gcm__tsan_freeing();
        mi_free(b);
        errno = ENOMEM;
        return NULL;
    }
    gcm__gc_nongc((int64_t)cap);
    if (gcm__prof_tick(&gcm__tls_self, cap))
        gcm__prof_record_alloc(b, cap, GCM_PROF_BUF, "buf-large", caller);
    return b;
}

static GCM_NOINLINE void *get_checked(unsigned c, const void *caller)
{
    gcm_pool *p = pool_for(c);
    if (p == NULL)
        return NULL;
    void *b = gcm__pool_get_for(p, caller);
    if (b != NULL && class_debug[c])
        gcm__bufmem_mark(b, false);
    return b;
}

/* The hit paths: tail calls into the class's pool, no frame of their own
 * (as pool.c's; a stack walk from inside sees our caller). */
#define GCM_HOT __attribute__((hot, optimize("omit-frame-pointer")))

GCM_HOT void *gcm_buf_get(size_t n)
{
    unsigned c = gcm__size_class(n);
    if (GCM_UNLIKELY(c == 0))
        return large_get(n, GCM_PROF_CALLER());
    gcm_pool *p = __atomic_load_n(&class_pool[c], __ATOMIC_ACQUIRE);
    if (GCM_UNLIKELY(p == NULL || class_debug[c]))
        return get_checked(c, GCM_PROF_CALLER());
    return gcm__pool_get_for(p, GCM_PROF_CALLER());
}

static GCM_NOINLINE void put_checked(void *b, unsigned c, void *start,
                                     const void *caller)
{
    bool debug = c != 0 ? class_debug[c] : gcm__debug_on();
    if (c == 0) {
        size_t cap;
        if (!gcm__ptrset_take(large_set(b), b, &cap)) {
            /* Never free what we did not allocate. */
            if (debug)
                gcm__diag_misuse(caller, "gcm_buf_put(%p): not a buffer from "
                                 "gcm_buf_get (or put back already)", b);
            return;
        }
        gcm__gc_nongc(-(int64_t)cap);
        gcm__prof_free(b);
        gcm__tsan_freeing();
        mi_free(b);
        return;
    }
    if (start != b) {
        /* Never cache a pointer that is not a buffer's start. */
        if (debug)
            gcm__diag_misuse(caller, "gcm_buf_put(%p): not the start of a "
                             "buffer (it points inside a %zu-byte buffer "
                             "at %p)", b, gcm__class_bytes(c), start);
        return;
    }
    if (gcm__bufmem_mark(b, true)) {
        gcm__diag_misuse(caller, "gcm_buf_put(%p): double put (the %zu-byte "
                         "buffer is already back in its pool)", b,
                         gcm__class_bytes(c));
        return;
    }
    gcm__pool_put(class_pool[c], b);
}

GCM_HOT void gcm_buf_put(void *b)
{
    if (b == NULL)
        return;
    void *start;
    unsigned c = gcm__bufmem_class_of(b, &start);
    if (GCM_LIKELY(c != 0 && start == b && !class_debug[c])) {
        gcm__pool_put(class_pool[c], b);
        return;
    }
    put_checked(b, c, start, __builtin_return_address(0));
}

size_t gcm_buf_cap(const void *b)
{
    if (b == NULL)
        return 0;
    void *start;
    unsigned c = gcm__bufmem_class_of(b, &start);
    if (c != 0)
        return start != NULL ? gcm__class_bytes(c) -
                                   (size_t)((const char *)b - (char *)start)
                             : 0;
    size_t cap;
    if (!gcm__ptrset_get(large_set(b), b, &cap)) {
        if (gcm__debug_on())
            gcm__diag_misuse(__builtin_return_address(0), "gcm_buf_cap(%p): "
                             "not a buffer from gcm_buf_get", b);
        return 0;
    }
    return cap;
}

size_t gcm_buf_size_class(size_t n)
{
    unsigned c = gcm__size_class(n);
    if (c != 0)
        return gcm__class_bytes(c);
    return n > (size_t)PTRDIFF_MAX ? 0 : mi_good_size(n);
}

int gcm_buf_stats(size_t size, struct gcm_pool_stats *st)
{
    unsigned c = gcm__size_class(size);
    if (c == 0 || st == NULL)
        return EINVAL;
    gcm_pool *p = pool_for(c);
    if (p == NULL)
        return ENOMEM;
    return gcm_pool_stats(p, st);
}
