/*
 * sort.c — sorting without malloc.
 *
 * glibc's qsort is a merge sort that takes a buffer as large as the array
 * from malloc once the array passes 1 KiB (falling back to quicksort only
 * when malloc fails).  Inside the preload library malloc is ours, and the
 * code that sorts — profile writers, leak reports, symbol tables — runs
 * inside the allocator, in collection hooks and at exit, where calling back
 * into malloc can re-enter the collector or a lock the caller holds.  So
 * gcmalloc sorts with a heapsort of its own: in place, O(n log n) in the
 * worst case, no recursion, no memory.  It is not stable; callers that
 * need an order among equal keys compare a tie-breaker.
 */
#include <string.h>

#include "internal.h"

/* Swaps two elements of `size` bytes, a word at a time where it can. */
static void swap(unsigned char *a, unsigned char *b, size_t size)
{
    while (size >= sizeof(uint64_t)) {
        uint64_t t;
        memcpy(&t, a, sizeof t);
        memcpy(a, b, sizeof t);
        memcpy(b, &t, sizeof t);
        a += sizeof t;
        b += sizeof t;
        size -= sizeof t;
    }
    while (size-- > 0) {
        unsigned char t = *a;
        *a++ = *b;
        *b++ = t;
    }
}

static void sift_down(unsigned char *v, size_t root, size_t n, size_t size,
                      int (*cmp)(const void *, const void *))
{
    for (;;) {
        size_t child = 2 * root + 1;
        if (child >= n)
            return;
        if (child + 1 < n && cmp(v + child * size, v + (child + 1) * size) < 0)
            child++;
        if (cmp(v + root * size, v + child * size) >= 0)
            return;
        swap(v + root * size, v + child * size, size);
        root = child;
    }
}

void gcm__sort(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *))
{
    unsigned char *v = base;
    if (n < 2 || size == 0)
        return;
    for (size_t i = n / 2; i-- > 0;)
        sift_down(v, i, n, size, cmp);
    for (size_t end = n; end-- > 1;) {
        swap(v, v + end * size, size);
        sift_down(v, 0, end, size, cmp);
    }
}
