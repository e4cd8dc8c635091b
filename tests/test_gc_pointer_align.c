/*
 * test_gc_pointer_align.c — pointers inside collected objects that are not
 * word-aligned (src/gc_scan.c, GCMALLOC_POINTER_ALIGN).
 *
 * Each holder object keeps three targets, each only through a pointer in a
 * packed struct: at byte 4 of the holder, at byte 2 and at byte 1 (as
 * Ruby's rb_io_t keeps its read buffer at byte 68).  Holders are reachable
 * from a global array.  After collections, a target the collector saw is
 * still there; one it did not see is reclaimed, which a disappearing link
 * shows.  The test runs once per setting (ctest sets the variable) and
 * expects, for a step of s bytes, every target at an offset that is a
 * multiple of s kept, and most of the others reclaimed: a few may be kept
 * by a stale copy of their address (a register, a dead stack slot), which
 * a conservative collector is allowed to believe, so "most" is half.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define GC_THREADS
#define GC_NO_THREAD_REDIRECTS
#include <gc/gc.h>

#include "gcmalloc.h"

enum { N = 200, TARGET = 64 };

/* The three places a target's address is written: offsets 4, 2 and 1. */
struct __attribute__((packed)) holder {
    uint8_t b0;
    void *at1;        /* byte 1 */
    uint8_t b9;
    void *at10;       /* byte 10: 2-aligned, not 4 */
    uint16_t s18;
    void *at20;       /* byte 20: 4-aligned, not 8 */
    uint32_t pad;
};
_Static_assert(offsetof(struct holder, at1) == 1, "offset 1");
_Static_assert(offsetof(struct holder, at10) % 4 == 2, "offset 2 mod 4");
_Static_assert(offsetof(struct holder, at20) % 8 == 4, "offset 4 mod 8");

enum { AT4, AT2, AT1, PLACES };
static const unsigned place_align[PLACES] = {4, 2, 1};

static struct holder *holders[N];
/* The targets' addresses, hidden from the collector (GC_HIDE_POINTER),
 * cleared by it when a target is reclaimed. */
static GC_hidden_pointer links[PLACES][N];

static unsigned step_from_env(void)
{
    const char *v = getenv("GCMALLOC_POINTER_ALIGN");
    return v == NULL ? 4 : (unsigned)atoi(v);
}

static void *target(int place, int i)
{
    char *t = gcm_malloc(TARGET);
    assert_non_null(t);
    memset(t, 'A' + place, TARGET);
    links[place][i] = GC_HIDE_POINTER(t);
    assert_int_equal(GC_general_register_disappearing_link((void **)&links[place][i], t), GC_SUCCESS);
    return t;
}

static __attribute__((noinline)) void build(void)
{
    for (int i = 0; i < N; i++) {
        struct holder *h = gcm_malloc(sizeof *h);
        assert_non_null(h);
        void *t4 = target(AT4, i), *t2 = target(AT2, i), *t1 = target(AT1, i);
        memcpy((char *)h + offsetof(struct holder, at20), &t4, sizeof t4);
        memcpy((char *)h + offsetof(struct holder, at10), &t2, sizeof t2);
        memcpy((char *)h + offsetof(struct holder, at1), &t1, sizeof t1);
        holders[i] = h;
    }
}

/* Overwrites the stack below the caller, where build's frames left the
 * targets' addresses. */
static __attribute__((noinline)) void scrub(void)
{
    volatile char junk[64 * 1024];
    memset((char *)junk, 0, sizeof junk);
}

static void *read_at(const struct holder *h, size_t off)
{
    void *p;
    memcpy(&p, (const char *)h + off, sizeof p);
    return p;
}

static void unaligned_pointers(void **state)
{
    (void)state;
    unsigned step = step_from_env();
    build();
    scrub();
    for (int r = 0; r < 3; r++) {
        assert_int_equal(gcm_gc(), 0);
        /* garbage of the targets' size: a reclaimed target is handed out
         * again and cleared */
        for (int i = 0; i < 4 * N; i++) {
            char *volatile g = gcm_malloc(TARGET);
            assert_non_null(g);
            memset(g, 'z', TARGET);
        }
    }
    static const size_t offs[PLACES] = {offsetof(struct holder, at20),
                                        offsetof(struct holder, at10),
                                        offsetof(struct holder, at1)};
    for (int place = 0; place < PLACES; place++) {
        int gone = 0;
        for (int i = 0; i < N; i++) {
            if (links[place][i] == 0) {
                gone++;
                continue;
            }
            const char *t = read_at(holders[i], offs[place]);
            for (int j = 0; j < TARGET; j++)
                if (t[j] != 'A' + place)
                    fail_msg("step %u: target %d at offset %zu kept but changed",
                             step, i, offs[place]);
        }
        if (place_align[place] % step == 0)
            assert_int_equal(gone, 0); /* seen: every one kept */
        else if (gone < N / 2)
            fail_msg("step %u: only %d of %d targets at offset %zu reclaimed: "
                     "the collector saw pointers it should not look for",
                     step, gone, N, offs[place]);
    }
}

/* Small objects of our kind come from per-thread lists that
 * GC_generic_malloc_many refills.  Whole blocks of them freed explicitly,
 * then two collections: bdwgc skips the sweep of a kind it thinks unused,
 * and the second collection followed free-list links into blocks the
 * first had released (a crash, before gc_scan.c made the kind's reclaim
 * list).  Every size the lists serve; the kept half must be unchanged and
 * new objects must not overlap it. */
enum { FREED_N = 1000 };

static void freed_blocks_survive_collections(void **state)
{
    (void)state;
    static char *objs[FREED_N];
    for (size_t size = 8; size <= 384; size += 8) {
        for (int i = 0; i < FREED_N; i++) {
            objs[i] = gcm_malloc(size);
            assert_non_null(objs[i]);
            memset(objs[i], (int)(i & 0x7f), size);
        }
        assert_int_equal(gcm_gc(), 0);
        for (int i = 0; i < FREED_N / 2; i++) {
            gcm_free(objs[i]);
            objs[i] = NULL;
        }
        assert_int_equal(gcm_gc(), 0);
        assert_int_equal(gcm_gc(), 0);
        for (int i = 0; i < FREED_N / 2; i++) {
            char *p = gcm_malloc(size); /* from the freed half, or fresh */
            assert_non_null(p);
            memset(p, 0xff, size);
        }
        for (int i = FREED_N / 2; i < FREED_N; i++)
            for (size_t j = 0; j < size; j++)
                if (objs[i][j] != (char)(i & 0x7f))
                    fail_msg("size %zu: kept object %d changed at byte %zu", size, i, j);
        for (int i = FREED_N / 2; i < FREED_N; i++)
            gcm_free(objs[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        /* first: before any object of our kind takes bdwgc's global path */
        cmocka_unit_test(freed_blocks_survive_collections),
        cmocka_unit_test(unaligned_pointers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
