/*
 * ptrset.c — a small locked hash map from pointers to sizes.
 *
 * For the few places that must know for certain whether a pointer is one
 * they handed out, without reading memory the pointer may not own: the
 * buffer pools' large buffers, and debug-mode pools' objects.  (mimalloc's
 * mi_is_in_heap_region cannot serve: its segment map covers only the low
 * 40 TiB of addresses, and under ThreadSanitizer, or whenever mimalloc's
 * address hints are refused, its blocks live above that.)
 *
 * Open addressing with linear probing and backward-shift deletion (no
 * tombstones), at most half full, grown by doubling.  The table is mimalloc
 * memory counted as non-GC memory.  One spin lock per set: callers that
 * need more concurrency keep several sets (buf.c stripes by address).
 */
#include <errno.h>
#include <string.h>

#include <mimalloc.h>

#include "internal.h"

static inline size_t slot_of(uintptr_t key, size_t cap)
{
    uint64_t h = (uint64_t)key * 0x9e3779b97f4a7c15ull;
    return (size_t)(h >> 32) & (cap - 1);
}

static bool grow(gcm__ptrset *s)
{
    size_t ncap = s->cap ? s->cap * 2 : 64;
    gcm__ptrset_entry *ne = mi_malloc(ncap * sizeof *ne);
    if (ne == NULL)
        return false;
    gcm__tsan_allocated();
    memset(ne, 0, ncap * sizeof *ne);
    gcm__gc_nongc((int64_t)mi_usable_size(ne));
    for (size_t i = 0; i < s->cap; i++) {
        if (s->e[i].key == 0)
            continue;
        size_t j = slot_of(s->e[i].key, ncap);
        while (ne[j].key != 0)
            j = (j + 1) & (ncap - 1);
        ne[j] = s->e[i];
    }
    if (s->e != NULL) {
        gcm__gc_nongc(-(int64_t)mi_usable_size(s->e));
        gcm__tsan_freeing();
        mi_free(s->e);
    }
    s->e = ne;
    s->cap = ncap;
    return true;
}

bool gcm__ptrset_add(gcm__ptrset *s, const void *p, size_t val)
{
    uintptr_t key = (uintptr_t)p;
    if (key == 0)
        return false;
    gcm__lock_acquire(&s->mu);
    if ((s->n + 1) * 2 > s->cap && !grow(s)) {
        gcm__lock_release(&s->mu);
        return false;
    }
    size_t i = slot_of(key, s->cap);
    while (s->e[i].key != 0 && s->e[i].key != key)
        i = (i + 1) & (s->cap - 1);
    if (s->e[i].key == 0)
        s->n++;
    s->e[i].key = key;
    s->e[i].val = val;
    gcm__lock_release(&s->mu);
    return true;
}

/* Index of key, or SIZE_MAX.  Lock held. */
static size_t find(const gcm__ptrset *s, uintptr_t key)
{
    if (s->cap == 0 || key == 0)
        return SIZE_MAX;
    for (size_t i = slot_of(key, s->cap);; i = (i + 1) & (s->cap - 1)) {
        if (s->e[i].key == key)
            return i;
        if (s->e[i].key == 0)
            return SIZE_MAX;
    }
}

bool gcm__ptrset_get(gcm__ptrset *s, const void *p, size_t *val)
{
    gcm__lock_acquire(&s->mu);
    size_t i = find(s, (uintptr_t)p);
    if (i != SIZE_MAX && val != NULL)
        *val = s->e[i].val;
    gcm__lock_release(&s->mu);
    return i != SIZE_MAX;
}

bool gcm__ptrset_take(gcm__ptrset *s, const void *p, size_t *val)
{
    gcm__lock_acquire(&s->mu);
    size_t i = find(s, (uintptr_t)p);
    if (i == SIZE_MAX) {
        gcm__lock_release(&s->mu);
        return false;
    }
    if (val != NULL)
        *val = s->e[i].val;
    /* Backward-shift deletion: pull later entries of the cluster into the
     * hole when their home slot does not lie between the hole and them. */
    size_t hole = i, mask = s->cap - 1;
    for (size_t j = (i + 1) & mask; s->e[j].key != 0; j = (j + 1) & mask) {
        size_t home = slot_of(s->e[j].key, s->cap);
        if (((j - home) & mask) >= ((j - hole) & mask)) {
            s->e[hole] = s->e[j];
            hole = j;
        }
    }
    s->e[hole].key = 0;
    s->e[hole].val = 0;
    s->n--;
    gcm__lock_release(&s->mu);
    return true;
}

size_t gcm__ptrset_count(gcm__ptrset *s)
{
    gcm__lock_acquire(&s->mu);
    size_t n = s->n;
    gcm__lock_release(&s->mu);
    return n;
}

void gcm__ptrset_destroy(gcm__ptrset *s)
{
    if (s->e != NULL) {
        gcm__gc_nongc(-(int64_t)mi_usable_size(s->e));
        gcm__tsan_freeing();
        mi_free(s->e);
    }
    s->e = NULL;
    s->cap = s->n = 0;
}
