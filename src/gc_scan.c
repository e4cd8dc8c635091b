/*
 * gc_scan.c — collected objects whose pointers may sit off word boundaries.
 *
 * bdwgc looks for pointers only at word-aligned offsets inside an object
 * (its ALIGNMENT, fixed when the library is built: 8 on x86-64).  C allows
 * less: a packed struct puts a pointer wherever its fields end, and real
 * programs do it.  Ruby 3.1 declares each IO's buffers
 * PACKED_STRUCT_UNALIGNED, so the pointer to an open file's read buffer
 * sits at offset 68 of its rb_io_t; with word-aligned scanning the
 * collector never sees it, and the first collection reclaims the buffer of
 * the script Ruby is parsing ("Invalid char `\x06' in expression").  Under
 * the preload library the collector cannot know a program's structures,
 * so it must not assume their alignment either.
 *
 * GCMALLOC_POINTER_ALIGN chooses where to look.  At 8, objects are bdwgc's
 * own NORMAL kind and nothing here runs.  At 4, 2 or 1, they come from a
 * kind of our own whose mark procedure reads a candidate pointer at every
 * 4th (2nd, 1st) byte of the object: an 8-byte unaligned load, checked
 * against the heap's bounds before bdwgc looks it up (GC_MARK_AND_PUSH),
 * as its own marker does for aligned words.  A byte-granular step is
 * possible but reads eight candidates per word; 4 finds every pointer in a
 * packed struct whose other fields are 4-byte (int, float, enum) — the
 * common case, and Ruby's — at two candidates per word.
 *
 * What the procedure does not cover: pointers held only in roots (data
 * segments, stacks, mappings the program made) are still read at word
 * alignment by bdwgc; so are the blocks the C library allocates before the
 * program starts (uncollectable).  bdwgc's contract lets it scan a
 * procedure's object the ordinary way instead, which would find only
 * aligned pointers: its builds with mark bytes (parallel marking, as
 * Debian's) never do.
 *
 * Large objects.  A procedure is meant to do about GC_PROC_BYTES of work
 * and push itself back for the rest, but the entry layout needed for that
 * is private to bdwgc.  So it scans the whole object at once: a pointer-
 * dense object of megabytes may overflow the mark stack, which bdwgc
 * handles (it grows the stack and rescans from the marked objects), at the
 * cost of that rescan (not measured: the benchmarks' objects are small).
 *
 * Allocation.  bdwgc's per-thread free lists serve only its built-in
 * kinds; GC_malloc_kind of any other kind takes the allocation lock for
 * every object, which cost a program that only allocates (trees-leak)
 * 1.29x the wall time of the NORMAL kind.  So small objects of our kind
 * come from per-thread lists of our own, refilled a block at a time by
 * GC_generic_malloc_many (below); with them, 1.05x, the rest being the
 * closer scan.  A first version of these lists crashed a collection after
 * objects were GC_free'd: bdwgc makes a kind's reclaim list only on its
 * global allocation path, and a kind without one is skipped by the sweep
 * (see gcm__scan_init).
 */
#define _GNU_SOURCE
#include <stdint.h>

#define GC_THREADS
#define GC_NO_THREAD_REDIRECTS
#include <gc/gc.h>
#include <gc/gc_inline.h> /* GC_malloc_kind, GC_I_NORMAL */
#include <gc/gc_mark.h>
#include <mimalloc.h>

#include "internal.h"

static unsigned step = 8;    /* bytes between two candidate pointers */
static int scan_kind = -1;   /* our kind; -1 = bdwgc's NORMAL is used */

/* bdwgc's small objects go up to half a block, in 16-byte granules; a
 * block is at most 64 KiB in any build of it. */
#define FREE_LIST_HEADS (65536 / 2 / 16 + 1)

/* The values GCMALLOC_POINTER_ALIGN accepts, in its table's order. */
static const unsigned steps[] = {8, 4, 2, 1};

/* A word read at any address: the load the compiler emits for it says
 * so, where a plain uintptr_t load at an odd address would be undefined. */
typedef uintptr_t __attribute__((aligned(1), may_alias)) unaligned_word;

/* The mark procedure of our kind: every candidate at `step` bytes.  It may
 * run on several marker threads at once and on objects still on a free
 * list (cleared but for their link); it only reads.  Like bdwgc's own
 * marker (not built with AddressSanitizer) it reads whatever the object
 * holds, redzones included when the object serves as a coroutine's stack,
 * so it is not instrumented; the load is written out for the same reason
 * (ASan checks a memcpy call even from an uninstrumented function). */
__attribute__((no_sanitize_address))
static struct GC_ms_entry *mark_unaligned(GC_word *addr,
                                          struct GC_ms_entry *msp,
                                          struct GC_ms_entry *lim,
                                          GC_word env)
{
    (void)env;
    size_t n = GC_size(addr);
    if (n < sizeof(void *))
        return msp;
    const char *p = (const char *)addr;
    const char *last = p + n - sizeof(void *);
    const uintptr_t lo = (uintptr_t)GC_least_plausible_heap_addr;
    const uintptr_t hi = (uintptr_t)GC_greatest_plausible_heap_addr;
    const unsigned s = step;
    for (; p <= last; p += s) {
        uintptr_t v = *(const unaligned_word *)p;
        if (v >= lo && v <= hi)
            msp = GC_mark_and_push((void *)v, msp, lim, (void **)p);
    }
    return msp;
}

/* Per-thread lists of fresh objects of our kind, one per size in granules
 * below GC_TINY_FREELISTS (up to 384 bytes, the sizes bdwgc's own
 * thread-local lists serve), each refilled a block at a time by
 * GC_generic_malloc_many: one lock per block instead of one per object.
 * A request takes exactly the granules it needs plus bdwgc's extra byte,
 * as bdwgc's thread-local path does (its global path rounds these sizes
 * the same way).  The heads live in an uncollectable block, so the lists'
 * objects are reachable and survive collections, at most a block per size
 * per thread; a thread's exit frees the block and leaves them to the
 * collector. */
#define LIST_GRANULES (GC_TINY_FREELISTS - 1)
static size_t extra_bytes; /* bdwgc's EXTRA_BYTES: 1 with interior pointers */

static void lists_drop(gcm__tls *t)
{
    if (t->scan_lists != NULL)
        GC_free(t->scan_lists);
    t->scan_lists = NULL;
}

void gcm__scan_init(void)
{
    int64_t i = gcm__opt_int(GCM_OPT_POINTER_ALIGN);
    if (i < 0 || i >= (int64_t)(sizeof steps / sizeof steps[0]))
        i = 0;
    step = steps[i];
    if (step == 8)
        return;
    /* The kind's free-list heads, one per size in granules.  Not from
     * GC_new_free_list: its 1 KiB allocation, the first of that size,
     * would set bdwgc's size classes around it (they are made on first
     * use, to fill blocks), and a program's 1023-byte objects would then
     * take 1344 bytes instead of 1024.  bdwgc never frees the array, nor
     * scans it; sized for the largest block size bdwgc is built with. */
    void **heads = mi_zalloc(FREE_LIST_HEADS * sizeof(void *));
    if (heads == NULL) {
        gcm__diag("GCMALLOC_POINTER_ALIGN=%u: out of memory; using 8", step);
        step = 8;
        return;
    }
    unsigned proc = GC_new_proc(mark_unaligned);
    /* Cleared on allocation, as NORMAL objects are: a stale pointer left
     * in a reused object would keep its target alive. */
    scan_kind = (int)GC_new_kind(heads, GC_MAKE_PROC(proc, 0), 0, 1);
    extra_bytes = GC_get_all_interior_pointers() ? 1 : 0;
    /* bdwgc makes a kind's reclaim list (the blocks its sweep defers) on
     * the kind's first allocation through its global path, and
     * GC_generic_malloc_many never does.  A collection skips a kind that
     * has none as unused: it neither sweeps its blocks nor empties its
     * free lists, and the next one followed GC_free's links into blocks
     * it had freed whole and crashed.  One object through the global
     * path makes the list; a 1-byte size is mapped at GC_init already, so
     * no size class moves. */
    GC_free(GC_malloc_kind(1, scan_kind));
    gcm__thread_on_exit(lists_drop);
}

int gcm__scan_kind(void)
{
    return scan_kind >= 0 ? scan_kind : GC_I_NORMAL;
}

/* Takes the first object off a list: cleared, as bdwgc hands them out. */
static inline void *list_pop(void **head)
{
    void **b = *head;
    *head = *b;
    *b = NULL;
    return b;
}

/* Refills this thread's list of g granules and takes its first object;
 * a thread whose lists could not be freed (past its exit) or made gets
 * one object from bdwgc's global path instead. */
static GCM_NOINLINE void *list_refill(gcm__tls *t, size_t g)
{
    if (!(t->flags & GCM_T_EXITED) && t->scan_lists == NULL)
        t->scan_lists = GC_malloc_uncollectable((LIST_GRANULES + 1) * sizeof(void *));
    if ((t->flags & GCM_T_EXITED) || t->scan_lists == NULL)
        return GC_malloc_kind(g * GC_GRANULE_BYTES - extra_bytes, scan_kind);
    GC_generic_malloc_many(g * GC_GRANULE_BYTES, scan_kind, &t->scan_lists[g]);
    if (t->scan_lists[g] == NULL)
        return NULL;
    return list_pop(&t->scan_lists[g]);
}

void *gcm__scan_malloc(size_t n)
{
    if (scan_kind < 0)
        return GC_MALLOC(n);
    size_t g = (n + extra_bytes + GC_GRANULE_BYTES - 1) / GC_GRANULE_BYTES;
    if (n == 0 || g > LIST_GRANULES)
        return GC_malloc_kind(n, scan_kind);
    gcm__tls *t = &gcm__tls_self;
    void **lists = t->scan_lists;
    if (GCM_UNLIKELY(lists == NULL || lists[g] == NULL))
        return list_refill(t, g);
    return list_pop(&lists[g]);
}
