/*
 * bufmem.c — the memory behind the buffer pools: chunks carved into
 * buffers of one size class each.
 *
 * Why not one mimalloc block per buffer.  mimalloc rounds a request up to
 * one of its own bins, four per doubling (up to 20% waste), so buffers of
 * classes finer than its bins would pay both roundings; and gcm_buf_put
 * gets only a pointer, from which mimalloc's usable size cannot tell our
 * class back (several classes share a bin).  So, as Go does with spans,
 * buffers are carved from chunks of one class: a chunk of u 64 KiB units
 * (the generator picks u per class so that the chunk's worst case, tail
 * included, wastes at most 1/8) holds floor(u * 64 KiB / size) buffers.
 *
 * Finding a buffer's class.  Chunks are mapped aligned to 64 KiB and every
 * unit of a chunk is entered in a two-level map from address to chunk:
 * 2^15 top entries for address bits 32..46, each a lazily mapped leaf of
 * 2^16 entries for bits 16..31 (512 KiB of address space, only touched
 * pages resident).  An entry packs the chunk's descriptor with its class
 * and the unit's place in the chunk, so a put finds the buffer's class and
 * start from the entry alone: two dependent loads (top, leaf) and per-class
 * constants.  Entries are written under map_mu before a chunk's buffers are
 * handed out and cleared before it is unmapped, when none of its buffers is
 * out, so readers need no lock.
 *
 * Free buffers.  A chunk hands out buffers in address order until it has
 * carved them all, then reuses freed ones, found in a bitmap (a bit per
 * buffer, so even 1-byte classes work, and nothing is written into free
 * buffers).  Each class keeps a list of chunks with free buffers under its
 * lock; a chunk whose buffers are all free again is kept as the class's
 * spare for a cycle, and unmapped if the next GC cycle finds it unused.
 * These paths run only on pool misses and releases: the pools in front
 * absorb the traffic.
 *
 * Memory: chunks and their descriptors count as non-collected memory
 * (gcm__gc_nongc), so the memory limit sees them.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include <mimalloc.h>

#include "internal.h"

#define UNIT_SHIFT 16
#define UNIT ((uintptr_t)1 << UNIT_SHIFT)
#define TOP_BITS 15
#define LEAF_BITS 16
#define ADDR_BITS (UNIT_SHIFT + LEAF_BITS + TOP_BITS) /* 47 */

struct gcm__bchunk {
    char *base;
    size_t bytes;          /* mapped                                  */
    uint32_t cls, size;    /* class and bytes per buffer              */
    uint64_t div_mul;      /* index of offset o = (o * div_mul) >> 44  */
    uint32_t nbuf;         /* buffers in the chunk                    */
    uint32_t carved;       /* buffers handed out at least once        */
    uint32_t nfree;        /* set bits in freebits                    */
    uint32_t hint;         /* first word of freebits worth looking at */
    bool listed;           /* on its class's list of chunks with room */
    gcm__bchunk *next, *prev;
    uint64_t *freebits;    /* bit i: buffer i (< carved) is free      */
    uint64_t *cachedbits;  /* debug mode: buffer i is in a pool       */
};

/* Buffer index from offset without a division (a 64-bit divide is tens of
 * cycles, more than the rest of gcm_buf_put), as Go's divMagic: with
 * m = ceil(2^44 / size), (o * m) >> 44 == o / size exactly for every
 * offset o below 2^20 (chunks are at most 1 MiB): the error o * (m * size -
 * 2^44) / 2^44 / size stays under 2^-24, far below the 1/size a wrong
 * result needs.  test_buf checks every offset of every class. */
#define DIV_SHIFT 44
_Static_assert(16 << UNIT_SHIFT <= 1 << 20, "chunks must stay within 1 MiB");

static inline uint64_t div_mul_for(uint32_t size)
{
    return (((uint64_t)1 << DIV_SHIFT) + size - 1) / size;
}

static inline uint32_t index_of(uint64_t off, uint64_t mul)
{
    return (uint32_t)((off * mul) >> DIV_SHIFT);
}

static inline uint32_t buf_index(const gcm__bchunk *c, const void *p)
{
    return index_of((uint64_t)((const char *)p - c->base), c->div_mul);
}

uint32_t gcm__bufmem_index(unsigned cls, size_t off)
{
    return index_of(off, div_mul_for((uint32_t)gcm__class_bytes(cls)));
}

static struct bclass {
    gcm__lock mu;
    gcm__bchunk *avail;    /* chunks with a free or uncarved buffer   */
    gcm__bchunk *spare;    /* an all-free chunk kept for reuse        */
    bool spare_aged;       /* ... that a cycle has already seen        */
} classes[GCM_SC_COUNT + 1];

/* The map and the per-class constants of the put path (filled before the
 * first chunk) are read by internal.h's inline gcm__bufmem_class_of. */
typedef uintptr_t mapent;
#define ENT_PTR(e) ((gcm__bchunk *)((e) & GCM_BUFMAP_PTR_MASK))
_Static_assert(TOP_BITS == GCM_BUFMAP_TOP_BITS && LEAF_BITS == GCM_BUFMAP_LEAF_BITS &&
                   UNIT_SHIFT == GCM_BUFMAP_UNIT_SHIFT && DIV_SHIFT == GCM_BUFMAP_DIV_SHIFT,
               "internal.h's buffer map constants");

uintptr_t *gcm__bufmap_top[(size_t)1 << TOP_BITS];
#define map_top gcm__bufmap_top
uint32_t gcm__bufclass_size[GCM_SC_COUNT + 1], gcm__bufclass_objs[GCM_SC_COUNT + 1];
uint64_t gcm__bufclass_mul[GCM_SC_COUNT + 1];
#define class_size gcm__bufclass_size
#define class_objs gcm__bufclass_objs
#define class_mul gcm__bufclass_mul
static gcm__lock map_mu = GCM_LOCK_INIT;
static uint64_t mapped_bytes;
static int hook_state; /* 0 none, 1 registering, 2 registered */

/* --- the address map ---------------------------------------------------------- */

static inline mapent lookup_ent(const void *p)
{
    uintptr_t a = (uintptr_t)p;
    if (a >> ADDR_BITS)
        return 0;
    mapent *leaf =
        __atomic_load_n(&map_top[a >> (UNIT_SHIFT + LEAF_BITS)], __ATOMIC_ACQUIRE);
    if (leaf == NULL)
        return 0;
    return __atomic_load_n(&leaf[(a >> UNIT_SHIFT) & ((1u << LEAF_BITS) - 1)],
                           __ATOMIC_ACQUIRE);
}

static inline gcm__bchunk *lookup(const void *p) { return ENT_PTR(lookup_ent(p)); }

/* Enters (or with c NULL, clears) every unit of [base, base + bytes). */
static bool map_set(char *base, size_t bytes, gcm__bchunk *c)
{
    gcm__lock_acquire(&map_mu);
    for (uintptr_t a = (uintptr_t)base; a < (uintptr_t)base + bytes; a += UNIT) {
        size_t top = a >> (UNIT_SHIFT + LEAF_BITS);
        mapent *leaf = map_top[top];
        if (leaf == NULL) {
            size_t lb = sizeof(*leaf) << LEAF_BITS;
            void *m = mmap(NULL, lb, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (m == MAP_FAILED) {
                gcm__lock_release(&map_mu);
                return false;
            }
            leaf = m;
            gcm__gc_nongc((int64_t)lb);
            GCM_ADD(&mapped_bytes, lb);
            __atomic_store_n(&map_top[top], leaf, __ATOMIC_RELEASE);
        }
        mapent e = 0;
        if (c != NULL)
            e = (uintptr_t)c | (uintptr_t)c->cls << 48 |
                (uintptr_t)((a - (uintptr_t)base) >> UNIT_SHIFT) << 56;
        __atomic_store_n(&leaf[(a >> UNIT_SHIFT) & ((1u << LEAF_BITS) - 1)], e,
                         __ATOMIC_RELEASE);
    }
    gcm__lock_release(&map_mu);
    return true;
}

/* --- chunks --------------------------------------------------------------------- */

static void on_cycle(const gcm__cycle *cy, void *arg);

/* Before the first chunk: the cycle hook and the per-class constants. */
static void init_once(void)
{
    int expected = 0;
    if (__atomic_load_n(&hook_state, __ATOMIC_ACQUIRE) == 2)
        return;
    if (__atomic_compare_exchange_n(&hook_state, &expected, 1, false,
                                    __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        for (unsigned c = 1; c <= GCM_SC_COUNT; c++) {
            class_size[c] = (uint32_t)gcm__class_bytes(c);
            class_objs[c] = gcm__class_objects(c);
            class_mul[c] = div_mul_for(class_size[c]);
        }
        gcm__gc_on_cycle(on_cycle, NULL);
        __atomic_store_n(&hook_state, 2, __ATOMIC_RELEASE);
        return;
    }
    while (__atomic_load_n(&hook_state, __ATOMIC_ACQUIRE) != 2)
        ;
}

static size_t bitmap_words(uint32_t nbuf) { return (nbuf + 63) / 64; }

static gcm__bchunk *chunk_new(unsigned cls)
{
    init_once();
    size_t bytes = gcm__class_chunk_bytes(cls);
    /* Over-map by one unit and trim, for 64 KiB alignment. */
    char *m = mmap(NULL, bytes + UNIT, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) {
        errno = ENOMEM;
        return NULL;
    }
    char *base = (char *)(((uintptr_t)m + UNIT - 1) & ~(UNIT - 1));
    if (base > m)
        munmap(m, (size_t)(base - m));
    if (base + bytes < m + bytes + UNIT)
        munmap(base + bytes, (size_t)(m + bytes + UNIT - (base + bytes)));

    uint32_t nbuf = gcm__class_objects(cls);
    size_t words = bitmap_words(nbuf);
    size_t dbytes = sizeof(gcm__bchunk) + 2 * words * sizeof(uint64_t);
    gcm__bchunk *c = mi_malloc(dbytes);
    if (c == NULL) {
        munmap(base, bytes);
        errno = ENOMEM;
        return NULL;
    }
    gcm__tsan_allocated();
    memset(c, 0, dbytes);
    c->base = base;
    c->bytes = bytes;
    c->cls = cls;
    c->size = (uint32_t)gcm__class_bytes(cls);
    c->div_mul = div_mul_for(c->size);
    c->nbuf = nbuf;
    if ((uintptr_t)c >> 48) { /* must fit a map entry */
        gcm__tsan_freeing();
        mi_free(c);
        munmap(base, bytes);
        errno = ENOMEM;
        return NULL;
    }
    c->freebits = (uint64_t *)(c + 1);
    c->cachedbits = c->freebits + words;
    if (!map_set(base, bytes, c)) {
        gcm__tsan_freeing();
        mi_free(c);
        munmap(base, bytes);
        errno = ENOMEM;
        return NULL;
    }
    gcm__gc_nongc((int64_t)(bytes + mi_usable_size(c)));
    GCM_ADD(&mapped_bytes, bytes);
    return c;
}

static void chunk_free(gcm__bchunk *c)
{
    map_set(c->base, c->bytes, NULL); /* clearing never allocates */
    munmap(c->base, c->bytes);
    gcm__gc_nongc(-(int64_t)(c->bytes + mi_usable_size(c)));
    __atomic_fetch_sub(&mapped_bytes, c->bytes, __ATOMIC_RELAXED);
    gcm__tsan_freeing();
    mi_free(c);
}

/* Class list operations (class lock held). */
static void list_add(struct bclass *k, gcm__bchunk *c)
{
    c->prev = NULL;
    c->next = k->avail;
    if (k->avail != NULL)
        k->avail->prev = c;
    k->avail = c;
    c->listed = true;
}

static void list_del(struct bclass *k, gcm__bchunk *c)
{
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        k->avail = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    c->next = c->prev = NULL;
    c->listed = false;
}

void *gcm__bufmem_alloc(unsigned cls)
{
    if (cls < 1 || cls > GCM_SC_COUNT) {
        errno = EINVAL;
        return NULL;
    }
    struct bclass *k = &classes[cls];
    gcm__lock_acquire(&k->mu);
    gcm__bchunk *c = k->avail;
    if (c == NULL && k->spare != NULL) {
        c = k->spare;
        GCM_STORE(&k->spare, NULL);
        list_add(k, c);
    }
    if (c == NULL) {
        gcm__lock_release(&k->mu);
        gcm__bchunk *fresh = chunk_new(cls); /* mmap outside the lock */
        if (fresh == NULL)
            return NULL;
        gcm__lock_acquire(&k->mu);
        list_add(k, fresh);
        c = k->avail;
    }
    uint32_t i;
    if (c->nfree > 0) {
        size_t words = bitmap_words(c->carved);
        size_t w = c->hint;
        while (c->freebits[w] == 0)
            w = w + 1 < words ? w + 1 : 0;
        i = (uint32_t)(w * 64 + (unsigned)__builtin_ctzll(c->freebits[w]));
        c->freebits[w] &= c->freebits[w] - 1;
        c->hint = (uint32_t)w;
        c->nfree--;
    } else {
        i = c->carved++;
    }
    if (c->nfree == 0 && c->carved == c->nbuf)
        list_del(k, c);
    gcm__lock_release(&k->mu);
    return c->base + (size_t)i * c->size;
}

void gcm__bufmem_release(void *buf)
{
    gcm__bchunk *c = lookup(buf);
    if (c == NULL)
        return;
    uint32_t i = buf_index(c, buf);
    struct bclass *k = &classes[c->cls];
    gcm__bchunk *unmap = NULL;
    gcm__lock_acquire(&k->mu);
    c->freebits[i / 64] |= (uint64_t)1 << (i % 64);
    __atomic_fetch_and(&c->cachedbits[i / 64], ~((uint64_t)1 << (i % 64)),
                       __ATOMIC_RELAXED);
    if (i / 64 < c->hint)
        c->hint = i / 64;
    c->nfree++;
    if (!c->listed)
        list_add(k, c);
    if (c->nfree == c->carved) {
        /* Every buffer is free: start the chunk afresh as the spare, or
         * unmap it if there is one already. */
        list_del(k, c);
        if (k->spare == NULL) {
            memset(c->freebits, 0, bitmap_words(c->carved) * sizeof(uint64_t));
            c->carved = c->nfree = c->hint = 0;
            GCM_STORE(&k->spare, c);
            k->spare_aged = false;
        } else {
            unmap = c;
        }
    }
    gcm__lock_release(&k->mu);
    if (unmap != NULL)
        chunk_free(unmap);
}


bool gcm__bufmem_mark(void *b, bool cached)
{
    gcm__bchunk *c = lookup(b);
    if (c == NULL)
        return false;
    uint32_t i = buf_index(c, b);
    uint64_t bit = (uint64_t)1 << (i % 64), old;
    if (cached)
        old = __atomic_fetch_or(&c->cachedbits[i / 64], bit, __ATOMIC_RELAXED);
    else
        old = __atomic_fetch_and(&c->cachedbits[i / 64], ~bit, __ATOMIC_RELAXED);
    return (old & bit) != 0;
}

uint64_t gcm__bufmem_bytes(void) { return GCM_LOAD(&mapped_bytes); }

/* A spare chunk that stayed unused for a whole cycle is unmapped. */
/* fork(): the class locks and the map's are leaves (under them only
 * list moves and, for the map, mmap), taken after everything that may be
 * held when they are. */
void gcm__bufmem_fork(int phase)
{
    if (phase == GCM_FORK_PREPARE) {
        for (size_t c = 0; c < GCM_ARRAY_LEN(classes); c++)
            gcm__lock_acquire(&classes[c].mu);
        gcm__lock_acquire(&map_mu);
    } else {
        gcm__lock_release(&map_mu);
        for (size_t c = GCM_ARRAY_LEN(classes); c-- > 0;)
            gcm__lock_release(&classes[c].mu);
    }
}

static void on_cycle(const gcm__cycle *cy, void *arg)
{
    (void)cy;
    (void)arg;
    for (unsigned cls = 1; cls <= GCM_SC_COUNT; cls++) {
        struct bclass *k = &classes[cls];
        if (GCM_LOAD(&k->spare) == NULL)
            continue;
        gcm__bchunk *unmap = NULL;
        gcm__lock_acquire(&k->mu);
        if (k->spare != NULL && k->spare_aged) {
            unmap = k->spare;
            GCM_STORE(&k->spare, NULL);
        } else if (k->spare != NULL) {
            k->spare_aged = true;
        }
        gcm__lock_release(&k->mu);
        if (unmap != NULL)
            chunk_free(unmap);
    }
}
