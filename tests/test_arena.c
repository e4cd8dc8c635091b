/*
 * test_arena.c — request-scoped arenas (src/arena.c).
 *
 * Written the way talloc's tests are: after every step, assert what the
 * arena holds (bytes requested and used, allocations, chunks, waste), and
 * end each test with the arena empty or freed.  Then the collector's view:
 * a scan arena keeps a collected object alive until it lets go of it, a
 * noscan arena does not.  Then the debugging aids: poison fill, ASan
 * reports (in the ASan build), misuse messages.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "gcmalloc.h"
#include "internal.h"

#include "diag_capture.h"

#define KiB ((size_t)1024)

static struct gcm_arena_stats st(const gcm_arena *a)
{
    struct gcm_arena_stats s;
    assert_int_equal(gcm_arena_stats(a, &s), 0);
    return s;
}

static struct gcm_memstats ms(void)
{
    struct gcm_memstats m;
    assert_int_equal(gcm_read_memstats(&m), 0);
    return m;
}

static gcm_arena *new_arena(size_t chunk, int noscan)
{
    gcm_arena_options o = {.chunk_size = chunk, .name = "test", .noscan = noscan};
    gcm_arena *a = gcm_arena_new(&o);
    assert_non_null(a);
    return a;
}

/* The bytes before the first allocation in the first chunk: the chunk
 * header and the arena itself. */
static size_t first_overhead(const gcm_arena *a)
{
    struct gcm_arena_stats s = st(a);
    return s.chunk_size - s.available;
}

/* Allocates, in pieces small enough to bump (a quarter of a 4 KiB chunk),
 * until exactly `left` bytes remain in the current chunk.  Returns the
 * number of allocations and adds their bytes to *bytes. */
static size_t fill_to(gcm_arena *a, size_t left, size_t *bytes)
{
    size_t n = 0;
    for (;;) {
        size_t av = st(a).available;
        assert_true(av >= left);
        if (av == left)
            return n;
        size_t k = av - left > 1024 ? 1024 : av - left;
        assert_non_null(gcm_arena_alloc(a, k));
        *bytes += k;
        n++;
    }
}

/* --- the basics, step by step ------------------------------------------------ */

static void test_new_defaults(void **state)
{
    (void)state;
    struct gcm_memstats m0 = ms();
    gcm_arena *a = gcm_arena_new(NULL);
    assert_non_null(a);
    struct gcm_arena_stats s = st(a);
    assert_string_equal(s.name, "arena");
    assert_int_equal(s.scan, 1);
    assert_int_equal(s.chunk_size, 64 * KiB); /* GCMALLOC_ARENA_CHUNK */
    assert_int_equal(s.chunks, 1);
    assert_int_equal(s.chunk_bytes, 64 * KiB);
    assert_int_equal(s.requested, 0);
    assert_int_equal(s.used, 0);
    assert_int_equal(s.wasted, 0);
    assert_int_equal(s.cleanups, 0);
    size_t head = first_overhead(a);
    assert_true(head > GCM_CHUNK_HDR && head <= 512 && head % 64 == 0);

    struct gcm_memstats m1 = ms();
    assert_int_equal(m1.arena_count, m0.arena_count + 1);
    assert_int_equal(m1.arena_inuse, m0.arena_inuse + 64 * KiB);
    assert_true(m1.arena_sys >= m1.arena_inuse);
    assert_int_equal(m1.arena_sys, m1.arena_inuse + m1.arena_cached);
    assert_true(m1.nongc_sys >= m1.arena_sys);

    gcm_arena_free(a);
    struct gcm_memstats m2 = ms();
    assert_int_equal(m2.arena_count, m0.arena_count);
    assert_int_equal(m2.arena_inuse, m0.arena_inuse);
    gcm_arena_free(NULL); /* nothing */
}

static void test_steps(void **state)
{
    (void)state;
    gcm_arena *a = new_arena(4 * KiB, 0);
    size_t head = first_overhead(a);
    size_t room = 4 * KiB - head;
    struct gcm_arena_stats s = st(a);
    assert_int_equal(s.chunk_size, 4 * KiB);
    assert_int_equal(s.available, room);

    char *p1 = gcm_arena_alloc(a, 100);
    assert_non_null(p1);
    s = st(a);
    assert_int_equal(s.requested, 100);
    assert_int_equal(s.used, 112); /* rounded to 16 */
    assert_int_equal(s.available, room - 112);
    assert_int_equal(s.chunks, 1);

    char *p2 = gcm_arena_alloc(a, 1);
    assert_ptr_equal(p2, p1 + 112);
    char *p3 = gcm_arena_alloc(a, 0); /* a unique pointer */
    assert_non_null(p3);
    assert_ptr_equal(p3, p2 + 16);
    char *p4 = gcm_arena_alloc(a, 0);
    assert_ptr_not_equal(p3, p4);
    s = st(a);
    assert_int_equal(s.requested, 101);
    assert_int_equal(s.used, 112 + 16 + 16 + 16);

    /* Fill the chunk up to a 32-byte tail, then ask for 48: a new chunk,
     * and the 32 bytes become waste. */
    size_t fill = 0;
    fill_to(a, 32, &fill);
    s = st(a);
    assert_int_equal(s.available, 32);
    assert_int_equal(s.used, room - 32);
    char *p5 = gcm_arena_alloc(a, 48);
    assert_non_null(p5);
    s = st(a);
    assert_int_equal(s.chunks, 2);
    assert_int_equal(s.chunk_bytes, 8 * KiB);
    assert_int_equal(s.wasted, 32);
    assert_int_equal(s.used, room - 32 + 48);
    assert_int_equal(s.available, 4 * KiB - GCM_CHUNK_HDR - 48);
    assert_int_equal(s.requested, 101 + fill + 48);

    /* More than a quarter of the chunk size: a chunk of its own, and the
     * bump chunk is untouched. */
    char *big = gcm_arena_alloc(a, 1025);
    assert_non_null(big);
    memset(big, 'b', 1025);
    s = st(a);
    assert_int_equal(s.chunks, 3);
    assert_true(s.chunk_bytes >= 8 * KiB + 1040 + GCM_CHUNK_HDR);
    assert_int_equal(s.available, 4 * KiB - GCM_CHUNK_HDR - 48);
    assert_int_equal(s.requested, 101 + fill + 48 + 1025);
    /* A quarter exactly still bumps. */
    assert_non_null(gcm_arena_alloc(a, 1024));
    assert_int_equal(st(a).chunks, 3);

    /* Reset: everything gone but the first chunk, which is as new. */
    assert_int_equal(gcm_arena_reset(a), 0);
    s = st(a);
    assert_int_equal(s.requested, 0);
    assert_int_equal(s.used, 0);
    assert_int_equal(s.wasted, 0);
    assert_int_equal(s.chunks, 1);
    assert_int_equal(s.chunk_bytes, 4 * KiB);
    assert_int_equal(s.available, room);
    /* and hands out the same memory again */
    assert_ptr_equal(gcm_arena_alloc(a, 10), p1);
    assert_int_equal(gcm_arena_reset(NULL), EINVAL);
    gcm_arena_free(a);
}

static void test_chunk_sizes(void **state)
{
    (void)state;
    struct {
        size_t ask, got;
    } cases[] = {
        {1, 4 * KiB},         {4 * KiB, 4 * KiB},   {5000, 8 * KiB},
        {64 * KiB, 64 * KiB}, {100000, 128 * KiB},  {64 * KiB * KiB, 64 * KiB * KiB},
    };
    for (size_t i = 0; i < GCM_ARRAY_LEN(cases); i++) {
        gcm_arena *a = new_arena(cases[i].ask, 1);
        assert_int_equal(st(a).chunk_size, cases[i].got);
        assert_int_equal(st(a).chunk_bytes, cases[i].got);
        gcm_arena_free(a);
    }
    /* Beyond 64 MiB: refused, not rounded down. */
    gcm_arena_options o = {.chunk_size = 64 * KiB * KiB + 1};
    errno = 0;
    assert_null(gcm_arena_new(&o));
    assert_int_equal(errno, EINVAL);

    /* The default comes from GCMALLOC_ARENA_CHUNK. */
    int64_t old = gcm__opt_set_int(GCM_OPT_ARENA_CHUNK, 16 * 1024);
    gcm_arena *a = gcm_arena_new(NULL);
    assert_non_null(a);
    assert_int_equal(st(a).chunk_size, 16 * KiB);
    gcm_arena_free(a);
    gcm__opt_set_int(GCM_OPT_ARENA_CHUNK, old);

    /* Names are copied and cut at 31 bytes. */
    char name[64];
    memset(name, 'n', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    o = (gcm_arena_options){.name = name};
    a = gcm_arena_new(&o);
    memset(name, 'x', 10);
    assert_int_equal(strlen(st(a).name), 31);
    assert_int_equal(st(a).name[0], 'n');
    gcm_arena_free(a);
}

static void test_alignment(void **state)
{
    (void)state;
    gcm_arena *a = new_arena(16 * KiB, 1);
    for (size_t n = 0; n < 300; n += 7) {
        void *p = gcm_arena_alloc(a, n);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % _Alignof(max_align_t), 0);
        assert_int_equal((uintptr_t)p % 16, 0);
    }
    size_t aligns[] = {1, 2, 8, 16, 32, 64, 128, 256, 1024, 4096, 65536, 1 << 20};
    for (size_t i = 0; i < GCM_ARRAY_LEN(aligns); i++) {
        assert_non_null(gcm_arena_alloc(a, 3)); /* misalign the bump */
        size_t used = st(a).used;
        char *p = gcm_arena_alloc_aligned(a, 100, aligns[i]);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % aligns[i], 0);
        assert_int_equal((uintptr_t)p % 16, 0);
        memset(p, 1, 100);
        assert_true(st(a).used >= used + 112);
    }
    size_t bad[] = {0, 3, 24, 48, 100};
    for (size_t i = 0; i < GCM_ARRAY_LEN(bad); i++) {
        errno = 0;
        assert_null(gcm_arena_alloc_aligned(a, 8, bad[i]));
        assert_int_equal(errno, EINVAL);
    }
    gcm_arena_free(a);
}

static void test_bad_arguments_and_overflow(void **state)
{
    (void)state;
    gcm_arena *a = new_arena(4 * KiB, 0);
    assert_non_null(gcm_arena_alloc(a, 10));
    struct gcm_arena_stats before = st(a);
    /* volatile: the compiler would reject the constants outright */
    volatile size_t huge = SIZE_MAX, half = SIZE_MAX / 2;
    size_t tries[] = {huge, huge - 1, huge - 15, huge - 16, half, (size_t)PTRDIFF_MAX,
                      (size_t)PTRDIFF_MAX / 2};
    for (size_t i = 0; i < GCM_ARRAY_LEN(tries); i++) {
        errno = 0;
        assert_null(gcm_arena_alloc(a, tries[i]));
        assert_int_equal(errno, ENOMEM);
        errno = 0;
        assert_null(gcm_arena_alloc_aligned(a, tries[i], 64));
        assert_int_equal(errno, ENOMEM);
    }
    errno = 0;
    assert_null(gcm_arena_alloc_aligned(a, 16, (size_t)1 << 62));
    assert_int_equal(errno, ENOMEM);
    errno = 0;
    assert_null(gcm_arena_calloc(a, half, 3));
    assert_int_equal(errno, ENOMEM);
    errno = 0;
    volatile size_t big33 = (size_t)1 << 33;
    assert_null(gcm_arena_calloc(a, big33, big33));
    assert_int_equal(errno, ENOMEM);
    char *p = gcm_arena_alloc(a, 32);
    strcpy(p, "intact");
    errno = 0;
    assert_null(gcm_arena_realloc(a, p, 32, huge));
    assert_int_equal(errno, ENOMEM);
    assert_string_equal(p, "intact");
    /* Nothing changed but the one allocation. */
    struct gcm_arena_stats after = st(a);
    assert_int_equal(after.used, before.used + 32);
    assert_int_equal(after.requested, before.requested + 32);
    assert_int_equal(after.chunks, before.chunks);

    /* NULL arguments: EINVAL, never a crash. */
    errno = 0;
    assert_null(gcm_arena_alloc(NULL, 8));
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_null(gcm_arena_alloc_aligned(NULL, 8, 64));
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_null(gcm_arena_calloc(NULL, 1, 8));
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_null(gcm_arena_strdup(a, NULL));
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_null(gcm_arena_strndup(a, NULL, 3));
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_null(gcm_arena_strdup(NULL, "x"));
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_null(gcm_arena_sprintf(NULL, "%d", 1));
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_null(gcm_arena_realloc(NULL, p, 1, 2));
    assert_int_equal(errno, EINVAL);
    struct gcm_arena_mark mk;
    assert_int_equal(gcm_arena_mark(NULL, &mk), EINVAL);
    assert_int_equal(gcm_arena_mark(a, NULL), EINVAL);
    assert_int_equal(gcm_arena_rewind(NULL, &mk), EINVAL);
    assert_int_equal(gcm_arena_rewind(a, NULL), EINVAL);
    assert_int_equal(gcm_arena_add_cleanup(NULL, free, NULL), EINVAL);
    assert_int_equal(gcm_arena_add_cleanup(a, NULL, NULL), EINVAL);
    assert_int_equal(gcm_arena_stats(NULL, &after), EINVAL);
    assert_int_equal(gcm_arena_stats(a, NULL), EINVAL);
    gcm_arena_free(a);
}

static void test_strings(void **state)
{
    (void)state;
    gcm_arena *a = new_arena(4 * KiB, 1);
    char *s = gcm_arena_strdup(a, "hello, arena");
    assert_string_equal(s, "hello, arena");
    assert_int_equal(st(a).requested, 13);
    assert_int_equal(st(a).used, 16);
    char *t = gcm_arena_strndup(a, "abcdef", 3);
    assert_string_equal(t, "abc");
    assert_int_equal(st(a).requested, 13 + 4);
    t = gcm_arena_strndup(a, "ab", 10);
    assert_string_equal(t, "ab");
    assert_string_equal(gcm_arena_strdup(a, ""), "");

    /* Fits in the chunk: formatted in place, one allocation. */
    size_t used = st(a).used;
    char *f = gcm_arena_sprintf(a, "%s-%d-%.2f", "req", 42, 1.5);
    assert_string_equal(f, "req-42-1.50");
    assert_int_equal(st(a).used, used + 16);
    assert_int_equal(st(a).requested, 13 + 4 + 3 + 1 + 12);

    /* Does not fit in what is left: formatted again into a new chunk. */
    size_t filled = 0;
    fill_to(a, 96, &filled);
    char fill[2048];
    memset(fill, 'z', sizeof fill - 1);
    fill[sizeof fill - 1] = '\0';
    char *g = gcm_arena_sprintf(a, "<%.300s>", fill);
    assert_non_null(g);
    assert_int_equal(strlen(g), 302);
    assert_int_equal(g[0], '<');
    assert_int_equal(g[301], '>');
    assert_int_equal(st(a).chunks, 2);
    assert_int_equal(st(a).wasted, 96);

    /* Larger than a chunk: a chunk of its own. */
    char *h = gcm_arena_sprintf(a, "%s%s%s", fill, fill, fill);
    assert_int_equal(strlen(h), 3 * 2047);
    assert_int_equal(st(a).chunks, 3);
    gcm_arena_free(a);
}

static void test_calloc_zeroes(void **state)
{
    (void)state;
    gcm_arena *a = new_arena(4 * KiB, 1);
    unsigned char *p = gcm_arena_alloc(a, 500);
    memset(p, 0xff, 500);
    gcm_arena_reset(a);
    unsigned char *q = gcm_arena_calloc(a, 50, 10);
    assert_ptr_equal(p, q);
    for (int i = 0; i < 500; i++)
        assert_int_equal(q[i], 0);
    assert_int_equal(st(a).requested, 500);
    gcm_arena_free(a);
}

static void test_realloc_in_place(void **state)
{
    (void)state;
    gcm_arena *a = new_arena(4 * KiB, 0);
    char *p = gcm_arena_alloc(a, 40);
    memcpy(p, "0123456789", 10);
    size_t used = st(a).used;

    /* The last allocation grows in place. */
    char *q = gcm_arena_realloc(a, p, 40, 200);
    assert_ptr_equal(q, p);
    assert_int_equal(st(a).used, used - 48 + 208);
    assert_int_equal(st(a).requested, 200);
    assert_memory_equal(q, "0123456789", 10);
    /* and shrinks in place. */
    q = gcm_arena_realloc(a, q, 200, 20);
    assert_ptr_equal(q, p);
    assert_int_equal(st(a).used, used - 48 + 32);
    assert_int_equal(st(a).requested, 20);

    /* Not the last allocation any more: grows by copying. */
    char *other = gcm_arena_alloc(a, 16);
    char *r = gcm_arena_realloc(a, q, 20, 100);
    assert_ptr_not_equal(r, q);
    assert_true(r > other);
    assert_memory_equal(r, "0123456789", 10);
    /* Shrinking a non-last allocation keeps it where it is. */
    assert_ptr_equal(gcm_arena_realloc(a, other, 16, 8), other);

    /* Made before the newest mark: copied, so a rewind cannot cut it. */
    char *s = gcm_arena_alloc(a, 32);
    struct gcm_arena_mark mk;
    gcm_arena_mark(a, &mk);
    char *s2 = gcm_arena_realloc(a, s, 32, 64);
    assert_ptr_not_equal(s2, s);
    assert_int_equal(gcm_arena_rewind(a, &mk), 0);
    /* Made after it: in place again. */
    char *u = gcm_arena_alloc(a, 32);
    assert_ptr_equal(gcm_arena_realloc(a, u, 32, 64), u);

    /* No room left in the chunk: copied into a new one. */
    size_t filled = 0;
    fill_to(a, 512, &filled);
    char *w = gcm_arena_alloc(a, 496);
    w[0] = 'w';
    char *w2 = gcm_arena_realloc(a, w, 496, 528);
    assert_ptr_not_equal(w2, w);
    assert_int_equal(w2[0], 'w');
    assert_int_equal(st(a).chunks, 2);

    /* Growing past a quarter of the chunk: a chunk of its own. */
    char *g = gcm_arena_alloc(a, 512);
    size_t chunks = st(a).chunks;
    g[0] = 'g';
    char *g2 = gcm_arena_realloc(a, g, 512, 2000);
    assert_ptr_not_equal(g2, g);
    assert_int_equal(g2[0], 'g');
    assert_int_equal(st(a).chunks, chunks + 1);

    /* NULL: allocates. */
    char *n = gcm_arena_realloc(a, NULL, 0, 24);
    assert_non_null(n);
    gcm_arena_free(a);
}

/* --- cleanups ------------------------------------------------------------------ */

static char cleanup_log[64];

static void log_cleanup(void *arg)
{
    size_t n = strlen(cleanup_log);
    cleanup_log[n] = (char)(intptr_t)arg;
    cleanup_log[n + 1] = '\0';
}

static gcm_arena *nested_arena;

/* A cleanup that allocates and registers another cleanup while running. */
static void cleanup_that_registers(void *arg)
{
    log_cleanup(arg);
    assert_non_null(gcm_arena_alloc(nested_arena, 64));
    assert_int_equal(gcm_arena_add_cleanup(nested_arena, log_cleanup, (void *)'n'), 0);
}

static int reentry_rc;
static void cleanup_that_resets(void *arg)
{
    log_cleanup(arg);
    reentry_rc = gcm_arena_reset((gcm_arena *)nested_arena);
}

static void test_cleanups(void **state)
{
    (void)state;
    gcm_arena *a = new_arena(4 * KiB, 0);
    cleanup_log[0] = '\0';
    for (char c = '1'; c <= '3'; c++)
        assert_int_equal(gcm_arena_add_cleanup(a, log_cleanup, (void *)(intptr_t)c), 0);
    struct gcm_arena_stats s = st(a);
    assert_int_equal(s.cleanups, 3);
    assert_int_equal(s.requested, 0); /* records are the arena's, */
    assert_int_equal(s.used, 3 * 32); /* but take room           */
    assert_string_equal(cleanup_log, "");

    assert_int_equal(gcm_arena_reset(a), 0);
    assert_string_equal(cleanup_log, "321"); /* newest first */
    assert_int_equal(st(a).cleanups, 0);
    assert_int_equal(st(a).used, 0);

    /* Reset runs them once: a second reset runs nothing. */
    gcm_arena_reset(a);
    assert_string_equal(cleanup_log, "321");

    /* A cleanup may allocate and register more; they run in the same pass. */
    nested_arena = a;
    cleanup_log[0] = '\0';
    gcm_arena_add_cleanup(a, log_cleanup, (void *)'a');
    gcm_arena_add_cleanup(a, cleanup_that_registers, (void *)'b');
    gcm_arena_add_cleanup(a, log_cleanup, (void *)'c');
    gcm_arena_reset(a);
    assert_string_equal(cleanup_log, "cbna");
    assert_int_equal(st(a).used, 0);
    assert_int_equal(st(a).cleanups, 0);

    /* A cleanup may not reset its own arena: EBUSY, and the pass goes on. */
    cleanup_log[0] = '\0';
    gcm_arena_add_cleanup(a, log_cleanup, (void *)'x');
    gcm_arena_add_cleanup(a, cleanup_that_resets, (void *)'y');
    capture_stderr_begin();
    gcm_arena_reset(a);
    char *out = capture_end();
    assert_int_equal(reentry_rc, EBUSY);
    assert_string_equal(cleanup_log, "yx");
    if (gcm__debug_on())
        assert_non_null(strstr(out, "own cleanups"));

    /* Free runs them too. */
    cleanup_log[0] = '\0';
    for (char c = '4'; c <= '6'; c++)
        gcm_arena_add_cleanup(a, log_cleanup, (void *)(intptr_t)c);
    gcm_arena_free(a);
    assert_string_equal(cleanup_log, "654");
}

/* --- savepoints ----------------------------------------------------------------- */

static void test_mark_rewind(void **state)
{
    (void)state;
    gcm_arena *a = new_arena(4 * KiB, 0);
    cleanup_log[0] = '\0';
    char *keep = gcm_arena_strdup(a, "before the mark");
    gcm_arena_add_cleanup(a, log_cleanup, (void *)'k');
    struct gcm_arena_stats s0 = st(a);
    struct gcm_arena_mark m0;
    assert_int_equal(gcm_arena_mark(a, &m0), 0);

    /* After the mark: bumps, new chunks, a big chunk, a cleanup. */
    for (int i = 0; i < 100; i++)
        memset(gcm_arena_alloc(a, 100), 'a', 100);
    assert_non_null(gcm_arena_alloc(a, 3000));
    gcm_arena_add_cleanup(a, log_cleanup, (void *)'r');
    assert_true(st(a).chunks > 3);

    assert_int_equal(gcm_arena_rewind(a, &m0), 0);
    struct gcm_arena_stats s1 = st(a);
    assert_int_equal(s1.requested, s0.requested);
    assert_int_equal(s1.used, s0.used);
    assert_int_equal(s1.chunks, s0.chunks);
    assert_int_equal(s1.chunk_bytes, s0.chunk_bytes);
    assert_int_equal(s1.available, s0.available);
    assert_int_equal(s1.cleanups, s0.cleanups);
    assert_string_equal(cleanup_log, "r"); /* only the one after the mark */
    assert_string_equal(keep, "before the mark");

    /* The same mark again: fine, repeatedly. */
    gcm_arena_alloc(a, 10);
    assert_int_equal(gcm_arena_rewind(a, &m0), 0);
    assert_int_equal(gcm_arena_rewind(a, &m0), 0);
    assert_int_equal(st(a).used, s0.used);

    /* Nested: m1 inside m0. */
    gcm_arena_alloc(a, 50);
    struct gcm_arena_mark m1;
    gcm_arena_mark(a, &m1);
    size_t used1 = st(a).used;
    gcm_arena_alloc(a, 70);
    assert_int_equal(gcm_arena_rewind(a, &m1), 0);
    assert_int_equal(st(a).used, used1);
    assert_int_equal(gcm_arena_rewind(a, &m0), 0);
    assert_int_equal(st(a).used, s0.used);

    /* Rewinding the first chunk back to empty. */
    gcm_arena_reset(a);
    struct gcm_arena_mark m2;
    gcm_arena_mark(a, &m2);
    for (int i = 0; i < 50; i++)
        gcm_arena_alloc(a, 200);
    assert_int_equal(gcm_arena_rewind(a, &m2), 0);
    assert_int_equal(st(a).used, 0);
    assert_int_equal(st(a).chunks, 1);
    gcm_arena_free(a);
    assert_string_equal(cleanup_log, "rk");
}

/* Misuse is refused whatever the mode; debug mode says what and where. */
static void test_misuse(void **state)
{
    (void)state;
    int64_t old = gcm__opt_set_int(GCM_OPT_DEBUG, 1);
    gcm_arena *a = new_arena(4 * KiB, 0), *b = new_arena(4 * KiB, 0);
    struct gcm_arena_mark ma, mb;
    gcm_arena_alloc(a, 10);
    gcm_arena_mark(a, &ma);
    gcm_arena_mark(b, &mb);
    gcm_arena_alloc(a, 10);

    /* A mark of another arena. */
    struct gcm_arena_stats before = st(a);
    capture_stderr_begin();
    int rc = gcm_arena_rewind(a, &mb);
    char *out = capture_end();
    assert_int_equal(rc, EINVAL);
    assert_int_equal(count_lines(out), 1);
    assert_non_null(strstr(out, "misuse: gcm_arena_rewind"));
    assert_non_null(strstr(out, "another arena"));
    assert_non_null(strstr(out, "\"test\""));
    assert_non_null(strstr(out, "(at ")); /* where */
    assert_int_equal(st(a).used, before.used); /* untouched */

    /* A mark rewound past: m_inner, then a rewind to the outer mark. */
    struct gcm_arena_mark inner;
    gcm_arena_alloc(a, 100);
    gcm_arena_mark(a, &inner);
    gcm_arena_alloc(a, 100);
    assert_int_equal(gcm_arena_rewind(a, &ma), 0);
    capture_stderr_begin();
    rc = gcm_arena_rewind(a, &inner);
    out = capture_end();
    assert_int_equal(rc, EINVAL);
    assert_int_equal(count_lines(out), 1);
    assert_non_null(strstr(out, "already rewound past"));

    /* ... even after the arena has grown back past where it was. */
    for (int i = 0; i < 40; i++)
        gcm_arena_alloc(a, 100);
    capture_stderr_begin();
    rc = gcm_arena_rewind(a, &inner);
    out = capture_end();
    assert_int_equal(rc, EINVAL);
    assert_non_null(strstr(out, "already rewound past"));
    assert_int_equal(st(a).chunks, 2); /* nothing was undone */

    /* ... and after a reset. */
    gcm_arena_reset(a);
    for (int i = 0; i < 40; i++)
        gcm_arena_alloc(a, 100);
    capture_stderr_begin();
    rc = gcm_arena_rewind(a, &ma);
    out = capture_end();
    assert_int_equal(rc, EINVAL);
    assert_non_null(strstr(out, "already rewound past"));

    /* Many levels of rewinds later, still caught. */
    gcm_arena_reset(a);
    struct gcm_arena_mark lv[12];
    for (int i = 0; i < 12; i++) {
        gcm_arena_alloc(a, 16);
        gcm_arena_mark(a, &lv[i]);
    }
    for (int i = 11; i >= 0; i--)
        assert_int_equal(gcm_arena_rewind(a, &lv[i]), 0);
    for (int i = 0; i < 100; i++)
        gcm_arena_alloc(a, 16);
    capture_stderr_begin();
    for (int i = 1; i < 12; i++)
        assert_int_equal(gcm_arena_rewind(a, &lv[i]), EINVAL);
    out = capture_end();
    assert_int_equal(count_lines(out), 11);
    assert_int_equal(gcm_arena_rewind(a, &lv[0]), 0);

    /* Rewinds at ever higher positions (temporary work after each kept
     * result): the marks inside each step die with its rewind, and the
     * most recent levels are remembered exactly. */
    gcm_arena_reset(a);
    struct gcm_arena_mark step[12], in[12];
    for (int i = 0; i < 12; i++) {
        gcm_arena_alloc(a, 16); /* the kept result */
        gcm_arena_mark(a, &step[i]);
        gcm_arena_alloc(a, 32);
        gcm_arena_mark(a, &in[i]);
        gcm_arena_alloc(a, 16);
        assert_int_equal(gcm_arena_rewind(a, &step[i]), 0);
    }
    for (int i = 0; i < 100; i++)
        gcm_arena_alloc(a, 16);
    capture_stderr_begin();
    for (int i = 4; i < 12; i++)
        assert_int_equal(gcm_arena_rewind(a, &in[i]), EINVAL);
    out = capture_end();
    assert_int_equal(count_lines(out), 8);
    assert_int_equal(gcm_arena_rewind(a, &step[11]), 0);

    /* A cleanup registered twice. */
    capture_stderr_begin();
    assert_int_equal(gcm_arena_add_cleanup(a, log_cleanup, (void *)'q'), 0);
    assert_int_equal(gcm_arena_add_cleanup(a, log_cleanup, (void *)'q'), EEXIST);
    assert_int_equal(gcm_arena_add_cleanup(a, log_cleanup, (void *)'p'), 0);
    out = capture_end();
    assert_int_equal(count_lines(out), 1);
    assert_non_null(strstr(out, "already registered"));
    assert_int_equal(st(a).cleanups, 2);
    cleanup_log[0] = '\0';
    gcm_arena_free(a);
    assert_string_equal(cleanup_log, "pq");
    gcm_arena_free(b);

    /* Debug off: still refused, silently (a debug build is always on). */
    gcm__opt_set_int(GCM_OPT_DEBUG, 0);
    if (!gcm__debug_on()) {
        a = new_arena(4 * KiB, 0);
        b = new_arena(4 * KiB, 0);
        gcm_arena_mark(b, &mb);
        capture_stderr_begin();
        rc = gcm_arena_rewind(a, &mb);
        out = capture_end();
        assert_int_equal(rc, EINVAL);
        assert_string_equal(out, "");
        gcm_arena_free(a);
        gcm_arena_free(b);
    }
    gcm__opt_set_int(GCM_OPT_DEBUG, old);
}

/* --- the collector's view -------------------------------------------------------- */

#define PATTERN 0xc3
#define OBJ_SIZE 256

static volatile int finalized[16];

static void on_final(void *obj, void *arg)
{
    (void)obj;
    __atomic_store_n(&finalized[(intptr_t)arg], 1, __ATOMIC_RELEASE);
}

/* Allocates a collected object, stores its only pointer in *slot (arena
 * memory), and forgets it. */
static __attribute__((noinline)) void plant(void **slot, int id)
{
    unsigned char *obj = gcm_malloc(OBJ_SIZE);
    memset(obj, PATTERN, OBJ_SIZE);
    assert_int_equal(gcm_set_finalizer(obj, on_final, (void *)(intptr_t)id), 0);
    *slot = obj;
    obj = NULL;
    __asm__ volatile("" ::: "memory");
}

/* Overwrites the stack below the caller, where dead frames may still hold
 * a copy of a pointer the test wants forgotten.  Not instrumented by ASan,
 * whose redzones around buf would be left unwritten. */
__attribute__((noinline, no_sanitize_address)) static void clobber_stack(void)
{
    volatile char buf[65536];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = 0;
}

/* Collects and churns, so a wrongly freed object would be finalized and
 * its memory reused. */
static void collect_hard(void)
{
    clobber_stack();
    for (int k = 0; k < 4; k++) {
        for (int i = 0; i < 2000; i++)
            memset(gcm_malloc(OBJ_SIZE), 0, OBJ_SIZE);
        gcm_gc();
        usleep(5000);
    }
}

static bool intact(void *obj)
{
    const unsigned char *p = obj;
    for (int i = 0; i < OBJ_SIZE; i++)
        if (p[i] != PATTERN)
            return false;
    return true;
}

static bool wait_finalized(int id)
{
    for (int i = 0; i < 200; i++) {
        if (__atomic_load_n(&finalized[id], __ATOMIC_ACQUIRE))
            return true;
        clobber_stack();
        gcm_gc();
        usleep(10000);
    }
    return false;
}

static void test_scan_arena_keeps_objects(void **state)
{
    (void)state;
    memset((void *)finalized, 0, sizeof finalized);
    gcm_arena *a = new_arena(4 * KiB, 0);
    /* In the first chunk, in a later chunk, and in a big chunk. */
    void **s0 = gcm_arena_alloc(a, sizeof(void *));
    plant(s0, 0);
    for (int i = 0; i < 60; i++)
        gcm_arena_alloc(a, 100);
    void **s1 = gcm_arena_alloc(a, sizeof(void *));
    plant(s1, 1);
    void **s2 = gcm_arena_alloc(a, 2048);
    plant(&s2[200], 2);
    assert_true(st(a).chunks >= 3);

    collect_hard();
    assert_int_equal(finalized[0], 0);
    assert_int_equal(finalized[1], 0);
    assert_int_equal(finalized[2], 0);
    assert_true(intact(*s0));
    assert_true(intact(*s1));
    assert_true(intact(s2[200]));

    /* Rewinding past the later ones lets them go; the first stays. */
    gcm_arena_reset(a);
    void **t0 = gcm_arena_alloc(a, sizeof(void *));
    plant(t0, 3);
    struct gcm_arena_mark mk;
    gcm_arena_mark(a, &mk);
    for (int i = 0; i < 60; i++)
        gcm_arena_alloc(a, 100);
    void **t1 = gcm_arena_alloc(a, sizeof(void *));
    plant(t1, 4);
    gcm_arena_rewind(a, &mk);
    t1 = NULL;
    assert_true(wait_finalized(4));
    assert_true(wait_finalized(0)); /* the reset above dropped these */
    assert_true(wait_finalized(1));
    assert_true(wait_finalized(2));
    assert_int_equal(finalized[3], 0);
    assert_true(intact(*t0));

    /* Only up to the bump pointer is scanned: an object whose pointer lies
     * in the same chunk, past a rewind, is let go too. */
    struct gcm_arena_mark m2;
    gcm_arena_mark(a, &m2);
    void **t2 = gcm_arena_alloc(a, sizeof(void *));
    plant(t2, 6);
    assert_true(st(a).chunks == 1);
    gcm_arena_rewind(a, &m2);
    t2 = NULL;
    assert_true(wait_finalized(6));
    assert_int_equal(finalized[3], 0);

    /* Free: gone. */
    gcm_arena_free(a);
    t0 = NULL;
    assert_true(wait_finalized(3));
}

static void test_noscan_arena_is_not_scanned(void **state)
{
    (void)state;
    memset((void *)finalized, 0, sizeof finalized);
    gcm_arena *a = new_arena(4 * KiB, 1);
    assert_int_equal(st(a).scan, 0);
    void **slot = gcm_arena_alloc(a, sizeof(void *));
    plant(slot, 5);
    /* The arena still holds the pointer, but the collector does not look. */
    assert_true(wait_finalized(5));
    gcm_arena_free(a);
}

/* A scan arena counts as heap: gctrace's heap figures and the pacer see
 * arena memory in use, as Go's do. */
static uint64_t last_heap2;
static void record_heap(const gcm__cycle *c, void *arg)
{
    (void)arg;
    last_heap2 = c->heap2;
}

static void test_arena_memory_counts_as_heap(void **state)
{
    (void)state;
    static bool hooked;
    if (!hooked) {
        gcm__gc_on_cycle(record_heap, NULL);
        hooked = true;
    }
    gcm_gc();
    uint64_t base = last_heap2;
    struct gcm_memstats m0 = ms();
    gcm_arena *a = new_arena(64 * KiB, 1);
    for (int i = 0; i < 256; i++)
        assert_non_null(gcm_arena_alloc(a, 60000)); /* ~16 MiB */
    struct gcm_memstats m1 = ms();
    assert_true(m1.arena_inuse >= m0.arena_inuse + 256 * 60000);
    assert_true(m1.nongc_sys >= m0.nongc_sys + 256 * 60000);
    assert_true(m1.sys >= m0.sys + 256 * 60000);
    gcm_gc();
    /* All of it but what this thread may still hold back: arena.c tells the
     * collector in batches of at most 256 KiB per thread. */
    assert_true(last_heap2 + 256 * KiB >= base + 256 * 60000);
    assert_true(ms().next_gc > m0.next_gc + 256 * 60000);
    gcm_arena_free(a);
    gcm_gc();
    assert_true(last_heap2 < base + 1024 * KiB);
    struct gcm_memstats m2 = ms();
    assert_int_equal(m2.arena_inuse, m0.arena_inuse);
}

/* Each thread tells the collector about its arenas' chunks in batches; a
 * thread that exits hands over what it had not told yet. */
static void *make_arena_and_exit(void *arg)
{
    *(gcm_arena **)arg = new_arena(128 * KiB, 1);
    return NULL;
}

static void test_thread_exit_counts_its_arenas(void **state)
{
    (void)state;
    gcm_gc();
    gcm_gc();
    uint64_t base = last_heap2;
    gcm_arena *a = NULL;
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, make_arena_and_exit, &a), 0);
    pthread_join(th, NULL);
    assert_non_null(a);
    gcm_gc();
    /* 128 KiB is below the batch the thread would have flushed itself. */
    assert_true(last_heap2 >= base + 128 * KiB);
    gcm_arena_free(a);
}

/* --- debugging aids ------------------------------------------------------------- */

static void test_poison_fill(void **state)
{
    (void)state;
    int64_t old = gcm__opt_set_int(GCM_OPT_ARENA_POISON, 1);
    gcm_arena *a = new_arena(4 * KiB, 0);
    unsigned char *p = gcm_arena_alloc(a, 100);
    memset(p, 'x', 100);
    gcm_arena_reset(a);
    /* The same memory, handed out again: the pattern, not the old data.
     * (Reading it through a new allocation keeps ASan builds happy.) */
    unsigned char *q = gcm_arena_alloc(a, 100);
    assert_ptr_equal(p, q);
    for (int i = 0; i < 100; i++)
        assert_int_equal(q[i], 0x5a);
    memset(q, 'y', 100);
    struct gcm_arena_mark mk;
    gcm_arena_mark(a, &mk);
    unsigned char *r = gcm_arena_alloc(a, 64);
    memset(r, 'z', 64);
    gcm_arena_rewind(a, &mk);
    r = gcm_arena_alloc(a, 64);
    for (int i = 0; i < 64; i++)
        assert_int_equal(r[i], 0x5a);
    for (int i = 0; i < 100; i++)
        assert_int_equal(q[i], 'y'); /* before the mark: untouched */
    gcm_arena_free(a);
    gcm__opt_set_int(GCM_OPT_ARENA_POISON, 0);
    /* Without the option, memory is handed back as it was. */
    a = new_arena(4 * KiB, 0);
    p = gcm_arena_alloc(a, 100);
    memset(p, 'x', 100);
    gcm_arena_reset(a);
    q = gcm_arena_alloc(a, 100);
    assert_int_equal(q[0], 'x');
    gcm_arena_free(a);
    gcm__opt_set_int(GCM_OPT_ARENA_POISON, old);
}

/* Runs fn in a child process with stderr captured; returns the child's
 * wait status and its stderr in out. */
static int in_child(void (*fn)(void), char *out, size_t cap)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(p[1], 2);
        close(p[0]);
        fn();
        _exit(0);
    }
    close(p[1]);
    size_t len = 0;
    ssize_t n;
    while ((n = read(p[0], out + len, cap - 1 - len)) > 0)
        len += (size_t)n;
    out[len] = '\0';
    close(p[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return status;
}

static void use_after_reset(void)
{
    gcm_arena *a = new_arena(4 * KiB, 0);
    volatile char *p = gcm_arena_alloc(a, 64);
    p[0] = 1;
    gcm_arena_reset(a);
    (void)p[0]; /* ASan must report this */
}

static void use_after_free(void)
{
    gcm_arena *a = new_arena(4 * KiB, 0);
    for (int i = 0; i < 100; i++)
        gcm_arena_alloc(a, 100);
    volatile char *p = gcm_arena_alloc(a, 64); /* in a later chunk */
    p[0] = 1;
    gcm_arena_free(a);
    p[0] = 2; /* ASan must report this */
}

static void overrun(void)
{
    gcm_arena *a = new_arena(4 * KiB, 0);
    volatile size_t n = 20, past = 20;
    volatile char *p = gcm_arena_alloc(a, n); /* 12 bytes of slack after */
    gcm_arena_alloc(a, 16);
    p[past] = 1; /* ASan must report this */
}

static void test_asan_reports_use_after_reset(void **state)
{
    (void)state;
    if (!gcm__config_asan) {
        print_message("      not an AddressSanitizer build: nothing would "
                      "report the use; run `make test-asan`\n");
        skip();
    }
    static char out[65536];
    void (*cases[])(void) = {use_after_reset, use_after_free, overrun};
    for (size_t i = 0; i < GCM_ARRAY_LEN(cases); i++) {
        int status = in_child(cases[i], out, sizeof out);
        assert_false(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        assert_non_null(strstr(out, "ERROR: AddressSanitizer: use-after-poison"));
        /* The report names the line that used the memory. */
        assert_non_null(strstr(out, "test_arena.c"));
    }
}

int main(void)
{
    gcm_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_defaults),
        cmocka_unit_test(test_steps),
        cmocka_unit_test(test_chunk_sizes),
        cmocka_unit_test(test_alignment),
        cmocka_unit_test(test_bad_arguments_and_overflow),
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_calloc_zeroes),
        cmocka_unit_test(test_realloc_in_place),
        cmocka_unit_test(test_cleanups),
        cmocka_unit_test(test_mark_rewind),
        cmocka_unit_test(test_misuse),
        cmocka_unit_test(test_scan_arena_keeps_objects),
        cmocka_unit_test(test_noscan_arena_is_not_scanned),
        cmocka_unit_test(test_arena_memory_counts_as_heap),
        cmocka_unit_test(test_thread_exit_counts_its_arenas),
        cmocka_unit_test(test_poison_fill),
        cmocka_unit_test(test_asan_reports_use_after_reset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
